// PublicKeyCache: readers share a lock; a miss parses outside the lock, then inserts.
#include "skillcard/crypto/key_cache.hpp"

#include <cstring>

namespace skillcard::crypto {

std::size_t PublicKeyCache::KidHash::operator()(const Kid& kid) const noexcept {
  // A kid is already a prefix of SHA-256: its first word is uniformly distributed.
  std::size_t h = 0;
  std::memcpy(&h, kid.data(), std::min(sizeof h, kid.size()));
  return h;
}

std::shared_ptr<const OpenSsl::VerifyKey> PublicKeyCache::get(const EcPublicKey& key) {
  const auto kid = kid_of<OpenSsl>(key);
  {
    std::shared_lock lock(mutex_);
    const auto it = keys_.find(kid);
    // Compare the whole point: a kid is only 64 bits, and a key must never be checked with
    // another key that happens to share its kid.
    if (it != keys_.end() && it->second->public_key() == key) return it->second;
  }
  auto parsed = std::make_shared<const OpenSsl::VerifyKey>(OpenSsl::VerifyKey::parse(key));
  std::unique_lock lock(mutex_);
  if (keys_.size() >= capacity_) keys_.clear();  // trust lists are small; a full cache is unusual
  keys_[kid] = parsed;
  return parsed;
}

std::shared_ptr<const OpenSsl::VerifyKey> PublicKeyCache::find(const Kid& kid) const {
  std::shared_lock lock(mutex_);
  const auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : it->second;
}

std::size_t PublicKeyCache::size() const {
  std::shared_lock lock(mutex_);
  return keys_.size();
}

}  // namespace skillcard::crypto
