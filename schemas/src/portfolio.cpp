// Certificate record and portfolio digest codecs (docs/design.md, "Portfolio digest").
#include "skillcard/schemas/portfolio.hpp"

#include "codec_util.hpp"

namespace skillcard::schemas {

namespace {
constexpr std::string_view kRecord = "certificate record";
constexpr std::string_view kDigest = "portfolio digest";
constexpr std::int64_t kVersion = -1, kOccupation = -3, kLevel = -4, kKind = -50, kIssuer = -51, kNumber = -52,
                       kDate = -53, kSalt = -54;
constexpr std::int64_t kSub = 2, kExp = 4, kIat = 6, kCount = -40, kDigests = -41, kDigestVersion = -42;
constexpr std::size_t kMaxText = 128;
using detail::range;
using detail::require;
}  // namespace

void check(const CertificateRecord& r) {
  const auto kind = static_cast<unsigned>(r.kind);
  require(kind >= 1 && kind <= 3, kRecord, kKind, "kind", [&] { return range(kind, 1, 3); });
  require(r.occupation >= 1000000 && r.occupation <= 9999999, kRecord, kOccupation, "occupation code",
          [&] { return range(r.occupation, 1000000, 9999999); });
  require(r.level >= 1 && r.level <= 5, kRecord, kLevel, "skill level", [&] { return range(r.level, 1, 5); });
  require(!r.issuer.empty() && r.issuer.size() <= kMaxText, kRecord, kIssuer, "issuer", "1..128 bytes of UTF-8");
  require(!r.number.empty() && r.number.size() <= kMaxText, kRecord, kNumber, "certificate number", "1..128 bytes");
  require(r.salt.size() >= 16 && r.salt.size() <= 32, kRecord, kSalt, "salt",
          [&] { return std::to_string(r.salt.size()) + " bytes, expected 16..32"; });
}

Bytes encode(const CertificateRecord& r) {
  check(r);
  return cbor::MapWriter()
      .uint(kVersion, kCertificateRecordFormatVersion)
      .uint(kKind, static_cast<std::uint64_t>(r.kind))
      .uint(kOccupation, r.occupation)
      .uint(kLevel, r.level)
      .text(kIssuer, r.issuer)
      .text(kNumber, r.number)
      .uint(kDate, r.date_days)
      .bytes(kSalt, r.salt)
      .encode();
}

CertificateRecord decode_certificate_record(ByteView encoded) {
  const auto item = cbor::load(encoded, {kMaxCertificateRecord, 4}, kRecord);
  cbor::MapReader m(item.root(), std::string(kRecord));
  m.version(kCertificateRecordFormatVersion);
  CertificateRecord r;
  r.kind = static_cast<CertificateKind>(m.uint(kKind, "kind", 0, 255));
  r.occupation = detail::narrow<std::uint32_t>(m.uint(kOccupation, "occupation code", 0, UINT32_MAX));
  r.level = detail::narrow<std::uint8_t>(m.uint(kLevel, "skill level", 0, 255));
  r.issuer = m.text(kIssuer, "issuer", 0, kMaxText);
  r.number = m.text(kNumber, "certificate number", 0, kMaxText);
  r.date_days = detail::narrow<std::uint32_t>(m.uint(kDate, "date", 0, UINT32_MAX));
  r.salt = m.bytes(kSalt, "salt", 0, 64);
  m.finish();
  detail::check_decoded(r);
  return r;
}

void check(const PortfolioDigestClaims& c) {
  require(c.digest_version >= 1, kDigest, kDigestVersion, "digest version", "versions start at 1");
  require(c.digests.size() <= kMaxPortfolioDigests, kDigest, kDigests, "digests",
          [&] { return std::to_string(c.digests.size()) + " digests, at most 11 fit the card"; });
  require(c.issued_at < c.expires_at, kDigest, kExp, "expiry", "not after issued-at");
}

Bytes encode_payload(const PortfolioDigestClaims& c) {
  check(c);
  std::vector<Bytes> digests;
  for (const auto& d : c.digests) digests.emplace_back(d.begin(), d.end());
  return cbor::MapWriter()
      .uint(kVersion, kPortfolioDigestFormatVersion)
      .bytes(kSub, c.holder)
      .uint(kCount, c.digests.size())
      .bytes_array(kDigests, digests)
      .uint(kDigestVersion, c.digest_version)
      .uint(kIat, c.issued_at)
      .uint(kExp, c.expires_at)
      .encode();
}

PortfolioDigestClaims decode_portfolio_digest_claims(ByteView payload) {
  const auto item = cbor::load(payload, {kMaxPortfolioDigest, 4}, kDigest);
  cbor::MapReader r(item.root(), std::string(kDigest));
  r.version(kPortfolioDigestFormatVersion);
  PortfolioDigestClaims c;
  c.holder = detail::to_array<16>(r.bytes(kSub, "holder reference", 16, 16));
  const auto count = r.uint(kCount, "digest count", 0, kMaxPortfolioDigests);
  for (const auto& d : r.bytes_array(kDigests, "digests", 32, kMaxPortfolioDigests))
    c.digests.push_back(detail::to_array<32>(d));
  if (count != c.digests.size()) {
    throw DecodeError(DecodeErrorKind::OutOfRange, r.field(kCount, "digest count"),
                      "says " + std::to_string(count) + ", the array holds " + std::to_string(c.digests.size()));
  }
  c.digest_version = detail::narrow<std::uint32_t>(r.uint(kDigestVersion, "digest version", 0, UINT32_MAX));
  c.issued_at = r.uint(kIat, "issued at", 0, UINT64_MAX);
  c.expires_at = r.uint(kExp, "expiry", 0, UINT64_MAX);
  r.finish();
  detail::check_decoded(c);
  return c;
}

Bytes sign_portfolio_digest(const PortfolioDigestClaims& claims, const crypto::Kid& kid, const SignFunction& sign) {
  auto digest = CoseSign1::sign(kid, std::nullopt, encode_payload(claims), sign);
  if (digest.size() > kMaxPortfolioDigest) throw std::invalid_argument("portfolio digest would exceed 510 bytes");
  return digest;
}

Signed<PortfolioDigestClaims> decode_portfolio_digest(ByteView digest) {
  return detail::decode_signed<PortfolioDigestClaims>(digest, kMaxPortfolioDigest, std::nullopt, kDigest,
                                                      decode_portfolio_digest_claims);
}

}  // namespace skillcard::schemas
