// skillcard-keytool end to end: the key set it creates, its file modes, its refusals, and the
// certificates it issues, checked with our readers and with OpenSSL's own chain verifier.
#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "skillcard/crypto/backend.hpp"
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/x509.hpp"
#include "skillcard/schemas/base64url.hpp"
#include "skillcard/schemas/cose.hpp"
#include "skillcard/schemas/trust_list.hpp"

using namespace skillcard;
using namespace skillcard::crypto;
namespace fs = std::filesystem;

namespace {

struct Run {
  int exit_code;
  std::string output;  // stdout and stderr together
};

Run keytool(const std::string& args) {
  const std::string cmd = std::string(SKILLCARD_KEYTOOL) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class Keytool : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("skillcard-keytool-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string keys() const { return (dir_ / "keys").string(); }
  fs::path dir_;
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

}  // namespace

TEST_F(Keytool, InitCreatesTheDocumentedKeySet) {
  const auto r = keytool("init --out " + keys() + " --bureau 420100 --bureau 420500");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path k = keys();
  for (const auto* name :
       {"province-root.key.pem", "terminal-ca.key.pem", "card-ca.key.pem", "portfolio-signer.key.pem",
        "audit-signer.key.pem", "voucher-signer-420100.key.pem", "voucher-signer-420500.key.pem", "master-keys.toml"}) {
    EXPECT_EQ(mode_of(k / name), 0600u) << name;
  }
  for (const auto* name : {"province-root.cert.pem", "terminal-ca.cert.pem", "card-ca.pub.pem", "kids.json"}) {
    EXPECT_EQ(mode_of(k / name), 0644u) << name;
  }
  // kids.json agrees with the keys on disk.
  const auto kids = nlohmann::json::parse(std::ifstream(k / "kids.json"));
  const auto card_ca = load_public_key(k / "card-ca.pub.pem");
  EXPECT_EQ(kids["card-ca"]["kid"], to_hex(ByteView(kid_of<OpenSsl>(card_ca.public_key()))));
  EXPECT_EQ(kids["voucher-signer-420500"]["role"], "voucher");
  EXPECT_EQ(load_private_key(k / "card-ca.key.pem").public_key(), card_ca.public_key());
  // The terminal CA chains to the province root.
  const auto root = Certificate::load(k / "province-root.cert.pem");
  const auto tca = Certificate::load(k / "terminal-ca.cert.pem");
  EXPECT_TRUE(root.is_ca());
  EXPECT_TRUE(tca.is_ca());
  EXPECT_TRUE(tca.signed_by(root.public_key()));
  EXPECT_EQ(root.subject().locality, "420000");
  // The master key file loads.
  EXPECT_NO_THROW(FileMasterKeyStore::load(k / "master-keys.toml"));
}

// init killed at any moment (kill -9, as a power cut stops it): the folder named --out is either
// absent or the whole key set, every key loading — never a half set that blocks the next run.
// What a killed run leaves is OUT.partial, which the next run names instead of writing.
TEST_F(Keytool, InitKilledAtAnyMomentLeavesNoHalfKeySet) {
  // How long a whole run takes on this build and machine: the kills are spread over 1.5 times it.
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(keytool("init --out " + (dir_ / "timed").string()).exit_code, 0);
  const auto whole_run = std::chrono::steady_clock::now() - started;
  int whole = 0, absent = 0;
  constexpr int kRuns = 24;
  for (int i = 0; i < kRuns; ++i) {
    const fs::path out = dir_ / ("keys-" + std::to_string(i));
    const pid_t child = ::fork();
    if (child == 0) {
      ::execl(SKILLCARD_KEYTOOL, SKILLCARD_KEYTOOL, "init", "--out", out.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ASSERT_GT(child, 0);
    std::this_thread::sleep_for(whole_run * 3 * i / (2 * kRuns));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!fs::exists(out)) {
      ++absent;
      const fs::path partial = out.string() + ".partial";
      if (fs::exists(partial)) {
        const auto r = keytool("init --out " + out.string());
        EXPECT_EQ(r.exit_code, 2) << r.output;
        EXPECT_NE(r.output.find("interrupted init"), std::string::npos) << r.output;
        EXPECT_FALSE(fs::exists(out));
        fs::remove_all(partial);
      }
      ASSERT_EQ(keytool("init --out " + out.string()).exit_code, 0);  // the next run makes it
    } else {
      ++whole;
    }
    for (const auto* name : {"province-root.key.pem", "terminal-ca.key.pem", "card-ca.key.pem",
                             "portfolio-signer.key.pem", "audit-signer.key.pem"}) {
      EXPECT_NO_THROW((void)load_private_key(out / name)) << i << " " << name;
    }
    EXPECT_NO_THROW((void)FileMasterKeyStore::load(out / "master-keys.toml")) << i;
    EXPECT_TRUE(nlohmann::json::parse(std::ifstream(out / "kids.json")).contains("card-ca")) << i;
  }
  // Not vacuous: some runs were stopped half-way, and some finished.
  EXPECT_GT(absent, 0);
  EXPECT_GT(whole, 0);
}

TEST_F(Keytool, RoleKeysWritesOneRolesMasterOnlyAndNeverOverwrites) {
  ASSERT_EQ(keytool("init --out " + keys()).exit_code, 0);
  const fs::path k = keys();
  const auto out = fs::path(keys()).parent_path() / "site-terminal.toml";
  fs::remove(out);
  const auto r = keytool("role-keys --keys " + keys() + " --role site --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(mode_of(out), 0600u);
  EXPECT_EQ(to_hex(FileMasterKeyStore::load_role_master(out, CardRole::Site).view()),
            to_hex(FileMasterKeyStore::load_role_master(k / "master-keys.toml", CardRole::Site).view()));
  EXPECT_THROW(FileMasterKeyStore::load_role_master(out, CardRole::Counter), std::runtime_error);
  EXPECT_EQ(keytool("role-keys --keys " + keys() + " --role site --out " + out.string()).exit_code, 3);
  EXPECT_EQ(keytool("role-keys --keys " + keys() + " --role operator --out " + out.string() + "x").exit_code, 2);
  fs::remove(out);
  // The service's file: the holder-reference secret, no SCP03 master.
  const auto service = fs::path(keys()).parent_path() / "service-keys.toml";
  fs::remove(service);
  const auto s = keytool("role-keys --keys " + keys() + " --role service --out " + service.string());
  ASSERT_EQ(s.exit_code, 0) << s.output;
  EXPECT_EQ(mode_of(service), 0600u);
  EXPECT_EQ(FileMasterKeyStore::load_holder_secret(service)->holder_ref("11010519491231002X"),
            FileMasterKeyStore::load(k / "master-keys.toml")->holder_ref("11010519491231002X"));
  EXPECT_THROW(FileMasterKeyStore::load_role_master(service, CardRole::Counter), std::runtime_error);
  fs::remove(service);
}

TEST_F(Keytool, InitNeverOverwrites) {
  ASSERT_EQ(keytool("init --out " + keys()).exit_code, 0);
  const auto before = read_key_file(fs::path(keys()) / "province-root.key.pem");
  const auto r = keytool("init --out " + keys());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("already exists"), std::string::npos) << r.output;
  EXPECT_EQ(read_key_file(fs::path(keys()) / "province-root.key.pem"), before);
}

TEST_F(Keytool, MissingParentAndBadArguments) {
  auto r = keytool("init --out " + (dir_ / "no" / "keys").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  r = keytool("init --out " + keys() + " --bureau 4201");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("6-digit"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(keys()));
}

TEST_F(Keytool, TerminalCertificatesCarryRoleAndSite) {
  ASSERT_EQ(keytool("init --out " + keys()).exit_code, 0);
  const auto out = (dir_ / "terminals").string();
  auto r =
      keytool("terminal --keys " + keys() + " --out " + out + " --id T0001 --role site --region 420100 --site 10001");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto cert = Certificate::load(fs::path(out) / "T0001.cert.pem");
  EXPECT_EQ(cert.subject().organisational_unit, "site");
  EXPECT_EQ(cert.subject().serial_number, "10001");
  EXPECT_EQ(cert.subject().locality, "420100");
  EXPECT_EQ(load_private_key(fs::path(out) / "T0001.key.pem").public_key(), cert.public_key());
  EXPECT_EQ(mode_of(fs::path(out) / "T0001.key.pem"), 0600u);

  // OpenSSL's verifier accepts the chain leaf -> terminal CA -> root.
  const auto tca = Certificate::load(fs::path(keys()) / "terminal-ca.cert.pem");
  const auto root = Certificate::load(fs::path(keys()) / "province-root.cert.pem");
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.native());
  STACK_OF(X509)* chain = sk_X509_new_null();
  sk_X509_push(chain, tca.native());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert.native(), chain);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
  EXPECT_EQ(X509_verify_cert(ctx), 1);
  X509_STORE_CTX_free(ctx);
  sk_X509_free(chain);
  X509_STORE_free(store);

  r = keytool("terminal --keys " + keys() + " --out " + out + " --id T0002 --role site --region 420100");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--site"), std::string::npos);
  r = keytool("terminal --keys " + keys() + " --out " + out + " --id T0003 --role kiosk --region 420100 --site 1");
  EXPECT_EQ(r.exit_code, 2);
  r = keytool("terminal --keys " + keys() + " --out " + out + " --id T0004 --role admin --region 420100");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("counter, site, kiosk or operator"), std::string::npos);
  r = keytool("terminal --keys " + keys() + " --out " + out + " --id T0001 --role site --region 420100 --site 10001");
  EXPECT_EQ(r.exit_code, 3);  // exists
  // The id is a file name stem under --out, for the service's certificate as for a terminal's.
  r = keytool("server --keys " + keys() + " --out " + out + " --id ../escaped");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--id"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "escaped.key.pem"));
}

TEST_F(Keytool, KidMatchesForKeyAndCertificate) {
  ASSERT_EQ(keytool("init --out " + keys()).exit_code, 0);
  const fs::path k = keys();
  const auto pub = keytool("kid " + (k / "terminal-ca.cert.pem").string());
  const auto priv = keytool("kid " + (k / "terminal-ca.key.pem").string());
  ASSERT_EQ(pub.exit_code, 0);
  EXPECT_EQ(pub.output, priv.output);
  EXPECT_EQ(pub.output.size(), 17u);  // 16 hex digits and a newline
  const auto missing = keytool("kid " + (k / "nope.pem").string());
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.output.find("missing"), std::string::npos);
  // DER keys, as the help says: a SubjectPublicKeyInfo and a PKCS#8 private key.
  const auto spki = load_private_key(k / "terminal-ca.key.pem").public_key().spki_der();
  {
    std::ofstream der(k / "terminal-ca.pub.der", std::ios::binary);
    der.write(reinterpret_cast<const char*>(spki.data()), static_cast<std::streamsize>(spki.size()));
  }
  const auto pub_der = keytool("kid " + (k / "terminal-ca.pub.der").string());
  EXPECT_EQ(pub_der.exit_code, 0) << pub_der.output;
  EXPECT_EQ(pub_der.output, priv.output);
  ASSERT_EQ(std::system(("openssl pkey -in " + (k / "terminal-ca.key.pem").string() + " -outform DER -out " +
                         (k / "terminal-ca.key.der").string())
                            .c_str()),
            0);
  const auto priv_der = keytool("kid " + (k / "terminal-ca.key.der").string());
  EXPECT_EQ(priv_der.exit_code, 0) << priv_der.output;
  EXPECT_EQ(priv_der.output, priv.output);
}

// `trust-list`: a ceremony's list of the folder's public keys, signed by the root, under a
// sequence that only goes up; written where skillcard-server looks for it.
TEST_F(Keytool, TrustListIsSignedByTheRootAndItsSequenceOnlyGoesUp) {
  ASSERT_EQ(keytool("init --out " + keys()).exit_code, 0);
  const fs::path k = keys();
  const auto first = keytool("trust-list --keys " + keys() + " --sequence 3");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto read = [&] {
    std::ifstream in(k / "trust-list.cose", std::ios::binary);
    return skillcard::Bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  };
  const auto list = read();
  const auto root = Certificate::load(k / "province-root.cert.pem").public_key();
  const auto cose = skillcard::schemas::CoseSign1::decode(list);
  EXPECT_TRUE(
      cose.verify([&](skillcard::ByteView tbs, const EcSignature& sig) { return OpenSsl::verify(root, tbs, sig); })
          .ok());
  const auto claims = skillcard::schemas::decode_trust_list(list).claims;
  EXPECT_EQ(claims.sequence, 3U);
  EXPECT_EQ(claims.entries.size(), 5U);  // voucher signer, card CA, portfolio, audit, terminal CA
  // Not the same sequence again, nor a lower one: the file stays as it was.
  for (const char* sequence : {"3", "2"}) {
    const auto again = keytool("trust-list --keys " + keys() + " --sequence " + sequence);
    EXPECT_EQ(again.exit_code, 2) << again.output;
    EXPECT_NE(again.output.find("holds sequence 3"), std::string::npos) << again.output;
    EXPECT_EQ(read(), list);
  }
  EXPECT_EQ(keytool("trust-list --keys " + keys() + " --sequence 4").exit_code, 0);
  EXPECT_EQ(skillcard::schemas::decode_trust_list(read()).claims.sequence, 4U);
  EXPECT_EQ(keytool("trust-list --keys " + keys() + " --sequence 0").exit_code, 2);
}

// `verify`: a structure signed by a province key verifies with its published .pub.pem, and not
// with another key, nor when altered, nor when it is not COSE at all.
TEST_F(Keytool, VerifyChecksACoseSign1WithAPublishedKey) {
  ASSERT_EQ(keytool("init --out " + keys()).exit_code, 0);
  const fs::path k = keys();
  const auto signer = skillcard::crypto::load_private_key(k / "voucher-signer-420100.key.pem");
  const auto kid = skillcard::crypto::kid_of<skillcard::crypto::OpenSsl>(signer.public_key());
  const skillcard::Bytes payload{0xA1, 0x20, 0x01};  // {-1: 1}
  auto cose = skillcard::schemas::CoseSign1::sign(kid, std::nullopt, payload,
                                                  [&](skillcard::ByteView tbs) { return signer.sign(tbs); });
  const auto text = skillcard::schemas::base64url_encode(cose);
  const auto ok = keytool("verify --key " + (k / "voucher-signer-420100.pub.pem").string() + " --cose " + text);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("verified: kid"), std::string::npos);
  const auto other = keytool("verify --key " + (k / "card-ca.pub.pem").string() + " --cose " + text);
  EXPECT_EQ(other.exit_code, 4) << other.output;
  cose.back() ^= 0x01;
  const auto altered = keytool("verify --key " + (k / "voucher-signer-420100.pub.pem").string() + " --cose " +
                               skillcard::schemas::base64url_encode(cose));
  EXPECT_EQ(altered.exit_code, 4) << altered.output;
  const auto junk = keytool("verify --key " + (k / "voucher-signer-420100.pub.pem").string() + " --cose AAAA");
  EXPECT_EQ(junk.exit_code, 4) << junk.output;
  EXPECT_NE(junk.output.find("not a COSE_Sign1"), std::string::npos);
}
