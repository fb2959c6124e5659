// Master key store: file loading with precise errors, per-card diversification through the
// store, holder references (keyed, stable, refusing bad citizen IDs).
#include "skillcard/crypto/master_keys.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/openssl.hpp"

using namespace skillcard;
using namespace skillcard::crypto;
namespace fs = std::filesystem;

namespace {

class MasterKeys : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("skillcard-masters-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    fs::permissions(dir_ / name, fs::perms::owner_read | fs::perms::owner_write);  // a secret's file
    return dir_ / name;
  }
  std::string load_error(const std::string& text) {
    try {
      FileMasterKeyStore::load(write("m.toml", text));
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no error";
  }
  fs::path dir_;
};

const std::string kFixed =
    "version = 1\n[scp03]\ncounter = \"000102030405060708090A0B0C0D0E0F\"\n"
    "site = \"101112131415161718191A1B1C1D1E1F\"\nkiosk = \"202122232425262728292A2B2C2D2E2F\"\n"
    "[holder_ref]\nsecret = \"" +
    std::string(64, 'A') + "\"\n";

}  // namespace

TEST(CitizenId, ValidatesIso7064CheckCharacter) {
  EXPECT_EQ(citizen_id_problem("11010519491231002X"), "");
  EXPECT_EQ(citizen_id_problem("11010519491231002x"), "");
  EXPECT_EQ(citizen_id_problem("420102199003071232"), "");
  EXPECT_NE(citizen_id_problem("420102199003071233").find("expected '2'"), std::string::npos);
  EXPECT_NE(citizen_id_problem("4201021990030712").find("18 characters"), std::string::npos);
  EXPECT_NE(citizen_id_problem("42010219900307123A").find("expected"), std::string::npos);
  EXPECT_NE(citizen_id_problem("4201021990030X1232").find("character 14"), std::string::npos);
}

TEST(CitizenId, CanonicalFormHasAnUpperCaseCheckCharacter) {
  EXPECT_EQ(canonical_citizen_id("11010519491231002x"), "11010519491231002X");
  EXPECT_EQ(canonical_citizen_id("11010519491231002X"), "11010519491231002X");
  EXPECT_EQ(canonical_citizen_id("420102199003071232"), "420102199003071232");
  EXPECT_EQ(canonical_citizen_id("x"), "x");  // not an ID: returned as it stands
}

TEST_F(MasterKeys, GeneratedFileLoads) {
  const auto path = dir_ / "master-keys.toml";
  write_new_file(path, FileMasterKeyStore::generate_toml(), 0600);
  const auto store = FileMasterKeyStore::load(path);
  EXPECT_EQ(store->card_key(CardRole::Site, scp03::KeyType::Mac, "4201000001").size(), 16u);
}

TEST_F(MasterKeys, CardKeysComeFromTheRoleMaster) {
  const auto store = FileMasterKeyStore::load(write("m.toml", kFixed));
  const auto master = from_hex("101112131415161718191A1B1C1D1E1F");
  const auto expected = scp03::diversify_card_key<OpenSsl>(master, scp03::KeyType::Enc, "4201000001");
  EXPECT_EQ(to_hex(store->card_key(CardRole::Site, scp03::KeyType::Enc, "4201000001").view()), to_hex(expected.view()));
  EXPECT_NE(to_hex(store->card_key(CardRole::Counter, scp03::KeyType::Enc, "4201000001").view()),
            to_hex(expected.view()));
  EXPECT_EQ(key_version(CardRole::Counter), 0x21);
  EXPECT_EQ(key_version(CardRole::Site), 0x22);
  EXPECT_EQ(key_version(CardRole::Kiosk), 0x23);
}

TEST_F(MasterKeys, HolderRefIsKeyedAndStable) {
  const auto store = FileMasterKeyStore::load(write("m.toml", kFixed));
  const auto a = store->holder_ref("11010519491231002X");
  EXPECT_EQ(a, store->holder_ref("11010519491231002x"));  // a replacement card, typed differently
  EXPECT_NE(a, store->holder_ref("420102199003071232"));
  // HMAC-SHA256 under the secret over the documented label, truncated to 16 bytes.
  const std::string msg = std::string("skillcard/holder-ref/v1") + '\0' + "11010519491231002X";
  const auto mac = OpenSsl::hmac_sha256(Bytes(32, 0xAA), as_bytes(msg));
  EXPECT_TRUE(std::equal(a.begin(), a.end(), mac.begin()));
  // Not a plain hash of the ID: another secret gives another reference.
  auto other = kFixed;
  other.replace(other.find(std::string(64, 'A')), 64, std::string(64, 'B'));
  EXPECT_NE(a, FileMasterKeyStore::load(write("o.toml", other))->holder_ref("11010519491231002X"));
  EXPECT_THROW(store->holder_ref("110105194912310021"), std::invalid_argument);
}

TEST_F(MasterKeys, MalformedFilesAreRefusedWithReason) {
  EXPECT_NE(load_error("version = 1\n[scp03]\ncounter = \"00\"\n").find("[scp03] counter"), std::string::npos);
  EXPECT_NE(load_error("version = 2\n").find("version 2 is not supported"), std::string::npos);
  EXPECT_NE(load_error("[scp03\n").find("line 1"), std::string::npos);
  auto bad_hex = kFixed;
  bad_hex.replace(bad_hex.find("000102"), 2, "ZZ");
  EXPECT_NE(load_error(bad_hex).find("not a hex digit"), std::string::npos);
  // Malformed content is a key-file error (the tools' exit code for a bad key file), naming why.
  try {
    FileMasterKeyStore::load(write("v.toml", "version = 1\n[scp03]\ncounter = 3\n"));
    ADD_FAILURE();
  } catch (const KeyFileError& e) {
    EXPECT_EQ(e.reason(), KeyFileError::Reason::Malformed);
    EXPECT_NE(std::string(e.what()).find("[scp03] counter is missing or not a string"), std::string::npos) << e.what();
  }
  try {
    FileMasterKeyStore::load(dir_ / "absent.toml");
    ADD_FAILURE();
  } catch (const KeyFileError& e) {
    EXPECT_EQ(e.reason(), KeyFileError::Reason::Missing);
  }
}

// A terminal's key file holds its role's master alone (design.md, "Where keys live").
TEST_F(MasterKeys, ARoleMasterIsReadAloneAndTheFullFileYieldsTheSameKey) {
  const auto full = write("m.toml", kFixed);
  EXPECT_EQ(to_hex(FileMasterKeyStore::load_role_master(full, CardRole::Site).view()),
            "101112131415161718191A1B1C1D1E1F");
  const auto site_only = dir_ / "site.toml";
  write_new_file(
      site_only,
      FileMasterKeyStore::role_toml(CardRole::Site, FileMasterKeyStore::load_role_master(full, CardRole::Site).view()),
      0600);
  EXPECT_EQ(to_hex(FileMasterKeyStore::load_role_master(site_only, CardRole::Site).view()),
            to_hex(FileMasterKeyStore::load_role_master(full, CardRole::Site).view()));
  const auto text = read_key_file(site_only);
  EXPECT_EQ(text.find("counter ="), std::string::npos) << text;
  EXPECT_EQ(text.find("kiosk ="), std::string::npos) << text;
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
  try {
    FileMasterKeyStore::load_role_master(site_only, CardRole::Counter);
    ADD_FAILURE() << "a site file gave a counter master";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("[scp03] counter is missing"), std::string::npos) << e.what();
  }
  // The province's full store still needs every key.
  EXPECT_THROW(FileMasterKeyStore::load(site_only), std::runtime_error);
}

// The service holds the holder-reference secret and no SCP03 master (design.md, "Where keys
// live"): its file has only that, and the province's full file yields the same references.
TEST_F(MasterKeys, TheServiceHoldsTheHolderSecretAndNoScp03Master) {
  const auto full = write("m.toml", kFixed);
  const auto service_file = dir_ / "service.toml";
  write_new_file(service_file, FileMasterKeyStore::holder_toml(full), 0600);
  const auto text = read_key_file(service_file);
  EXPECT_EQ(text.find("[scp03]"), std::string::npos) << text;
  EXPECT_NE(text.find(std::string(64, 'A')), std::string::npos) << text;
  const auto service = FileMasterKeyStore::load_holder_secret(service_file);
  EXPECT_EQ(service->holder_ref("11010519491231002X"),
            FileMasterKeyStore::load(full)->holder_ref("11010519491231002X"));
  EXPECT_THROW(service->card_key(CardRole::Site, scp03::KeyType::Enc, "4201000001"), std::logic_error);
  // Loaded from the province's file, the masters are not kept either.
  EXPECT_THROW(
      FileMasterKeyStore::load_holder_secret(full)->card_key(CardRole::Counter, scp03::KeyType::Mac, "4201000001"),
      std::logic_error);
  // The full store cannot be made from the service's file.
  EXPECT_THROW(FileMasterKeyStore::load(service_file), std::runtime_error);
}
