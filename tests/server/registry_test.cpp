// The registry of record: generated data is valid, CSV round trips, every import refusal names
// the line and the field, and the embedded registry answers by citizen ID and holder reference.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/registry/generator.hpp"

using namespace skillcard;
using namespace skillcard::registry;
namespace fs = std::filesystem;

namespace {

class RegistryFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("skillcard-registry-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }
  std::string people_error(const std::string& rows) {
    try {
      read_people_csv(write(
          "p.csv", "citizen_id,name,region,date_of_birth,insured,employed,retired_fisherman,key_groups\n" + rows));
    } catch (const CsvError& e) {
      return e.what();
    }
    return "accepted";
  }
  fs::path dir_;
};

crypto::HolderRef test_ref(std::string_view id) {
  const auto mac = crypto::OpenSsl::hmac_sha256(as_bytes("test secret"), as_bytes(id));
  crypto::HolderRef ref{};
  std::copy_n(mac.begin(), ref.size(), ref.begin());
  return ref;
}

}  // namespace

TEST(RegistryGenerator, P13_GeneratedCitizenIdsAreValidAndUnique) {
  const auto data = generate(60000, 7, 2026);  // enough for same-county, same-birthday pairs
  std::set<std::string> ids;
  for (const auto& p : data.people) {
    EXPECT_EQ(crypto::citizen_id_problem(p.citizen_id), "") << p.citizen_id;
    EXPECT_TRUE(ids.insert(p.citizen_id).second) << p.citizen_id;
    EXPECT_EQ(p.citizen_id.substr(0, 6), std::to_string(p.region));
    EXPECT_GE(p.name.size(), 6u);  // two or three CJK characters in UTF-8
  }
  EXPECT_GT(data.subsidies.size(), 6000u);
  EXPECT_EQ(generate(10, 7, 2026).people[3].citizen_id, generate(10, 7, 2026).people[3].citizen_id);  // deterministic
  EXPECT_EQ(crypto::citizen_id_check_character("11010519491231002"), 'X');
}

TEST_F(RegistryFiles, CsvRoundTrip) {
  const auto data = generate(300, 11, 2026);
  write_people_csv(dir_ / "people.csv", data.people);
  write_subsidies_csv(dir_ / "subsidies.csv", data.subsidies);
  const auto people = read_people_csv(dir_ / "people.csv");
  const auto subsidies = read_subsidies_csv(dir_ / "subsidies.csv");
  ASSERT_EQ(people.size(), data.people.size());
  ASSERT_EQ(subsidies.size(), data.subsidies.size());
  for (std::size_t i = 0; i < people.size(); ++i) {
    EXPECT_EQ(people[i].citizen_id, data.people[i].citizen_id);
    EXPECT_EQ(people[i].name, data.people[i].name);
    EXPECT_EQ(people[i].facts.date_of_birth, data.people[i].facts.date_of_birth);
    EXPECT_EQ(people[i].facts.key_groups, data.people[i].facts.key_groups);
    EXPECT_EQ(people[i].facts.insured, data.people[i].facts.insured);
  }
  EXPECT_EQ(subsidies[0].record.issued_at, data.subsidies[0].record.issued_at);
  EXPECT_EQ(subsidies[0].record.source, data.subsidies[0].record.source);
}

TEST_F(RegistryFiles, QuotedFieldsFromRealExports) {
  const auto people = read_people_csv(write(
      "p.csv",
      "key_groups,citizen_id,name,region,date_of_birth,insured,employed,retired_fisherman\r\n"
      "\"registered_unemployed;poverty_alleviated\",11010519491231002X,\"王, 小明\",420100,1990-03-07,0,0,1\r\n"));
  ASSERT_EQ(people.size(), 1u);
  EXPECT_EQ(people[0].name, "王, 小明");
  EXPECT_EQ(people[0].facts.key_groups.size(), 2u);
  EXPECT_TRUE(people[0].facts.retired_fisherman);
}

TEST_F(RegistryFiles, P13_BadRowsAreRefusedWithLineAndField) {
  EXPECT_EQ(people_error("110105194912310021,王芳,420100,1949-12-31,1,1,0,\n"),
            (dir_ / "p.csv").string() +
                ": line 2: citizen_id: citizen ID check character is '1', expected 'X' (ISO 7064 MOD 11-2)");
  EXPECT_NE(people_error("11010519491231002X,王芳,4201,1949-12-31,1,1,0,\n").find("line 2: region: '4201'"),
            std::string::npos);
  EXPECT_NE(people_error("11010519491231002X,王芳,420100,1949-02-30,1,1,0,\n")
                .find("date_of_birth: '1949-02-30' is not a date"),
            std::string::npos);
  EXPECT_NE(people_error("11010519491231002X,王芳,420100,1949-12-31,yes,1,0,\n").find("insured: 'yes' must be 0 or 1"),
            std::string::npos);
  EXPECT_NE(people_error("11010519491231002X,王芳,420100,1949-12-31,1,1,0,veteran\n")
                .find("key_groups: 'veteran' is not one of"),
            std::string::npos);
  EXPECT_NE(people_error("11010519491231002X,王芳\n").find("line 2: region: missing"), std::string::npos);
  EXPECT_NE(people_error("\"unterminated,王芳\n").find("not valid CSV"), std::string::npos);
  try {
    read_subsidies_csv(write("s.csv", "citizen_id,source\n"));
    FAIL();
  } catch (const CsvError& e) {
    EXPECT_NE(std::string(e.what()).find("missing column 'issued_on'"), std::string::npos) << e.what();
  }
}

// The operator fixes the file in an editor, so a refusal names the line, not the record: a quoted
// name may span lines and blank lines are skipped.
TEST_F(RegistryFiles, P13_RefusalsNameTheLineInTheFileNotTheRecordNumber) {
  EXPECT_NE(people_error("110105198001010016,\"王\n芳\",420100,1980-01-01,1,1,0,\n"
                         "\n"
                         "11010519491231002X,王芳,4201,1949-12-31,1,1,0,\n")
                .find("line 5: region: '4201'"),
            std::string::npos);
  EXPECT_NE(people_error("\"11010519491231002X\n\",王芳,4201,1949-12-31,1,1,0,\n").find("line 2: citizen_id:"),
            std::string::npos);
  EXPECT_NE(people_error("11010519491231002X,王芳,420100,1949-12-31,1,1,0,\n\n\"unterminated,王芳\n")
                .find("line 4: not valid CSV"),
            std::string::npos);
  EXPECT_EQ(people_error("11010519491231002X,王芳,420100,1949-12-31,1,1,0,\n"
                         "\n"
                         "11010519491231002X,李四,420100,1950-01-01,1,1,0,"),
            (dir_ / "p.csv").string() + ": line 4: citizen_id: 110105... already on line 2");
  try {
    read_subsidies_csv(write("s.csv", "\n\ncitizen_id,source\n"));
    FAIL();
  } catch (const CsvError& e) {
    EXPECT_NE(std::string(e.what()).find("line 3: missing column 'issued_on'"), std::string::npos) << e.what();
  }
}

// The first ID of the generated people whose check character is X, spelt with a lower-case x.
static std::string lower_x_id(const std::vector<Person>& people) {
  for (const auto& p : people) {
    if (p.citizen_id.back() == 'X') return p.citizen_id.substr(0, 17) + 'x';
  }
  return {};
}

TEST(MemoryRegistry, P13_ACheckCharacterXIsFoundWhicheverCaseWasTyped) {
  auto data = generate(200, 3, 2026);
  const auto lower = lower_x_id(data.people);
  ASSERT_FALSE(lower.empty());
  const auto upper = lower.substr(0, 17) + 'X';
  {
    const MemoryRegistry registry(data.people, data.subsidies, test_ref);
    EXPECT_TRUE(registry.facts(lower).known);
    EXPECT_TRUE(registry.facts(upper).known);
  }
  // Typed with a lower-case x in the registry's own file: stored and found as X.
  for (auto& p : data.people) {
    if (p.citizen_id == upper) p.citizen_id = lower;
  }
  const MemoryRegistry registry(data.people, data.subsidies, test_ref);
  EXPECT_TRUE(registry.facts(upper).known);
  EXPECT_TRUE(registry.facts(lower).known);
}

TEST_F(RegistryFiles, P13_ALowerCaseXInTheCsvIsReadAsX) {
  const auto people =
      read_people_csv(write("p.csv",
                            "citizen_id,name,region,date_of_birth,insured,employed,retired_fisherman,key_groups\n"
                            "11010519491231002x,张三,420100,1949-12-31,1,0,0,\n"));
  ASSERT_EQ(people.size(), 1u);
  EXPECT_EQ(people[0].citizen_id, "11010519491231002X");
}

// Excel's "CSV UTF-8" starts with a byte order mark; the header is read as the header.
TEST_F(RegistryFiles, P13_AUtf8ByteOrderMarkBeforeTheHeaderIsIgnored) {
  const auto people =
      read_people_csv(write("p.csv",
                            "\xEF\xBB\xBF"
                            "citizen_id,name,region,date_of_birth,insured,employed,retired_fisherman,key_groups\r\n"
                            "11010519491231002X,张三,420100,1949-12-31,1,0,0,\r\n"));
  ASSERT_EQ(people.size(), 1u);
  EXPECT_EQ(people[0].citizen_id, "11010519491231002X");
}

// Dates are exactly YYYY-MM-DD: a typo must not become the year 206 (and drop a subsidy out of
// every P1/P2 count of 2026).
TEST_F(RegistryFiles, P13_ADateNotInYyyyMmDdIsRefused) {
  for (const char* bad : {"206-03-02", "2026-3-2", "+2026-03-02", "2026/03/02", "20260302", "2026-03-0x"}) {
    EXPECT_NE(people_error(std::string("11010519491231002X,王芳,420100,") + bad + ",1,1,0,\n").find("is not a date"),
              std::string::npos)
        << bad;
  }
  EXPECT_EQ(people_error("11010519491231002X,王芳,420100,1949-12-31,1,1,0,\n"), "accepted");
}

TEST(MemoryRegistry, P13_FactsByCitizenIdAndHolderRef) {
  auto data = generate(200, 3, 2026);
  const auto someone = data.people[17];
  const MemoryRegistry registry(data.people, data.subsidies, test_ref);
  EXPECT_EQ(registry.size(), 200u);
  const auto by_id = registry.facts(someone.citizen_id);
  EXPECT_TRUE(by_id.known);
  EXPECT_EQ(by_id.date_of_birth, someone.facts.date_of_birth);
  EXPECT_EQ(registry.facts_by_holder(test_ref(someone.citizen_id)).date_of_birth, someone.facts.date_of_birth);
  EXPECT_FALSE(registry.facts("11010519491231002X").known);  // not in the registry: P13 refuses
  std::size_t outside = 0;
  for (const auto& p : data.people) outside += registry.external_subsidies(test_ref(p.citizen_id)).size();
  EXPECT_EQ(outside, data.subsidies.size());
  data.people.push_back(data.people[0]);
  EXPECT_THROW(MemoryRegistry(data.people, {}, test_ref), CsvError);  // a duplicate person
}
