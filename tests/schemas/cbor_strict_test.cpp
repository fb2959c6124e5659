// The strict CBOR layer: every refusal the decoders rely on, the libcbor allocation trap, and
// deterministic encoding.
#include "cbor_strict.hpp"

#include <gtest/gtest.h>

using namespace skillcard;
using namespace skillcard::schemas;

namespace {

DecodeErrorKind refusal(const std::string& hex, std::size_t max_size = 1024, std::size_t depth = 8) {
  try {
    cbor::validate(from_hex(hex), {max_size, depth}, "test item");
  } catch (const DecodeError& e) {
    return e.kind();
  }
  ADD_FAILURE() << hex << " was accepted";
  return DecodeErrorKind::Malformed;
}

DecodeErrorKind refusal_kind_of_load(const std::string& hex) {
  try {
    cbor::load(from_hex(hex), {1024, 8}, "test item");
  } catch (const DecodeError& e) {
    return e.kind();
  }
  ADD_FAILURE() << hex << " was accepted";
  return DecodeErrorKind::Malformed;
}

}  // namespace

// libcbor 0.8 zeroes what a header declares before checking the input: these five bytes would
// make cbor_load allocate 2 GiB. The validator refuses them from the header alone.
TEST(CborStrict, LibcborAllocationTrapIsRefusedBeforeLoading) {
  const auto trap = from_hex("9A10000000");
  try {
    cbor::load(trap, {1024, 8}, "trap");
    FAIL() << "accepted";
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.kind(), DecodeErrorKind::Truncated);
    EXPECT_NE(std::string(e.what()).find("268435456 items"), std::string::npos) << e.what();
  }
  EXPECT_EQ(refusal("BA10000000"), DecodeErrorKind::Truncated);  // map of 2^28 pairs
  EXPECT_EQ(refusal("5A10000000"), DecodeErrorKind::Truncated);  // byte string of 256 MiB
  EXPECT_EQ(refusal("7B0000000100000000"), DecodeErrorKind::Truncated);
}

TEST(CborStrict, FramingRefusals) {
  EXPECT_EQ(refusal(""), DecodeErrorKind::Truncated);
  EXPECT_EQ(refusal("0101"), DecodeErrorKind::TrailingBytes);
  EXPECT_EQ(refusal("5F4101FF"), DecodeErrorKind::IndefiniteLength);
  EXPECT_EQ(refusal("9F01FF"), DecodeErrorKind::IndefiniteLength);
  EXPECT_EQ(refusal("BF0101FF"), DecodeErrorKind::IndefiniteLength);
  EXPECT_EQ(refusal("FF"), DecodeErrorKind::Malformed);                               // stray break
  EXPECT_EQ(refusal("1C"), DecodeErrorKind::Malformed);                               // reserved additional info
  EXPECT_EQ(refusal("F93C00"), DecodeErrorKind::WrongType);                           // half float
  EXPECT_EQ(refusal("E0"), DecodeErrorKind::Malformed);                               // unassigned simple value
  EXPECT_EQ(refusal("6280FF"), DecodeErrorKind::Malformed);                           // invalid UTF-8
  EXPECT_EQ(refusal("62C0AF"), DecodeErrorKind::Malformed);                           // overlong UTF-8 for '/'
  EXPECT_EQ(refusal("63EDA080"), DecodeErrorKind::Malformed);                         // UTF-16 surrogate
  EXPECT_EQ(refusal("1901"), DecodeErrorKind::Truncated);                             // head cut short
  EXPECT_EQ(refusal("8181818181818181818101", 1024, 8), DecodeErrorKind::Malformed);  // depth 10
  EXPECT_EQ(refusal(std::string(2 * 40, '0'), 20), DecodeErrorKind::TooLarge);
}

TEST(CborStrict, NonDeterministicEncodingsAreRefused) {
  EXPECT_EQ(refusal("1817"), DecodeErrorKind::NonCanonical);        // 23 in two bytes
  EXPECT_EQ(refusal("190017"), DecodeErrorKind::NonCanonical);      // in three
  EXPECT_EQ(refusal("1A0000FFFF"), DecodeErrorKind::NonCanonical);  // 65535 in five
  EXPECT_EQ(refusal("3B00000000FFFFFFFF"), DecodeErrorKind::NonCanonical);
  EXPECT_EQ(refusal("5801FF"), DecodeErrorKind::NonCanonical);  // length 1 in long form
  EXPECT_EQ(refusal("A2200101"
                    "02"),
            DecodeErrorKind::NonCanonical);  // {-1: 1, 1: 2}: 0x20 sorts after 0x01
  EXPECT_EQ(refusal("A201010102"), DecodeErrorKind::DuplicateKey);
  EXPECT_EQ(refusal("A2390100010101"), DecodeErrorKind::NonCanonical);  // -257 before 1
}

TEST(CborStrict, AcceptsDeterministicItems) {
  for (const auto* hex : {"00", "17", "1818", "19FFFF", "20", "3818", "40", "60", "80", "A0", "A201012001", "D24101",
                          "F4", "F5", "F6", "63E4B8AD", "A201024361626301"}) {
    EXPECT_NO_THROW(cbor::validate(from_hex(hex), {1024, 8}, "test")) << hex;
  }
}

// Only COSE_Sign1's outer tag is allowed: load() takes it off and reports it; tags further in
// are refused.
TEST(CborStrict, OuterTagIsTakenOffAndInnerTagsRefused) {
  std::optional<std::uint64_t> tag;
  const auto item = cbor::load(from_hex("D28100"), {64, 8}, "tagged", &tag);
  EXPECT_EQ(tag, 18u);
  EXPECT_EQ(item.root()->major, cbor::Major::Array);
  EXPECT_EQ(refusal("81D200"), DecodeErrorKind::Malformed);
  EXPECT_EQ(refusal_kind_of_load("D200"), DecodeErrorKind::WrongTag);  // no tag expected
  cbor::load(from_hex("8100"), {64, 8}, "untagged", &tag);
  EXPECT_FALSE(tag.has_value());
}

TEST(CborStrict, EncoderIsDeterministic) {
  // Keys given out of order come out sorted bytewise: 1, 7, -1, -10, -25.
  const auto bytes =
      cbor::MapWriter().uint(-25, 1).uint(7, 65535).uint(-1, 1).uint(1, 24).uint(-10, 0x100000000ull).encode();
  EXPECT_EQ(to_hex(bytes),
            "A5"
            "0118"
            "18"
            "0719FFFF"
            "2001"
            "291B0000000100000000"
            "381801");
  EXPECT_NO_THROW(cbor::validate(bytes, {1024, 8}, "encoded"));
  EXPECT_EQ(to_hex(cbor::serialize(cbor::make_int(-24).get())), "37");
  EXPECT_EQ(to_hex(cbor::serialize(cbor::make_int(-25).get())), "3818");
  EXPECT_EQ(to_hex(cbor::serialize(cbor::make_int(-257).get())), "390100");
  EXPECT_THROW(cbor::MapWriter().uint(1, 1).uint(1, 2).encode(), std::logic_error);
}

TEST(CborStrict, MapReaderRefusesUnknownMissingWrongTypeAndNewerVersion) {
  auto read = [](const std::string& hex, auto&& body) -> std::string {
    try {
      const auto item = cbor::load(from_hex(hex), {1024, 8}, "thing");
      cbor::MapReader r(item.root(), "thing");
      body(r);
      r.finish();
    } catch (const DecodeError& e) {
      return std::string(to_string(e.kind())) + "|" + e.field();
    }
    return "ok";
  };
  auto version_and_a = [](cbor::MapReader& r) {
    r.version(1);
    r.uint(1, "a", 0, 10);
  };
  EXPECT_EQ(read("A2010520"
                 "01",
                 version_and_a),
            "ok");
  EXPECT_EQ(read("A2010520"
                 "02",
                 version_and_a),
            "newer format|thing key -1 (format version)");
  EXPECT_EQ(read("A3010502002001", version_and_a), "unknown key|thing key 2");
  EXPECT_EQ(read("A12001", version_and_a), "missing field|thing key 1 (a)");
  EXPECT_EQ(read("A2016161"
                 "2001",
                 version_and_a),
            "wrong type|thing key 1 (a)");
  EXPECT_EQ(read("A2010B2001", version_and_a), "out of range|thing key 1 (a)");
  EXPECT_EQ(read("A10105", [](cbor::MapReader& r) { r.version(1); }), "missing field|thing key -1 (format version)");
  EXPECT_EQ(read("A1616101", [](cbor::MapReader&) {}), "wrong type|thing");
  // A newer version is reported as such even when it brings keys this decoder does not know.
  EXPECT_EQ(read("A3010502052002", version_and_a), "newer format|thing key -1 (format version)");
}
