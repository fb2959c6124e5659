// The registry of record on SQLite: it answers exactly as the in-memory registry over the same
// CSV files, survives reopening, and refuses a bad citizen ID at import naming file, line, field
// — leaving what it held before untouched.
#include "skillcard/registry/sqlite_registry.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/registry/generator.hpp"

using namespace skillcard;
using namespace skillcard::registry;
namespace fs = std::filesystem;

namespace {

crypto::HolderRef test_ref(std::string_view id) {
  const auto mac = crypto::OpenSsl::hmac_sha256(as_bytes("test secret"), as_bytes(id));
  crypto::HolderRef ref{};
  std::copy_n(mac.begin(), ref.size(), ref.begin());
  return ref;
}

class SqliteRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("skillcard-sqlreg-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// The same ID with its check character replaced by a wrong one.
std::string with_bad_check(const std::string& id) {
  const char right = id.back();
  return id.substr(0, 17) + (right == '0' ? '1' : '0');
}

// The service and the report tool (or two imports) opening one new registry file at once: the
// switch to WAL waits for the other rather than failing "database is locked".
TEST_F(SqliteRegistryTest, ConcurrentOpensOfANewFileAllSucceed) {
  for (int round = 0; round < 20; ++round) {
    const auto file = dir_ / ("registry-" + std::to_string(round) + ".db");
    std::vector<std::string> errors(4);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < errors.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          if (SqliteRegistry::open(file)->size() != 0) errors[i] = "a new registry is not empty";
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& e : errors) EXPECT_EQ(e, "") << "round " << round;
  }
}

// P13: the service and the reports read a registry they must not create or change. A file that
// is not one (missing, empty, a ledger given by mistake, a registry that holds nobody) would read
// as a registry without anyone — every outside training missed — so it is refused by name and
// left as it was.
TEST_F(SqliteRegistryTest, P13_OpenExistingRefusesWhatIsNotAnImportedRegistryAndWritesNothing) {
  const auto refused = [&](const fs::path& path) {
    try {
      (void)SqliteRegistry::open_existing(path);
    } catch (const RegistryStorageError& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      return std::string(e.what());
    }
    ADD_FAILURE() << path << " was opened as a registry";
    return std::string();
  };
  EXPECT_NE(refused(dir_ / "missing.db").find("no such file"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "missing.db"));
  { std::ofstream(dir_ / "empty.db"); }
  EXPECT_NE(refused(dir_ / "empty.db").find("not a registry"), std::string::npos);
  EXPECT_EQ(fs::file_size(dir_ / "empty.db"), 0u);
  { std::ofstream(dir_ / "text.db") << "people,subsidies\n" << std::string(200, 'x'); }
  EXPECT_NE(refused(dir_ / "text.db").find("not a database"), std::string::npos);
  (void)ledger::SqliteLedger::open(dir_ / "ledger.db");
  const auto ledger_size = fs::file_size(dir_ / "ledger.db");
  EXPECT_NE(refused(dir_ / "ledger.db").find("not a registry"), std::string::npos);
  EXPECT_EQ(fs::file_size(dir_ / "ledger.db"), ledger_size);  // no registry tables written into it
  (void)SqliteRegistry::open(dir_ / "nobody.db");             // made for an import that never came
  EXPECT_NE(refused(dir_ / "nobody.db").find("holds nobody"), std::string::npos);
}

TEST_F(SqliteRegistryTest, P13_AnswersAsTheMemoryRegistryDoes) {
  const auto data = generate(3000, 11, 2026);
  write_people_csv(dir_ / "people.csv", data.people);
  write_subsidies_csv(dir_ / "subsidies.csv", data.subsidies);
  {
    auto reg = SqliteRegistry::open(dir_ / "registry.db");
    const auto n = reg->import_csv(dir_ / "people.csv", dir_ / "subsidies.csv", test_ref);
    EXPECT_EQ(n.people, data.people.size());
    EXPECT_EQ(n.subsidies, data.subsidies.size());
  }
  const auto reg = SqliteRegistry::open_existing(dir_ / "registry.db");  // reopened read-only: the rows persisted
  const MemoryRegistry memory(read_people_csv(dir_ / "people.csv"), read_subsidies_csv(dir_ / "subsidies.csv"),
                              test_ref);
  ASSERT_EQ(reg->size(), data.people.size());
  std::size_t outside = 0;
  for (const auto& p : data.people) {
    const auto ref = test_ref(p.citizen_id);
    const auto f = reg->facts(p.citizen_id);
    const auto m = memory.facts(p.citizen_id);
    ASSERT_TRUE(f.known);
    EXPECT_EQ(f.date_of_birth, m.date_of_birth);
    EXPECT_EQ(f.insured, m.insured);
    EXPECT_EQ(f.employed, m.employed);
    EXPECT_EQ(f.retired_fisherman, m.retired_fisherman);
    EXPECT_EQ(f.key_groups, m.key_groups);
    EXPECT_EQ(reg->facts_by_holder(ref).date_of_birth, m.date_of_birth);
    const auto subsidies = reg->external_subsidies(ref);
    const auto expected = memory.external_subsidies(ref);
    ASSERT_EQ(subsidies.size(), expected.size());
    for (std::size_t i = 0; i < subsidies.size(); ++i) {
      EXPECT_EQ(subsidies[i].source, expected[i].source);
      EXPECT_EQ(subsidies[i].issued_at, expected[i].issued_at);
      EXPECT_EQ(subsidies[i].fund, expected[i].fund);
      EXPECT_EQ(subsidies[i].occupation, expected[i].occupation);
      EXPECT_EQ(subsidies[i].level, expected[i].level);
    }
    outside += subsidies.size();
  }
  EXPECT_EQ(outside, data.subsidies.size());
  EXPECT_FALSE(reg->facts("110101199001011237").known || reg->facts_by_holder(crypto::HolderRef{}).known);

  std::size_t people = 0, subsidies = 0;
  reg->for_each_person([&](const Person& p, const crypto::HolderRef& ref) {
    EXPECT_EQ(ref, test_ref(p.citizen_id));
    ++people;
  });
  reg->for_each_subsidy([&](const ExternalSubsidy& s, const crypto::HolderRef& ref, std::uint32_t region) {
    EXPECT_EQ(ref, test_ref(s.citizen_id));
    EXPECT_EQ(std::to_string(region), s.citizen_id.substr(0, 6));
    ++subsidies;
  });
  EXPECT_EQ(people, data.people.size());
  EXPECT_EQ(subsidies, data.subsidies.size());
}

TEST_F(SqliteRegistryTest, P13_ACheckCharacterXIsFoundWhicheverCaseWasTyped) {
  auto data = generate(200, 3, 2026);
  std::string upper;
  for (auto& p : data.people) {
    if (p.citizen_id.back() != 'X') continue;
    upper = p.citizen_id;
    p.citizen_id.back() = 'x';  // typed so in the registry's export
    break;
  }
  ASSERT_FALSE(upper.empty());
  for (auto& s : data.subsidies) {
    if (s.citizen_id == upper) s.citizen_id.back() = 'x';
  }
  const auto lower = upper.substr(0, 17) + 'x';
  auto reg = SqliteRegistry::open(dir_ / "registry.db");
  reg->import_rows(data.people, data.subsidies, test_ref);
  EXPECT_TRUE(reg->facts(upper).known);
  EXPECT_TRUE(reg->facts(lower).known);
  EXPECT_TRUE(reg->facts_by_holder(test_ref(upper)).known);  // the reference of the one spelling
  bool stored_upper = false;
  reg->for_each_person([&](const Person& p, const crypto::HolderRef&) { stored_upper |= p.citizen_id == upper; });
  EXPECT_TRUE(stored_upper);
}

TEST_F(SqliteRegistryTest, P13_BadCheckCharacterRefusedAtImportNamingFileLineAndField) {
  auto data = generate(5, 3, 2026);
  write_people_csv(dir_ / "people.csv", data.people);
  write_subsidies_csv(dir_ / "subsidies.csv", {});
  auto reg = SqliteRegistry::open(dir_ / "registry.db");
  reg->import_csv(dir_ / "people.csv", dir_ / "subsidies.csv", test_ref);

  auto bad = data.people;
  bad[1].citizen_id = with_bad_check(bad[1].citizen_id);  // the file's line 3 (line 1 is the header)
  write_people_csv(dir_ / "bad.csv", bad);
  try {
    reg->import_csv(dir_ / "bad.csv", dir_ / "subsidies.csv", test_ref);
    ADD_FAILURE() << "a bad check character was imported";
  } catch (const CsvError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.csv: line 3: citizen_id:"), std::string::npos) << what;
    EXPECT_NE(what.find("check"), std::string::npos) << what;
  }
  // The import is all or nothing: the registry still holds the first import.
  EXPECT_EQ(reg->size(), data.people.size());
  EXPECT_TRUE(reg->facts(data.people[1].citizen_id).known);

  // Rows given directly are checked too.
  try {
    reg->import_rows(bad, {}, test_ref);
    ADD_FAILURE() << "import_rows took a bad check character";
  } catch (const CsvError& e) {
    EXPECT_NE(std::string(e.what()).find("people[1]: citizen_id:"), std::string::npos) << e.what();
  }
  EXPECT_EQ(reg->size(), data.people.size());
}

TEST_F(SqliteRegistryTest, P13_DuplicatePersonAndSubsidyOfAStrangerRefused) {
  auto data = generate(4, 5, 2026);
  auto people = data.people;
  people.push_back(people[0]);
  write_people_csv(dir_ / "dup.csv", people);
  write_subsidies_csv(dir_ / "none.csv", {});
  auto reg = SqliteRegistry::open(dir_ / "registry.db");
  try {
    reg->import_csv(dir_ / "dup.csv", dir_ / "none.csv", test_ref);
    ADD_FAILURE() << "a duplicate person was imported";
  } catch (const CsvError& e) {
    EXPECT_NE(std::string(e.what()).find("dup.csv: line 6: citizen_id:"), std::string::npos) << e.what();
  }
  write_people_csv(dir_ / "people.csv", {data.people[0]});
  ExternalSubsidy s;
  s.citizen_id = data.people[1].citizen_id;
  s.record.source = policy::SubsidyRecord::Source::OtherDepartment;
  s.record.fund = schemas::FundSource::OtherDepartment;
  s.record.occupation = 4040505;
  s.record.level = 4;
  write_subsidies_csv(dir_ / "s.csv", {s});
  try {
    reg->import_csv(dir_ / "people.csv", dir_ / "s.csv", test_ref);
    ADD_FAILURE() << "a subsidy of a stranger was imported";
  } catch (const CsvError& e) {
    EXPECT_NE(std::string(e.what()).find("s.csv: line 2: citizen_id:"), std::string::npos) << e.what();
  }
  EXPECT_EQ(reg->size(), 0u);
}

}  // namespace
