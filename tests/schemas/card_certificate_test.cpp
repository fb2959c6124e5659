// Card certificate: round trip, size (it must fit the card's identity area), refusals.
#include "skillcard/schemas/card_certificate.hpp"

#include <gtest/gtest.h>

#include "fixtures.hpp"

using namespace skillcard;
using namespace skillcard::schemas;
using namespace skillcard::schemas::test;
using skillcard::crypto::OpenSsl;

TEST(CardCertificate, RoundTripAndKeysDecompress) {
  const auto ca = OpenSsl::PrivateKey::generate();
  const auto receipt_key = OpenSsl::PrivateKey::generate().public_key();
  const auto auth_key = OpenSsl::PrivateKey::generate().public_key();
  const auto claims = sample_card_certificate(receipt_key, auth_key);
  const auto cert = sign_card_certificate(claims, crypto::kid_of<OpenSsl>(ca.public_key()), signer(ca));
  EXPECT_EQ(cert.size(), 194u);  // docs/design.md "Card certificate"
  const auto decoded = decode_card_certificate(cert);
  EXPECT_EQ(decoded.claims, claims);
  EXPECT_TRUE(decoded.envelope.verify(verifier(ca.public_key())).ok());
  EXPECT_EQ(OpenSsl::decompress(decoded.claims.receipt_key), receipt_key);
  EXPECT_EQ(OpenSsl::decompress(decoded.claims.auth_key), auth_key);
}

TEST(CardCertificate, Refusals) {
  const auto k = OpenSsl::PrivateKey::generate().public_key();
  const auto k2 = OpenSsl::PrivateKey::generate().public_key();
  auto c = sample_card_certificate(k, k2);
  c.card_number = "42010000A1";
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  c = sample_card_certificate(k, k);  // one key for both purposes defeats domain separation
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  c = sample_card_certificate(k, k2);
  c.receipt_key[0] = 0x04;
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  c = sample_card_certificate(k, k2);
  c.not_after = c.not_before;
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  EXPECT_EQ(refusal_kind([&] { decode_card_certificate(Bytes(225, 0)); }), DecodeErrorKind::TooLarge);
}
