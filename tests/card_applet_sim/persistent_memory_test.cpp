// Tests for the image and its transactions without power cuts: format, mount, commit cost,
// visibility, limits, storage windows and the header CRC.
#include "skillcard/card/persistent_memory.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace skillcard::card {
namespace {

using testing::formatted;

PersistentMemory mounted(std::size_t pages = 47) {
  PersistentMemory m(formatted(pages));
  m.mount();
  return m;
}

TEST(PersistentMemory, FormatWritesTheHeaderOfDesignMd) {
  const Eeprom e = formatted(192);
  const ByteView header = e.page(0);
  EXPECT_EQ(to_hex(header.first(8)),
            "534B4349"
            "0001"
            "00C0");  // "SKCI", version 1, 192 pages
  EXPECT_EQ(to_hex(header.subspan(8, 4)), to_hex(Bytes{static_cast<std::uint8_t>(image_crc(e.image()) >> 24),
                                                       static_cast<std::uint8_t>(image_crc(e.image()) >> 16),
                                                       static_cast<std::uint8_t>(image_crc(e.image()) >> 8),
                                                       static_cast<std::uint8_t>(image_crc(e.image()))}));
  EXPECT_TRUE(std::all_of(header.begin() + 12, header.end(), [](std::uint8_t b) { return b == 0; }));
}

TEST(PersistentMemory, ImageCrcIsZlibCrc32OverHeaderAndAppletPages) {
  // Independent computation: CRC-32/ISO-HDLC with the reflected polynomial, bit by bit.
  const Eeprom e = formatted(18);
  Bytes message(e.page(0).begin(), e.page(0).end());
  std::fill(message.begin() + 8, message.begin() + 12, 0);
  message.insert(message.end(), e.page(17).begin(), e.page(17).end());
  std::uint32_t crc = 0xFFFFFFFF;
  for (auto b : message) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  EXPECT_EQ(image_crc(e.image()), ~crc);
}

TEST(PersistentMemory, MountOfAFreshImage) {
  PersistentMemory m(formatted(47));
  EXPECT_FALSE(m.mounted());
  const auto formatting = m.eeprom().writes();
  EXPECT_EQ(formatting, 47u) << "format writes every page once";
  const MountReport r = m.mount();
  EXPECT_EQ(r.journal, MountReport::Journal::Empty);
  EXPECT_TRUE(m.mounted());
  EXPECT_EQ(m.size(), 30u * 64);
  EXPECT_EQ(to_hex(m.read(0, 4)), "00000000");
  EXPECT_EQ(m.eeprom().writes(), formatting) << "a clean mount writes nothing";
}

TEST(PersistentMemory, CommitMakesWritesVisible) {
  PersistentMemory m = mounted();
  auto tx = m.begin();
  tx.write(100, from_hex("A1A2A3"));
  EXPECT_EQ(to_hex(m.read(100, 3)), "000000") << "reads see committed state";
  EXPECT_EQ(to_hex(tx.read(99, 5)), "00A1A2A300") << "the transaction sees its own writes";
  tx.commit();
  EXPECT_EQ(to_hex(m.read(100, 3)), "A1A2A3");
  EXPECT_EQ(m.stored_crc(), image_crc(m.eeprom().image()));
  EXPECT_EQ(m.sequence(), 1u);
}

TEST(PersistentMemory, TransactionDroppedWithoutCommitChangesNothing) {
  PersistentMemory m = mounted();
  const auto writes = m.eeprom().writes();
  {
    auto tx = m.begin();
    tx.write(0, from_hex("FF"));
  }
  EXPECT_EQ(to_hex(m.read(0, 1)), "00");
  EXPECT_EQ(m.eeprom().writes(), writes);
}

TEST(PersistentMemory, CommitOfNPagesCosts2nPlus2PageWrites) {
  for (std::size_t applet_pages : {1u, 2u, 8u, 14u}) {
    PersistentMemory m = mounted();
    auto tx = m.begin();
    tx.fill(0, applet_pages * kPageSize, 0x5A);
    EXPECT_EQ(tx.pages(), applet_pages);
    const auto before = m.eeprom().writes();
    tx.commit();
    const std::size_t n = applet_pages + 1;  // + the header
    EXPECT_EQ(m.eeprom().writes() - before, 2 * n + 2) << applet_pages;
    EXPECT_EQ(m.read(applet_pages * kPageSize - 1, 1)[0], 0x5A);
    EXPECT_EQ(m.read(applet_pages * kPageSize, 1)[0], 0x00);
  }
}

TEST(PersistentMemory, UnalignedWriteTouchesEveryPageItSpans) {
  PersistentMemory m = mounted();
  auto tx = m.begin();
  tx.write(60, Bytes(10, 0x01));  // pages 0 and 1 of the area
  EXPECT_EQ(tx.pages(), 2u);
  tx.write(64, Bytes(1, 0x02));  // page 1 again
  EXPECT_EQ(tx.pages(), 2u);
  tx.commit();
  EXPECT_EQ(to_hex(m.read(59, 12)),
            "0001010101020101010101"
            "00");
}

TEST(PersistentMemory, FifteenPageLimitIncludesTheHeader) {
  PersistentMemory m = mounted();
  auto tx = m.begin();
  tx.fill(0, 14 * kPageSize, 1);
  EXPECT_THROW(tx.write(14 * kPageSize, Bytes{2}), TransactionTooLarge);
  EXPECT_EQ(tx.pages(), 14u) << "the refused write left the transaction as it was";
  EXPECT_EQ(tx.read(14 * kPageSize, 1)[0], 0);
  tx.commit();
  EXPECT_EQ(m.read(13 * kPageSize, 1)[0], 1);
}

TEST(PersistentMemory, OneWriteSpanningTooManyPagesIsRefusedWhole) {
  PersistentMemory m = mounted();
  auto tx = m.begin();
  EXPECT_THROW(tx.fill(0, 15 * kPageSize, 1), TransactionTooLarge);
  EXPECT_EQ(tx.pages(), 0u);
}

TEST(PersistentMemory, OneTransactionAtATime) {
  PersistentMemory m = mounted();
  auto tx = m.begin();
  EXPECT_THROW(m.begin(), std::logic_error);
  tx.commit();
  EXPECT_THROW(m.begin(), std::logic_error) << "still open after commit: it may commit again";
}

TEST(PersistentMemory, TransactionCanCommitSeveralSteps) {
  PersistentMemory m = mounted();
  auto tx = m.begin();
  tx.write(0, Bytes{1});
  tx.commit();
  tx.write(64, Bytes{2});
  tx.commit();
  EXPECT_EQ(to_hex(m.read(0, 1)), "01");
  EXPECT_EQ(to_hex(m.read(64, 1)), "02");
  EXPECT_EQ(m.sequence(), 2u);
}

TEST(PersistentMemory, OutOfRangeAccess) {
  PersistentMemory m = mounted();
  EXPECT_THROW(m.read(m.size() - 1, 2), std::out_of_range);
  EXPECT_THROW(m.read(m.size() + 1, 0), std::out_of_range);
  auto tx = m.begin();
  EXPECT_THROW(tx.write(m.size() - 1, Bytes(2)), std::out_of_range);
  EXPECT_THROW(tx.write(SIZE_MAX, Bytes(2)), std::out_of_range);
  EXPECT_NO_THROW(tx.write(m.size() - 1, Bytes(1)));
}

TEST(PersistentMemory, StorageWindowTranslatesAndBoundsOffsets) {
  PersistentMemory m = mounted();
  AppletStorage s = m.storage(128, 100);
  EXPECT_EQ(s.size(), 100u);
  auto tx = s.begin();
  tx.write(0, from_hex("AB"));
  tx.write(99, from_hex("CD"));
  EXPECT_THROW(tx.write(100, from_hex("EF")), std::out_of_range);
  tx.commit();
  EXPECT_EQ(to_hex(m.read(128, 1)), "AB");
  EXPECT_EQ(to_hex(m.read(227, 1)), "CD");
  EXPECT_EQ(to_hex(s.read(99, 1)), "CD");
  EXPECT_THROW(s.read(99, 2), std::out_of_range);
  EXPECT_THROW(m.storage(m.size() - 10, 11), std::out_of_range);
}

TEST(PersistentMemory, UnmountedMemoryRefusesAccess) {
  PersistentMemory m(formatted(47));
  EXPECT_THROW(m.read(0, 1), std::logic_error);
  EXPECT_THROW(m.begin(), std::logic_error);
  m.mount();
  m.unmount();
  EXPECT_THROW(m.read(0, 1), std::logic_error);
}

TEST(PersistentMemory, CommitsSurviveRemount) {
  PersistentMemory m = mounted();
  {
    auto tx = m.begin();
    tx.write(1000, from_hex("0102030405"));
    tx.commit();
  }
  PersistentMemory again(m.eeprom().clone());
  EXPECT_EQ(again.mount().journal, MountReport::Journal::Empty);
  EXPECT_EQ(to_hex(again.read(1000, 5)), "0102030405");
}

}  // namespace
}  // namespace skillcard::card
