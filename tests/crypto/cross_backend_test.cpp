// Cross-backend properties (rapidcheck): what one backend signs, MACs, encrypts or derives,
// the other verifies, reproduces or decrypts. The card (mbedTLS) and the host (OpenSSL) must
// never disagree.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/scp03.hpp"

using namespace skillcard;
using namespace skillcard::crypto;

namespace {
rc::Gen<Bytes> bytes_of(std::size_t n) { return rc::gen::container<Bytes>(n, rc::gen::arbitrary<std::uint8_t>()); }
rc::Gen<Bytes> aes_key() { return rc::gen::mapcat(rc::gen::element<std::size_t>(16, 24, 32), bytes_of); }
}  // namespace

RC_GTEST_PROP(CrossBackend, CardSignsHostVerifies, (const Bytes& message)) {
  static const auto card_key = MbedTls::PrivateKey::generate();
  const auto sig = card_key.sign(message);
  RC_ASSERT(OpenSsl::verify(card_key.public_key(), message, sig));
  auto tampered = message;
  tampered.push_back(0x00);
  RC_ASSERT_FALSE(OpenSsl::verify(card_key.public_key(), tampered, sig));
}

RC_GTEST_PROP(CrossBackend, HostSignsCardVerifies, (const Bytes& message)) {
  static const auto host_key = OpenSsl::PrivateKey::generate();
  const auto sig = host_key.sign(message);
  RC_ASSERT(MbedTls::verify(host_key.public_key(), message, sig));
}

RC_GTEST_PROP(CrossBackend, KeysMoveBetweenBackends, ()) {
  const auto host = OpenSsl::PrivateKey::generate();
  const auto card = MbedTls::PrivateKey::from_scalar(host.scalar().view());
  RC_ASSERT(card.public_key() == host.public_key());
  RC_ASSERT(kid_of<MbedTls>(card.public_key()) == kid_of<OpenSsl>(host.public_key()));
}

RC_GTEST_PROP(CrossBackend, CmacAgrees, ()) {
  const auto key = *aes_key();
  const auto data = *rc::gen::arbitrary<Bytes>();
  RC_ASSERT(OpenSsl::aes_cmac(key, data) == MbedTls::aes_cmac(key, data));
}

RC_GTEST_PROP(CrossBackend, CbcEncryptsAcross, ()) {
  const auto key = *aes_key();
  const auto iv = *bytes_of(16);
  const auto blocks = *rc::gen::inRange<std::size_t>(0, 8);
  const auto plain = *bytes_of(blocks * 16);
  const auto ct = MbedTls::aes_cbc_encrypt(key, iv, plain);
  RC_ASSERT(ct == OpenSsl::aes_cbc_encrypt(key, iv, plain));
  RC_ASSERT(OpenSsl::aes_cbc_decrypt(key, iv, ct) == plain);
  RC_ASSERT(MbedTls::aes_ecb_encrypt(key, plain) == OpenSsl::aes_ecb_encrypt(key, plain));
}

RC_GTEST_PROP(CrossBackend, HashesAndKdfsAgree, (const Bytes& a, const Bytes& b)) {
  RC_ASSERT(OpenSsl::sha256(a) == MbedTls::sha256(a));
  RC_ASSERT(OpenSsl::hmac_sha256(a, b) == MbedTls::hmac_sha256(a, b));
  const auto len = *rc::gen::inRange<std::size_t>(1, 100);
  RC_ASSERT(to_hex(OpenSsl::hkdf_sha256(a, b, as_bytes("info"), len).view()) ==
            to_hex(MbedTls::hkdf_sha256(a, b, as_bytes("info"), len).view()));
}

RC_GTEST_PROP(CrossBackend, Scp03KdfAgrees, ()) {
  const auto key = *aes_key();
  const auto context = *rc::gen::arbitrary<Bytes>();
  const auto bits = static_cast<std::uint16_t>(8 * *rc::gen::inRange(1, 64));
  RC_ASSERT(to_hex(scp03::kdf<OpenSsl>(key, scp03::Constant::SEnc, bits, context).view()) ==
            to_hex(scp03::kdf<MbedTls>(key, scp03::Constant::SEnc, bits, context).view()));
}
