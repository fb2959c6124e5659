// Tests for loading image files: a good image loads and keeps its data; a corrupt one (bad
// magic, bad CRC, wrong size, truncated, newer or older version) is refused with its precise
// reason, never half-loaded and never written to.
#include <gtest/gtest.h>

#include <fstream>

#include "skillcard/card/card.hpp"
#include "skillcard/card/persistent_memory.hpp"
#include "test_support.hpp"

namespace skillcard::card {
namespace {

using testing::TempDir;

Bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::filesystem::path& p, const Bytes& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void put_crc(Bytes& image) {
  const std::uint32_t crc = image_crc(image);
  for (int i = 0; i < 4; ++i) image[8 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
}

class Image : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir / "card.img";
    Eeprom e = Eeprom::create_file(path, 40);
    PersistentMemory::format(e);
    PersistentMemory m(std::move(e));
    m.mount();
    auto tx = m.begin();
    tx.write(300, from_hex("C0FFEE"));
    tx.commit();
    good = read_file(path);
  }

  // Loads `path` as the card does at power-on; expects a refusal with this reason and message
  // part, and the file unchanged afterwards.
  void expect_refused(ImageError::Reason reason, const std::string& message) {
    const Bytes before = read_file(path);
    try {
      PersistentMemory m(Eeprom::open_file(path));
      m.mount();
      ADD_FAILURE() << "image loaded";
    } catch (const ImageError& e) {
      EXPECT_EQ(e.reason(), reason) << e.what();
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_file(path), before) << "a refused image must not be written to";
  }

  TempDir dir;
  std::filesystem::path path;
  Bytes good;
};

TEST_F(Image, GoodImageLoadsWithItsData) {
  PersistentMemory m(Eeprom::open_file(path));
  EXPECT_EQ(m.mount().journal, MountReport::Journal::Empty);
  EXPECT_EQ(to_hex(m.read(300, 3)), "C0FFEE");
  EXPECT_EQ(m.size(), 23u * 64);
}

TEST_F(Image, BadMagicIsRefused) {
  Bytes b = good;
  b[1] = 'X';
  write_file(path, b);
  expect_refused(ImageError::Reason::BadMagic, "not \"SKCI\"");
}

TEST_F(Image, BadCrcIsRefused) {
  Bytes b = good;
  b[17 * 64 + 300] ^= 0x01;  // one bit of applet data
  write_file(path, b);
  expect_refused(ImageError::Reason::BadCrc, "corrupt image: header CRC32");
}

TEST_F(Image, CorruptHeaderFieldIsCaughtByTheCrc) {
  Bytes b = good;
  b[40] = 0x01;  // reserved header byte
  write_file(path, b);
  expect_refused(ImageError::Reason::BadCrc, "CRC32");
}

TEST_F(Image, NewerVersionIsRefusedAsSuch) {
  Bytes b = good;
  b[5] = 2;
  put_crc(b);
  write_file(path, b);
  expect_refused(ImageError::Reason::NewerVersion, "newer image format version 2, this simulator knows 1");
}

TEST_F(Image, OlderVersionIsRefusedWithoutMigration) {
  Bytes b = good;
  b[5] = 0;
  put_crc(b);
  write_file(path, b);
  expect_refused(ImageError::Reason::OlderVersion, "older image format version 0: no migration to version 1");
}

TEST_F(Image, SizeNotAWholeNumberOfPagesIsRefused) {
  Bytes b = good;
  b.pop_back();
  write_file(path, b);
  try {
    Eeprom::open_file(path);
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_EQ(e.reason(), ImageError::Reason::WrongSize);
    EXPECT_NE(std::string(e.what()).find("2559 bytes, not a whole number of 64-byte pages"), std::string::npos)
        << e.what();
  }
}

TEST_F(Image, TruncatedFileIsRefused) {
  // Cut at a page boundary, as a copy that stopped early would be.
  write_file(path, Bytes(good.begin(), good.begin() + 30 * 64));
  expect_refused(ImageError::Reason::PageCountMismatch,
                 "header says 40 pages (2560 bytes) but the image holds 30 pages (1920 bytes)");
}

TEST_F(Image, ExtendedFileIsRefused) {
  Bytes b = good;
  b.resize(b.size() + 64, 0);
  write_file(path, b);
  expect_refused(ImageError::Reason::PageCountMismatch, "header says 40 pages");
}

TEST_F(Image, TooSmallFileIsRefused) {
  write_file(path, Bytes(good.begin(), good.begin() + 17 * 64));
  try {
    Eeprom::open_file(path);
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_EQ(e.reason(), ImageError::Reason::WrongSize);
    EXPECT_NE(std::string(e.what()).find("has 17 pages; an image has 18..256"), std::string::npos) << e.what();
  }
}

TEST_F(Image, EmptyOrZeroedFileIsRefused) {
  write_file(path, Bytes(40 * 64, 0));
  expect_refused(ImageError::Reason::BadMagic, "00000000");
  write_file(path, Bytes());
  EXPECT_THROW(Eeprom::open_file(path), ImageError);
}

TEST_F(Image, RefusedImageKeepsTheCardOff) {
  Bytes b = good;
  b[17 * 64] ^= 0xFF;
  write_file(path, b);
  Card card(Eeprom::open_file(path));
  EXPECT_THROW(card.power_on(), ImageError);
  EXPECT_FALSE(card.powered());
  EXPECT_FALSE(card.memory().mounted());
  EXPECT_THROW(card.process(from_hex("00A4040000")), CardNotPowered);
}

TEST_F(Image, InterruptedCommitInTheFileIsRecoveredOnNextOpen) {
  {
    PersistentMemory m(Eeprom::open_file(path));
    m.mount();
    auto tx = m.begin();
    tx.write(0, Bytes(3 * 64, 0x3C));
    // Writes: 4 journal images, the record (4), then in place: cut in the middle of those.
    m.eeprom().arm({6, CutMode::During, 11});
    EXPECT_THROW(tx.commit(), PowerLost);
  }  // the process "dies": nothing else reaches the file
  PersistentMemory m(Eeprom::open_file(path));
  EXPECT_EQ(m.mount().journal, MountReport::Journal::Replayed);
  EXPECT_EQ(m.read(3 * 64 - 1, 1)[0], 0x3C);
  EXPECT_EQ(to_hex(m.read(300, 3)), "C0FFEE");
}

TEST_F(Image, ReservedVersionZeroWithBadCrcStillReportsTheVersion) {
  // Version is checked before the CRC, so an operator learns about the format first.
  Bytes b = good;
  b[5] = 0;
  write_file(path, b);
  expect_refused(ImageError::Reason::OlderVersion, "older image format version 0");
}

TEST(ImageErrorNames, EveryReasonHasAName) {
  using R = ImageError::Reason;
  EXPECT_STREQ(to_string(R::Unreadable), "unreadable");
  EXPECT_STREQ(to_string(R::WrongSize), "wrong-size");
  EXPECT_STREQ(to_string(R::BadMagic), "bad-magic");
  EXPECT_STREQ(to_string(R::NewerVersion), "newer-version");
  EXPECT_STREQ(to_string(R::OlderVersion), "older-version");
  EXPECT_STREQ(to_string(R::PageCountMismatch), "page-count-mismatch");
  EXPECT_STREQ(to_string(R::BadCrc), "bad-crc");
}

}  // namespace
}  // namespace skillcard::card
