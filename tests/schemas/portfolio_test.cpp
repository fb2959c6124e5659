// Certificate records and the portfolio digest: salted digests, capacity, refusals.
#include "skillcard/schemas/portfolio.hpp"

#include <gtest/gtest.h>

#include "fixtures.hpp"

using namespace skillcard;
using namespace skillcard::schemas;
using namespace skillcard::schemas::test;
using skillcard::crypto::OpenSsl;

TEST(CertificateRecord, RoundTripWithChineseText) {
  const auto r = sample_record();
  const auto bytes = encode(r);
  EXPECT_EQ(decode_certificate_record(bytes), r);
  EXPECT_LT(bytes.size(), 128u);
  // The salt makes two otherwise equal records digest differently (selective disclosure).
  auto other = r;
  other.salt = Bytes(16, 0x5A);
  EXPECT_NE(OpenSsl::sha256(encode(other)), OpenSsl::sha256(bytes));
}

TEST(CertificateRecord, Refusals) {
  auto r = sample_record();
  r.salt = Bytes(15, 1);
  EXPECT_THROW(encode(r), std::invalid_argument);
  r = sample_record();
  r.kind = static_cast<CertificateKind>(4);
  EXPECT_THROW(encode(r), std::invalid_argument);
  r = sample_record();
  r.issuer.clear();
  EXPECT_THROW(encode(r), std::invalid_argument);
  // Invalid UTF-8 in the issuer is refused by the decoder.
  auto bytes = encode(sample_record());
  const auto pos = to_hex(bytes).find("E6");  // first byte of the first Chinese character
  ASSERT_NE(pos, std::string::npos);
  bytes[pos / 2] = 0xFF;
  EXPECT_EQ(refusal_kind([&] { decode_certificate_record(bytes); }), DecodeErrorKind::Malformed);
}

// The encoder never writes what the decoder refuses: a record with invalid UTF-8 (a stray byte,
// a surrogate, an overlong form) is refused at encode, before its digest could be signed.
TEST(CertificateRecord, EncoderRefusesInvalidUtf8) {
  for (const std::string& bad : {std::string("\xFF"), std::string("\xED\xA0\x80"), std::string("\xC0\xAF")}) {
    auto r = sample_record();
    r.issuer = "武汉" + bad;
    EXPECT_THROW(encode(r), std::invalid_argument)
        << to_hex(ByteView(reinterpret_cast<const std::uint8_t*>(bad.data()), bad.size()));
    r = sample_record();
    r.number = bad;
    EXPECT_THROW(encode(r), std::invalid_argument);
  }
}

TEST(PortfolioDigest, ElevenDigestsFitTheCard) {
  const auto key = OpenSsl::PrivateKey::generate();
  PortfolioDigestClaims c{sample_voucher().holder, 3, {}, kNow, kNow + 3 * 365 * 86400ull};
  for (int i = 0; i < 11; ++i) {
    auto r = sample_record();
    r.number = "N" + std::to_string(i);
    c.digests.push_back(OpenSsl::sha256(encode(r)));
  }
  const auto digest = sign_portfolio_digest(c, crypto::kid_of<OpenSsl>(key.public_key()), signer(key));
  EXPECT_LE(digest.size(), 510u);
  const auto decoded = decode_portfolio_digest(digest);
  EXPECT_EQ(decoded.claims, c);
  EXPECT_TRUE(decoded.envelope.verify(verifier(key.public_key())).ok());
  c.digests.push_back(c.digests.front());
  EXPECT_THROW(encode_payload(c), std::invalid_argument);  // a twelfth does not fit
}

TEST(PortfolioDigest, CountMustMatchTheDigests) {
  // {2: ref, 4: exp, 6: iat, -1: 1, -40: 2, -41: [one digest], -42: 1}
  const std::string ref(32, 'A');
  const std::string digest(64, 'B');
  const auto payload = from_hex(
      "A7"
      "0250" +
      ref +
      "041A6B0BC000"
      "061A6B0BBF00"
      "2001"
      "382702"
      "382881"
      "5820" +
      digest + "382901");
  std::string message;
  EXPECT_EQ(refusal_kind([&] { decode_portfolio_digest_claims(payload); }, &message), DecodeErrorKind::OutOfRange);
  EXPECT_NE(message.find("says 2"), std::string::npos) << message;
}
