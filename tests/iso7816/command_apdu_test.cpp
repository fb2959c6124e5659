// Tests for CommandApdu: the seven encodings, boundaries, strict decoding, factories, chaining.
// Expected bytes are written out from ISO/IEC 7816-4:2005 §5.1 / ISO/IEC 7816-3 §12.1.3.
#include "skillcard/iso7816/command_apdu.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <functional>

namespace skillcard::iso7816 {
namespace {

Bytes pattern(std::size_t n) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return out;
}

std::string hex(const Bytes& b) { return to_hex(b); }

// Every encoding must decode to the same value it came from.
void expect_round_trip(const CommandApdu& c) {
  EXPECT_EQ(CommandApdu::parse(c.encode()), c);
  EXPECT_EQ(CommandApdu::parse(c.encode(LengthForm::Extended)), c);
  if (!c.is_extended_required()) {
    EXPECT_EQ(CommandApdu::parse(c.encode(LengthForm::Short)), c);
  }
}

void expect_format_error(const std::string& apdu_hex, StatusWord sw, const std::string& reason) {
  try {
    CommandApdu::parse(from_hex(apdu_hex));
    ADD_FAILURE() << apdu_hex << " parsed";
  } catch (const ApduFormatError& e) {
    EXPECT_EQ(e.sw(), sw) << apdu_hex << ": " << e.what();
    EXPECT_NE(e.reason().find(reason), std::string::npos) << apdu_hex << ": " << e.reason();
  }
}

void expect_invalid(const std::function<void()>& f, const std::string& field) {
  try {
    f();
    ADD_FAILURE() << "no exception, expected one naming " << field;
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind(field + ":", 0), 0u) << e.what();
  }
}

TEST(CommandApdu, Case1) {
  const CommandApdu c(0x00, 0x20, 0x00, 0x81);
  EXPECT_EQ(c.apdu_case(), ApduCase::Case1);
  EXPECT_EQ(hex(c.encode()), "00200081");
  // No length fields, so there is nothing to make extended.
  EXPECT_EQ(hex(c.encode(LengthForm::Extended)), "00200081");
  EXPECT_TRUE(c.data().empty());
  EXPECT_EQ(c.ne(), std::nullopt);
  EXPECT_FALSE(c.is_extended_required());
  EXPECT_EQ(CommandApdu::parse(from_hex("00200081")), c);
}

TEST(CommandApdu, Case2Short) {
  const CommandApdu c(0x00, 0xB0, 0x00, 0x00, 16);
  EXPECT_EQ(c.apdu_case(), ApduCase::Case2);
  EXPECT_EQ(hex(c.encode()), "00B0000010");
  EXPECT_EQ(CommandApdu::parse(from_hex("00B0000010")), c);

  const CommandApdu max(0x00, 0xB0, 0x00, 0x00, 256);
  EXPECT_EQ(hex(max.encode()), "00B0000000");
  const auto parsed = CommandApdu::parse(from_hex("00B0000000"));
  EXPECT_EQ(parsed.ne(), 256u);
  EXPECT_EQ(parsed.apdu_case(), ApduCase::Case2);
  expect_round_trip(max);
}

TEST(CommandApdu, Case2Extended) {
  const CommandApdu c(0x00, 0xB0, 0x00, 0x00, 257);
  EXPECT_TRUE(c.is_extended_required());
  EXPECT_EQ(hex(c.encode()), "00B00000000101");
  EXPECT_EQ(CommandApdu::parse(from_hex("00B00000000101")), c);

  const CommandApdu max(0x00, 0xB0, 0x00, 0x00, 65536);
  EXPECT_EQ(hex(max.encode()), "00B00000000000");
  EXPECT_EQ(CommandApdu::parse(from_hex("00B00000000000")).ne(), 65536u);

  const CommandApdu v(0x00, 0xB0, 0x00, 0x00, 65535);
  EXPECT_EQ(hex(v.encode()), "00B0000000FFFF");
  expect_round_trip(c);
  expect_round_trip(max);
}

TEST(CommandApdu, Case2ForcedExtended) {
  const CommandApdu c(0x00, 0xB0, 0x00, 0x00, 256);
  EXPECT_EQ(hex(c.encode(LengthForm::Extended)), "00B00000000100");
  // A short-able command sent extended is the same command.
  EXPECT_EQ(CommandApdu::parse(from_hex("00B00000000100")), c);
  EXPECT_EQ(hex(CommandApdu::parse(from_hex("00B00000000100")).encode()), "00B0000000");
}

TEST(CommandApdu, Case3Short) {
  const CommandApdu c(0x00, 0x20, 0x00, 0x81, from_hex("313233343536"));
  EXPECT_EQ(c.apdu_case(), ApduCase::Case3);
  EXPECT_EQ(hex(c.encode()), "0020008106313233343536");
  EXPECT_EQ(CommandApdu::parse(from_hex("0020008106313233343536")), c);
  EXPECT_EQ(hex(CommandApdu(0x00, 0xD6, 0x00, 0x00, from_hex("AA")).encode()), "00D6000001AA");
}

TEST(CommandApdu, Case3Extended) {
  const Bytes data = pattern(256);
  const CommandApdu c(0x00, 0xD6, 0x00, 0x00, data);
  EXPECT_TRUE(c.is_extended_required());
  EXPECT_EQ(hex(c.encode()), "00D60000000100" + hex(data));
  EXPECT_EQ(CommandApdu::parse(from_hex("00D60000000100" + hex(data))), c);

  const Bytes small = from_hex("AABBCC");
  const CommandApdu s(0x00, 0xD6, 0x00, 0x00, small);
  EXPECT_EQ(hex(s.encode(LengthForm::Extended)), "00D60000000003AABBCC");
  EXPECT_EQ(CommandApdu::parse(from_hex("00D60000000003AABBCC")), s);
  expect_round_trip(c);
}

TEST(CommandApdu, Case4Short) {
  const CommandApdu c(0x00, 0x88, 0x00, 0x00, from_hex("0102030405060708"), 256);
  EXPECT_EQ(c.apdu_case(), ApduCase::Case4);
  EXPECT_EQ(hex(c.encode()),
            "00880000080102030405060708"
            "00");
  EXPECT_EQ(CommandApdu::parse(from_hex("0088000008010203040506070800")), c);

  const CommandApdu le1(0x00, 0x88, 0x00, 0x00, from_hex("AA"), 1);
  EXPECT_EQ(hex(le1.encode()),
            "00880000"
            "01"
            "AA"
            "01");
  expect_round_trip(c);
  expect_round_trip(le1);
}

TEST(CommandApdu, Case4Extended) {
  const CommandApdu c(0x00, 0x88, 0x00, 0x00, from_hex("AABBCC"), 257);
  EXPECT_TRUE(c.is_extended_required());
  EXPECT_EQ(hex(c.encode()),
            "00880000"
            "000003"
            "AABBCC"
            "0101");
  EXPECT_EQ(CommandApdu::parse(from_hex("00880000000003AABBCC0101")), c);

  const CommandApdu max(0x00, 0x88, 0x00, 0x00, from_hex("AABBCC"), 65536);
  EXPECT_EQ(hex(max.encode()),
            "00880000"
            "000003"
            "AABBCC"
            "0000");
  EXPECT_EQ(CommandApdu::parse(from_hex("00880000000003AABBCC0000")).ne(), 65536u);

  // Long data forces the extended form on a short Ne too: 256 becomes 0100, not 00.
  const Bytes data = pattern(256);
  const CommandApdu long_data(0x00, 0x88, 0x00, 0x00, data, 256);
  EXPECT_EQ(hex(long_data.encode()),
            "00880000"
            "000100" +
                hex(data) + "0100");
  expect_round_trip(c);
  expect_round_trip(max);
  expect_round_trip(long_data);
}

TEST(CommandApdu, BoundaryLengths) {
  EXPECT_FALSE(CommandApdu(0x00, 0xD6, 0, 0, pattern(255)).is_extended_required());
  EXPECT_TRUE(CommandApdu(0x00, 0xD6, 0, 0, pattern(256)).is_extended_required());
  EXPECT_FALSE(CommandApdu(0x00, 0xB0, 0, 0, 256).is_extended_required());
  EXPECT_TRUE(CommandApdu(0x00, 0xB0, 0, 0, 257).is_extended_required());

  const Bytes d255 = pattern(255);
  EXPECT_EQ(hex(CommandApdu(0x00, 0xD6, 0, 0, d255).encode()), "00D60000FF" + hex(d255));
  EXPECT_EQ(CommandApdu(0x00, 0xD6, 0, 0, d255, 256).encode().size(), 4u + 1 + 255 + 1);

  const Bytes d65535 = pattern(65535);
  const CommandApdu biggest(0x00, 0xD6, 0, 0, d65535, 65536);
  const Bytes wire = biggest.encode();
  ASSERT_EQ(wire.size(), 4u + 3 + 65535 + 2);
  EXPECT_EQ(hex(Bytes(wire.begin(), wire.begin() + 7)), "00D6000000FFFF");
  EXPECT_EQ(hex(Bytes(wire.end() - 2, wire.end())), "0000");
  expect_round_trip(biggest);
}

TEST(CommandApdu, ConstructorsRefuseOutOfRangeValues) {
  expect_invalid([] { CommandApdu(0x00, 0xB0, 0, 0, std::size_t{0}); }, "ne");
  expect_invalid([] { CommandApdu(0x00, 0xB0, 0, 0, 65537); }, "ne");
  expect_invalid([] { CommandApdu(0x00, 0xD6, 0, 0, Bytes{}); }, "data");
  expect_invalid([] { CommandApdu(0x00, 0xD6, 0, 0, pattern(65536)); }, "data");
  expect_invalid([] { CommandApdu(0x00, 0x88, 0, 0, Bytes{}, 16); }, "data");
  expect_invalid([] { CommandApdu(0x00, 0x88, 0, 0, pattern(1), 0); }, "ne");
  expect_invalid([] { CommandApdu(0x00, 0x88, 0, 0, pattern(1), 65537); }, "ne");
  expect_invalid([] { CommandApdu(0xFF, 0xA4, 0, 0); }, "cla");
  expect_invalid([] { CommandApdu(0x00, 0x60, 0, 0); }, "ins");
  expect_invalid([] { CommandApdu(0x00, 0x9F, 0, 0); }, "ins");
  EXPECT_NO_THROW(CommandApdu(0x00, 0x5F, 0, 0));
  EXPECT_NO_THROW(CommandApdu(0xFE, 0xA0, 0, 0));
}

TEST(CommandApdu, ForcingShortFormOnLongCommandThrows) {
  EXPECT_THROW(CommandApdu(0x00, 0xB0, 0, 0, 257).encode(LengthForm::Short), std::invalid_argument);
  EXPECT_THROW(CommandApdu(0x00, 0xD6, 0, 0, pattern(256)).encode(LengthForm::Short), std::invalid_argument);
}

TEST(CommandApdu, ParseRefusesFewerThanFourBytes) {
  expect_format_error("", StatusWord::WrongLength, "shorter than the 4-byte header");
  expect_format_error("00", StatusWord::WrongLength, "shorter than the 4-byte header");
  expect_format_error("00A404", StatusWord::WrongLength, "shorter than the 4-byte header");
}

TEST(CommandApdu, ParseRefusesShortLcOfZero) {
  // 00 as fifth byte followed by exactly one more byte fits no case.
  expect_format_error(
      "00A4040000"
      "00",
      StatusWord::WrongLength, "Lc=00 in short form");
}

TEST(CommandApdu, ParseRefusesBodyInconsistentWithShortLc) {
  expect_format_error("00A4040003AABB", StatusWord::WrongLength, "short Lc=3 but 2 data bytes");
  expect_format_error("00A4040002AABB0000", StatusWord::WrongLength, "1 trailing bytes after short Le");
  expect_format_error("00A4040001AABB0000", StatusWord::WrongLength, "2 trailing bytes after short Le");
}

TEST(CommandApdu, ParseRefusesExtendedLcOfZero) {
  expect_format_error(
      "00D60000"
      "0000"
      "00"
      "AA",
      StatusWord::WrongLength, "extended Lc of 0000");
  expect_format_error(
      "00D60000"
      "0000"
      "00"
      "0000",
      StatusWord::WrongLength, "extended Lc of 0000");
}

TEST(CommandApdu, ParseRefusesBodyInconsistentWithExtendedLc) {
  expect_format_error("00D60000000003AABB", StatusWord::WrongLength, "extended Lc=3 but 2 data bytes");
  expect_format_error("00D60000000002AABB01", StatusWord::WrongLength, "1-byte Le after extended Lc");
  expect_format_error("00D60000000002AABB000000", StatusWord::WrongLength, "1 trailing bytes after extended Le");
}

TEST(CommandApdu, ParseRefusesReservedClaAndIns) {
  expect_format_error("FFA40400", StatusWord::ClaNotSupported, "CLA 'FF'");
  expect_format_error("00600000", StatusWord::InsNotSupported, "INS '6X'");
  expect_format_error("009A000000", StatusWord::InsNotSupported, "INS '6X'");
}

TEST(CommandApdu, FormatErrorIsInvalidArgument) {
  EXPECT_THROW(CommandApdu::parse(from_hex("00")), std::invalid_argument);
}

TEST(CommandApdu, IsChainedOnlyForInterindustryClasses) {
  EXPECT_FALSE(CommandApdu(0x00, 0xD6, 0, 0).is_chained());
  EXPECT_TRUE(CommandApdu(0x10, 0xD6, 0, 0).is_chained());
  EXPECT_TRUE(CommandApdu(0x1C, 0xD6, 0, 0).is_chained());  // with SM on channel 0
  EXPECT_TRUE(CommandApdu(0x50, 0xD6, 0, 0).is_chained());  // further interindustry
  EXPECT_FALSE(CommandApdu(0x40, 0xD6, 0, 0).is_chained());
  EXPECT_FALSE(CommandApdu(0x30, 0xD6, 0, 0).is_chained());  // 001x xxxx is reserved
  EXPECT_TRUE(CommandApdu(0x90, 0xD6, 0, 0).is_chained());   // GlobalPlatform 80 with b5
  EXPECT_FALSE(CommandApdu(0x80, 0xD6, 0, 0).is_chained());
  EXPECT_FALSE(CommandApdu(0xA0, 0xD6, 0, 0).is_chained());  // proprietary without b5 chaining
}

TEST(CommandApdu, WithClaReturnsModifiedCopy) {
  const auto c = CommandApdu::get_data(0x0101, 256);
  const auto sm = c.with_cla(0x84);
  EXPECT_EQ(sm.cla(), 0x84);
  EXPECT_EQ(c.cla(), 0x00);
  EXPECT_EQ(hex(sm.encode()), "84CA010100");
  EXPECT_NE(sm, c);
  EXPECT_THROW(c.with_cla(0xFF), std::invalid_argument);
}

TEST(CommandApdu, WithNeAddsOrReplacesLe) {
  EXPECT_EQ(CommandApdu(0x00, 0xB0, 0, 0).with_ne(10).apdu_case(), ApduCase::Case2);
  const auto c4 = CommandApdu(0x00, 0xD6, 0, 0, from_hex("AA")).with_ne(10);
  EXPECT_EQ(c4.apdu_case(), ApduCase::Case4);
  EXPECT_EQ(hex(c4.encode()), "00D6000001AA0A");
  EXPECT_EQ(CommandApdu(0x00, 0xB0, 0, 0, 5).with_ne(7).ne(), 7u);
  EXPECT_THROW(CommandApdu(0x00, 0xB0, 0, 0).with_ne(0), std::invalid_argument);
}

TEST(CommandApdu, EqualityComparesEveryField) {
  const CommandApdu a(0x00, 0x88, 0x01, 0x02, from_hex("AA"), 16);
  EXPECT_EQ(a, CommandApdu(0x00, 0x88, 0x01, 0x02, from_hex("AA"), 16));
  EXPECT_NE(a, CommandApdu(0x01, 0x88, 0x01, 0x02, from_hex("AA"), 16));
  EXPECT_NE(a, CommandApdu(0x00, 0x89, 0x01, 0x02, from_hex("AA"), 16));
  EXPECT_NE(a, CommandApdu(0x00, 0x88, 0x00, 0x02, from_hex("AA"), 16));
  EXPECT_NE(a, CommandApdu(0x00, 0x88, 0x01, 0x00, from_hex("AA"), 16));
  EXPECT_NE(a, CommandApdu(0x00, 0x88, 0x01, 0x02, from_hex("AB"), 16));
  EXPECT_NE(a, CommandApdu(0x00, 0x88, 0x01, 0x02, from_hex("AA"), 17));
  EXPECT_NE(a, CommandApdu(0x00, 0x88, 0x01, 0x02, from_hex("AA")));
}

TEST(CommandApdu, HeaderStringHidesData) {
  EXPECT_EQ(CommandApdu(0x00, 0x20, 0x00, 0x81).header_string(), "00 20 00 81");
  EXPECT_EQ(CommandApdu::get_response(16).header_string(), "00 C0 00 00 Le=10");
  const auto verify = CommandApdu::verify(0x81, from_hex("313233343536"));
  EXPECT_EQ(verify.header_string(), "00 20 00 81 Lc=06");
  const auto select = CommandApdu::select_by_aid(from_hex("F0736B696C6C6361726401"));
  EXPECT_EQ(select.header_string(), "00 A4 04 00 Lc=0B Le=00");
  EXPECT_EQ(CommandApdu(0x00, 0xB0, 0, 0, 65536).header_string(), "00 B0 00 00 Le=000000");
  EXPECT_EQ(CommandApdu(0x00, 0xD6, 0, 0, pattern(256)).header_string(), "00 D6 00 00 Lc=000100");
  EXPECT_EQ(CommandApdu(0x00, 0x88, 0, 0, from_hex("AABBCC"), 257).header_string(), "00 88 00 00 Lc=000003 Le=0101");
}

// --- factories: bytes from the command descriptions in ISO/IEC 7816-4:2005 clause 7 ---

TEST(CommandApdu, SelectByAid) {
  const Bytes aid = from_hex("F0736B696C6C6361726401");
  EXPECT_EQ(hex(CommandApdu::select_by_aid(aid).encode()), "00A404000BF0736B696C6C636172640100");
  EXPECT_EQ(hex(CommandApdu::select_by_aid(aid, Occurrence::Next).encode()), "00A404020BF0736B696C6C636172640100");
  EXPECT_EQ(hex(CommandApdu::select_by_aid(aid, Occurrence::First, 0x20).encode()),
            "00A404000BF0736B696C6C636172640120");
  EXPECT_NO_THROW(CommandApdu::select_by_aid(pattern(16)));
  expect_invalid([] { CommandApdu::select_by_aid(Bytes{}); }, "aid");
  expect_invalid([] { CommandApdu::select_by_aid(pattern(17)); }, "aid");
}

TEST(CommandApdu, GetResponse) {
  EXPECT_EQ(hex(CommandApdu::get_response(0x10).encode()), "00C0000010");
  EXPECT_EQ(hex(CommandApdu::get_response(256).encode()), "00C0000000");
}

TEST(CommandApdu, Verify) {
  EXPECT_EQ(hex(CommandApdu::verify(0x81, as_bytes("123456")).encode()), "0020008106313233343536");
  EXPECT_EQ(hex(CommandApdu::verify_status(0x81).encode()), "00200081");
  EXPECT_EQ(CommandApdu::verify_status(0x81).apdu_case(), ApduCase::Case1);
}

TEST(CommandApdu, ChangeReferenceData) {
  EXPECT_EQ(hex(CommandApdu::change_reference_data(0x81, as_bytes("123456654321")).encode()),
            "002400810C313233343536363534333231");
}

TEST(CommandApdu, ResetRetryCounter) {
  EXPECT_EQ(hex(CommandApdu::reset_retry_counter(0x81, as_bytes("654321")).encode()), "002C028106363534333231");
}

TEST(CommandApdu, InternalAuthenticate) {
  const Bytes challenge = from_hex("00112233445566778899AABBCCDDEEFF");
  EXPECT_EQ(hex(CommandApdu::internal_authenticate(challenge).encode()),
            "0088000010"
            "00112233445566778899AABBCCDDEEFF"
            "00");
  EXPECT_EQ(hex(CommandApdu::internal_authenticate(challenge, 0x48).encode()),
            "0088000010"
            "00112233445566778899AABBCCDDEEFF"
            "48");
}

TEST(CommandApdu, GetData) {
  EXPECT_EQ(hex(CommandApdu::get_data(0x0101).encode()), "00CA010100");
  EXPECT_EQ(hex(CommandApdu::get_data(0x9F7F, 45).encode()), "00CA9F7F2D");
}

// --- chaining, ISO/IEC 7816-4:2005 §5.1.1.1 ---

TEST(CommandApdu, SplitForChainingSetsClaBitOnAllButLast) {
  const Bytes data = pattern(600);
  const CommandApdu c(0x00, 0xDA, 0x01, 0x02, data, 256);
  const auto parts = split_for_chaining(c);
  ASSERT_EQ(parts.size(), 3u);
  const std::string d = hex(data);
  // 255 + 255 + 90 (0x5A) bytes; only the last asks for a response.
  EXPECT_EQ(hex(parts[0].encode()), "10DA0102FF" + d.substr(0, 510));
  EXPECT_EQ(hex(parts[1].encode()), "10DA0102FF" + d.substr(510, 510));
  EXPECT_EQ(hex(parts[2].encode()), "00DA01025A" + d.substr(1020) + "00");
  EXPECT_TRUE(parts[0].is_chained());
  EXPECT_TRUE(parts[1].is_chained());
  EXPECT_FALSE(parts[2].is_chained());
}

TEST(CommandApdu, SplitForChainingKeepsCaseOfLastAndReassembles) {
  const Bytes data = pattern(1000);
  const CommandApdu c(0x41, 0xDA, 0x00, 0x00, data);  // further interindustry, channel 5
  const auto parts = split_for_chaining(c, 100);
  ASSERT_EQ(parts.size(), 10u);
  Bytes joined;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].cla(), i + 1 < parts.size() ? 0x51 : 0x41);
    EXPECT_EQ(parts[i].apdu_case(), ApduCase::Case3);
    joined.insert(joined.end(), parts[i].data().begin(), parts[i].data().end());
  }
  EXPECT_EQ(joined, data);
}

TEST(CommandApdu, SplitForChainingExactMultipleHasNoEmptyTail) {
  const auto parts = split_for_chaining(CommandApdu(0x00, 0xDA, 0, 0, pattern(510)));
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1].data().size(), 255u);
  EXPECT_EQ(parts[1].cla(), 0x00);
}

TEST(CommandApdu, SplitForChainingReturnsFittingCommandUnchanged) {
  const CommandApdu fits(0x80, 0x30, 0, 0, pattern(255), 256);
  EXPECT_EQ(split_for_chaining(fits), std::vector<CommandApdu>{fits});
  const CommandApdu no_data(0x00, 0xB0, 0, 0, 10);
  EXPECT_EQ(split_for_chaining(no_data), std::vector<CommandApdu>{no_data});
}

TEST(CommandApdu, SplitForChainingRefusals) {
  const CommandApdu big(0x00, 0xDA, 0, 0, pattern(300));
  expect_invalid([&] { split_for_chaining(big, 0); }, "max_chunk");
  expect_invalid([&] { split_for_chaining(big, 65536); }, "max_chunk");
  expect_invalid([&] { split_for_chaining(big.with_cla(0xA0)); }, "cla");
  expect_invalid([&] { split_for_chaining(big.with_cla(0x10)); }, "cla");
}

TEST(CommandApdu, SplitForChainingGlobalPlatformClass) {
  const auto gp = split_for_chaining(CommandApdu(0x84, 0x40, 0, 0, pattern(300)));
  ASSERT_EQ(gp.size(), 2u);
  EXPECT_EQ(gp.front().cla(), 0x94);  // GlobalPlatform with secure messaging, chained
  EXPECT_TRUE(gp.front().is_chained());
  EXPECT_EQ(gp.back().cla(), 0x84);
  EXPECT_FALSE(gp.back().is_chained());
}

// --- properties over generated commands and arbitrary bytes ---

RC_GTEST_PROP(CommandApdu, EveryValidCommandRoundTripsInBothForms, ()) {
  const auto cla = *rc::gen::suchThat<std::uint8_t>([](std::uint8_t v) { return v != 0xFF; });
  const auto ins =
      *rc::gen::suchThat<std::uint8_t>([](std::uint8_t v) { return (v & 0xF0) != 0x60 && (v & 0xF0) != 0x90; });
  const auto p1 = *rc::gen::arbitrary<std::uint8_t>();
  const auto p2 = *rc::gen::arbitrary<std::uint8_t>();
  const auto nc = *rc::gen::oneOf(rc::gen::inRange<std::size_t>(0, 3), rc::gen::inRange<std::size_t>(250, 260),
                                  rc::gen::inRange<std::size_t>(0, 2000));
  const auto ne = *rc::gen::maybe(
      rc::gen::oneOf(rc::gen::inRange<std::size_t>(1, 300), rc::gen::inRange<std::size_t>(65530, 65537)));
  const Bytes data = *rc::gen::container<Bytes>(nc, rc::gen::arbitrary<std::uint8_t>());
  const CommandApdu c = data.empty()
                            ? (ne ? CommandApdu(cla, ins, p1, p2, *ne) : CommandApdu(cla, ins, p1, p2))
                            : (ne ? CommandApdu(cla, ins, p1, p2, data, *ne) : CommandApdu(cla, ins, p1, p2, data));
  RC_ASSERT(CommandApdu::parse(c.encode()) == c);
  RC_ASSERT(CommandApdu::parse(c.encode(LengthForm::Extended)) == c);
  RC_ASSERT(c.is_extended_required() == (nc > 255 || (ne && *ne > 256)));
  if (!c.is_extended_required()) RC_ASSERT(c.encode() == c.encode(LengthForm::Short));
}

RC_GTEST_PROP(CommandApdu, ParsedBytesReEncodeExactly, (const Bytes& bytes)) {
  try {
    const auto c = CommandApdu::parse(bytes);
    // An extended encoding has a 00 fifth byte with at least two more bytes after it.
    const bool extended = bytes.size() >= 7 && bytes[4] == 0x00;
    RC_ASSERT(c.encode(extended ? LengthForm::Extended : LengthForm::Short) == bytes);
  } catch (const ApduFormatError&) {
    RC_SUCCEED("refused");
  }
}

}  // namespace
}  // namespace skillcard::iso7816
