// Tests for the page medium: page writes, write counting, the power-cut injector's three modes,
// the write-through image file and its durability setting.
#include "skillcard/card/eeprom.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "test_support.hpp"

namespace skillcard::card {
namespace {

using testing::TempDir;

Bytes page_of(std::uint8_t value) { return Bytes(kPageSize, value); }

TEST(Eeprom, InMemoryStartsZeroed) {
  const Eeprom e = Eeprom::in_memory(20);
  EXPECT_EQ(e.page_count(), 20u);
  EXPECT_EQ(e.image().size(), 20u * 64);
  EXPECT_TRUE(std::all_of(e.image().begin(), e.image().end(), [](std::uint8_t b) { return b == 0; }));
  EXPECT_EQ(e.writes(), 0u);
  EXPECT_TRUE(e.path().empty());
}

TEST(Eeprom, PageCountBounds) {
  EXPECT_THROW(Eeprom::in_memory(17), ImageError);
  EXPECT_NO_THROW(Eeprom::in_memory(18));
  EXPECT_NO_THROW(Eeprom::in_memory(256));
  EXPECT_THROW(Eeprom::in_memory(257), ImageError);
}

TEST(Eeprom, FromBytesNeedsWholePages) {
  try {
    Eeprom::from_bytes(Bytes(18 * 64 + 1));
    FAIL() << "accepted";
  } catch (const ImageError& e) {
    EXPECT_EQ(e.reason(), ImageError::Reason::WrongSize);
    EXPECT_NE(std::string(e.what()).find("not a whole number of 64-byte pages"), std::string::npos) << e.what();
  }
}

TEST(Eeprom, WritePageCountsWrites) {
  Eeprom e = Eeprom::in_memory(18);
  e.write_page(3, page_of(0x33));
  e.write_page(17, page_of(0x77));
  EXPECT_EQ(e.writes(), 2u);
  EXPECT_EQ(to_hex(e.page(3)), to_hex(page_of(0x33)));
  EXPECT_EQ(to_hex(e.page(17)), to_hex(page_of(0x77)));
  EXPECT_EQ(to_hex(e.page(4)), to_hex(page_of(0)));
}

TEST(Eeprom, WritePageRejectsProgrammingErrors) {
  Eeprom e = Eeprom::in_memory(18);
  EXPECT_THROW(e.write_page(18, page_of(1)), std::out_of_range);
  EXPECT_THROW(e.write_page(1, Bytes(63)), std::invalid_argument);
  EXPECT_THROW(e.page(18), std::out_of_range);
  EXPECT_EQ(e.writes(), 0u);
}

TEST(Eeprom, CutBeforeLeavesThePageOld) {
  Eeprom e = Eeprom::in_memory(18);
  e.write_page(5, page_of(0x11));
  e.arm({1, CutMode::Before, 0});
  e.write_page(6, page_of(0x22));  // index 0: passes
  EXPECT_THROW(e.write_page(5, page_of(0x99)), PowerLost);
  EXPECT_EQ(to_hex(e.page(5)), to_hex(page_of(0x11)));
  EXPECT_EQ(to_hex(e.page(6)), to_hex(page_of(0x22)));
  EXPECT_TRUE(e.power_lost());
  EXPECT_FALSE(e.armed().has_value()) << "a cut fires once";
  EXPECT_EQ(e.writes(), 3u) << "the interrupted write counts";
}

TEST(Eeprom, CutAfterCompletesThePage) {
  Eeprom e = Eeprom::in_memory(18);
  e.arm({0, CutMode::After, 0});
  EXPECT_THROW(e.write_page(5, page_of(0x99)), PowerLost);
  EXPECT_EQ(to_hex(e.page(5)), to_hex(page_of(0x99)));
}

TEST(Eeprom, CutDuringTearsThePageReproducibly) {
  auto torn = [](std::uint64_t seed) {
    Eeprom e = Eeprom::in_memory(18);
    e.write_page(5, page_of(0x11));
    e.arm({0, CutMode::During, seed});
    EXPECT_THROW(e.write_page(5, page_of(0xEE)), PowerLost);
    return Bytes(e.page(5).begin(), e.page(5).end());
  };
  const Bytes a = torn(7), b = torn(7), c = torn(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, page_of(0x11));
  EXPECT_NE(a, page_of(0xEE));
  const auto count = [&](std::uint8_t v) { return std::count(a.begin(), a.end(), v); };
  EXPECT_GT(count(0x11), 0);
  EXPECT_GT(count(0xEE), 0);
  EXPECT_GT(64 - count(0x11) - count(0xEE), 0) << "some garbage too";
}

TEST(Eeprom, NoWriteSucceedsUntilPowerIsRestored) {
  Eeprom e = Eeprom::in_memory(18);
  e.arm({0, CutMode::Before, 0});
  EXPECT_THROW(e.write_page(2, page_of(1)), PowerLost);
  EXPECT_THROW(e.write_page(3, page_of(1)), PowerLost);
  EXPECT_EQ(to_hex(e.page(3)), to_hex(page_of(0)));
  e.restore_power();
  EXPECT_FALSE(e.power_lost());
  e.write_page(3, page_of(1));
  EXPECT_EQ(to_hex(e.page(3)), to_hex(page_of(1)));
}

TEST(Eeprom, CutIndexCountsFromArming) {
  Eeprom e = Eeprom::in_memory(18);
  for (int i = 0; i < 5; ++i) e.write_page(2, page_of(1));
  e.arm({2, CutMode::Before, 0});
  e.write_page(2, page_of(2));
  e.write_page(2, page_of(3));
  EXPECT_THROW(e.write_page(2, page_of(4)), PowerLost);
  EXPECT_EQ(e.page(2)[0], 3);
}

TEST(Eeprom, DisarmCancelsTheCut) {
  Eeprom e = Eeprom::in_memory(18);
  e.arm({0, CutMode::Before, 0});
  ASSERT_TRUE(e.armed().has_value());
  e.disarm();
  EXPECT_NO_THROW(e.write_page(2, page_of(1)));
}

TEST(Eeprom, CloneIsAnIndependentRamCopy) {
  Eeprom e = Eeprom::in_memory(18);
  e.write_page(2, page_of(9));
  e.arm({0, CutMode::Before, 0});
  Eeprom copy = e.clone();
  EXPECT_FALSE(copy.armed().has_value());
  copy.write_page(2, page_of(8));
  EXPECT_EQ(e.page(2)[0], 9);
  EXPECT_EQ(copy.page(2)[0], 8);
}

Bytes file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

TEST(Eeprom, FileIsWrittenThroughPageByPage) {
  TempDir dir;
  const auto path = dir / "card.img";
  {
    Eeprom e = Eeprom::create_file(path, 18);
    EXPECT_EQ(std::filesystem::file_size(path), 18u * 64);
    e.write_page(4, page_of(0x44));
    // Visible in the file at once, without closing: a killed process loses nothing written.
    EXPECT_EQ(file_bytes(path), Bytes(e.image().begin(), e.image().end()));
    e.arm({0, CutMode::During, 3});
    EXPECT_THROW(e.write_page(5, page_of(0x55)), PowerLost);
    EXPECT_EQ(file_bytes(path), Bytes(e.image().begin(), e.image().end())) << "the torn page too";
  }
  const Eeprom reopened = Eeprom::open_file(path);
  EXPECT_EQ(reopened.page(4)[0], 0x44);
  EXPECT_EQ(reopened.path(), path);
}

TEST(Eeprom, CutBeforeDoesNotTouchTheFile) {
  TempDir dir;
  const auto path = dir / "card.img";
  Eeprom e = Eeprom::create_file(path, 18);
  e.arm({0, CutMode::Before, 0});
  EXPECT_THROW(e.write_page(4, page_of(0x44)), PowerLost);
  EXPECT_EQ(file_bytes(path), Bytes(18 * 64, 0));
}

TEST(Eeprom, SystemDurabilityFlushesAtBarriers) {
  TempDir dir;
  Eeprom e = Eeprom::create_file(dir / "card.img", 18, Durability::System);
  EXPECT_EQ(e.durability(), Durability::System);
  e.write_page(2, page_of(2));
  EXPECT_NO_THROW(e.barrier());
  EXPECT_EQ(file_bytes(dir / "card.img")[2 * 64], 2);
}

// One card, one simulator: a second one on the same image (another vpcd slot by mistake) would
// keep its own copy and write through to the same file, and the next mount would refuse the card.
TEST(Eeprom, AnImageInUseIsRefusedUntilItsSimulatorLetsGo) {
  TempDir dir;
  const auto path = dir / "card.img";
  {
    Eeprom first = Eeprom::create_file(path, 18);
    try {
      Eeprom::open_file(path);
      FAIL() << "a second simulator opened an image in use";
    } catch (const ImageError& e) {
      EXPECT_EQ(e.reason(), ImageError::Reason::InUse);
      EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(Eeprom::open_file(path));  // closed: free again
}

TEST(Eeprom, CreateRefusesAnExistingFile) {
  TempDir dir;
  const auto path = dir / "card.img";
  Eeprom::create_file(path, 18).write_page(2, page_of(7));
  try {
    Eeprom::create_file(path, 18);
    FAIL() << "replaced an existing image";
  } catch (const ImageError& e) {
    EXPECT_EQ(e.reason(), ImageError::Reason::Unreadable);
    EXPECT_NE(std::string(e.what()).find("File exists"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Eeprom::open_file(path).page(2)[0], 7);
}

TEST(Eeprom, OpenMissingFileOrFolderIsUnreadable) {
  TempDir dir;
  for (const auto& p : {dir / "missing.img", dir.path()}) {
    try {
      Eeprom::open_file(p);
      FAIL() << p;
    } catch (const ImageError& e) {
      EXPECT_EQ(e.reason(), ImageError::Reason::Unreadable) << e.what();
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace skillcard::card
