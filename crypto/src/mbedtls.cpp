// mbedTLS 2.28 backend. Every mbedTLS context is owned by an RAII holder and every call goes
// through mbed_check, which maps the return code to a CryptoError naming the call and site.
#include "skillcard/crypto/mbedtls.hpp"

#include <mbedtls/aes.h>
#include <mbedtls/bignum.h>
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
// 2.28 ships this header without extern "C" guards.
extern "C" {
#include <mbedtls/constant_time.h>
}
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include <cstring>

namespace skillcard::crypto {

namespace {

void mbed_check(int rc, const char* call, CallSite where = CallSite::current()) {
  if (rc == 0) return;
  char buf[160] = {};
  mbedtls_strerror(rc, buf, sizeof buf);
  throw CryptoError(std::string("mbedTLS ") + call + " failed: " + buf, where);
}

// RAII holder for an mbedTLS context type with init/free functions.
template <class T, void (*Init)(T*), void (*Free)(T*)>
class Ctx {
 public:
  Ctx() { Init(&ctx_); }
  ~Ctx() { Free(&ctx_); }
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;
  T* get() noexcept { return &ctx_; }
  const T* get() const noexcept { return &ctx_; }

 private:
  T ctx_;
};

using Aes = Ctx<mbedtls_aes_context, mbedtls_aes_init, mbedtls_aes_free>;
using Mpi = Ctx<mbedtls_mpi, mbedtls_mpi_init, mbedtls_mpi_free>;
using Entropy = Ctx<mbedtls_entropy_context, mbedtls_entropy_init, mbedtls_entropy_free>;
using Drbg = Ctx<mbedtls_ctr_drbg_context, mbedtls_ctr_drbg_init, mbedtls_ctr_drbg_free>;
using Keypair = Ctx<mbedtls_ecp_keypair, mbedtls_ecp_keypair_init, mbedtls_ecp_keypair_free>;

constexpr std::size_t kBlock = 16;

// mbedTLS refuses a null pointer even with length 0; empty spans may carry one.
const std::uint8_t* nonnull(ByteView v) {
  static constexpr std::uint8_t kEmpty = 0;
  return v.empty() ? &kEmpty : v.data();
}

unsigned int key_bits(ByteView key, const char* what) {
  if (key.size() != 16 && key.size() != 24 && key.size() != 32) {
    throw std::invalid_argument(std::string(what) + ": AES key must be 16, 24 or 32 bytes, got " +
                                std::to_string(key.size()));
  }
  return static_cast<unsigned int>(key.size() * 8);
}

void require_blocks(ByteView data, const char* what) {
  if (data.size() % kBlock != 0) {
    throw std::invalid_argument(std::string(what) + ": data is not a whole number of 16-byte blocks");
  }
}

// One DRBG per thread: mbedTLS contexts are not thread-safe without MBEDTLS_THREADING_C.
struct Rng {
  Entropy entropy;
  Drbg drbg;
  Rng() {
    static constexpr char kPersonalisation[] = "skillcard-card-rng";
    mbed_check(
        mbedtls_ctr_drbg_seed(drbg.get(), mbedtls_entropy_func, entropy.get(),
                              reinterpret_cast<const unsigned char*>(kPersonalisation), sizeof kPersonalisation - 1),
        "mbedtls_ctr_drbg_seed");
  }
};

Rng& thread_rng() {
  thread_local Rng rng;
  return rng;
}

int rng_callback(void*, unsigned char* out, std::size_t len) {
  return mbedtls_ctr_drbg_random(thread_rng().drbg.get(), out, len);
}

const mbedtls_md_info_t* sha256_info() { return mbedtls_md_info_from_type(MBEDTLS_MD_SHA256); }

}  // namespace

struct MbedTls::KeyPairState {
  Keypair keypair;
  KeyPairState() {
    mbed_check(mbedtls_ecp_group_load(&keypair.get()->grp, MBEDTLS_ECP_DP_SECP256R1), "mbedtls_ecp_group_load");
  }
};

Sha256Digest MbedTls::sha256(ByteView data) {
  Sha256Digest out{};
  mbed_check(mbedtls_sha256_ret(nonnull(data), data.size(), out.data(), 0), "mbedtls_sha256_ret");
  return out;
}

Sha256Digest MbedTls::hmac_sha256(ByteView key, ByteView data) {
  Sha256Digest out{};
  mbed_check(mbedtls_md_hmac(sha256_info(), nonnull(key), key.size(), nonnull(data), data.size(), out.data()),
             "mbedtls_md_hmac");
  return out;
}

SecretBytes MbedTls::hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  if (length == 0 || length > 255 * 32) throw std::invalid_argument("HKDF length out of range");
  SecretBytes out(length);
  mbed_check(mbedtls_hkdf(sha256_info(), nonnull(salt), salt.size(), nonnull(ikm), ikm.size(), nonnull(info),
                          info.size(), out.data(), length),
             "mbedtls_hkdf");
  return out;
}

CmacTag MbedTls::aes_cmac(ByteView key, ByteView data) {
  const auto bits = key_bits(key, "AES-CMAC");
  const auto type = bits == 128   ? MBEDTLS_CIPHER_AES_128_ECB
                    : bits == 192 ? MBEDTLS_CIPHER_AES_192_ECB
                                  : MBEDTLS_CIPHER_AES_256_ECB;
  CmacTag out{};
  mbed_check(mbedtls_cipher_cmac(mbedtls_cipher_info_from_type(type), key.data(), bits, nonnull(data), data.size(),
                                 out.data()),
             "mbedtls_cipher_cmac");
  return out;
}

Bytes MbedTls::aes_cbc_encrypt(ByteView key, ByteView iv, ByteView data) {
  const auto bits = key_bits(key, "AES-CBC");
  require_blocks(data, "AES-CBC");
  if (iv.size() != kBlock) throw std::invalid_argument("AES-CBC: IV must be 16 bytes");
  Aes aes;
  mbed_check(mbedtls_aes_setkey_enc(aes.get(), key.data(), bits), "mbedtls_aes_setkey_enc");
  std::uint8_t chain[kBlock];
  std::memcpy(chain, iv.data(), kBlock);
  Bytes out(data.size());
  mbed_check(mbedtls_aes_crypt_cbc(aes.get(), MBEDTLS_AES_ENCRYPT, data.size(), chain, data.data(), out.data()),
             "mbedtls_aes_crypt_cbc");
  return out;
}

Bytes MbedTls::aes_cbc_decrypt(ByteView key, ByteView iv, ByteView data) {
  const auto bits = key_bits(key, "AES-CBC");
  require_blocks(data, "AES-CBC");
  if (iv.size() != kBlock) throw std::invalid_argument("AES-CBC: IV must be 16 bytes");
  Aes aes;
  mbed_check(mbedtls_aes_setkey_dec(aes.get(), key.data(), bits), "mbedtls_aes_setkey_dec");
  std::uint8_t chain[kBlock];
  std::memcpy(chain, iv.data(), kBlock);
  Bytes out(data.size());
  mbed_check(mbedtls_aes_crypt_cbc(aes.get(), MBEDTLS_AES_DECRYPT, data.size(), chain, data.data(), out.data()),
             "mbedtls_aes_crypt_cbc");
  return out;
}

Bytes MbedTls::aes_ecb_encrypt(ByteView key, ByteView data) {
  const auto bits = key_bits(key, "AES-ECB");
  require_blocks(data, "AES-ECB");
  Aes aes;
  mbed_check(mbedtls_aes_setkey_enc(aes.get(), key.data(), bits), "mbedtls_aes_setkey_enc");
  Bytes out(data.size());
  for (std::size_t off = 0; off < data.size(); off += kBlock) {
    mbed_check(mbedtls_aes_crypt_ecb(aes.get(), MBEDTLS_AES_ENCRYPT, data.data() + off, out.data() + off),
               "mbedtls_aes_crypt_ecb");
  }
  return out;
}

void MbedTls::random_bytes(std::span<std::uint8_t> out) {
  // CTR_DRBG hands out at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes per call.
  for (std::size_t off = 0; off < out.size(); off += MBEDTLS_CTR_DRBG_MAX_REQUEST) {
    const auto n = std::min<std::size_t>(MBEDTLS_CTR_DRBG_MAX_REQUEST, out.size() - off);
    mbed_check(mbedtls_ctr_drbg_random(thread_rng().drbg.get(), out.data() + off, n), "mbedtls_ctr_drbg_random");
  }
}

bool MbedTls::equal_ct(ByteView a, ByteView b) noexcept {
  return a.size() == b.size() && mbedtls_ct_memcmp(a.data(), b.data(), a.size()) == 0;
}

// --- keys ---------------------------------------------------------------------------------

MbedTls::PrivateKey::PrivateKey(std::unique_ptr<KeyPairState> state) : state_(std::move(state)) {}
MbedTls::PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
MbedTls::PrivateKey& MbedTls::PrivateKey::operator=(PrivateKey&&) noexcept = default;
MbedTls::PrivateKey::~PrivateKey() = default;  // mbedtls_ecp_keypair_free zeroizes d

MbedTls::PrivateKey MbedTls::PrivateKey::generate() {
  auto state = std::make_unique<KeyPairState>();
  auto* kp = state->keypair.get();
  mbed_check(mbedtls_ecp_gen_keypair(&kp->grp, &kp->d, &kp->Q, rng_callback, nullptr), "mbedtls_ecp_gen_keypair");
  return PrivateKey(std::move(state));
}

MbedTls::PrivateKey MbedTls::PrivateKey::from_scalar(ByteView scalar) {
  if (scalar.size() != 32) throw std::invalid_argument("P-256 private scalar must be 32 bytes");
  auto state = std::make_unique<KeyPairState>();
  auto* kp = state->keypair.get();
  mbed_check(mbedtls_mpi_read_binary(&kp->d, scalar.data(), scalar.size()), "mbedtls_mpi_read_binary");
  if (mbedtls_ecp_check_privkey(&kp->grp, &kp->d) != 0) {
    throw std::invalid_argument("P-256 private scalar is out of range");
  }
  mbed_check(mbedtls_ecp_mul(&kp->grp, &kp->Q, &kp->d, &kp->grp.G, rng_callback, nullptr), "mbedtls_ecp_mul");
  return PrivateKey(std::move(state));
}

EcPublicKey MbedTls::PrivateKey::public_key() const {
  const auto* kp = state_->keypair.get();
  std::uint8_t buf[EcPublicKey::kSize];
  std::size_t len = 0;
  mbed_check(mbedtls_ecp_point_write_binary(&kp->grp, &kp->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &len, buf, sizeof buf),
             "mbedtls_ecp_point_write_binary");
  return EcPublicKey::from_uncompressed(ByteView(buf, len));
}

SecretBytes MbedTls::PrivateKey::scalar() const {
  SecretBytes out(32);
  mbed_check(mbedtls_mpi_write_binary(&state_->keypair.get()->d, out.data(), 32), "mbedtls_mpi_write_binary");
  return out;
}

EcSignature MbedTls::PrivateKey::sign(ByteView message) const {
  const auto digest = sha256(message);
  auto* kp = state_->keypair.get();
  Mpi r, s;
  mbed_check(mbedtls_ecdsa_sign_det_ext(&kp->grp, r.get(), s.get(), &kp->d, digest.data(), digest.size(),
                                        MBEDTLS_MD_SHA256, rng_callback, nullptr),
             "mbedtls_ecdsa_sign_det_ext");
  EcSignature out{};
  mbed_check(mbedtls_mpi_write_binary(r.get(), out.data(), 32), "mbedtls_mpi_write_binary(r)");
  mbed_check(mbedtls_mpi_write_binary(s.get(), out.data() + 32, 32), "mbedtls_mpi_write_binary(s)");
  return out;
}

MbedTls::VerifyKey::VerifyKey(std::unique_ptr<KeyPairState> state, const EcPublicKey& point)
    : state_(std::move(state)), point_(point) {}
MbedTls::VerifyKey::VerifyKey(VerifyKey&&) noexcept = default;
MbedTls::VerifyKey& MbedTls::VerifyKey::operator=(VerifyKey&&) noexcept = default;
MbedTls::VerifyKey::~VerifyKey() = default;

MbedTls::VerifyKey MbedTls::VerifyKey::parse(const EcPublicKey& point) {
  auto state = std::make_unique<KeyPairState>();
  auto* kp = state->keypair.get();
  mbed_check(mbedtls_ecp_point_read_binary(&kp->grp, &kp->Q, point.bytes().data(), point.bytes().size()),
             "mbedtls_ecp_point_read_binary");
  mbed_check(mbedtls_ecp_check_pubkey(&kp->grp, &kp->Q), "mbedtls_ecp_check_pubkey (point not on P-256)");
  return VerifyKey(std::move(state), point);
}

bool MbedTls::verify(const VerifyKey& key, ByteView message, const EcSignature& signature) {
  const auto digest = sha256(message);
  Mpi r, s;
  mbed_check(mbedtls_mpi_read_binary(r.get(), signature.data(), 32), "mbedtls_mpi_read_binary(r)");
  mbed_check(mbedtls_mpi_read_binary(s.get(), signature.data() + 32, 32), "mbedtls_mpi_read_binary(s)");
  // mbedtls_ecdsa_verify takes a non-const group (it may cache precomputation); the state is
  // owned by this VerifyKey and not shared across threads.
  auto* kp = const_cast<mbedtls_ecp_keypair*>(key.state().keypair.get());
  return mbedtls_ecdsa_verify(&kp->grp, digest.data(), digest.size(), &kp->Q, r.get(), s.get()) == 0;
}

bool MbedTls::verify(const EcPublicKey& key, ByteView message, const EcSignature& signature) {
  return verify(VerifyKey::parse(key), message, signature);
}

}  // namespace skillcard::crypto
