// Voucher token: round trip, the 200-byte budget, every refusal, and tampering.
#include "skillcard/schemas/voucher.hpp"

#include <gtest/gtest.h>

#include "cbor_strict.hpp"
#include "fixtures.hpp"

using namespace skillcard;
using namespace skillcard::schemas;
using namespace skillcard::schemas::test;
using skillcard::crypto::OpenSsl;

namespace {

struct Signer {
  OpenSsl::PrivateKey key = OpenSsl::PrivateKey::generate();
  crypto::Kid kid = crypto::kid_of<OpenSsl>(key.public_key());
};

// A payload with the sample's claims, then one key changed or removed (or added).
Bytes payload_with(std::int64_t key, std::optional<std::uint64_t> value, bool as_text = false) {
  const auto c = sample_voucher();
  std::map<std::int64_t, cbor::Item> items;
  items[-1] = cbor::make_uint(1);
  items[1] = cbor::make_uint(c.issuer);
  items[7] = cbor::make_bytes(c.id);
  items[2] = cbor::make_bytes(c.holder);
  items[-2] = cbor::make_uint(3);
  items[-3] = cbor::make_uint(c.occupation);
  items[-4] = cbor::make_uint(c.level);
  items[-5] = cbor::make_uint(2);
  items[-6] = cbor::make_uint(c.face_value_fen);
  items[-7] = cbor::make_uint(c.planned_hours);
  items[-8] = cbor::make_uint(c.planned_online_hours);
  items[-9] = cbor::make_array([] {
    std::vector<cbor::Item> v;
    v.push_back(cbor::make_uint(420100));
    return v;
  }());
  items[6] = cbor::make_uint(c.issued_at);
  items[5] = cbor::make_uint(c.not_before);
  items[4] = cbor::make_uint(c.expires_at);
  if (value) {
    items[key] = as_text ? cbor::make_text("x") : cbor::make_uint(*value);
  } else {
    items.erase(key);
  }
  cbor::MapWriter w;
  for (auto& [k, v] : items) w.item(k, std::move(v));
  return w.encode();
}

std::string refusal(const Bytes& payload, DecodeErrorKind expected) {
  std::string message;
  EXPECT_EQ(refusal_kind([&] { decode_voucher_claims(payload); }, &message), expected) << message;
  return message;
}

}  // namespace

TEST(VoucherToken, RoundTripAndSignature) {
  Signer s;
  const auto claims = sample_voucher();
  const auto token = sign_voucher(claims, s.kid, signer(s.key));
  const auto decoded = decode_voucher_token(token);
  EXPECT_EQ(decoded.claims, claims);
  EXPECT_EQ(decoded.kid, s.kid);
  EXPECT_TRUE(decoded.envelope.verify(verifier(s.key.public_key())).ok());
  EXPECT_EQ(decoded.envelope.verify(verifier(OpenSsl::PrivateKey::generate().public_key())).failure,
            CoseFailure::BadSignature);
  // Deterministic: the same claims always encode to the same payload.
  EXPECT_EQ(encode_payload(claims), encode_payload(sample_voucher()));
}

TEST(VoucherToken, FitsTheTwoHundredByteBudget) {
  Signer s;
  const auto typical = sign_voucher(sample_voucher(), s.kid, signer(s.key));
  EXPECT_EQ(typical.size(), 176u);  // docs/design.md "Voucher token": example 176 bytes
  const auto worst = sign_voucher(worst_case_voucher(), s.kid, signer(s.key));
  EXPECT_LE(worst.size(), 200u);
  EXPECT_EQ(decode_voucher_token(worst).claims, worst_case_voucher());
}

TEST(VoucherToken, PayloadRefusals) {
  refusal(payload_with(-6, std::nullopt), DecodeErrorKind::MissingField);
  refusal(payload_with(-30, 1), DecodeErrorKind::UnknownKey);
  EXPECT_NE(refusal(payload_with(-1, 2), DecodeErrorKind::NewerFormat).find("version 2"), std::string::npos);
  refusal(payload_with(-4, 6), DecodeErrorKind::OutOfRange);           // level 6
  refusal(payload_with(-4, 0), DecodeErrorKind::OutOfRange);           // level 0
  refusal(payload_with(-2, 42), DecodeErrorKind::OutOfRange);          // no such programme
  refusal(payload_with(-5, 5), DecodeErrorKind::OutOfRange);           // no such fund
  refusal(payload_with(-8, 121), DecodeErrorKind::OutOfRange);         // online above total
  refusal(payload_with(1, 4201), DecodeErrorKind::OutOfRange);         // 4-digit region
  refusal(payload_with(4, test::kNow), DecodeErrorKind::OutOfRange);   // expiry = not-before
  refusal(payload_with(-6, 1ull << 33), DecodeErrorKind::OutOfRange);  // beyond uint32
  refusal(payload_with(4, 1ull << 32), DecodeErrorKind::OutOfRange);   // beyond the card's 32-bit time
  refusal(payload_with(-3, 0, true), DecodeErrorKind::WrongType);
  refusal(payload_with(-9, std::nullopt), DecodeErrorKind::OutOfRange);  // no eligible region or provider
  // Programme 99 (以工代训) decodes: refusing it is policy's job (P10), with its own code.
  EXPECT_EQ(decode_voucher_claims(payload_with(-2, 99)).programme, Programme::TrainInPlaceOfWork);
}

// A newer format may key its map differently; the reason given is the newer version, not a key
// this version calls malformed (and the same key under version 1 is the wrong type).
TEST(VoucherToken, NewerFormatWinsOverAKeyThisVersionCannotRead) {
  const Bytes newer{0xA2, 0x20, 0x02, 0x61, 0x78, 0x01};  // {-1: 2, "x": 1}
  EXPECT_NE(refusal(newer, DecodeErrorKind::NewerFormat).find("version 2"), std::string::npos);
  const Bytes same{0xA2, 0x20, 0x01, 0x61, 0x78, 0x01};  // {-1: 1, "x": 1}
  EXPECT_NE(refusal(same, DecodeErrorKind::WrongType).find("map key must be an integer"), std::string::npos);
  const Bytes huge_key{0xA2, 0x1B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                       0xFF, 0xFF, 0xFF, 0x01, 0x20, 0x02};  // {2^64-1: 1, -1: 2}
  refusal(huge_key, DecodeErrorKind::NewerFormat);
}

TEST(VoucherToken, EncoderRefusesWhatTheDecoderWould) {
  auto c = sample_voucher();
  c.eligible_regions = {420100, 420500, 420600};
  c.eligible_providers = {1, 2};
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  c = sample_voucher();
  c.eligible_regions = {420500, 420100};
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  c = sample_voucher();
  c.level = 0;
  try {
    encode_payload(c);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("key -4 (skill level)"), std::string::npos) << e.what();
  }
}

TEST(VoucherToken, TamperedTokensAreRefused) {
  Signer s;
  const auto token = sign_voucher(sample_voucher(), s.kid, signer(s.key));
  // A flipped payload byte: still decodes (a value changed), the signature no longer verifies.
  auto flipped = token;
  flipped[flipped.size() - 64 - 3] ^= 0x01;
  const auto v = decode_voucher_token(flipped).envelope.verify(verifier(s.key.public_key()));
  EXPECT_EQ(v.failure, CoseFailure::BadSignature);
  // Cut short, extended, oversize: refused before any signature check.
  EXPECT_EQ(refusal_kind([&] { decode_voucher_token(ByteView(token).first(token.size() - 1)); }),
            DecodeErrorKind::Truncated);
  auto longer = token;
  longer.push_back(0x00);
  EXPECT_EQ(refusal_kind([&] { decode_voucher_token(longer); }), DecodeErrorKind::TrailingBytes);
  EXPECT_EQ(refusal_kind([&] { decode_voucher_token(Bytes(201, 0)); }), DecodeErrorKind::TooLarge);
  // Another tag.
  auto retagged = token;
  retagged[0] = 0xD1;  // tag 17 (COSE_Mac0)
  EXPECT_EQ(refusal_kind([&] { decode_voucher_token(retagged); }), DecodeErrorKind::WrongTag);
}

TEST(VoucherToken, OccupationCodes) {
  EXPECT_EQ(parse_occupation("4-04-05-05"), 4040505u);
  EXPECT_EQ(format_occupation(4040505), "4-04-05-05");
  EXPECT_EQ(format_occupation(parse_occupation("6-31-01-09")), "6-31-01-09");
  EXPECT_EQ(format_occupation(1000000), "1-00-00-00");
  EXPECT_EQ(format_occupation(12345678), "12-34-56-78");  // what printf("%u-%02u-%02u-%02u") wrote
  EXPECT_THROW(parse_occupation("4040505"), std::invalid_argument);
  EXPECT_THROW(parse_occupation("0-04-05-05"), std::invalid_argument);
  EXPECT_THROW(parse_occupation("4-0A-05-05"), std::invalid_argument);
}

// P15: a voucher for a city (xxxx00) or a province (xx0000) is good in its counties; the
// service's policy and the site terminal both read eligibility through this one rule.
TEST(VoucherRegions, P15_ACityOrProvinceVoucherIsGoodInItsCountiesOnly) {
  const std::vector<std::uint32_t> city{420100};
  EXPECT_TRUE(region_eligible(city, 420100));
  EXPECT_TRUE(region_eligible(city, 420106));  // a district of Wuhan
  EXPECT_FALSE(region_eligible(city, 420200));
  EXPECT_FALSE(region_eligible(city, 420000));  // the province is not in the city
  const std::vector<std::uint32_t> province{420000};
  EXPECT_TRUE(region_eligible(province, 420106));
  EXPECT_FALSE(region_eligible(province, 430106));
  const std::vector<std::uint32_t> county{420106};
  EXPECT_FALSE(region_eligible(county, 420100));
  EXPECT_FALSE(region_eligible(county, 420107));
  EXPECT_FALSE(region_eligible({}, 420106));
}
