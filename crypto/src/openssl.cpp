// OpenSSL 3 backend: EVP interfaces only (no deprecated low-level calls), every handle owned
// by RAII, every call checked.
#include "skillcard/crypto/openssl.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include <climits>
#include <cstring>

#include "openssl_check.hpp"

namespace skillcard::crypto {

using detail::ossl_check;
using detail::ossl_check_ptr;
using detail::Owned;

namespace {

using MdCtx = Owned<EVP_MD_CTX, EVP_MD_CTX_free>;
using PkeyCtx = Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using CipherCtx = Owned<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using Mac = Owned<EVP_MAC, EVP_MAC_free>;
using MacCtx = Owned<EVP_MAC_CTX, EVP_MAC_CTX_free>;
using Kdf = Owned<EVP_KDF, EVP_KDF_free>;
using KdfCtx = Owned<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using Bn = Owned<BIGNUM, BN_free>;
using SecretBn = Owned<BIGNUM, BN_clear_free>;
using EcdsaSig = Owned<ECDSA_SIG, ECDSA_SIG_free>;
using Group = Owned<EC_GROUP, EC_GROUP_free>;
using Point = Owned<EC_POINT, EC_POINT_free>;
using ParamBld = Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = Owned<OSSL_PARAM, OSSL_PARAM_free>;

constexpr std::size_t kBlock = 16;

// Empty spans may carry a null pointer, which OpenSSL takes as "no key" rather than "empty key".
const std::uint8_t* nonnull(ByteView v) {
  static constexpr std::uint8_t kEmpty = 0;
  return v.empty() ? &kEmpty : v.data();
}

void require_aes_key(ByteView key, const char* what) {
  if (key.size() != 16 && key.size() != 24 && key.size() != 32) {
    throw std::invalid_argument(std::string(what) + ": AES key must be 16, 24 or 32 bytes, got " +
                                std::to_string(key.size()));
  }
}

void require_blocks(ByteView data, const char* what) {
  if (data.size() % kBlock != 0) {
    throw std::invalid_argument(std::string(what) + ": data is not a whole number of 16-byte blocks");
  }
}

const char* cbc_name(std::size_t key_size) {
  return key_size == 16 ? "AES-128-CBC" : key_size == 24 ? "AES-192-CBC" : "AES-256-CBC";
}

const EVP_CIPHER* cipher(std::size_t key_size, bool cbc) {
  switch (key_size) {
    case 16:
      return cbc ? EVP_aes_128_cbc() : EVP_aes_128_ecb();
    case 24:
      return cbc ? EVP_aes_192_cbc() : EVP_aes_192_ecb();
    default:
      return cbc ? EVP_aes_256_cbc() : EVP_aes_256_ecb();
  }
}

int to_int(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX)) throw std::length_error("input too large for OpenSSL");
  return static_cast<int>(n);
}

Bytes aes_crypt(ByteView key, ByteView iv, ByteView data, bool cbc, bool encrypt) {
  CipherCtx ctx(ossl_check_ptr(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new"));
  ossl_check(EVP_CipherInit_ex(ctx.get(), cipher(key.size(), cbc), nullptr, key.data(), cbc ? iv.data() : nullptr,
                               encrypt ? 1 : 0),
             "EVP_CipherInit_ex");
  ossl_check(EVP_CIPHER_CTX_set_padding(ctx.get(), 0), "EVP_CIPHER_CTX_set_padding");
  Bytes out(data.size() + kBlock);
  // Freed unwiped only once returned to the caller, who owns the (perhaps secret) result.
  struct WipeUnlessReturned {
    Bytes& bytes;
    bool returned = false;
    ~WipeUnlessReturned() {
      if (!returned) secure_wipe(bytes.data(), bytes.size());
    }
  } guard{out};
  int len = 0;
  ossl_check(EVP_CipherUpdate(ctx.get(), out.data(), &len, data.data(), to_int(data.size())), "EVP_CipherUpdate");
  int tail = 0;
  ossl_check(EVP_CipherFinal_ex(ctx.get(), out.data() + len, &tail), "EVP_CipherFinal_ex");
  out.resize(static_cast<std::size_t>(len + tail));
  guard.returned = true;
  return out;
}

// The P-256 group, built once: EC_GROUP is immutable after construction and safe to share.
const EC_GROUP* p256() {
  static const Group group(
      ossl_check_ptr(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1), "EC_GROUP_new_by_curve_name"));
  return group.get();
}

OpenSsl::PkeyPtr pkey_from_params(OSSL_PARAM* params, int selection, const char* what) {
  PkeyCtx ctx(ossl_check_ptr(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), "EVP_PKEY_CTX_new_from_name"));
  ossl_check(EVP_PKEY_fromdata_init(ctx.get()), "EVP_PKEY_fromdata_init");
  EVP_PKEY* raw = nullptr;
  ossl_check(EVP_PKEY_fromdata(ctx.get(), &raw, selection, params), what);
  return OpenSsl::PkeyPtr(raw);
}

EcPublicKey public_point(EVP_PKEY* key) {
  std::uint8_t buf[EcPublicKey::kSize];
  std::size_t len = 0;
  ossl_check(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof buf, &len),
             "EVP_PKEY_get_octet_string_param(pub)");
  return EcPublicKey::from_uncompressed(ByteView(buf, len));
}

void require_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    throw CryptoError("key is not an EC key", CallSite::current());
  }
  char name[64] = {};
  std::size_t len = 0;
  ossl_check(EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len),
             "EVP_PKEY_get_utf8_string_param(group)");
  if (std::strcmp(name, "prime256v1") != 0) {
    throw CryptoError(std::string("key is on curve ") + name + ", expected P-256 (prime256v1)", CallSite::current());
  }
}

}  // namespace

void OpenSsl::PkeyFree::operator()(evp_pkey_st* key) const noexcept { EVP_PKEY_free(key); }

Sha256Digest OpenSsl::sha256(ByteView data) {
  Sha256Digest out{};
  unsigned int len = 0;
  ossl_check(EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr), "EVP_Digest(SHA-256)");
  return out;
}

Sha256Digest OpenSsl::hmac_sha256(ByteView key, ByteView data) {
  Sha256Digest out{};
  std::size_t len = 0;
  ossl_check_ptr(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, nonnull(key), key.size(), nonnull(data),
                           data.size(), out.data(), out.size(), &len),
                 "EVP_Q_mac(HMAC-SHA256)");
  return out;
}

SecretBytes OpenSsl::hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  if (length == 0 || length > 255 * 32) throw std::invalid_argument("HKDF length out of range");
  Kdf kdf(ossl_check_ptr(EVP_KDF_fetch(nullptr, "HKDF", nullptr), "EVP_KDF_fetch(HKDF)"));
  KdfCtx ctx(ossl_check_ptr(EVP_KDF_CTX_new(kdf.get()), "EVP_KDF_CTX_new"));
  char digest[] = "SHA256";
  // OSSL_PARAM wants non-const pointers; OpenSSL only reads them.
  auto* ikm_p = const_cast<std::uint8_t*>(nonnull(ikm));
  auto* salt_p = const_cast<std::uint8_t*>(nonnull(salt));
  auto* info_p = const_cast<std::uint8_t*>(nonnull(info));
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm_p, ikm.size()),
                         OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt_p, salt.size()),
                         OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info_p, info.size()),
                         OSSL_PARAM_construct_end()};
  SecretBytes out(length);
  ossl_check(EVP_KDF_derive(ctx.get(), out.data(), length, params), "EVP_KDF_derive(HKDF)");
  return out;
}

CmacTag OpenSsl::aes_cmac(ByteView key, ByteView data) {
  require_aes_key(key, "AES-CMAC");
  CmacTag out{};
  std::size_t len = 0;
  ossl_check_ptr(EVP_Q_mac(nullptr, "CMAC", nullptr, cbc_name(key.size()), nullptr, key.data(), key.size(),
                           nonnull(data), data.size(), out.data(), out.size(), &len),
                 "EVP_Q_mac(AES-CMAC)");
  return out;
}

Bytes OpenSsl::aes_cbc_encrypt(ByteView key, ByteView iv, ByteView data) {
  require_aes_key(key, "AES-CBC");
  require_blocks(data, "AES-CBC");
  if (iv.size() != kBlock) throw std::invalid_argument("AES-CBC: IV must be 16 bytes");
  return aes_crypt(key, iv, data, true, true);
}

Bytes OpenSsl::aes_cbc_decrypt(ByteView key, ByteView iv, ByteView data) {
  require_aes_key(key, "AES-CBC");
  require_blocks(data, "AES-CBC");
  if (iv.size() != kBlock) throw std::invalid_argument("AES-CBC: IV must be 16 bytes");
  return aes_crypt(key, iv, data, true, false);
}

Bytes OpenSsl::aes_ecb_encrypt(ByteView key, ByteView data) {
  require_aes_key(key, "AES-ECB");
  require_blocks(data, "AES-ECB");
  return aes_crypt(key, {}, data, false, true);
}

void OpenSsl::random_bytes(std::span<std::uint8_t> out) {
  if (out.empty()) return;
  ossl_check(RAND_priv_bytes(out.data(), to_int(out.size())), "RAND_priv_bytes");
}

bool OpenSsl::equal_ct(ByteView a, ByteView b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// --- PrivateKey ---------------------------------------------------------------------------

OpenSsl::PrivateKey OpenSsl::PrivateKey::generate() {
  EVP_PKEY* raw = EVP_EC_gen("P-256");
  return PrivateKey(PkeyPtr(ossl_check_ptr(raw, "EVP_EC_gen(P-256)")));
}

OpenSsl::PrivateKey OpenSsl::PrivateKey::from_scalar(ByteView scalar) {
  if (scalar.size() != 32) throw std::invalid_argument("P-256 private scalar must be 32 bytes");
  // Secure: cleared when freed, on every path, and OSSL_PARAM_BLD copies a secure BIGNUM only
  // into the part of its parameters that OSSL_PARAM_free clears.
  SecretBn d(ossl_check_ptr(BN_secure_new(), "BN_secure_new"));
  ossl_check_ptr(BN_bin2bn(scalar.data(), 32, d.get()), "BN_bin2bn");
  if (BN_is_zero(d.get()) || BN_cmp(d.get(), EC_GROUP_get0_order(p256())) >= 0) {
    throw std::invalid_argument("P-256 private scalar is out of range");
  }
  // OpenSSL wants the public point alongside the scalar: Q = d * G.
  Point q(ossl_check_ptr(EC_POINT_new(p256()), "EC_POINT_new"));
  ossl_check(EC_POINT_mul(p256(), q.get(), d.get(), nullptr, nullptr, nullptr), "EC_POINT_mul");
  std::uint8_t pub[EcPublicKey::kSize];
  if (EC_POINT_point2oct(p256(), q.get(), POINT_CONVERSION_UNCOMPRESSED, pub, sizeof pub, nullptr) != sizeof pub) {
    detail::throw_openssl("EC_POINT_point2oct", CallSite::current());
  }
  ParamBld bld(ossl_check_ptr(OSSL_PARAM_BLD_new(), "OSSL_PARAM_BLD_new"));
  ossl_check(OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0),
             "OSSL_PARAM_BLD_push_utf8_string");
  ossl_check(OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()), "OSSL_PARAM_BLD_push_BN");
  ossl_check(OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub),
             "OSSL_PARAM_BLD_push_octet_string");
  Params params(ossl_check_ptr(OSSL_PARAM_BLD_to_param(bld.get()), "OSSL_PARAM_BLD_to_param"));
  return PrivateKey(pkey_from_params(params.get(), EVP_PKEY_KEYPAIR, "EVP_PKEY_fromdata(keypair)"));
}

OpenSsl::PrivateKey OpenSsl::PrivateKey::adopt(PkeyPtr key) {
  if (!key) throw std::invalid_argument("null key");
  require_p256(key.get());
  return PrivateKey(std::move(key));
}

EcPublicKey OpenSsl::PrivateKey::public_key() const { return public_point(key_.get()); }

SecretBytes OpenSsl::PrivateKey::scalar() const {
  BIGNUM* raw = nullptr;
  ossl_check(EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_PRIV_KEY, &raw), "EVP_PKEY_get_bn_param(priv)");
  Owned<BIGNUM, BN_clear_free> d(raw);
  SecretBytes out(32);
  ossl_check(BN_bn2binpad(d.get(), out.data(), 32) == 32 ? 1 : 0, "BN_bn2binpad");
  return out;
}

EcSignature OpenSsl::PrivateKey::sign(ByteView message) const {
  MdCtx ctx(ossl_check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new"));
  ossl_check(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()), "EVP_DigestSignInit");
  std::uint8_t der[80];
  std::size_t der_len = sizeof der;
  ossl_check(EVP_DigestSign(ctx.get(), der, &der_len, message.data(), message.size()), "EVP_DigestSign");
  const std::uint8_t* p = der;
  EcdsaSig sig(ossl_check_ptr(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)), "d2i_ECDSA_SIG"));
  EcSignature out{};
  ossl_check(BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), 32) == 32 ? 1 : 0, "BN_bn2binpad(r)");
  ossl_check(BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + 32, 32) == 32 ? 1 : 0, "BN_bn2binpad(s)");
  return out;
}

EcPublicKey OpenSsl::decompress(ByteView compressed) {
  if (compressed.size() != 33 || (compressed[0] != 0x02 && compressed[0] != 0x03)) {
    throw std::invalid_argument("compressed P-256 point must be 33 bytes starting with 02 or 03");
  }
  Point q(ossl_check_ptr(EC_POINT_new(p256()), "EC_POINT_new"));
  if (EC_POINT_oct2point(p256(), q.get(), compressed.data(), compressed.size(), nullptr) != 1) {
    ERR_clear_error();
    throw std::invalid_argument("compressed point is not on P-256");
  }
  std::uint8_t out[EcPublicKey::kSize];
  if (EC_POINT_point2oct(p256(), q.get(), POINT_CONVERSION_UNCOMPRESSED, out, sizeof out, nullptr) != sizeof out) {
    detail::throw_openssl("EC_POINT_point2oct", CallSite::current());
  }
  return EcPublicKey::from_uncompressed(ByteView(out, sizeof out));
}

// --- VerifyKey ----------------------------------------------------------------------------

OpenSsl::VerifyKey OpenSsl::VerifyKey::parse(const EcPublicKey& point) {
  ParamBld bld(ossl_check_ptr(OSSL_PARAM_BLD_new(), "OSSL_PARAM_BLD_new"));
  ossl_check(OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0),
             "OSSL_PARAM_BLD_push_utf8_string");
  ossl_check(
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.bytes().data(), point.bytes().size()),
      "OSSL_PARAM_BLD_push_octet_string");
  Params params(ossl_check_ptr(OSSL_PARAM_BLD_to_param(bld.get()), "OSSL_PARAM_BLD_to_param"));
  auto key = pkey_from_params(params.get(), EVP_PKEY_PUBLIC_KEY, "EVP_PKEY_fromdata(public key)");
  // fromdata does not promise an on-curve check; an off-curve point invites invalid-curve
  // attacks, so check explicitly.
  PkeyCtx check(ossl_check_ptr(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr), "EVP_PKEY_CTX_new_from_pkey"));
  ossl_check(EVP_PKEY_public_check(check.get()), "EVP_PKEY_public_check (point not on P-256)");
  return VerifyKey(std::move(key), point);
}

OpenSsl::VerifyKey OpenSsl::VerifyKey::adopt(PkeyPtr key) {
  if (!key) throw std::invalid_argument("null key");
  require_p256(key.get());
  const auto point = public_point(key.get());
  return VerifyKey(std::move(key), point);
}

bool OpenSsl::verify(const VerifyKey& key, ByteView message, const EcSignature& signature) {
  // COSE's r || s becomes the DER SEQUENCE { INTEGER r, INTEGER s } that OpenSSL verifies.
  // Encoded directly (no BIGNUM round trip): this sits on the service's hottest path.
  std::uint8_t der[72];
  std::size_t der_len = 2;
  for (std::size_t half = 0; half < 2; ++half) {
    const std::uint8_t* v = signature.data() + 32 * half;
    std::size_t skip = 0;
    while (skip < 31 && v[skip] == 0) ++skip;  // minimal INTEGER: no leading zero octets...
    const bool pad = (v[skip] & 0x80) != 0;    // ...but one 00 if the high bit is set
    const std::size_t len = 32 - skip + (pad ? 1 : 0);
    der[der_len++] = 0x02;
    der[der_len++] = static_cast<std::uint8_t>(len);
    if (pad) der[der_len++] = 0x00;
    std::memcpy(der + der_len, v + skip, 32 - skip);
    der_len += 32 - skip;
  }
  der[0] = 0x30;
  der[1] = static_cast<std::uint8_t>(der_len - 2);

  MdCtx ctx(ossl_check_ptr(EVP_MD_CTX_new(), "EVP_MD_CTX_new"));
  ossl_check(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.native()), "EVP_DigestVerifyInit");
  const int rc = EVP_DigestVerify(ctx.get(), der, der_len, nonnull(message), message.size());
  // 0 = bad signature; a negative value can also mean a malformed one (r or s out of range).
  // Neither is a library failure, so both are simply "does not verify".
  ERR_clear_error();
  return rc == 1;
}

bool OpenSsl::verify(const EcPublicKey& key, ByteView message, const EcSignature& signature) {
  return verify(VerifyKey::parse(key), message, signature);
}

}  // namespace skillcard::crypto
