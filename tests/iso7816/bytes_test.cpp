// Tests for hex conversion and the small byte helpers in bytes.hpp.
#include "skillcard/iso7816/bytes.hpp"

#include <gtest/gtest.h>

namespace skillcard {
namespace {

TEST(Bytes, ToHexIsUpperCaseWithoutSeparators) {
  EXPECT_EQ(to_hex(Bytes{0x00, 0x0A, 0xB0, 0xFF}), "000AB0FF");
  EXPECT_EQ(to_hex(Bytes{}), "");
}

TEST(Bytes, FromHexAcceptsBothCasesAndTraceSeparators) {
  EXPECT_EQ(from_hex("00a0FF"), (Bytes{0x00, 0xA0, 0xFF}));
  EXPECT_EQ(from_hex("00 A4:04 00"), (Bytes{0x00, 0xA4, 0x04, 0x00}));
  EXPECT_EQ(from_hex(""), Bytes{});
}

TEST(Bytes, FromHexRefusesOddDigitCount) {
  EXPECT_THROW(from_hex("123"), HexError);
  // A separator must not hide a dangling nibble.
  EXPECT_THROW(from_hex("1 2 3"), HexError);
}

TEST(Bytes, FromHexNamesPositionOfBadCharacter) {
  try {
    from_hex("12G4");
    FAIL() << "no exception";
  } catch (const HexError& e) {
    EXPECT_NE(std::string(e.what()).find("position 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(from_hex("0x12"), HexError);
}

TEST(Bytes, HexRoundTripsEveryByteValue) {
  Bytes all(256);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(from_hex(to_hex(all)), all);
}

TEST(Bytes, AsBytesViewsTheCharacters) {
  const auto v = as_bytes("AB\x01");
  EXPECT_EQ(Bytes(v.begin(), v.end()), (Bytes{0x41, 0x42, 0x01}));
}

TEST(Bytes, ConcatJoinsInOrder) {
  const Bytes a{1, 2};
  const Bytes b{};
  const Bytes c{3};
  EXPECT_EQ(concat({a, b, c}), (Bytes{1, 2, 3}));
  EXPECT_EQ(concat({}), Bytes{});
}

}  // namespace
}  // namespace skillcard
