// skillcard-datagen province and skillcard-report end to end: a small generated year, the
// registry import, every report as table, JSON and CSV, and the exit codes operators script on.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

struct Run {
  int code = -1;
  std::string out;
};

Run run(const std::string& command) {
  Run r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class ReportTool : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("skillcard-report-tool-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const auto gen =
        run(std::string(SKILLCARD_DATAGEN) + " province --scale 0.002 --threads 8 --out " + dir_->string());
    ASSERT_EQ(gen.code, 0) << gen.out;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string report(const std::string& args) {
    return std::string(SKILLCARD_REPORT) + " " + args + " --ledger " + (*dir_ / "ledger.db").string();
  }
  static inline fs::path* dir_ = nullptr;
};

// The province's master keys (keytool init) in --out are used, never replaced: every card made
// with them needs them. A new file is created 0600.
TEST(Datagen, ProvinceNeverOverwritesMasterKeys) {
  const auto dir = fs::temp_directory_path() / ("skillcard-datagen-keys-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "fresh");
  const auto held = std::string(
      "version = 1\n[scp03]\ncounter = \"000102030405060708090a0b0c0d0e0f\"\nsite = "
      "\"101112131415161718191a1b1c1d1e1f\"\n"
      "kiosk = \"202122232425262728292a2b2c2d2e2f\"\n[holder_ref]\n"
      "secret = \"303132333435363738393a3b3c3d3e3f303132333435363738393a3b3c3d3e3f\"\n");
  std::ofstream(dir / "master-keys.toml") << held;
  fs::permissions(dir / "master-keys.toml", fs::perms::owner_read | fs::perms::owner_write);
  const auto gen = run(std::string(SKILLCARD_DATAGEN) + " province --scale 0.0005 --out " + dir.string());
  ASSERT_EQ(gen.code, 0) << gen.out;
  std::ifstream in(dir / "master-keys.toml");
  const std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, held);
  const auto fresh = run(std::string(SKILLCARD_DATAGEN) + " province --scale 0.0005 --out " + (dir / "fresh").string());
  ASSERT_EQ(fresh.code, 0) << fresh.out;
  EXPECT_EQ(fs::status(dir / "fresh" / "master-keys.toml").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  fs::remove_all(dir);
}

// P18: a report never runs on something that is not the registry (the ledger named by mistake,
// an empty file): it would silently count every outside training as missing. Exit 4, the file
// named and left untouched.
TEST_F(ReportTool, P18_ARegistryThatIsNotOneIsRefusedAndLeftUntouched) {
  const auto ledger = *dir_ / "ledger.db";
  const auto before = fs::file_size(ledger);
  auto r = run(report("monthly --year 2026 --month 6 --registry " + ledger.string()));
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_NE(r.out.find("not a registry"), std::string::npos) << r.out;
  EXPECT_EQ(fs::file_size(ledger), before);
  { std::ofstream(*dir_ / "empty.db"); }
  r = run(report("monthly --year 2026 --month 6 --registry " + (*dir_ / "empty.db").string()));
  EXPECT_EQ(r.code, 4) << r.out;
  EXPECT_EQ(fs::file_size(*dir_ / "empty.db"), 0u);
}

// P13: `check` refuses what the import refuses — an outside subsidy of somebody the people file
// does not have — naming the line, instead of calling the files valid.
TEST(Datagen, CheckRefusesASubsidyOfSomeoneNotInThePeopleFile) {
  const auto dir = fs::temp_directory_path() / ("skillcard-datagen-check-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  const std::string datagen = SKILLCARD_DATAGEN;
  ASSERT_EQ(run(datagen + " generate --people 200 --seed 1 --out " + (dir / "a").string()).code, 0);
  ASSERT_EQ(run(datagen + " generate --people 200 --seed 2 --out " + (dir / "b").string()).code, 0);
  const auto ok =
      run(datagen + " check " + (dir / "a" / "people.csv").string() + " " + (dir / "a" / "subsidies.csv").string());
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("all valid"), std::string::npos) << ok.out;
  const auto mixed =
      run(datagen + " check " + (dir / "a" / "people.csv").string() + " " + (dir / "b" / "subsidies.csv").string());
  EXPECT_EQ(mixed.code, 3) << mixed.out;
  EXPECT_NE(mixed.out.find("line 2: citizen_id"), std::string::npos) << mixed.out;
  EXPECT_NE(mixed.out.find("is not in"), std::string::npos) << mixed.out;
  // province writes into an empty folder: a people.csv there is refused, not replaced.
  const auto province = run(datagen + " province --scale 0.0005 --out " + (dir / "a").string());
  EXPECT_EQ(province.code, 2) << province.out;
  EXPECT_NE(province.out.find("people.csv already exists"), std::string::npos) << province.out;
  fs::remove_all(dir);
}

TEST_F(ReportTool, MonthlyReportAsTableJsonAndCsv) {
  const auto reg = " --registry " + (*dir_ / "registry.db").string() + " --year 2026 --month 6";
  const auto table = run(report("monthly" + reg));
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_NE(table.out.find("Monthly report (P18) 2026-06"), std::string::npos) << table.out;
  const auto json = run(report("monthly --json" + reg));
  ASSERT_EQ(json.code, 0) << json.out;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["month"], 6);
  ASSERT_FALSE(j["regions"].empty());
  EXPECT_EQ(j["regions"][0]["region"], "420000");
  const auto csv = run(report("monthly --csv" + reg));
  ASSERT_EQ(csv.code, 0) << csv.out;
  // The CSV's province month line carries the JSON's person-times.
  const auto line = "2026,6,420000,province,month,";
  const auto at = csv.out.find(line);
  ASSERT_NE(at, std::string::npos) << csv.out;
  const auto row = csv.out.substr(at, csv.out.find("\r\n", at) - at);
  std::vector<std::string> fields;
  for (std::size_t p = 0, q; p <= row.size(); p = q + 1) {
    q = row.find(',', p);
    if (q == std::string::npos) q = row.size();
    fields.push_back(row.substr(p, q - p));
  }
  ASSERT_EQ(fields.size(), 13u);
  EXPECT_EQ(std::stoull(fields[10]), j["regions"][0]["month"]["person_times"].get<std::uint64_t>());
}

TEST_F(ReportTool, P19_ProgressWithTheGeneratedTargetsAndABadFile) {
  const auto ok = run(report("progress --json --year 2026 --month 12 --registry " + (*dir_ / "registry.db").string() +
                             " --targets " + (*dir_ / "targets.toml").string()));
  ASSERT_EQ(ok.code, 0) << ok.out;
  const auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["regions"][0]["region"], "420000");
  EXPECT_EQ(j["regions"].size(), 18u);  // the province and its 17 cities
  EXPECT_EQ(j["bases"].size(), 17u);
  std::ofstream(*dir_ / "bad.toml") << "[targets.420000]\nperson_times = 10\n\n[targets.4201]\nperson_times = 1\n";
  const auto bad = run(report("progress --year 2026 --month 12 --registry " + (*dir_ / "registry.db").string() +
                              " --targets " + (*dir_ / "bad.toml").string()));
  EXPECT_EQ(bad.code, 3);
  EXPECT_NE(bad.out.find("bad.toml:4: '4201' is not a 6-digit region code"), std::string::npos) << bad.out;
  // Without the registry the training paid outside this system would be left out (漏统): refused.
  const auto no_registry = run(report("progress --year 2026 --month 12"));
  EXPECT_EQ(no_registry.code, 2) << no_registry.out;
  EXPECT_NE(no_registry.out.find("--registry"), std::string::npos) << no_registry.out;
  EXPECT_EQ(run(report("monthly --year 2026 --month 6")).code, 2);
}

// A refused import into a registry that did not exist leaves none behind: the service must not
// start on an empty registry (it would refuse every voucher, P13).
TEST_F(ReportTool, P13_ARefusedImportIntoAMissingFileCreatesNoFile) {
  const auto fresh = *dir_ / "fresh-registry.db";
  std::ofstream(*dir_ / "bad-people.csv")
      << "citizen_id,name,region,date_of_birth,insured,employed,retired_fisherman,key_groups\n"
         "110105194912310021,王芳,420100,1949-12-31,1,1,0,\n";
  const auto r = run(std::string(SKILLCARD_REPORT) + " import-registry --registry " + fresh.string() + " --people " +
                     (*dir_ / "bad-people.csv").string() + " --subsidies " + (*dir_ / "subsidies.csv").string() +
                     " --master-keys " + (*dir_ / "master-keys.toml").string());
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_FALSE(fs::exists(fresh.string() + ".importing"));
  // The good files import, and the registry appears under its name.
  const auto ok = run(std::string(SKILLCARD_REPORT) + " import-registry --registry " + fresh.string() + " --people " +
                      (*dir_ / "people.csv").string() + " --subsidies " + (*dir_ / "subsidies.csv").string() +
                      " --master-keys " + (*dir_ / "master-keys.toml").string());
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_TRUE(fs::exists(fresh));
}

TEST_F(ReportTool, P17_ReconcileExitsOneAndListsTheUnwrittenVouchers) {
  const auto r = run(report("reconcile --csv --now 1798732800"));  // 2027-01-01 00:00 CST
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("kind,voucher,card,fund,expected,found,detail\r\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("never_written,"), std::string::npos);
  EXPECT_EQ(r.out.find("counter_gap"), std::string::npos);
  EXPECT_EQ(r.out.find("budget_"), std::string::npos);
  const auto settlement = run(report("settlement --year 2026 --month 6"));
  ASSERT_EQ(settlement.code, 0) << settlement.out;
  EXPECT_NE(settlement.out.find("owed (yuan)"), std::string::npos) << settlement.out;
  EXPECT_NE(settlement.out.find("\nall "), std::string::npos) << settlement.out;
}

TEST_F(ReportTool, P13_ImportRefusesABadCitizenIdNamingFileAndLine) {
  std::ifstream in(*dir_ / "people.csv");
  std::string header, first, rest;
  std::getline(in, header);
  std::getline(in, first);
  first[17] = first[17] == '0' ? '1' : '0';  // a wrong check character
  std::ofstream(*dir_ / "bad-people.csv") << header << "\n" << first << "\n";
  const auto r = run(std::string(SKILLCARD_REPORT) + " import-registry --registry " + (*dir_ / "r2.db").string() +
                     " --people " + (*dir_ / "bad-people.csv").string() + " --subsidies " +
                     (*dir_ / "subsidies.csv").string() + " --master-keys " + (*dir_ / "master-keys.toml").string());
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("bad-people.csv: line 2: citizen_id:"), std::string::npos) << r.out;
}

}  // namespace
