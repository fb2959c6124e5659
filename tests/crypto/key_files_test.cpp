// Key files: round trips in PEM and DER, and a precise error for every way a file is wrong.
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/signer.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

using namespace skillcard;
using namespace skillcard::crypto;
namespace fs = std::filesystem;

namespace {

class KeyFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("skillcard-keyfiles-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Mode 0600, as a private key's file must be, so that what is tested is the content.
  void write(const fs::path& p, std::string_view content) {
    std::ofstream(p, std::ios::binary) << content;
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  }
  void write_pem(const fs::path& p, EVP_PKEY* key, bool private_key) {
    FILE* f = std::fopen(p.c_str(), "w");
    ASSERT_NE(f, nullptr);
    if (private_key) {
      PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    } else {
      PEM_write_PUBKEY(f, key);
    }
    std::fclose(f);
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  }
  KeyFileError::Reason reason_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const KeyFileError& e) {
      EXPECT_NE(std::string(e.what()).find(e.path().filename().string()), std::string::npos) << e.what();
      return e.reason();
    }
    ADD_FAILURE() << "no KeyFileError";
    return KeyFileError::Reason::WriteFailed;
  }
  fs::path dir_;
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

}  // namespace

TEST_F(KeyFiles, PrivateKeyRoundTripWithMode0600) {
  const auto key = OpenSsl::PrivateKey::generate();
  write_private_key(dir_ / "k.pem", key);
  EXPECT_EQ(mode_of(dir_ / "k.pem"), 0600u);
  const auto loaded = load_private_key(dir_ / "k.pem");
  EXPECT_EQ(loaded.public_key(), key.public_key());
}

TEST_F(KeyFiles, PublicKeyRoundTripPemAndDer) {
  const auto key = OpenSsl::PrivateKey::generate();
  write_public_key(dir_ / "k.pub.pem", key.public_key());
  EXPECT_EQ(mode_of(dir_ / "k.pub.pem"), 0644u);
  EXPECT_EQ(load_public_key(dir_ / "k.pub.pem").public_key(), key.public_key());
  const auto der = key.public_key().spki_der();
  write(dir_ / "k.der", std::string(der.begin(), der.end()));
  EXPECT_EQ(load_public_key(dir_ / "k.der").public_key(), key.public_key());
}

TEST_F(KeyFiles, SpkiDerMatchesOpenSsl) {
  const auto key = OpenSsl::PrivateKey::generate();
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key.native(), &der);
  ASSERT_GT(len, 0);
  const Bytes expected(der, der + len);
  OPENSSL_free(der);
  EXPECT_EQ(key.public_key().spki_der(), expected);
}

TEST_F(KeyFiles, RefusesToOverwrite) {
  const auto key = OpenSsl::PrivateKey::generate();
  write_private_key(dir_ / "k.pem", key);
  const auto before = read_key_file(dir_ / "k.pem");
  EXPECT_EQ(reason_of([&] { write_private_key(dir_ / "k.pem", OpenSsl::PrivateKey::generate()); }),
            KeyFileError::Reason::Exists);
  EXPECT_EQ(read_key_file(dir_ / "k.pem"), before);
}

TEST_F(KeyFiles, MissingParentFolder) {
  EXPECT_EQ(reason_of([&] { write_public_key(dir_ / "no" / "k.pem", OpenSsl::PrivateKey::generate().public_key()); }),
            KeyFileError::Reason::ParentMissing);
}

TEST_F(KeyFiles, MissingFile) {
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "absent.pem"); }), KeyFileError::Reason::Missing);
}

TEST_F(KeyFiles, UnreadableFile) {
  fs::create_directories(dir_ / "adir.pem");
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "adir.pem"); }), KeyFileError::Reason::Unreadable);
}

TEST_F(KeyFiles, MalformedFile) {
  write(dir_ / "junk.pem", "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n");
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "junk.pem"); }), KeyFileError::Reason::Malformed);
  write(dir_ / "junk.der", std::string("\x30\x03\x02\x01", 4));
  EXPECT_EQ(reason_of([&] { load_public_key(dir_ / "junk.der"); }), KeyFileError::Reason::Malformed);
  // A public key where a private key is expected is malformed for that purpose.
  write_public_key(dir_ / "pub.pem", OpenSsl::PrivateKey::generate().public_key());
  fs::permissions(dir_ / "pub.pem", fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "pub.pem"); }), KeyFileError::Reason::Malformed);
}

// An encrypted private key is refused by name, never with a passphrase prompt on the terminal
// (a service started from a shell would hang there).
TEST_F(KeyFiles, AnEncryptedPrivateKeyIsRefusedWithoutAPrompt) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  static const char kPass[] = "correct horse";
  for (const bool pkcs8 : {true, false}) {
    const auto path = dir_ / (pkcs8 ? "pkcs8.pem" : "traditional.pem");
    BIO* bio = BIO_new_file(path.c_str(), "w");
    ASSERT_NE(bio, nullptr);
    const auto* pass = reinterpret_cast<const unsigned char*>(kPass);
    const int written =
        pkcs8 ? PEM_write_bio_PrivateKey(bio, key, EVP_aes_256_cbc(), pass, sizeof kPass - 1, nullptr, nullptr)
              : PEM_write_bio_PrivateKey_traditional(bio, key, EVP_aes_256_cbc(), pass, sizeof kPass - 1, nullptr,
                                                     nullptr);
    BIO_free(bio);
    ASSERT_EQ(written, 1);
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    try {
      (void)load_private_key(path);
      ADD_FAILURE() << "an encrypted key was loaded";
    } catch (const KeyFileError& e) {
      EXPECT_EQ(e.reason(), KeyFileError::Reason::Malformed) << e.what();
      if (pkcs8) {
        EXPECT_NE(std::string(e.what()).find("encrypted"), std::string::npos) << e.what();
      }
    }
  }
  EVP_PKEY_free(key);
}

TEST_F(KeyFiles, WrongCurve) {
  EVP_PKEY* p384 = EVP_EC_gen("P-384");
  ASSERT_NE(p384, nullptr);
  write_pem(dir_ / "p384.pem", p384, true);
  write_pem(dir_ / "p384.pub.pem", p384, false);
  EVP_PKEY_free(p384);
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "p384.pem"); }), KeyFileError::Reason::WrongCurve);
  EXPECT_EQ(reason_of([&] { load_public_key(dir_ / "p384.pub.pem"); }), KeyFileError::Reason::WrongCurve);

  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(ed, nullptr);
  write_pem(dir_ / "ed.pem", ed, true);
  EVP_PKEY_free(ed);
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "ed.pem"); }), KeyFileError::Reason::WrongCurve);
}

TEST_F(KeyFiles, ASecretOthersMayReadIsRefused) {
  const auto key = OpenSsl::PrivateKey::generate();
  const auto path = dir_ / "k.pem";
  write_private_key(path, key);
  const auto set_mode = [&](unsigned mode) { fs::permissions(path, static_cast<fs::perms>(mode)); };
  for (const unsigned open : {0644u, 0604u, 0602u}) {
    set_mode(open);
    EXPECT_EQ(reason_of([&] { load_private_key(path); }), KeyFileError::Reason::TooOpen) << std::oct << open;
    EXPECT_EQ(reason_of([&] { require_private_file(path); }), KeyFileError::Reason::TooOpen) << std::oct << open;
  }
  try {
    set_mode(0644);
    require_private_file(path);
    ADD_FAILURE() << "mode 0644 accepted";
  } catch (const KeyFileError& e) {
    EXPECT_NE(std::string(e.what()).find("mode 0644 lets others read a secret; chmod 600"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(read_key_file(path).empty()) << "the same file read as public material: no mode rule";
  for (const unsigned private_mode : {0600u, 0400u}) {
    set_mode(private_mode);
    EXPECT_EQ(load_private_key(path).public_key(), key.public_key()) << std::oct << private_mode;
    EXPECT_NO_THROW(require_private_file(path));
  }
  // Group access: only a root-owned key may share itself with a service group (0640).
  set_mode(0640);
  if (::geteuid() == 0) {
    EXPECT_EQ(load_private_key(path).public_key(), key.public_key()) << "root's 0640 key";
    ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  }
  EXPECT_EQ(reason_of([&] { load_private_key(path); }), KeyFileError::Reason::TooOpen) << "a user's 0640 key";
  EXPECT_EQ(reason_of([&] { require_private_file(dir_ / "absent.pem"); }), KeyFileError::Reason::Missing);
}

TEST_F(KeyFiles, KeyFileSignerSignsWithTheFileKey) {
  const auto key = OpenSsl::PrivateKey::generate();
  write_private_key(dir_ / "signer.pem", key);
  const auto signer = KeyFileSigner::load(dir_ / "signer.pem");
  EXPECT_EQ(signer->public_key(), key.public_key());
  EXPECT_EQ(signer->kid(), kid_of<OpenSsl>(key.public_key()));
  const Signer& as_interface = *signer;
  const auto msg = as_bytes("voucher");
  EXPECT_TRUE(OpenSsl::verify(key.public_key(), msg, as_interface.sign(msg)));
  EXPECT_EQ(reason_of([&] { KeyFileSigner::load(dir_ / "absent.pem"); }), KeyFileError::Reason::Missing);
}
