// P17, P18, P19 and settlement over hand-made rows: every count here is derived from the rows
// the test builds, so that a wrong rule changes the answer.
#include "skillcard/reports/reports.hpp"

#include <gtest/gtest.h>

#include "skillcard/reports/render.hpp"
#include "skillcard/reports/targets.hpp"
#include "skillcard/schemas/cst.hpp"

namespace skillcard::reports {
namespace {

using ledger::VoucherState;
using schemas::Programme;
using Source = policy::SubsidyRecord::Source;

constexpr int kYear = 2026;

HolderRef holder(unsigned i) {
  HolderRef h{};
  h[0] = static_cast<std::uint8_t>(i * 37);  // spread over the hash's bytes
  h[14] = static_cast<std::uint8_t>(i >> 8);
  h[15] = static_cast<std::uint8_t>(i);
  return h;
}

// UTC seconds of a CST wall-clock time.
UtcSeconds cst(int y, unsigned m, unsigned d, int hh = 12, int mm = 0, int ss = 0) {
  return schemas::cst_start_of(
             std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}}) +
         static_cast<UtcSeconds>(hh * 3600 + mm * 60 + ss);
}

std::uint32_t days(int y, unsigned m, unsigned d) {
  return static_cast<std::uint32_t>(std::chrono::sys_days{
      std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}}}
                                        .time_since_epoch()
                                        .count());
}

// Builds a consistent ledger picture: vouchers, their cards' receipts with counters 1, 2, 3 …,
// and budgets that agree with them.
struct Builder {
  ReportInput in;
  std::uint64_t next_serial = 1;
  std::map<std::string, std::uint32_t> counters;

  std::string card_of(unsigned h) { return std::to_string(4201000000ull + h); }

  VoucherRow& voucher(unsigned h, Programme p = Programme::KeyGroupEmploymentSkills, std::uint32_t occupation = 4040505,
                      std::uint8_t level = 4, FundSource fund = FundSource::SpecialAccount, std::uint32_t face = 180000,
                      UtcSeconds issued = cst(kYear, 3, 1), std::uint32_t issuer = 420102) {
    VoucherRow v;
    v.serial = next_serial++;
    v.holder = holder(h);
    v.issuer = issuer;
    v.programme = p;
    v.fund = fund;
    v.occupation = occupation;
    v.level = level;
    v.face_value_fen = face;
    v.issued_at = issued;
    v.state = VoucherState::Written;
    v.card = card_of(h);
    in.vouchers.push_back(v);
    return in.vouchers.back();
  }
  RedemptionRow& redeem(VoucherRow& v, UtcSeconds at, std::uint32_t site = 10001) {
    v.state = VoucherState::Redeemed;
    RedemptionRow r;
    r.voucher = v.serial;
    r.card = v.card;
    r.counter = ++counters[v.card];
    r.site = site;
    r.server_time = at;
    r.fund = v.fund;
    r.face_value_fen = v.face_value_fen;
    in.redemptions.push_back(r);
    return in.redemptions.back();
  }
  // One redeemed voucher (a subsidised person-time) for holder h at `at`.
  void person_time(unsigned h, UtcSeconds at, Programme p = Programme::KeyGroupEmploymentSkills,
                   std::uint32_t occupation = 4040505, std::uint8_t level = 4, std::uint32_t site = 10001) {
    in.vouchers.reserve(in.vouchers.size() + 1);
    auto& v = voucher(h, p, occupation, level, FundSource::SpecialAccount, 180000, at - 86400);
    redeem(v, at, site);
  }
  void external(unsigned h, Source source, UtcSeconds at, std::uint32_t occupation = 4040505, std::uint8_t level = 4,
                std::uint32_t region = 420102) {
    ExternalRow e;
    e.holder = holder(h);
    e.region = region;
    e.record.source = source;
    e.record.issued_at = at;
    e.record.occupation = occupation;
    e.record.level = level;
    in.external.push_back(e);
  }
  void lives_in(unsigned h, std::uint32_t region) { in.holders.push_back({holder(h), region}); }
  // Budgets that agree with the vouchers.
  void balance_budgets() {
    in.budgets.clear();
    for (auto f : {FundSource::SpecialAccount, FundSource::EmploymentSubsidyFund, FundSource::UnemploymentInsuranceFund,
                   FundSource::OtherDepartment}) {
      ledger::Budget b{f, 1'000'000'000, 0, 0};
      for (const auto& v : in.vouchers) {
        if (v.fund != f) continue;
        if (v.state == VoucherState::Issued || v.state == VoucherState::Written) b.committed_fen += v.face_value_fen;
        if (v.state == VoucherState::Redeemed) b.spent_fen += v.face_value_fen;
      }
      in.budgets.push_back(b);
    }
  }
};

std::uint64_t month_total(const ReportInput& in, unsigned month, std::uint32_t region = 420000) {
  const auto r = monthly_report(in, kYear, month);
  const auto* line = r.line(region);
  return line ? line->month.total_person_times() : 0;
}

// ---------------------------------------------------------------------------------------------
// P18

TEST(Reports, P18_PersonTimeCountedOnceAcrossSystems) {
  Builder b;
  b.person_time(1, cst(kYear, 5, 10));                                        // ours
  b.external(1, Source::OtherBusinessSystem, cst(kYear, 5, 12));              // the same training, other system
  b.external(2, Source::OtherBusinessSystem, cst(kYear, 5, 12));              // someone else: counts
  b.external(1, Source::OtherBusinessSystem, cst(kYear, 5, 12), 4040505, 3);  // holder 1, another level: counts
  const auto r = monthly_report(b.in, kYear, 5);
  ASSERT_NE(r.line(420000), nullptr);
  EXPECT_EQ(r.line(420000)->month.total_person_times(), 3u);
  EXPECT_EQ(r.duplicates_month, 1u);
  EXPECT_EQ(r.duplicates_year_to_date, 1u);
}

TEST(Reports, P18_DuplicateCountedOnceAtItsEarliestReport) {
  Builder b;
  b.external(1, Source::OtherBusinessSystem, cst(kYear, 4, 20));  // reported first by the other system
  b.person_time(1, cst(kYear, 6, 2));                             // then redeemed here
  EXPECT_EQ(month_total(b.in, 4), 1u);
  EXPECT_EQ(month_total(b.in, 6), 0u);
  const auto june = monthly_report(b.in, kYear, 6);
  EXPECT_EQ(june.duplicates_month, 1u);
  EXPECT_EQ(june.line(420000)->year_to_date.total_person_times(), 1u);
  // The same report twice from one system is also one person-time.
  Builder c;
  c.external(3, Source::OtherDepartment, cst(kYear, 4, 1));
  c.external(3, Source::OtherDepartment, cst(kYear, 4, 1));
  EXPECT_EQ(month_total(c.in, 4), 1u);
}

// P3 allows one subsidy per occupation and level, ever: a December training reported again by
// the other system in January is not a second person-time in the new year.
TEST(Reports, P18_ATrainingReportedAgainNextYearIsNotCountedTwice) {
  Builder b;
  b.person_time(1, cst(kYear, 12, 29, 10));
  b.external(1, Source::OtherBusinessSystem, cst(kYear + 1, 1, 5, 0));
  EXPECT_EQ(month_total(b.in, 12), 1u);
  const auto january = monthly_report(b.in, kYear + 1, 1);
  const auto* line = january.line(420000);
  EXPECT_EQ(line ? line->month.total_person_times() : 0u, 0u);
  EXPECT_EQ(january.duplicates_month, 1u);
  // And the other way round: reported outside in December, redeemed here in January.
  Builder c;
  c.external(2, Source::OtherBusinessSystem, cst(kYear, 12, 30, 0));
  c.person_time(2, cst(kYear + 1, 1, 3, 10));
  const auto jan = monthly_report(c.in, kYear + 1, 1);
  EXPECT_EQ(jan.line(420000) ? jan.line(420000)->month.total_person_times() : 0u, 0u);
}

// An outside report carries only its day (stamped 00:00 CST): on the same day ours is the one
// counted, with its own category (an apprenticeship stays an apprenticeship).
TEST(Reports, P18_OnTheSameDayOursIsCountedBeforeAnOutsideReport) {
  Builder b;
  b.person_time(1, cst(kYear, 6, 15, 10), Programme::EnterpriseApprenticeship);
  b.external(1, Source::OtherBusinessSystem, cst(kYear, 6, 15, 0));
  const auto june = monthly_report(b.in, kYear, 6);
  ASSERT_NE(june.line(420000), nullptr);
  EXPECT_EQ(june.line(420000)->month.total_person_times(), 1u);
  EXPECT_EQ(june.line(420000)->month.of(Category::Apprenticeship), 1u);
  EXPECT_EQ(june.duplicates_month, 1u);
}

TEST(Reports, P18_MonthBoundaryIsChinaStandardTime) {
  struct Case {
    UtcSeconds at;
    unsigned month;  // the CST month it belongs to
    int year;
  };
  const Case cases[] = {
      {cst(kYear, 1, 31, 23, 59, 59), 1, kYear},  // 31 Jan 23:59:59 CST = 15:59:59 UTC
      {cst(kYear, 2, 1, 0, 0, 0), 2, kYear},      // 1 Feb 00:00 CST = 31 Jan 16:00 UTC
      {cst(kYear, 12, 31, 23, 59, 0), 12, kYear},
      {cst(kYear + 1, 1, 1, 0, 0, 0), 1, kYear + 1},
  };
  for (const auto& c : cases) {
    Builder b;
    b.person_time(1, c.at);
    for (unsigned m = 1; m <= 12; ++m) {
      const auto r = monthly_report(b.in, c.year, m);
      const auto* line = r.line(420000);
      EXPECT_EQ(line ? line->month.total_person_times() : 0u, m == c.month ? 1u : 0u)
          << "at " << c.at << " month " << m;
    }
    // And never in the other year.
    const auto other = monthly_report(b.in, c.year == kYear ? kYear + 1 : kYear, 12);
    EXPECT_EQ(other.line(420000), nullptr) << "at " << c.at;
  }
  // 31 Jan 16:00 UTC is 1 Feb in CST (UTC would say January).
  EXPECT_EQ(cst(kYear, 2, 1, 0, 0, 0) % 86400, 16u * 3600);
}

TEST(Reports, P18_CategoriesByProgrammeAndSource) {
  Builder b;
  b.person_time(1, cst(kYear, 3, 5), Programme::EnterpriseStaffUpgrade);
  b.person_time(2, cst(kYear, 3, 5), Programme::SpecialConstruction);
  b.person_time(3, cst(kYear, 3, 5), Programme::EnterpriseApprenticeship);
  b.person_time(4, cst(kYear, 3, 5), Programme::KeyGroupEmploymentSkills);
  b.person_time(5, cst(kYear, 3, 5), Programme::EntrepreneurshipSyb);
  b.person_time(6, cst(kYear, 3, 5), Programme::TrainInPlaceOfWork);  // P10 closed: never counted
  b.external(7, Source::SkillUpgrade, cst(kYear, 3, 5));              // not a training person-time
  b.external(8, Source::UnemploymentInsuranceTraining, cst(kYear, 3, 5));
  const auto t = monthly_report(b.in, kYear, 3).line(420000)->month;
  EXPECT_EQ(t.of(Category::EnterpriseStaff), 2u);
  EXPECT_EQ(t.of(Category::Apprenticeship), 1u);
  EXPECT_EQ(t.of(Category::KeyGroup), 3u);
  EXPECT_EQ(t.total_person_times(), 6u);
}

TEST(Reports, P18_OtherDepartmentsAndJobStabilisationTrainingIncluded) {
  Builder b;
  b.external(1, Source::OtherDepartment, cst(kYear, 7, 1), 4040505, 4, 420502);
  b.external(2, Source::JobStabilisationRefund, cst(kYear, 7, 9), 4040505, 4, 420502);
  b.external(3, Source::JobStabilisationRefund, cst(kYear, 7, 9), 4040505, 4, 420502);
  const auto r = monthly_report(b.in, kYear, 7);
  for (const auto code : {420000u, 420500u, 420502u}) {
    ASSERT_NE(r.line(code), nullptr) << code;
    EXPECT_EQ(r.line(code)->month.of(Category::OtherDepartment), 1u);
    EXPECT_EQ(r.line(code)->month.of(Category::JobStabilisation), 2u);
    EXPECT_EQ(r.line(code)->month.total_person_times(), 3u);
  }
}

TEST(Reports, P18_RegionsRollUpCountyCityProvince) {
  Builder b;
  b.lives_in(1, 420102);  // Wuhan, Jiang'an
  b.lives_in(2, 420103);
  b.lives_in(3, 420502);  // Yichang
  b.lives_in(4, 429004);  // Xiantao: a county-level city under the province, its own city
  b.person_time(1, cst(kYear, 8, 3));
  b.person_time(2, cst(kYear, 8, 3));
  b.person_time(3, cst(kYear, 8, 3));
  b.person_time(4, cst(kYear, 8, 3));
  b.person_time(5, cst(kYear, 8, 3));  // unknown to the registry: the issuing bureau's region (420102)
  const auto r = monthly_report(b.in, kYear, 8);
  const std::map<std::uint32_t, std::uint64_t> expected = {{420000, 5}, {420100, 3}, {420102, 2}, {420103, 1},
                                                           {420500, 1}, {420502, 1}, {429004, 1}};
  ASSERT_EQ(r.lines.size(), expected.size());
  for (const auto& [code, n] : expected) {
    ASSERT_NE(r.line(code), nullptr) << code;
    EXPECT_EQ(r.line(code)->month.total_person_times(), n) << code;
  }
  EXPECT_EQ(r.lines.front().region, 420000u);  // province first, then each city before its counties
  EXPECT_EQ(r.line(429004)->level, RegionLevel::City);
  EXPECT_EQ(r.line(420102)->level, RegionLevel::County);
  EXPECT_EQ(city_of(420102), 420100u);
  EXPECT_EQ(province_of(420102), 420000u);
}

TEST(Reports, P18_UnknownRegionIsListedLastNotDropped) {
  Builder b;
  b.person_time(1, cst(kYear, 8, 3));                                       // issuer 420102
  b.external(2, Source::OtherDepartment, cst(kYear, 8, 4), 4040505, 4, 0);  // nobody knows where
  const auto r = monthly_report(b.in, kYear, 8);
  ASSERT_FALSE(r.lines.empty());
  EXPECT_EQ(r.lines.back().region, 0u);
  EXPECT_EQ(r.lines.back().month.total_person_times(), 1u);
  EXPECT_EQ(r.line(420000)->month.total_person_times(), 1u);
  EXPECT_NE(to_table(r).find("unknown"), std::string::npos);
}

TEST(Reports, P18_NewTechnicianAndSeniorTechnicianCertificates) {
  Builder b;
  b.lives_in(1, 420102);
  b.lives_in(2, 420102);
  using K = schemas::CertificateKind;
  b.in.certificates = {
      {holder(1), K::VocationalQualification, 4040505, 2, days(kYear, 9, 3)},  // technician
      {holder(1), K::SkillLevel, 4040505, 2, days(kYear, 9, 20)},              // the same achievement again
      {holder(1), K::SkillLevel, 6310109, 1, days(kYear, 9, 30)},              // senior technician
      {holder(2), K::SkillLevel, 4040505, 3, days(kYear, 9, 5)},               // level 3 (高级工): neither
      {holder(2), K::TrainingCertificate, 4040505, 2, days(kYear, 9, 5)},      // a training certificate: not
      {holder(2), K::SkillLevel, 4100102, 2, days(kYear, 10, 1)},              // October
      {holder(2), K::SkillLevel, 4030201, 2, days(kYear, 8, 31)},              // August
  };
  const auto september = monthly_report(b.in, kYear, 9);
  const auto* sep = september.line(420102);
  ASSERT_NE(sep, nullptr);
  EXPECT_EQ(sep->month.technician, 1u);
  EXPECT_EQ(sep->month.senior_technician, 1u);
  EXPECT_EQ(sep->year_to_date.technician, 2u);  // August's too
  EXPECT_EQ(sep->month.total_person_times(), 0u);
  EXPECT_EQ(monthly_report(b.in, kYear, 10).line(420100)->month.technician, 1u);
  // The same achievement first certified last year is not a new technician this year.
  b.in.certificates.push_back({holder(1), K::VocationalQualification, 6310109, 1, days(kYear - 1, 11, 10)});
  const auto again = monthly_report(b.in, kYear, 9);
  EXPECT_EQ(again.line(420102)->month.senior_technician, 0u);
  EXPECT_EQ(again.line(420102)->month.technician, 1u);
}

TEST(Reports, P18_OnlyRedemptionsNotReversedAreSubsidisedPersonTimes) {
  Builder b;
  b.person_time(1, cst(kYear, 2, 10));
  b.person_time(2, cst(kYear, 2, 10));
  b.in.redemptions.back().reversed = true;
  b.voucher(3);  // issued and written, not yet trained
  EXPECT_EQ(month_total(b.in, 2), 1u);
}

TEST(Reports, P18_MonthsAddUpToTheYear) {
  Builder b;
  for (unsigned i = 0; i < 120; ++i) {
    b.lives_in(i, 420102 + (i % 3));
    b.person_time(i, cst(kYear, 1 + i % 12, 1 + i % 28), Programme::KeyGroupEmploymentSkills, 4040505, 4);
    if (i % 5 == 0) b.external(i, Source::OtherBusinessSystem, cst(kYear, 1 + (i * 7) % 12, 3));  // duplicates
    if (i % 7 == 0) b.external(i, Source::OtherDepartment, cst(kYear, 1 + (i * 5) % 12, 3), 6310109, 5);
  }
  std::uint64_t sum = 0, duplicates = 0;
  for (unsigned m = 1; m <= 12; ++m) {
    const auto r = monthly_report(b.in, kYear, m);
    sum += r.line(420000) ? r.line(420000)->month.total_person_times() : 0;
    duplicates += r.duplicates_month;
  }
  const auto dec = monthly_report(b.in, kYear, 12);
  EXPECT_EQ(sum, dec.line(420000)->year_to_date.total_person_times());
  EXPECT_EQ(duplicates, dec.duplicates_year_to_date);
  EXPECT_EQ(sum + duplicates, b.in.redemptions.size() + b.in.external.size());
  EXPECT_EQ(duplicates, 24u);  // every fifth holder reported twice
}

// ---------------------------------------------------------------------------------------------
// P19

TEST(Reports, P19_DefaultTargetsAreThePolicyValues) {
  for (const auto& t : {Targets::defaults(), targets_from_toml("", "empty.toml")}) {
    ASSERT_TRUE(t.regions.count(420000));
    EXPECT_EQ(t.regions.at(420000).person_times, 550'000u);
    EXPECT_EQ(t.regions.at(420000).apprenticeships, 14'000u);
    EXPECT_EQ(t.base_floor, 2000u);
  }
}

TEST(Reports, P19_ProgressAgainstProvinceCityAndCountyTargets) {
  const auto targets = targets_from_toml(R"(
[targets.420000]
person_times = 10
apprenticeships = 4
[targets.420100]
person_times = 6
apprenticeships = 2
[targets.420102]
person_times = 3
)",
                                         "t.toml");
  Builder b;
  for (unsigned i = 0; i < 5; ++i) b.lives_in(i, i < 4 ? 420102 : 420502);
  b.person_time(0, cst(kYear, 1, 5), Programme::EnterpriseApprenticeship);
  b.person_time(1, cst(kYear, 2, 5), Programme::EnterpriseApprenticeship);
  b.person_time(2, cst(kYear, 3, 5));
  b.person_time(3, cst(kYear, 4, 5));  // after the reporting month: not yet
  b.person_time(4, cst(kYear, 2, 5), Programme::EnterpriseApprenticeship);
  const auto p = progress(b.in, targets, kYear, 3);
  ASSERT_EQ(p.lines.size(), 3u);
  EXPECT_EQ(p.lines[0].region, 420000u);
  EXPECT_EQ(p.lines[0].person_times, 4u);
  EXPECT_EQ(p.lines[0].apprenticeships, 3u);
  EXPECT_EQ(p.lines[0].permille(), 400u);
  EXPECT_EQ(p.lines[0].apprenticeship_permille(), 750u);
  EXPECT_EQ(p.lines[1].region, 420100u);
  EXPECT_EQ(p.lines[1].person_times, 3u);
  EXPECT_EQ(p.lines[1].permille(), 500u);
  EXPECT_EQ(p.lines[2].region, 420102u);
  EXPECT_EQ(p.lines[2].permille(), 1000u);
  EXPECT_FALSE(p.lines[2].apprenticeship_permille().has_value());
  EXPECT_EQ(progress(b.in, targets, kYear, 4).lines[0].person_times, 5u);
}

TEST(Reports, P19_HighSkillBaseFloorOfTwoThousand) {
  auto targets = targets_from_toml(R"(
[high_skill_bases]
[[high_skill_bases.bases]]
provider = 20001
name = "武汉高技能人才培训基地"
[[high_skill_bases.bases]]
provider = 20002
name = "宜昌高技能人才培训基地"
)",
                                   "bases.toml");
  ASSERT_EQ(targets.base_floor, 2000u);
  Builder b;
  b.in.vouchers.reserve(4000);
  b.in.redemptions.reserve(4000);
  for (unsigned i = 0; i < 2000; ++i)
    b.person_time(i, cst(kYear, 1 + i % 6, 10), Programme::KeyGroupEmploymentSkills, 4040505, 4, 20001);
  for (unsigned i = 0; i < 1999; ++i)
    b.person_time(3000 + i, cst(kYear, 6, 10), Programme::KeyGroupEmploymentSkills, 4040505, 4, 20002);
  // An earlier outside report of one of base 20001's trainings: the province counts it once, but
  // the base still delivered it.
  b.external(10, Source::OtherBusinessSystem, cst(kYear, 1, 2));
  const auto p = progress(b.in, targets, kYear, 12);
  ASSERT_EQ(p.bases.size(), 2u);
  EXPECT_EQ(p.bases[0].provider, 20001u);
  EXPECT_EQ(p.bases[0].person_times, 2000u);
  EXPECT_TRUE(p.bases[0].met());
  EXPECT_EQ(p.bases[1].person_times, 1999u);
  EXPECT_FALSE(p.bases[1].met());
  b.person_time(5000, cst(kYear, 7, 1), Programme::KeyGroupEmploymentSkills, 4040505, 4, 20002);
  const auto q = progress(b.in, targets, kYear, 12);
  EXPECT_EQ(q.bases[1].person_times, 2000u);
  EXPECT_TRUE(q.bases[1].met());
}

// A base's name comes from targets.toml as typed; the progress CSV a clerk opens in a
// spreadsheet never runs it as a formula (OWASP "CSV injection").
TEST(Reports, P19_ProgressCsvDefusesAFormulaInABaseName) {
  auto targets = targets_from_toml(R"toml(
[high_skill_bases]
[[high_skill_bases.bases]]
provider = 20001
name = "=HYPERLINK(\"http://x\",\"base\")"
)toml",
                                   "bases.toml");
  Builder b;
  const auto csv = to_csv(progress(b.in, targets, kYear, 12));
  EXPECT_NE(csv.find(",\"'=HYPERLINK(\"\"http://x\"\",\"\"base\"\")\","), std::string::npos) << csv;
  EXPECT_EQ(csv.find(",=HYPERLINK"), std::string::npos) << csv;
  EXPECT_EQ(csv.find(",\"=HYPERLINK"), std::string::npos) << csv;
}

TEST(Reports, P19_BadTargetsFileIsRefusedNamingLineAndReason) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"[targets.420000]\nperson_times = -1\n", "t.toml:2: 'person_times' = -1 is outside"},
      {"[targets.420000]\nperson_times = \"many\"\n", "t.toml:2: 'person_times' must be an integer"},
      {"\n[targets.42000]\nperson_times = 5\n", "t.toml:2: '42000' is not a 6-digit region code"},
      {"[targets.420100]\napprenticeships = 3\n", "t.toml:1: 'person_times' is missing"},
      {"[targets.420100]\nperson_times = 2\napprenticeships = 3\n", "cannot exceed them"},
      {"[targets.420100]\nperson_times = 2\nbudget = 3\n", "t.toml:3: unknown setting 'budget'"},
      {"[goals]\n", "t.toml:1: unknown setting 'goals'"},
      {"[high_skill_bases]\nfloor = 2000\n[[high_skill_bases.bases]]\nprovider = 1\n", "needs a non-empty 'name'"},
      {"[targets.420000\n", "t.toml:1:"},
  };
  for (const auto& c : cases) {
    try {
      targets_from_toml(c.text, "t.toml");
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const TargetsError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Settlement

TEST(Reports, SettlementPerProviderAndFundInIntegerFen) {
  Builder b;
  const auto may = cst_month_period(kYear, 5);
  struct Spec {
    unsigned holder;
    FundSource fund;
    std::uint32_t face;
    std::uint32_t site;
    UtcSeconds at;
    UtcSeconds reversed_at;  // 0: not reversed
  };
  const Spec specs[] = {
      {1, FundSource::SpecialAccount, 180001, 10001, may.from, 0},  // first instant of May
      {2, FundSource::SpecialAccount, 99, 10001, may.to - 1, 0},    // last instant of May
      {3, FundSource::EmploymentSubsidyFund, 150000, 10001, cst(kYear, 5, 9), 0},
      {4, FundSource::SpecialAccount, 70000, 10002, cst(kYear, 5, 9), 0},
      {5, FundSource::SpecialAccount, 50000, 10002, cst(kYear, 5, 9), cst(kYear, 5, 20)},  // reversed in May
      {6, FundSource::SpecialAccount, 40000, 10002, may.to, 0},                            // June
      {7, FundSource::SpecialAccount, 30000, 10002, may.from - 1, 0},                      // April
      // Paid with April's settlement, reversed in May: recovered in May, April unchanged.
      {8, FundSource::SpecialAccount, 25000, 10002, cst(kYear, 4, 9), cst(kYear, 5, 10)},
      // Redeemed in May, reversed in June: owed in May (May's settlement never changes).
      {9, FundSource::EmploymentSubsidyFund, 11000, 10001, cst(kYear, 5, 11), may.to + 100},
  };
  b.in.vouchers.reserve(16);
  for (const auto& s : specs) {
    auto& v = b.voucher(s.holder, Programme::KeyGroupEmploymentSkills, 4040505, 4, s.fund, s.face);
    auto& r = b.redeem(v, s.at, s.site);
    r.reversed = s.reversed_at != 0;
    r.reversed_at = s.reversed_at;
  }
  const auto st = settlement(b.in.redemptions, may);
  ASSERT_EQ(st.lines.size(), 3u);
  EXPECT_EQ(st.lines[0], (SettlementLine{10001, FundSource::SpecialAccount, 2, 180100}));
  EXPECT_EQ(st.lines[1], (SettlementLine{10001, FundSource::EmploymentSubsidyFund, 2, 161000}));
  EXPECT_EQ(st.lines[2], (SettlementLine{10002, FundSource::SpecialAccount, 1, 70000, 1, 25000}));
  EXPECT_EQ(st.lines[2].net_fen(), 45000);
  EXPECT_EQ(st.count, 5u);
  EXPECT_EQ(st.total_fen, 180100 + 161000 + 70000);
  EXPECT_EQ(st.recovered_count, 1u);
  EXPECT_EQ(st.recovered_fen, 25000);
  EXPECT_EQ(st.net_fen(), 180100 + 161000 + 70000 - 25000);
  EXPECT_EQ(st.reversed_excluded, 1u);
  ASSERT_EQ(st.by_fund.size(), 2u);
  EXPECT_EQ(st.by_fund[0], (SettlementLine{0, FundSource::SpecialAccount, 3, 250100, 1, 25000}));
  EXPECT_EQ(yuan(st.total_fen), "4111.00");
  EXPECT_EQ(yuan(180101), "1801.01");

  // April, settled before the reversal and again after it: the same.
  const auto april = settlement(b.in.redemptions, cst_month_period(kYear, 4));
  EXPECT_EQ(april.count, 2u);
  EXPECT_EQ(april.total_fen, 30000 + 25000);
  EXPECT_EQ(april.recovered_count, 0u);
  // June recovers the May redemption reversed in June.
  const auto june = settlement(b.in.redemptions, cst_month_period(kYear, 6));
  EXPECT_EQ(june.count, 1u);
  EXPECT_EQ(june.total_fen, 40000);
  EXPECT_EQ(june.recovered_fen, 11000);
  EXPECT_EQ(june.net_fen(), 29000);
  // Summed over the year, what is paid nets to the redemptions that stand.
  const auto year = settlement(b.in.redemptions, {cst_month_period(kYear, 1).from, cst_month_period(kYear, 12).to});
  EXPECT_EQ(year.net_fen(), 180100 + 150000 + 70000 + 40000 + 30000);
}

// ---------------------------------------------------------------------------------------------
// P17

Builder agreeing_ledger() {
  Builder b;
  b.in.vouchers.reserve(64);
  for (unsigned h = 1; h <= 4; ++h) {
    for (unsigned k = 0; k < 3; ++k) {
      auto& v = b.voucher(h, Programme::KeyGroupEmploymentSkills, 4040505 + k, 4,
                          k == 1 ? FundSource::EmploymentSubsidyFund : FundSource::SpecialAccount, 100000 + k);
      if (k < 2) b.redeem(v, cst(kYear, 5, 1 + k));
    }
  }
  b.balance_budgets();
  return b;
}

constexpr UtcSeconds kGrace = 7 * 86400;

TEST(Reports, P17_AgreeingLedgerHasNoDifferences) {
  auto b = agreeing_ledger();
  const auto r = reconcile(b.in, cst(kYear, 6, 1), kGrace);
  EXPECT_TRUE(r.agrees());
  for (const auto& d : r.differences) ADD_FAILURE() << to_string(d.kind) << " " << d.detail;
  EXPECT_EQ(r.cards, 4u);
  EXPECT_EQ(r.funds.size(), 4u);
  EXPECT_EQ(r.funds[0].vouchers_spent_fen, r.funds[0].redemptions_fen);
  EXPECT_EQ(r.funds[0].vouchers_spent_fen, 4 * 100000);
}

TEST(Reports, P17_ReconciliationFindsEachKindOfDifference) {
  struct Case {
    const char* what;
    std::function<void(Builder&)> tamper;
    std::vector<DifferenceKind> expected;  // in the order reconcile lists them
  };
  const auto first_redeemed = [](Builder& b) -> VoucherRow& { return b.in.vouchers[0]; };
  const std::vector<Case> cases = {
      {"budget committed too high",
       [](Builder& b) { b.in.budgets[0].committed_fen += 5; },
       {DifferenceKind::BudgetCommitted}},
      {"budget spent too low", [](Builder& b) { b.in.budgets[1].spent_fen -= 1; }, {DifferenceKind::BudgetSpent}},
      {"voucher redeemed without a redemption",
       [](Builder& b) {
         b.in.vouchers[2].state = VoucherState::Redeemed;  // holder 1's third voucher, never redeemed
         b.balance_budgets();
       },
       {DifferenceKind::RedemptionsSpent, DifferenceKind::RedeemedWithoutRedemption}},
      {"redemption on a voucher still written",
       [&](Builder& b) {
         first_redeemed(b).state = VoucherState::Written;
         b.balance_budgets();
       },
       {DifferenceKind::RedemptionsSpent, DifferenceKind::RedemptionOnUnredeemedVoucher}},
      {"reversed but not voided",
       [](Builder& b) {
         b.in.redemptions[0].reversed = true;  // voucher 1 stays redeemed in the voucher table
         b.in.vouchers[0].state = VoucherState::Written;
         b.balance_budgets();
       },
       {DifferenceKind::ReversedButNotVoided}},
      {"redemption of an unknown voucher",
       [](Builder& b) {
         b.in.redemptions.push_back(b.in.redemptions.back());
         b.in.redemptions.back().voucher = 999;
         b.in.redemptions.back().counter = 3;
         b.in.redemptions.back().face_value_fen = 0;  // keeps the fund totals equal: only this row differs
       },
       {DifferenceKind::RedemptionOfUnknownVoucher}},
      {"receipt from another card",
       [](Builder& b) { b.in.vouchers[0].card = "4201000099"; },
       {DifferenceKind::RedemptionOnOtherCard}},
      {"counter gap",
       [](Builder& b) {
         b.in.redemptions[1].counter = 4;  // holder 1's card: 1, 4 → 2..3 missing
       },
       {DifferenceKind::CounterGap}},
      {"counter duplicate", [](Builder& b) { b.in.redemptions[1].counter = 1; }, {DifferenceKind::CounterDuplicate}},
      {"never written to a card",
       [](Builder& b) {
         b.in.vouchers[2].state = VoucherState::Issued;
         b.in.vouchers[2].issued_at = cst(kYear, 5, 1);
       },
       {DifferenceKind::NeverWritten}},
  };
  for (const auto& c : cases) {
    auto b = agreeing_ledger();
    c.tamper(b);
    const auto r = reconcile(b.in, cst(kYear, 6, 1), kGrace);
    std::vector<DifferenceKind> kinds;
    for (const auto& d : r.differences) kinds.push_back(d.kind);
    EXPECT_EQ(kinds, c.expected) << c.what;
  }
}

// P13/P17: a voucher moved to a replacement card keeps its claims and issued_at, but waits to
// be written from the moment of the move: within the grace of the move it is no difference.
TEST(Reports, P17_AMovedVoucherIsNotNeverWrittenWithinTheGraceOfTheMove) {
  auto b = agreeing_ledger();
  b.in.vouchers[2].state = VoucherState::Issued;
  b.in.vouchers[2].issued_at = cst(kYear, 3, 1);
  b.in.vouchers[2].moved_at = cst(kYear, 6, 1) - 3600;  // the card was reported lost an hour ago
  EXPECT_TRUE(reconcile(b.in, cst(kYear, 6, 1), kGrace).differences.empty());
  const auto later = reconcile(b.in, cst(kYear, 6, 1) + kGrace, kGrace);
  ASSERT_EQ(later.differences.size(), 1u);
  EXPECT_EQ(later.differences[0].kind, DifferenceKind::NeverWritten);
}

TEST(Reports, P17_DifferencesNameTheirVoucherAndCard) {
  auto b = agreeing_ledger();
  b.in.redemptions[1].counter = 5;                // holder 1's card 4201000001, voucher 2
  b.in.vouchers[5].state = VoucherState::Issued;  // holder 2's third voucher
  b.in.vouchers[5].issued_at = cst(kYear, 5, 20);
  const auto r = reconcile(b.in, cst(kYear, 6, 1), kGrace);
  ASSERT_EQ(r.differences.size(), 2u);
  EXPECT_EQ(r.differences[0].kind, DifferenceKind::NeverWritten);
  EXPECT_EQ(r.differences[0].voucher, 6u);
  EXPECT_EQ(r.differences[0].card, "4201000002");
  EXPECT_EQ(r.differences[1].kind, DifferenceKind::CounterGap);
  EXPECT_EQ(r.differences[1].voucher, 2u);
  EXPECT_EQ(r.differences[1].card, "4201000001");
  EXPECT_EQ(r.differences[1].expected, 2);
  EXPECT_EQ(r.differences[1].found, 5);
  // Within the grace period the unwritten voucher is not a difference yet.
  EXPECT_EQ(reconcile(b.in, cst(kYear, 5, 26), kGrace).differences.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Renderings

TEST(Reports, RenderingsCarryTheSameNumbers) {
  Builder b;
  b.lives_in(1, 420102);
  b.person_time(1, cst(kYear, 5, 10), Programme::EnterpriseApprenticeship);
  b.person_time(2, cst(kYear, 5, 11));
  const auto r = monthly_report(b.in, kYear, 5);
  const auto j = to_json(r);
  EXPECT_EQ(j["regions"][0]["region"], "420000");
  EXPECT_EQ(j["regions"][0]["month"]["person_times"], 2);
  EXPECT_EQ(j["regions"][0]["month"]["apprenticeship"], 1);
  const auto csv = to_csv(r);
  EXPECT_NE(csv.find("2026,5,420000,province,month,0,1,1,0,0,2,0,0\r\n"), std::string::npos) << csv;
  const auto table = to_table(r);
  EXPECT_NE(table.find("\n420000 "), std::string::npos) << table;      // the province flush left
  EXPECT_NE(table.find("\n    420102 "), std::string::npos) << table;  // a county indented under its city
  b.balance_budgets();
  b.in.budgets[0].spent_fen += 7;
  const auto rec = reconcile(b.in, cst(kYear, 6, 1), kGrace);
  EXPECT_EQ(to_json(rec)["differences"][0]["kind"], "budget_spent");
  EXPECT_EQ(to_json(rec)["agrees"], false);
  EXPECT_NE(to_csv(rec).find("budget_spent,,,special_account,360000,360007,"), std::string::npos) << to_csv(rec);
  const auto st = settlement(b.in.redemptions, cst_month_period(kYear, 5));
  EXPECT_EQ(to_json(st)["total_fen"], 360000);
  EXPECT_NE(to_table(st).find("3600.00"), std::string::npos);
}

}  // namespace
}  // namespace skillcard::reports
