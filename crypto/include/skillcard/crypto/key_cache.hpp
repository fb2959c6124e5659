// Parsed public keys cached by kid. Parsing and on-curve checking a key costs more than an
// ES256 verify, and the service verifies thousands of tokens from a handful of signers.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "skillcard/crypto/openssl.hpp"

namespace skillcard::crypto {

class PublicKeyCache {
 public:
  explicit PublicKeyCache(std::size_t capacity = 4096) : capacity_(capacity) {}

  // The parsed key for `key`, parsing it on first use. Throws CryptoError for an off-curve point.
  std::shared_ptr<const OpenSsl::VerifyKey> get(const EcPublicKey& key);
  // The cached key with this kid, or null.
  std::shared_ptr<const OpenSsl::VerifyKey> find(const Kid& kid) const;
  std::size_t size() const;

 private:
  struct KidHash {
    std::size_t operator()(const Kid& kid) const noexcept;
  };
  std::size_t capacity_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<Kid, std::shared_ptr<const OpenSsl::VerifyKey>, KidHash> keys_;
};

}  // namespace skillcard::crypto
