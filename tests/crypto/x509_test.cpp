// X.509: the province root, the terminal CA it issues, and terminal certificates with role and
// site in their subject; the chain is also checked by OpenSSL's own verifier, independently of
// our reading code.
#include "skillcard/crypto/x509.hpp"

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

using namespace skillcard;
using namespace skillcard::crypto;

namespace {

CertificateSpec ca_spec(const std::string& name, int days, int path_length) {
  CertificateSpec spec;
  spec.subject = {name, "skillcard", "", "420000", ""};
  spec.usage = CertificateUsage::Ca;
  spec.validity = std::chrono::days(days);
  spec.path_length = path_length;
  return spec;
}

CertificateSpec terminal_spec(const std::string& id, const std::string& role, const std::string& site) {
  CertificateSpec spec;
  spec.subject = {id, "skillcard", role, "420100", site};
  spec.usage = CertificateUsage::TlsClient;
  return spec;
}

struct Pki {
  OpenSsl::PrivateKey root_key = OpenSsl::PrivateKey::generate();
  Certificate root;
  OpenSsl::PrivateKey ca_key = OpenSsl::PrivateKey::generate();
  Certificate ca;
  Pki()
      : root(Certificate::issue(ca_spec("skillcard province root", 3650, 1), root_key.public_key(), root_key, nullptr)),
        ca(Certificate::issue(ca_spec("skillcard terminal CA", 1825, 0), ca_key.public_key(), root_key, &root)) {}
};

bool openssl_verifies(const Certificate& leaf, const Certificate& ca, const Certificate& root) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.native());
  STACK_OF(X509)* chain = sk_X509_new_null();
  sk_X509_push(chain, ca.native());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf.native(), chain);
  const bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  sk_X509_free(chain);
  X509_STORE_free(store);
  return ok;
}

}  // namespace

TEST(Certificate, RootIsSelfSignedCa) {
  Pki pki;
  EXPECT_TRUE(pki.root.is_ca());
  EXPECT_TRUE(pki.root.signed_by(pki.root_key.public_key()));
  EXPECT_EQ(pki.root.subject(), pki.root.issuer());
  EXPECT_EQ(pki.root.public_key(), pki.root_key.public_key());
  EXPECT_GT(pki.root.not_after() - pki.root.not_before(), std::chrono::days(3649));
}

TEST(Certificate, TerminalCertificateNamesRoleAndSite) {
  Pki pki;
  const auto key = OpenSsl::PrivateKey::generate();
  const auto cert = Certificate::issue(terminal_spec("T0001", "site", "10001"), key.public_key(), pki.ca_key, &pki.ca);
  const auto subject = cert.subject();
  EXPECT_EQ(subject.common_name, "T0001");
  EXPECT_EQ(subject.organisational_unit, "site");
  EXPECT_EQ(subject.locality, "420100");
  EXPECT_EQ(subject.serial_number, "10001");
  EXPECT_EQ(cert.issuer().common_name, "skillcard terminal CA");
  EXPECT_FALSE(cert.is_ca());
  EXPECT_TRUE(cert.signed_by(pki.ca_key.public_key()));
  EXPECT_FALSE(cert.signed_by(pki.root_key.public_key()));
  EXPECT_TRUE(openssl_verifies(cert, pki.ca, pki.root));
}

// A subject naming a role twice (OU=kiosk, OU=operator) is not read as whichever comes first.
TEST(Certificate, ASubjectNamingAnAttributeTwiceIsRefused) {
  Pki pki;
  const auto key = OpenSsl::PrivateKey::generate();
  const auto leaf = Certificate::issue(terminal_spec("K0001", "kiosk", ""), key.public_key(), pki.ca_key, &pki.ca);
  EXPECT_EQ(leaf.subject().organisational_unit, "kiosk");
  static const unsigned char kOperator[] = "operator";
  ASSERT_EQ(X509_NAME_add_entry_by_NID(X509_get_subject_name(leaf.native()), NID_organizationalUnitName, MBSTRING_UTF8,
                                       kOperator, -1, -1, 0),
            1);
  try {
    (void)leaf.subject();
    ADD_FAILURE() << "a subject with two OUs was read";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("OU more than once"), std::string::npos) << e.what();
  }
}

TEST(Certificate, ForeignChainDoesNotVerify) {
  Pki pki, other;
  const auto key = OpenSsl::PrivateKey::generate();
  const auto cert = Certificate::issue(terminal_spec("T0002", "kiosk", ""), key.public_key(), other.ca_key, &other.ca);
  EXPECT_FALSE(openssl_verifies(cert, pki.ca, pki.root));
}

TEST(Certificate, PemRoundTripAndBadPem) {
  Pki pki;
  const auto again = Certificate::from_pem(pki.ca.to_pem());
  EXPECT_EQ(again.subject(), pki.ca.subject());
  EXPECT_EQ(again.public_key(), pki.ca_key.public_key());
  EXPECT_THROW(Certificate::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), CryptoError);
}
