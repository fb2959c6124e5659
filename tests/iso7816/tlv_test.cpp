// Tests for BER-TLV encoding and the strict parser; expected bytes follow ISO/IEC 7816-4:2005
// §5.2.2 (tag fields) and §5.2.2.2 (length fields), ISO/IEC 8825-1 §8.1.
#include "skillcard/iso7816/tlv.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace skillcard::iso7816 {
namespace {

std::string hex(const Bytes& b) { return to_hex(b); }

void expect_tlv_error(const std::string& input_hex, std::size_t offset, const std::string& reason) {
  try {
    parse_tlvs(from_hex(input_hex));
    ADD_FAILURE() << input_hex << " parsed";
  } catch (const TlvError& e) {
    EXPECT_EQ(e.offset(), offset) << input_hex << ": " << e.what();
    EXPECT_NE(e.reason().find(reason), std::string::npos) << input_hex << ": " << e.reason();
    EXPECT_NE(std::string(e.what()).find("offset " + std::to_string(offset)), std::string::npos);
  }
}

TEST(Tlv, EncodeOneByteTag) {
  EXPECT_EQ(hex(encode_tlv(0x84, from_hex("F0736B696C6C6361726401"))), "840BF0736B696C6C6361726401");
  EXPECT_EQ(hex(encode_tlv(0x80, {})), "8000");
}

TEST(Tlv, EncodeMultiByteTags) {
  EXPECT_EQ(hex(encode_tlv(0x5F20, as_bytes("ABC"))), "5F2003414243");
  EXPECT_EQ(hex(encode_tlv(0x9F1F, from_hex("01"))), "9F1F0101");      // tag number 31, lowest
  EXPECT_EQ(hex(encode_tlv(0x9F7F, from_hex("01"))), "9F7F0101");      // 127, highest in 2 bytes
  EXPECT_EQ(hex(encode_tlv(0xDF8100, from_hex("01"))), "DF81000101");  // 128, lowest in 3
  EXPECT_EQ(hex(encode_tlv(0xDFFF7F, from_hex("01"))), "DFFF7F0101");  // 16383, highest
  EXPECT_EQ(hex(encode_tlv(0x7F49, {})), "7F4900");
}

TEST(Tlv, EncodeLengthsInShortestForm) {
  // The bytes between the 1-byte tag 04 and the value.
  const auto length_field = [](std::size_t n) {
    const Bytes e = encode_tlv(0x04, Bytes(n, 0xAA));
    EXPECT_EQ(e[0], 0x04);
    return hex(Bytes(e.begin() + 1, e.end() - static_cast<std::ptrdiff_t>(n)));
  };
  EXPECT_EQ(length_field(0), "00");
  EXPECT_EQ(length_field(1), "01");
  EXPECT_EQ(length_field(127), "7F");
  EXPECT_EQ(length_field(128), "8180");
  EXPECT_EQ(length_field(255), "81FF");
  EXPECT_EQ(length_field(256), "820100");
  EXPECT_EQ(length_field(65535), "82FFFF");
  EXPECT_EQ(length_field(65536), "83010000");
  EXPECT_EQ(length_field(0xFFFFFF), "83FFFFFF");
}

TEST(Tlv, EncodeRefusesValueLongerThanThreeLengthBytes) {
  EXPECT_THROW(encode_tlv(0x04, Bytes(0x1000000)), std::invalid_argument);
}

TEST(Tlv, EncodeRefusesInvalidTags) {
  for (std::uint32_t tag : {0x00u, 0xFFu, 0xFF20u, 0x5Fu, 0x9Fu, 0x9F00u, 0x9F80u, 0xDF8001u, 0xDF8181u, 0xDF81u,
                            0x8401u, 0x840102u, 0x01000000u}) {
    EXPECT_THROW(encode_tlv(tag, from_hex("01")), std::invalid_argument) << std::hex << tag;
  }
}

// EMV and GlobalPlatform write tag numbers below 31 in two bytes (ISO/IEC 7816-4 reserves
// them); real cards answer with them, so they parse and re-encode unchanged.
TEST(Tlv, AcceptsEmvStyleTwoByteTags) {
  const auto tlvs = parse_tlvs(from_hex("9F0203000100 BF0C03500141"));
  ASSERT_EQ(tlvs.size(), 2u);
  EXPECT_EQ(tlvs[0].tag, 0x9F02u);
  EXPECT_EQ(to_hex(tlvs[0].value), "000100");
  EXPECT_EQ(tlvs[1].tag, 0xBF0Cu);
  EXPECT_TRUE(tlvs[1].constructed());
  EXPECT_EQ(to_hex(encode_tlv(0x9F02, from_hex("000100"))), "9F0203000100");
}

TEST(Tlv, Constructed) {
  EXPECT_TRUE((Tlv{0x6F, {}}.constructed()));
  EXPECT_TRUE((Tlv{0xA5, {}}.constructed()));
  EXPECT_TRUE((Tlv{0x7F49, {}}.constructed()));
  EXPECT_TRUE((Tlv{0xBF0C, {}}.constructed()));
  EXPECT_FALSE((Tlv{0x84, {}}.constructed()));
  EXPECT_FALSE((Tlv{0x5F20, {}}.constructed()));
  EXPECT_FALSE((Tlv{0xDF8101, {}}.constructed()));
}

TEST(Tlv, ParseSequenceOfObjects) {
  const auto tlvs =
      parse_tlvs(from_hex("5A0112"
                          "5F2002ABCD"
                          "DF81010100"
                          "8000"));
  ASSERT_EQ(tlvs.size(), 4u);
  EXPECT_EQ(tlvs[0], (Tlv{0x5A, from_hex("12")}));
  EXPECT_EQ(tlvs[1], (Tlv{0x5F20, from_hex("ABCD")}));
  EXPECT_EQ(tlvs[2], (Tlv{0xDF8101, from_hex("00")}));
  EXPECT_EQ(tlvs[3], (Tlv{0x80, {}}));
  EXPECT_TRUE(parse_tlvs({}).empty());
}

TEST(Tlv, ParseLongLengths) {
  for (std::size_t n : {127u, 128u, 255u, 256u, 65535u, 65536u}) {
    const Bytes value(n, 0x42);
    const auto tlvs = parse_tlvs(encode_tlv(0x53, value));
    ASSERT_EQ(tlvs.size(), 1u);
    EXPECT_EQ(tlvs[0].tag, 0x53u);
    EXPECT_EQ(tlvs[0].value, value);
  }
  EXPECT_EQ(parse_tlvs(from_hex("53 81 80" + std::string(256, 'A')))[0].value.size(), 128u);
  EXPECT_EQ(parse_tlvs(from_hex("53 82 0100" + std::string(512, 'A')))[0].value.size(), 256u);
}

TEST(Tlv, ParseConstructedAndFind) {
  // FCI template: 6F { 84 AID, A5 { 88 (empty) } }
  const auto top =
      parse_tlvs(from_hex("6F0A"
                          "840401020304"
                          "A5028800"));
  ASSERT_EQ(top.size(), 1u);
  const auto children = parse_constructed(top[0]);
  ASSERT_EQ(children.size(), 2u);
  const Tlv* aid = find_tlv(children, 0x84);
  ASSERT_NE(aid, nullptr);
  EXPECT_EQ(aid->value, from_hex("01020304"));
  const Tlv* prop = find_tlv(children, 0xA5);
  ASSERT_NE(prop, nullptr);
  EXPECT_EQ(parse_constructed(*prop), (std::vector<Tlv>{Tlv{0x88, {}}}));
  EXPECT_EQ(find_tlv(children, 0x99), nullptr);
  EXPECT_EQ(find_tlv({}, 0x84), nullptr);
  EXPECT_THROW(parse_constructed(*aid), std::invalid_argument);
}

TEST(Tlv, FindReturnsFirstMatch) {
  const auto tlvs =
      parse_tlvs(from_hex("5A0101"
                          "5A0102"));
  ASSERT_NE(find_tlv(tlvs, 0x5A), nullptr);
  EXPECT_EQ(find_tlv(tlvs, 0x5A)->value, from_hex("01"));
}

TEST(Tlv, ChildErrorsCountFromParentValue) {
  const auto top =
      parse_tlvs(from_hex("6F04"
                          "5A0101"
                          "00"));
  EXPECT_THROW(
      {
        try {
          parse_constructed(top[0]);
        } catch (const TlvError& e) {
          EXPECT_EQ(e.offset(), 3u);
          throw;
        }
      },
      TlvError);
}

TEST(Tlv, RefusesPadding) {
  expect_tlv_error("00", 0, "padding byte '00'");
  expect_tlv_error("FF", 0, "padding byte 'FF'");
  expect_tlv_error(
      "5A0112"
      "00",
      3, "padding byte '00'");
  expect_tlv_error(
      "5A0112"
      "FF",
      3, "padding byte 'FF'");
  expect_tlv_error("FF2001AA", 0, "padding byte 'FF'");
}

TEST(Tlv, RefusesTruncatedTag) {
  expect_tlv_error("5F", 0, "truncated tag");
  expect_tlv_error("DF81", 0, "truncated tag");
  expect_tlv_error(
      "5A0112"
      "9F",
      3, "truncated tag");
}

TEST(Tlv, RefusesTagsLongerThanThreeBytes) { expect_tlv_error("DF81810100", 0, "tag longer than 3 bytes"); }

TEST(Tlv, RefusesTagsNotInShortestForm) {
  expect_tlv_error("5F00 0100", 0, "tag number 0 written in two bytes");
  expect_tlv_error("5F80010100", 0, "leading zero bits");
}

TEST(Tlv, RefusesTruncatedLength) {
  expect_tlv_error("5A", 1, "truncated length");
  expect_tlv_error("5F20", 2, "truncated length");
  expect_tlv_error("5A81", 1, "truncated length");
  expect_tlv_error("5A8201", 1, "truncated length");
  expect_tlv_error("5A830100", 1, "truncated length");
}

TEST(Tlv, RefusesIndefiniteLength) {
  expect_tlv_error(
      "6F80"
      "5A0101"
      "0000",
      1, "indefinite length");
}

TEST(Tlv, RefusesMoreThanThreeLengthBytes) {
  expect_tlv_error("5A8400000001AA", 1, "more than 3 length bytes");
  expect_tlv_error("5AFF", 1, "more than 3 length bytes");
}

TEST(Tlv, RefusesLengthsNotInShortestForm) {
  expect_tlv_error(
      "5A8105"
      "0102030405",
      1, "not in shortest form");
  expect_tlv_error("5A8100", 1, "not in shortest form");
  expect_tlv_error("5A820080", 1, "not in shortest form");
  expect_tlv_error("5A830000FF", 1, "not in shortest form");
}

TEST(Tlv, RefusesValueRunningPastTheEnd) {
  expect_tlv_error("5A03AABB", 2, "value of 3 bytes runs past the end (2 left)");
  expect_tlv_error("5A01", 2, "value of 1 bytes runs past the end (0 left)");
  expect_tlv_error("5A8180" + std::string(254, 'A'), 3, "value of 128 bytes");
}

TEST(Tlv, ErrorIsInvalidArgument) { EXPECT_THROW(parse_tlvs(from_hex("00")), std::invalid_argument); }

RC_GTEST_PROP(Tlv, EncodedObjectsParseBack, ()) {
  const auto tag = *rc::gen::elementOf(
      std::vector<std::uint32_t>{0x04, 0x5A, 0x6F, 0x84, 0x5F20, 0x7F49, 0x9F1F, 0xBF20, 0xDF8101, 0xDFFF7F});
  const auto value =
      *rc::gen::container<Bytes>(*rc::gen::inRange<std::size_t>(0, 600), rc::gen::arbitrary<std::uint8_t>());
  const std::vector<Tlv> expected{Tlv{tag, value}};
  RC_ASSERT(parse_tlvs(encode_tlv(tag, value)) == expected);
}

RC_GTEST_PROP(Tlv, ParsedBytesReEncodeExactly, (const Bytes& bytes)) {
  try {
    Bytes again;
    for (const auto& t : parse_tlvs(bytes)) {
      const Bytes e = encode_tlv(t.tag, t.value);
      again.insert(again.end(), e.begin(), e.end());
    }
    RC_ASSERT(again == bytes);
  } catch (const TlvError&) {
    RC_SUCCEED("refused");
  }
}

}  // namespace
}  // namespace skillcard::iso7816
