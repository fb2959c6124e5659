// mbedTLS 2.28 backend of the crypto API: what the card simulator uses, as a card's own
// crypto library would be. Same shape as OpenSsl (checked by CryptoBackend).
#pragma once

#include <memory>

#include "skillcard/crypto/backend.hpp"

namespace skillcard::crypto {

struct MbedTls {
  static Sha256Digest sha256(ByteView data);
  static Sha256Digest hmac_sha256(ByteView key, ByteView data);
  static SecretBytes hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length);
  static CmacTag aes_cmac(ByteView key, ByteView data);
  static Bytes aes_cbc_encrypt(ByteView key, ByteView iv, ByteView data);
  static Bytes aes_cbc_decrypt(ByteView key, ByteView iv, ByteView data);
  static Bytes aes_ecb_encrypt(ByteView key, ByteView data);
  // CTR_DRBG seeded from the platform entropy source, one instance per thread.
  static void random_bytes(std::span<std::uint8_t> out);
  static bool equal_ct(ByteView a, ByteView b) noexcept;

  struct KeyPairState;  // mbedtls_ecp_keypair, kept out of our headers

  class PrivateKey {
   public:
    static PrivateKey generate();
    static PrivateKey from_scalar(ByteView scalar);
    PrivateKey(PrivateKey&&) noexcept;
    PrivateKey& operator=(PrivateKey&&) noexcept;
    ~PrivateKey();

    EcPublicKey public_key() const;
    // Deterministic ECDSA (RFC 6979) with blinding: a card signature must not depend on the
    // quality of its RNG for the secrecy of the key.
    EcSignature sign(ByteView message) const;
    SecretBytes scalar() const;

   private:
    explicit PrivateKey(std::unique_ptr<KeyPairState> state);
    std::unique_ptr<KeyPairState> state_;
  };

  class VerifyKey {
   public:
    static VerifyKey parse(const EcPublicKey& key);  // throws CryptoError if not on the curve
    VerifyKey(VerifyKey&&) noexcept;
    VerifyKey& operator=(VerifyKey&&) noexcept;
    ~VerifyKey();
    const EcPublicKey& public_key() const noexcept { return point_; }
    const KeyPairState& state() const noexcept { return *state_; }

   private:
    VerifyKey(std::unique_ptr<KeyPairState> state, const EcPublicKey& point);
    std::unique_ptr<KeyPairState> state_;
    EcPublicKey point_;
  };

  static bool verify(const VerifyKey& key, ByteView message, const EcSignature& signature);
  static bool verify(const EcPublicKey& key, ByteView message, const EcSignature& signature);
};

static_assert(CryptoBackend<MbedTls>);

}  // namespace skillcard::crypto
