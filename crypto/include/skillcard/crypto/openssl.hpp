// OpenSSL 3 backend of the crypto API: used by the host, the service and the tools.
#pragma once

#include <memory>

#include "skillcard/crypto/backend.hpp"

// Forward declaration keeps OpenSSL headers out of ours.
struct evp_pkey_st;

namespace skillcard::crypto {

struct OpenSsl {
  static Sha256Digest sha256(ByteView data);
  static Sha256Digest hmac_sha256(ByteView key, ByteView data);
  static SecretBytes hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length);
  // AES-CMAC (NIST SP 800-38B) with a 16-, 24- or 32-byte key.
  static CmacTag aes_cmac(ByteView key, ByteView data);
  // AES-CBC and -ECB without padding: data must be a whole number of 16-byte blocks
  // (SCP03 pads explicitly, ISO/IEC 9797-1 method 2).
  static Bytes aes_cbc_encrypt(ByteView key, ByteView iv, ByteView data);
  static Bytes aes_cbc_decrypt(ByteView key, ByteView iv, ByteView data);
  static Bytes aes_ecb_encrypt(ByteView key, ByteView data);
  static void random_bytes(std::span<std::uint8_t> out);
  static bool equal_ct(ByteView a, ByteView b) noexcept;

  struct PkeyFree {
    void operator()(evp_pkey_st* key) const noexcept;
  };
  using PkeyPtr = std::unique_ptr<evp_pkey_st, PkeyFree>;

  // A P-256 private key. Signing hashes with SHA-256 and returns raw r || s.
  class PrivateKey {
   public:
    static PrivateKey generate();
    // From the 32-byte big-endian scalar; refuses 0 and values >= the group order.
    static PrivateKey from_scalar(ByteView scalar);
    // Takes ownership of an EVP_PKEY, checking that it is a P-256 key.
    static PrivateKey adopt(PkeyPtr key);

    EcPublicKey public_key() const;
    EcSignature sign(ByteView message) const;
    SecretBytes scalar() const;
    evp_pkey_st* native() const noexcept { return key_.get(); }

   private:
    explicit PrivateKey(PkeyPtr key) : key_(std::move(key)) {}
    PkeyPtr key_;
  };

  // A parsed, on-curve-checked public key, ready for repeated verification. Parsing costs more
  // than a verify, so long-lived holders (PublicKeyCache) keep these by kid.
  class VerifyKey {
   public:
    static VerifyKey parse(const EcPublicKey& key);  // throws CryptoError if not on the curve
    // Takes ownership of an EVP_PKEY (e.g. read from a PEM file), checking it is P-256.
    static VerifyKey adopt(PkeyPtr key);
    const EcPublicKey& public_key() const noexcept { return point_; }
    evp_pkey_st* native() const noexcept { return key_.get(); }

   private:
    VerifyKey(PkeyPtr key, const EcPublicKey& point) : key_(std::move(key)), point_(point) {}
    PkeyPtr key_;
    EcPublicKey point_;
  };

  // A SEC1 compressed P-256 point (33 bytes) back to uncompressed form; throws
  // std::invalid_argument if it is not a point on the curve.
  static EcPublicKey decompress(ByteView compressed);

  // SHA-256 + ECDSA verify of a raw r || s signature. False for a wrong signature, including
  // r or s of 0 or >= n; throws only when the library itself fails.
  static bool verify(const VerifyKey& key, ByteView message, const EcSignature& signature);
  static bool verify(const EcPublicKey& key, ByteView message, const EcSignature& signature);
};

static_assert(CryptoBackend<OpenSsl>);

}  // namespace skillcard::crypto
