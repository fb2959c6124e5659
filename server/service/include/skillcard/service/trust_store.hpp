// The keys the service verifies with, by kid: loaded from a signed trust list (checked against
// the pinned province root) or built from the key folder `skillcard-keytool init` made, in which
// case the service signs the list itself with the province root key and serves that.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "skillcard/crypto/key_cache.hpp"
#include "skillcard/schemas/trust_list.hpp"

namespace skillcard::service {

class TrustStoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TrustStore {
 public:
  // A signed trust list (COSE_Sign1 by the province root). Throws TrustStoreError when it does
  // not decode, is not signed by `root`, or an entry's kid is not its key's kid.
  static std::unique_ptr<TrustStore> from_signed_list(ByteView signed_list, const crypto::EcPublicKey& root);

  // A key folder made by `skillcard-keytool init`: voucher-signer-<bureau>.pub.pem (role voucher,
  // region = bureau), card-ca, portfolio-signer, audit-signer (.pub.pem) and terminal-ca.cert.pem,
  // the province from province-root.cert.pem (L). The list is signed with province-root.key.pem,
  // sequence `sequence`, issued at `now`, next update now + 90 days; entries valid from now for
  // the given days.
  static std::unique_ptr<TrustStore> from_key_folder(const std::filesystem::path& dir, std::uint64_t now,
                                                     std::uint64_t sequence = 1, unsigned validity_days = 3650);

  // The key folder as the service opens it: the list of the last signing ceremony,
  // `trust-list.cose` (made by `skillcard-keytool trust-list`), when the folder has one —
  // checked against province-root.cert.pem, so the root key need not be there; otherwise
  // from_key_folder(dir, now): signed at start with sequence 1 (development and the demo).
  static constexpr const char* kCeremonyFile = "trust-list.cose";
  static std::unique_ptr<TrustStore> load(const std::filesystem::path& dir, std::uint64_t now);

  struct Key {
    std::shared_ptr<const crypto::OpenSsl::VerifyKey> key;
    const schemas::TrustEntry* entry = nullptr;
  };
  // The key with this kid if the list names it with `role` (and, when given, `region`) and the
  // entry's window [not-before, not-after] contains `at`; otherwise nothing.
  std::optional<Key> find(const crypto::Kid& kid, schemas::TrustRole role, std::optional<std::uint32_t> region,
                          std::uint64_t at) const;

  const schemas::TrustListClaims& claims() const noexcept { return claims_; }
  const Bytes& signed_list() const noexcept { return signed_; }

 private:
  TrustStore(schemas::TrustListClaims claims, Bytes signed_list);
  schemas::TrustListClaims claims_;
  Bytes signed_;
  mutable crypto::PublicKeyCache cache_;
};

}  // namespace skillcard::service
