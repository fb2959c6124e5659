// Backend-independent parts of the crypto value types.
#include "skillcard/crypto/types.hpp"

#include <string.h>  // explicit_bzero
#include <cstring>

namespace skillcard::crypto {

namespace {
std::string with_location(const std::string& what, const CallSite& where) {
  return what + " (in " + where.function + " at " + where.file + ":" + std::to_string(where.line) + ")";
}

// id-ecPublicKey with namedCurve prime256v1, then the BIT STRING header for a 65-byte point.
constexpr std::uint8_t kP256SpkiPrefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48,
                                            0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08, 0x2A, 0x86, 0x48,
                                            0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
}  // namespace

CryptoError::CryptoError(const std::string& what, CallSite where)
    : std::runtime_error(with_location(what, where)), where_(where) {}

void secure_wipe(void* data, std::size_t size) noexcept {
  if (data != nullptr && size != 0) explicit_bzero(data, size);
}

EcPublicKey EcPublicKey::from_uncompressed(ByteView point) {
  if (point.size() != kSize) {
    throw std::invalid_argument("P-256 public key must be 65 bytes, got " + std::to_string(point.size()));
  }
  if (point[0] != 0x04) throw std::invalid_argument("P-256 public key is not an uncompressed point");
  EcPublicKey key;
  std::memcpy(key.point_.data(), point.data(), kSize);
  return key;
}

std::array<std::uint8_t, 33> EcPublicKey::compressed() const {
  std::array<std::uint8_t, 33> out{};
  out[0] = static_cast<std::uint8_t>(0x02 | (point_[64] & 0x01));
  std::memcpy(out.data() + 1, point_.data() + 1, 32);
  return out;
}

Bytes EcPublicKey::spki_der() const { return concat({ByteView(kP256SpkiPrefix), ByteView(point_)}); }

}  // namespace skillcard::crypto
