// Key files: round trips in PEM and DER, and a precise error for every way a file is wrong.
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/signer.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

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
  void write(const fs::path& p, std::string_view content) { std::ofstream(p, std::ios::binary) << content; }
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
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "pub.pem"); }), KeyFileError::Reason::Malformed);
}

TEST_F(KeyFiles, WrongCurve) {
  EVP_PKEY* p384 = EVP_EC_gen("P-384");
  ASSERT_NE(p384, nullptr);
  FILE* f = std::fopen((dir_ / "p384.pem").c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PrivateKey(f, p384, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  f = std::fopen((dir_ / "p384.pub.pem").c_str(), "w");
  PEM_write_PUBKEY(f, p384);
  std::fclose(f);
  EVP_PKEY_free(p384);
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "p384.pem"); }), KeyFileError::Reason::WrongCurve);
  EXPECT_EQ(reason_of([&] { load_public_key(dir_ / "p384.pub.pem"); }), KeyFileError::Reason::WrongCurve);

  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(ed, nullptr);
  f = std::fopen((dir_ / "ed.pem").c_str(), "w");
  PEM_write_PrivateKey(f, ed, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  EVP_PKEY_free(ed);
  EXPECT_EQ(reason_of([&] { load_private_key(dir_ / "ed.pem"); }), KeyFileError::Reason::WrongCurve);
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
