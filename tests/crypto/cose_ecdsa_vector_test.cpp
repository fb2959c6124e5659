// The COSE ECDSA known answer (../shared/vectors/cose/ecdsa-sig-01.json) at the crypto layer:
// the published signature verifies over the published Sig_structure with the JWK public key,
// on both backends, and the JWK private scalar yields that public key.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/openssl.hpp"

using namespace skillcard;
using namespace skillcard::crypto;

namespace {

// base64url without padding (RFC 7515 §2), decoded with OpenSSL's base64 after mapping back.
Bytes b64url(std::string s) {
  for (auto& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4 != 0) s.push_back('=');
  Bytes out(s.size() / 4 * 3);
  const int n =
      EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) throw std::runtime_error("bad base64url");
  const auto pad = static_cast<std::size_t>(std::count(s.end() - 2, s.end(), '='));
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

struct Vector {
  EcPublicKey pub;
  Bytes d;
  Bytes to_be_signed;
  EcSignature sig{};
};

Vector load() {
  std::ifstream in(std::string(SKILLCARD_SHARED_DIR) + "/vectors/cose/ecdsa-sig-01.json");
  if (!in) throw std::runtime_error("cannot open ecdsa-sig-01.json");
  const auto j = nlohmann::json::parse(in);
  const auto& key = j["input"]["sign0"]["key"];
  Bytes point{0x04};
  const auto x = b64url(key["x"]);
  const auto y = b64url(key["y"]);
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());
  Vector v{EcPublicKey::from_uncompressed(point),
           b64url(key["d"]),
           from_hex(j["intermediates"]["ToBeSign_hex"].get<std::string>()),
           {}};
  // The signature is the last 64 bytes of the COSE_Sign1 encoding (a 64-byte bstr at the end).
  const auto cose = from_hex(j["output"]["cbor"].get<std::string>());
  std::copy(cose.end() - 64, cose.end(), v.sig.begin());
  return v;
}

}  // namespace

TEST(CoseEcdsaVector, PublishedSignatureVerifiesOnBothBackends) {
  const auto v = load();
  EXPECT_TRUE(OpenSsl::verify(v.pub, v.to_be_signed, v.sig));
  EXPECT_TRUE(MbedTls::verify(v.pub, v.to_be_signed, v.sig));
  auto altered = v.to_be_signed;
  altered.back() ^= 0x01;
  EXPECT_FALSE(OpenSsl::verify(v.pub, altered, v.sig));
  EXPECT_FALSE(MbedTls::verify(v.pub, altered, v.sig));
}

TEST(CoseEcdsaVector, PrivateScalarMatchesPublicKey) {
  const auto v = load();
  EXPECT_EQ(OpenSsl::PrivateKey::from_scalar(v.d).public_key(), v.pub);
  EXPECT_EQ(MbedTls::PrivateKey::from_scalar(v.d).public_key(), v.pub);
  // And a fresh signature by the vector key verifies under its published public key.
  const auto sig = MbedTls::PrivateKey::from_scalar(v.d).sign(v.to_be_signed);
  EXPECT_TRUE(OpenSsl::verify(v.pub, v.to_be_signed, sig));
}
