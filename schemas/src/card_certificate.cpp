// Card certificate codec (claim keys: docs/design.md, "Card certificate").
#include "skillcard/schemas/card_certificate.hpp"

#include "codec_util.hpp"

namespace skillcard::schemas {

namespace {
constexpr std::string_view kWhat = "card certificate";
constexpr std::int64_t kVersion = -1, kNbf = 5, kExp = 4, kCardNumber = -30, kRegion = -31, kReceiptKey = -32,
                       kAuthKey = -33;
using detail::range;
using detail::require;

bool compressed_prefix(const CompressedPoint& p) { return p[0] == 0x02 || p[0] == 0x03; }
}  // namespace

void check(const CardCertificateClaims& c) {
  require(c.card_number.size() == 10 &&
              std::all_of(c.card_number.begin(), c.card_number.end(), [](char ch) { return ch >= '0' && ch <= '9'; }),
          kWhat, kCardNumber, "card number", "must be 10 digits, got '" + c.card_number + "'");
  require(c.region >= 100000 && c.region <= 999999, kWhat, kRegion, "region",
          [&] { return range(c.region, 100000, 999999); });
  require(compressed_prefix(c.receipt_key), kWhat, kReceiptKey, "receipt key", "not a compressed SEC1 point");
  require(compressed_prefix(c.auth_key), kWhat, kAuthKey, "auth key", "not a compressed SEC1 point");
  require(c.receipt_key != c.auth_key, kWhat, kAuthKey, "auth key", "must differ from the receipt key");
  require(c.not_before < c.not_after, kWhat, kExp, "not after", "not later than not-before");
}

Bytes encode_payload(const CardCertificateClaims& c) {
  check(c);
  return cbor::MapWriter()
      .uint(kVersion, kCardCertificateFormatVersion)
      .text(kCardNumber, c.card_number)
      .uint(kRegion, c.region)
      .bytes(kReceiptKey, c.receipt_key)
      .bytes(kAuthKey, c.auth_key)
      .uint(kNbf, c.not_before)
      .uint(kExp, c.not_after)
      .encode();
}

CardCertificateClaims decode_card_certificate_claims(ByteView payload) {
  const auto item = cbor::load(payload, {kMaxCardCertificate, 4}, kWhat);
  cbor::MapReader r(item.root(), std::string(kWhat));
  r.version(kCardCertificateFormatVersion);
  CardCertificateClaims c;
  c.card_number = r.text(kCardNumber, "card number", 10, 10);
  c.region = detail::narrow<std::uint32_t>(r.uint(kRegion, "region", 0, UINT32_MAX));
  c.receipt_key = detail::to_array<33>(r.bytes(kReceiptKey, "receipt key", 33, 33));
  c.auth_key = detail::to_array<33>(r.bytes(kAuthKey, "auth key", 33, 33));
  c.not_before = r.uint(kNbf, "not before", 0, UINT64_MAX);
  c.not_after = r.uint(kExp, "not after", 0, UINT64_MAX);
  r.finish();
  detail::check_decoded(c);
  return c;
}

Bytes sign_card_certificate(const CardCertificateClaims& claims, const crypto::Kid& kid, const SignFunction& sign) {
  auto cert = CoseSign1::sign(kid, std::nullopt, encode_payload(claims), sign);
  if (cert.size() > kMaxCardCertificate) throw std::invalid_argument("card certificate would exceed 224 bytes");
  return cert;
}

Signed<CardCertificateClaims> decode_card_certificate(ByteView certificate) {
  return detail::decode_signed<CardCertificateClaims>(certificate, kMaxCardCertificate, std::nullopt, kWhat,
                                                      decode_card_certificate_claims);
}

}  // namespace skillcard::schemas
