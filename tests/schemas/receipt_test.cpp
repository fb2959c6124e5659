// Receipt: round trip, size, content type, refusals.
#include "skillcard/schemas/receipt.hpp"

#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "skillcard/crypto/mbedtls.hpp"

using namespace skillcard;
using namespace skillcard::schemas;
using namespace skillcard::schemas::test;

TEST(Receipt, CardSignsServiceVerifies) {
  // The card signs with mbedTLS; the service verifies with OpenSSL.
  const auto card_key = crypto::MbedTls::PrivateKey::generate();
  const auto kid = crypto::kid_of<crypto::MbedTls>(card_key.public_key());
  const auto receipt = sign_receipt(sample_receipt(), kid, [&](ByteView tbs) { return card_key.sign(tbs); });
  const auto decoded = decode_receipt(receipt);
  EXPECT_EQ(decoded.claims, sample_receipt());
  EXPECT_EQ(decoded.claims.nonce_kind(), NonceKind::Server);
  EXPECT_EQ(decoded.kid, kid);
  EXPECT_TRUE(decoded.envelope.verify(verifier(card_key.public_key())).ok());
  EXPECT_EQ(decoded.envelope.content_type(), ContentType{kReceiptContentType});
  EXPECT_LE(receipt.size(), 150u);  // the card keeps 32 of these
  // Deterministic signatures on the card: the same receipt twice is byte-identical (GET RECEIPT).
  EXPECT_EQ(sign_receipt(sample_receipt(), kid, [&](ByteView tbs) { return card_key.sign(tbs); }), receipt);
}

TEST(Receipt, Refusals) {
  auto c = sample_receipt();
  c.nonce[0] = 0x03;
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  c = sample_receipt();
  c.counter = 0;
  EXPECT_THROW(encode_payload(c), std::invalid_argument);

  const auto key = crypto::OpenSsl::PrivateKey::generate();
  const auto kid = crypto::kid_of<crypto::OpenSsl>(key.public_key());
  // A receipt must carry the receipt content type; a token without it is not a receipt.
  const auto no_type = CoseSign1::sign(kid, std::nullopt, encode_payload(sample_receipt()), signer(key));
  EXPECT_EQ(refusal_kind([&] { decode_receipt(no_type); }), DecodeErrorKind::ProfileViolation);
  // A voucher token's payload is no receipt: the receipt's own fields are missing.
  const auto receipt = sign_receipt(sample_receipt(), kid, signer(key));
  EXPECT_EQ(refusal_kind([&] { decode_receipt_claims(encode_payload(sample_voucher())); }),
            DecodeErrorKind::MissingField);
  EXPECT_NO_THROW(decode_receipt(receipt));
}
