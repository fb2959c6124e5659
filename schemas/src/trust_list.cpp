// Trust list codec (docs/design.md, "Trust list").
#include "skillcard/schemas/trust_list.hpp"

#include "codec_util.hpp"

namespace skillcard::schemas {

namespace {
constexpr std::string_view kWhat = "trust list";
constexpr std::int64_t kVersion = -1, kIat = 6, kSequence = -60, kNextUpdate = -61, kEntries = -62, kSpki = -63,
                       kRole = -64, kRegion = -65, kNbf = 5, kExp = 4;
constexpr std::size_t kSpkiSize = 91;  // P-256 SubjectPublicKeyInfo
using detail::range;
using detail::require;
}  // namespace

void check(const TrustListClaims& c) {
  require(c.issued_at < c.next_update, kWhat, kNextUpdate, "next update", "not after issued-at");
  require(!c.entries.empty() && c.entries.size() <= kMaxTrustEntries, kWhat, kEntries, "entries",
          [&] { return std::to_string(c.entries.size()) + " entries, expected 1..256"; });
  for (const auto& entry : c.entries) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const auto& kid = entry.first;
    const auto& e = entry.second;
    const auto role = static_cast<unsigned>(e.role);
    require(e.spki.size() == kSpkiSize, kWhat, kSpki, "public key", "entry " + to_hex(kid) + ": SPKI must be 91 bytes");
    require(role >= 1 && role <= 5, kWhat, kRole, "role",
            [&] { return "entry " + to_hex(kid) + ": " + range(role, 1, 5); });
    require(e.region >= 100000 && e.region <= 999999, kWhat, kRegion, "region",
            [&] { return "entry " + to_hex(kid) + ": " + range(e.region, 100000, 999999); });
    require(e.not_before < e.not_after, kWhat, kExp, "not after", "entry " + to_hex(kid) + ": not after not-before");
  }
}

Bytes encode_payload(const TrustListClaims& c) {
  check(c);
  std::vector<std::pair<cbor::Item, cbor::Item>> entries;
  for (const auto& [kid, e] : c.entries) {
    entries.emplace_back(cbor::make_bytes(kid), cbor::MapWriter()
                                                    .bytes(kSpki, e.spki)
                                                    .uint(kRole, static_cast<std::uint64_t>(e.role))
                                                    .uint(kRegion, e.region)
                                                    .uint(kNbf, e.not_before)
                                                    .uint(kExp, e.not_after)
                                                    .build());
  }
  return cbor::MapWriter()
      .uint(kVersion, kTrustListFormatVersion)
      .uint(kSequence, c.sequence)
      .uint(kIat, c.issued_at)
      .uint(kNextUpdate, c.next_update)
      .item(kEntries, cbor::make_map(std::move(entries)))
      .encode();
}

TrustListClaims decode_trust_list_claims(ByteView payload) {
  const auto item = cbor::load(payload, {kMaxTrustList, 6}, kWhat);
  cbor::MapReader r(item.root(), std::string(kWhat));
  r.version(kTrustListFormatVersion);
  TrustListClaims c;
  c.sequence = r.uint(kSequence, "sequence number", 0, UINT64_MAX);
  c.issued_at = r.uint(kIat, "issued at", 0, UINT64_MAX);
  c.next_update = r.uint(kNextUpdate, "next update", 0, UINT64_MAX);
  const auto* entries = r.require(kEntries, "entries");
  const auto field = r.field(kEntries, "entries");
  if (entries->major != cbor::Major::Map) {
    throw DecodeError(DecodeErrorKind::WrongType, field, std::string("expected map, got ") + cbor::type_name(entries));
  }
  for (const auto& [key, value] : cbor::as_map(entries, field)) {
    const auto kid_bytes = cbor::as_bytes(key, field + " kid");
    if (kid_bytes.size() != 8) {
      throw DecodeError(DecodeErrorKind::OutOfRange, field,
                        "kid of " + std::to_string(kid_bytes.size()) + " bytes, expected 8");
    }
    crypto::Kid kid{};
    std::copy(kid_bytes.begin(), kid_bytes.end(), kid.begin());
    cbor::MapReader e(value, "trust list entry " + to_hex(kid));
    TrustEntry entry;
    entry.spki = e.bytes(kSpki, "public key", kSpkiSize, kSpkiSize);
    entry.role = static_cast<TrustRole>(e.uint(kRole, "role", 0, 255));
    entry.region = detail::narrow<std::uint32_t>(e.uint(kRegion, "region", 0, UINT32_MAX));
    entry.not_before = e.uint(kNbf, "not before", 0, UINT64_MAX);
    entry.not_after = e.uint(kExp, "not after", 0, UINT64_MAX);
    e.finish();
    c.entries.emplace(kid, std::move(entry));
  }
  r.finish();
  detail::check_decoded(c);
  return c;
}

Bytes sign_trust_list(const TrustListClaims& claims, const crypto::Kid& kid, const SignFunction& sign) {
  return CoseSign1::sign(kid, std::nullopt, encode_payload(claims), sign);
}

Signed<TrustListClaims> decode_trust_list(ByteView list) {
  return detail::decode_signed<TrustListClaims>(list, kMaxTrustList, std::nullopt, kWhat, decode_trust_list_claims);
}

}  // namespace skillcard::schemas
