// Known-answer tests run against both crypto backends (typed tests): SHA-256, HMAC, HKDF,
// AES-CMAC, AES-CBC/ECB, RNG, constant-time compare, ECDSA P-256.
#include <gtest/gtest.h>

#include <set>

#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/openssl.hpp"

using namespace skillcard;
using namespace skillcard::crypto;

namespace {

template <class B>
class Backend : public ::testing::Test {};
using Backends = ::testing::Types<OpenSsl, MbedTls>;
class BackendName {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, OpenSsl> ? "OpenSsl" : "MbedTls";
  }
};
TYPED_TEST_SUITE(Backend, Backends, BackendName);

template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& a) {
  return to_hex(ByteView(a));
}

}  // namespace

// FIPS 180-2 appendix B.1 and the empty string.
TYPED_TEST(Backend, Sha256KnownAnswers) {
  EXPECT_EQ(hex(TypeParam::sha256(as_bytes("abc"))),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  EXPECT_EQ(hex(TypeParam::sha256({})), "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
}

// RFC 4231 test case 2.
TYPED_TEST(Backend, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(hex(TypeParam::hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))),
            "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843");
}

// RFC 5869 test case 1.
TYPED_TEST(Backend, HkdfRfc5869Case1) {
  const Bytes ikm(22, 0x0b);
  const auto salt = from_hex("000102030405060708090a0b0c");
  const auto info = from_hex("f0f1f2f3f4f5f6f7f8f9");
  const auto okm = TypeParam::hkdf_sha256(ikm, salt, info, 42);
  EXPECT_EQ(to_hex(okm.view()), "3CB25F25FAACD57A90434F64D0362F2A2D2D0A90CF1A5A4C5DB02D56ECC4C5BF34007208D5B887185865");
  EXPECT_THROW(TypeParam::hkdf_sha256(ikm, salt, info, 0), std::invalid_argument);
}

// RFC 4493 §4 (AES-128) and NIST SP 800-38B D.3 (AES-256) examples.
TYPED_TEST(Backend, AesCmacKnownAnswers) {
  const auto k128 = from_hex("2b7e151628aed2a6abf7158809cf4f3c");
  EXPECT_EQ(hex(TypeParam::aes_cmac(k128, {})), "BB1D6929E95937287FA37D129B756746");
  EXPECT_EQ(hex(TypeParam::aes_cmac(k128, from_hex("6bc1bee22e409f96e93d7e117393172a"))),
            "070A16B46B4D4144F79BDD9DD04A287C");
  const auto m40 = from_hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411");
  EXPECT_EQ(hex(TypeParam::aes_cmac(k128, m40)), "DFA66747DE9AE63030CA32611497C827");
  const auto k256 = from_hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  EXPECT_EQ(hex(TypeParam::aes_cmac(k256, {})), "028962F61B7BF89EFC6B551F4667D983");
  EXPECT_THROW(TypeParam::aes_cmac(from_hex("00112233"), {}), std::invalid_argument);
}

// NIST SP 800-38A F.1.1 (ECB-AES128) and F.2.1/F.2.2 (CBC-AES128).
TYPED_TEST(Backend, AesKnownAnswers) {
  const auto key = from_hex("2b7e151628aed2a6abf7158809cf4f3c");
  const auto iv = from_hex("000102030405060708090a0b0c0d0e0f");
  const auto pt = from_hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
  EXPECT_EQ(to_hex(TypeParam::aes_ecb_encrypt(key, pt)),
            "3AD77BB40D7A3660A89ECAF32466EF97F5D3D58503B9699DE785895A96FDBAAF");
  const auto ct = TypeParam::aes_cbc_encrypt(key, iv, pt);
  EXPECT_EQ(to_hex(ct), "7649ABAC8119B246CEE98E9B12E9197D5086CB9B507219EE95DB113A917678B2");
  EXPECT_EQ(TypeParam::aes_cbc_decrypt(key, iv, ct), pt);
  EXPECT_THROW(TypeParam::aes_cbc_encrypt(key, iv, from_hex("00")), std::invalid_argument);
  EXPECT_THROW(TypeParam::aes_cbc_encrypt(key, from_hex("00"), pt), std::invalid_argument);
}

TYPED_TEST(Backend, RandomBytesDiffer) {
  std::set<Bytes> seen;
  for (int i = 0; i < 16; ++i) {
    Bytes b(32);
    TypeParam::random_bytes(b);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 16u);
  Bytes big(5000);  // more than one CTR_DRBG request
  TypeParam::random_bytes(big);
  EXPECT_NE(std::count(big.begin(), big.end(), 0), 5000);
}

TYPED_TEST(Backend, ConstantTimeEqual) {
  EXPECT_TRUE(TypeParam::equal_ct(from_hex("010203"), from_hex("010203")));
  EXPECT_FALSE(TypeParam::equal_ct(from_hex("010203"), from_hex("010204")));
  EXPECT_FALSE(TypeParam::equal_ct(from_hex("010203"), from_hex("0102")));
  EXPECT_TRUE(TypeParam::equal_ct({}, {}));
}

TYPED_TEST(Backend, EcdsaSignVerifyRoundTrip) {
  const auto key = TypeParam::PrivateKey::generate();
  const auto msg = as_bytes("voucher 0000000000000001");
  const auto sig = key.sign(msg);
  EXPECT_TRUE(TypeParam::verify(key.public_key(), msg, sig));
  EXPECT_FALSE(TypeParam::verify(key.public_key(), as_bytes("voucher 0000000000000002"), sig));
  auto bad = sig;
  bad[63] ^= 0x01;
  EXPECT_FALSE(TypeParam::verify(key.public_key(), msg, bad));
  const auto other = TypeParam::PrivateKey::generate();
  EXPECT_FALSE(TypeParam::verify(other.public_key(), msg, sig));
}

TYPED_TEST(Backend, EcdsaRejectsZeroAndOversizedSignatureComponents) {
  const auto key = TypeParam::PrivateKey::generate();
  const auto msg = as_bytes("m");
  EcSignature zero{};
  EXPECT_FALSE(TypeParam::verify(key.public_key(), msg, zero));
  EcSignature ff;
  ff.fill(0xFF);  // r, s >= n
  EXPECT_FALSE(TypeParam::verify(key.public_key(), msg, ff));
}

TYPED_TEST(Backend, ScalarRoundTripAndRange) {
  const auto key = TypeParam::PrivateKey::generate();
  const auto again = TypeParam::PrivateKey::from_scalar(key.scalar().view());
  EXPECT_EQ(again.public_key(), key.public_key());
  EXPECT_THROW(TypeParam::PrivateKey::from_scalar(Bytes(32, 0)), std::invalid_argument);
  // The group order n itself is out of range.
  const auto n = from_hex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
  EXPECT_THROW(TypeParam::PrivateKey::from_scalar(n), std::invalid_argument);
  EXPECT_THROW(TypeParam::PrivateKey::from_scalar(Bytes(31, 1)), std::invalid_argument);
}

TYPED_TEST(Backend, OffCurvePointIsRefused) {
  const auto key = TypeParam::PrivateKey::generate();
  const auto pub = key.public_key();
  Bytes point(pub.bytes().begin(), pub.bytes().end());
  point[64] ^= 0x01;  // y no longer matches x
  const auto off = EcPublicKey::from_uncompressed(point);
  EXPECT_THROW(TypeParam::VerifyKey::parse(off), CryptoError);
}

TYPED_TEST(Backend, KidIsSha256PrefixOfSpki) {
  const auto key = TypeParam::PrivateKey::generate();
  const auto kid = kid_of<TypeParam>(key.public_key());
  const auto digest = TypeParam::sha256(key.public_key().spki_der());
  EXPECT_TRUE(std::equal(kid.begin(), kid.end(), digest.begin()));
  EXPECT_EQ(key.public_key().spki_der().size(), 91u);
}

TEST(EcPublicKey, RefusesBadEncodings) {
  EXPECT_THROW(EcPublicKey::from_uncompressed(Bytes(64, 4)), std::invalid_argument);
  Bytes compressed(65, 0);
  compressed[0] = 0x02;
  EXPECT_THROW(EcPublicKey::from_uncompressed(compressed), std::invalid_argument);
}

TEST(SecretBytes, MoveLeavesSourceEmpty) {
  SecretBytes a(from_hex("00112233"));
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_EQ(to_hex(b.view()), "00112233");
  auto c = b.clone();
  EXPECT_EQ(to_hex(c.view()), "00112233");
}

TEST(SecretBytes, WipeZeroesMemory) {
  std::array<std::uint8_t, 8> buf{1, 2, 3, 4, 5, 6, 7, 8};
  secure_wipe(buf.data(), buf.size());
  EXPECT_EQ(buf, (std::array<std::uint8_t, 8>{}));
}

// OpenSSL verifies DER; our r || s to DER conversion must get minimal INTEGERs right, which
// matters for the 1 in 128 signatures whose r or s starts with a zero byte.
TEST(OpenSslVerify, SignaturesWithLeadingZeroBytesVerify) {
  const auto key = MbedTls::PrivateKey::generate();
  int leading_zero = 0;
  for (int i = 0; i < 5000 && leading_zero < 3; ++i) {
    const std::string msg = "message " + std::to_string(i);
    const auto sig = key.sign(as_bytes(msg));
    if (sig[0] == 0 || sig[32] == 0) ++leading_zero;
    ASSERT_TRUE(OpenSsl::verify(key.public_key(), as_bytes(msg), sig)) << i;
  }
  EXPECT_EQ(leading_zero, 3);
}

TEST(EcPublicKey, CompressDecompressRoundTrip) {
  for (int i = 0; i < 8; ++i) {  // both parities of Y turn up
    const auto key = OpenSsl::PrivateKey::generate().public_key();
    const auto c = key.compressed();
    EXPECT_EQ(c[0], 0x02 | (key.bytes()[64] & 1));
    EXPECT_EQ(OpenSsl::decompress(c), key);
  }
  auto bad = OpenSsl::PrivateKey::generate().public_key().compressed();
  bad[0] = 0x04;
  EXPECT_THROW(OpenSsl::decompress(bad), std::invalid_argument);
  // x = 2^256 - 1 is not even a field element (it exceeds p), so no point has it.
  std::array<std::uint8_t, 33> beyond_p{};
  beyond_p.fill(0xFF);
  beyond_p[0] = 0x02;
  EXPECT_THROW(OpenSsl::decompress(beyond_p), std::invalid_argument);
}
