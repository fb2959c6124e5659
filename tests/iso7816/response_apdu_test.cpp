// Tests for ResponseApdu parsing and encoding.
#include "skillcard/iso7816/response_apdu.hpp"

#include <gtest/gtest.h>

namespace skillcard::iso7816 {
namespace {

TEST(ResponseApdu, StatusOnly) {
  const auto r = ResponseApdu::parse(from_hex("9000"));
  EXPECT_TRUE(r.data().empty());
  EXPECT_EQ(r.sw(), StatusWord::Success);
  EXPECT_EQ(r.sw1(), 0x90);
  EXPECT_EQ(r.sw2(), 0x00);
  EXPECT_TRUE(r.is_success());
  EXPECT_EQ(r, ResponseApdu(StatusWord::Success));
}

TEST(ResponseApdu, DataThenStatusWord) {
  const auto r = ResponseApdu::parse(from_hex("0102036A82"));
  EXPECT_EQ(r.data(), from_hex("010203"));
  EXPECT_EQ(r.sw(), StatusWord::FileNotFound);
  EXPECT_EQ(r.sw1(), 0x6A);
  EXPECT_EQ(r.sw2(), 0x82);
  EXPECT_FALSE(r.is_success());
}

TEST(ResponseApdu, MoreDataIsNotSuccess) { EXPECT_FALSE(ResponseApdu::parse(from_hex("AA6110")).is_success()); }

TEST(ResponseApdu, EncodeAppendsStatusWord) {
  EXPECT_EQ(to_hex(ResponseApdu(from_hex("CAFE"), StatusWord::Success).encode()), "CAFE9000");
  EXPECT_EQ(to_hex(ResponseApdu(make_sw(0x63, 0xC2)).encode()), "63C2");
}

TEST(ResponseApdu, UnknownStatusWordRoundTrips) {
  const Bytes wire = from_hex("0012AB");
  EXPECT_EQ(ResponseApdu::parse(wire).encode(), wire);
  EXPECT_EQ(ResponseApdu::parse(wire).sw(), make_sw(0x12, 0xAB));
}

TEST(ResponseApdu, ParseRefusesFewerThanTwoBytes) {
  for (const char* h : {"", "90"}) {
    try {
      ResponseApdu::parse(from_hex(h));
      ADD_FAILURE() << h << " parsed";
    } catch (const ApduFormatError& e) {
      EXPECT_EQ(e.sw(), StatusWord::WrongLength);
      EXPECT_NE(e.reason().find("no status word"), std::string::npos) << e.reason();
    }
  }
}

TEST(ResponseApdu, DataLengthLimitIsMaxNe) {
  Bytes wire(65536, 0x5A);
  wire.push_back(0x90);
  wire.push_back(0x00);
  EXPECT_EQ(ResponseApdu::parse(wire).data().size(), 65536u);
  wire.insert(wire.begin(), 0x5A);
  EXPECT_THROW(ResponseApdu::parse(wire), ApduFormatError);
  EXPECT_THROW(ResponseApdu(Bytes(65537), StatusWord::Success), std::invalid_argument);
}

TEST(ResponseApdu, Equality) {
  const ResponseApdu a(from_hex("01"), StatusWord::Success);
  EXPECT_EQ(a, ResponseApdu(from_hex("01"), StatusWord::Success));
  EXPECT_NE(a, ResponseApdu(from_hex("02"), StatusWord::Success));
  EXPECT_NE(a, ResponseApdu(from_hex("01"), StatusWord::WrongData));
}

}  // namespace
}  // namespace skillcard::iso7816
