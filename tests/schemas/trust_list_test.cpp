// Trust list: round trip, kid integrity, refusals.
#include "skillcard/schemas/trust_list.hpp"

#include <gtest/gtest.h>

#include "fixtures.hpp"

using namespace skillcard;
using namespace skillcard::schemas;
using namespace skillcard::schemas::test;
using skillcard::crypto::OpenSsl;

namespace {
TrustListClaims sample_list(std::initializer_list<const OpenSsl::PrivateKey*> keys) {
  TrustListClaims c{7, kNow, kNow + 90 * 86400, {}};
  auto role = TrustRole::Voucher;
  for (const auto* k : keys) {
    c.entries[crypto::kid_of<OpenSsl>(k->public_key())] = {k->public_key().spki_der(), role, 420100, kNow,
                                                           kNow + 365 * 86400};
    role = TrustRole::CardCa;
  }
  return c;
}
}  // namespace

TEST(TrustList, RoundTripAndKidIntegrity) {
  const auto root = OpenSsl::PrivateKey::generate();
  const auto a = OpenSsl::PrivateKey::generate();
  const auto b = OpenSsl::PrivateKey::generate();
  const auto claims = sample_list({&a, &b});
  const auto list = sign_trust_list(claims, crypto::kid_of<OpenSsl>(root.public_key()), signer(root));
  const auto decoded = decode_trust_list(list);
  EXPECT_EQ(decoded.claims, claims);
  EXPECT_TRUE(decoded.envelope.verify(verifier(root.public_key())).ok());
  EXPECT_FALSE(first_kid_mismatch<OpenSsl>(decoded.claims).has_value());

  // An entry filed under another key's kid is caught.
  auto forged = claims;
  auto entry = forged.entries.begin()->second;
  forged.entries.erase(forged.entries.begin());
  forged.entries[crypto::Kid{1, 2, 3, 4, 5, 6, 7, 8}] = entry;
  EXPECT_EQ(first_kid_mismatch<OpenSsl>(forged), (crypto::Kid{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(TrustList, Refusals) {
  const auto a = OpenSsl::PrivateKey::generate();
  auto c = sample_list({&a});
  c.entries.begin()->second.role = static_cast<TrustRole>(9);
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  c = sample_list({&a});
  c.entries.begin()->second.spki.pop_back();
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
  c = sample_list({});
  EXPECT_THROW(encode_payload(c), std::invalid_argument);  // an empty list trusts nobody
  c = sample_list({&a});
  c.next_update = c.issued_at;
  EXPECT_THROW(encode_payload(c), std::invalid_argument);
}
