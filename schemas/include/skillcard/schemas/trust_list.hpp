// The signed trust list (docs/design.md, "Trust list"): which keys sign what, for how long,
// published by the province root; offline terminals keep the newest copy they have seen.
#pragma once

#include <map>
#include <optional>

#include "skillcard/crypto/backend.hpp"
#include "skillcard/schemas/common.hpp"

namespace skillcard::schemas {

struct TrustEntry {
  Bytes spki;  // SubjectPublicKeyInfo DER of a P-256 key (91 bytes)
  TrustRole role = TrustRole::Voucher;
  std::uint32_t region = 0;  // the bureau for voucher signers, else the province
  std::uint64_t not_before = 0;
  std::uint64_t not_after = 0;
  bool operator==(const TrustEntry&) const = default;
};

struct TrustListClaims {
  std::uint64_t sequence = 0;  // strictly increasing: a lower one than held is a rollback
  std::uint64_t issued_at = 0;
  std::uint64_t next_update = 0;
  std::map<crypto::Kid, TrustEntry> entries;
  bool operator==(const TrustListClaims&) const = default;
};

inline constexpr std::uint64_t kTrustListFormatVersion = 1;
inline constexpr std::size_t kMaxTrustEntries = 256;

void check(const TrustListClaims& claims);
Bytes encode_payload(const TrustListClaims& claims);
TrustListClaims decode_trust_list_claims(ByteView payload);

Bytes sign_trust_list(const TrustListClaims& claims, const crypto::Kid& kid, const SignFunction& sign);
Signed<TrustListClaims> decode_trust_list(ByteView list);

// The first entry whose kid is not the first 8 bytes of SHA-256 over its SPKI, if any: a
// verifier refuses such a list (a kid must name exactly one key).
template <crypto::CryptoBackend B>
std::optional<crypto::Kid> first_kid_mismatch(const TrustListClaims& claims) {
  for (const auto& [kid, entry] : claims.entries) {
    const auto digest = B::sha256(entry.spki);
    if (!std::equal(kid.begin(), kid.end(), digest.begin())) return kid;
  }
  return std::nullopt;
}

}  // namespace skillcard::schemas
