// The policy engine, rule by rule (POLICY.md P1-P16). Every test names the rule it shows; CI
// switches each rule off in turn and requires that rule's tests to fail (see CMakeLists.txt).
#include "skillcard/policy/policy.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "skillcard/schemas/cst.hpp"
#include "skillcard/schemas/refusals.hpp"

using namespace skillcard;
using namespace skillcard::policy;
using namespace std::chrono;
using schemas::FundSource;
using schemas::Programme;

namespace {

const std::uint64_t kNow = schemas::cst_start_of(2026y / November / 28) + 10 * 3600;  // 10:00 CST

PolicyConfig config() {
  auto c = PolicyConfig::from_toml(R"(
[defaults]
annual_limit = 3

[regions.420500]
fisherman_max_age = 65
entrepreneurship_fully_online = true

[[standards]]
programme = 3
occupation = "*"
level = 4
amount_fen = 150000

[[standards]]
programme = 3
occupation = "4-04-05-05"
level = 3
amount_fen = 123401

[[standards]]
programme = 5
level = 5
amount_fen = 100000

[[standards]]
programme = 1
level = 4
amount_fen = 80000
)",
                                   "test.toml");
  // The mutation job: SKILLCARD_POLICY_DISABLE=P1 switches P1 off for this whole binary.
  if (const char* off = std::getenv("SKILLCARD_POLICY_DISABLE")) {
    std::stringstream ss(off);
    for (std::string rule; std::getline(ss, rule, ',');) c.disabled_rules.insert(rule);
  }
  return c;
}

RegistryFacts unemployed_holder() {
  RegistryFacts f;
  f.known = true;
  f.date_of_birth = 1990y / March / 7;
  f.key_groups = {KeyGroup::RegisteredUnemployed};
  return f;
}

IssueRequest request(FundSource fund = FundSource::SpecialAccount) {
  IssueRequest r;
  r.region = 420100;
  r.programme = Programme::KeyGroupEmploymentSkills;
  r.occupation = 4040505;
  r.level = 4;
  r.fund = fund;
  r.planned_hours = 120;
  r.planned_online_hours = 36;
  r.now = kNow;
  return r;
}

SubsidyRecord subsidy(std::uint64_t at, std::uint32_t occupation = 6010101, std::uint8_t level = 5,
                      FundSource fund = FundSource::SpecialAccount,
                      SubsidyRecord::Source source = SubsidyRecord::Source::Ours) {
  SubsidyRecord r;
  r.source = source;
  r.issued_at = at;
  r.fund = fund;
  r.occupation = occupation;
  r.level = level;
  return r;
}

std::vector<std::string> codes(const std::vector<Violation>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(x.code);
  return out;
}

bool has(const std::vector<Violation>& v, const std::string& code) {
  return std::any_of(v.begin(), v.end(), [&](const Violation& x) { return x.code == code; });
}

constexpr std::int64_t kBudget = 10'000'000;

// P7 fails closed: no standard for the training means the policy is not configured for it.
bool refused_as_not_configured(const PolicyConfig& c, const IssueRequest& r) {
  return codes(decide_issue(c, r, unemployed_holder(), {}, kBudget).violations) ==
         std::vector<std::string>{"POLICY_NOT_CONFIGURED"};
}

// The P7 tests' default table: one row for programme 3 at level 4, every region and occupation.
constexpr std::string_view kDefaultRow = "[[standards]]\nprogramme = 3\nlevel = 4\namount_fen = 100000\n";

schemas::VoucherClaims voucher() {
  schemas::VoucherClaims v;
  v.issuer = 420100;
  v.id = {0, 0, 0, 0, 0, 0, 0, 9};
  v.programme = Programme::KeyGroupEmploymentSkills;
  v.occupation = 4040505;
  v.level = 4;
  v.fund = FundSource::SpecialAccount;
  v.face_value_fen = 180000;
  v.planned_hours = 100;
  v.planned_online_hours = 30;
  v.eligible_regions = {420100};
  v.issued_at = v.not_before = kNow - 10 * 86400;
  v.expires_at = kNow + 80 * 86400;
  return v;
}

RedemptionRequest redemption(std::uint16_t classroom = 70, std::uint16_t online = 30) {
  RedemptionRequest r;
  r.voucher = voucher();
  r.site_region = 420102;
  r.site_provider = 10001;
  r.classroom_hours = classroom;
  r.online_hours = online;
  r.now = kNow;
  r.terminal_time = kNow;
  return r;
}

}  // namespace

TEST(Policy, AllowedIssueCarriesAmountAndExpiry) {
  const auto d = decide_issue(config(), request(FundSource::EmploymentSubsidyFund), unemployed_holder(), {}, kBudget);
  EXPECT_TRUE(d.allowed()) << ::testing::PrintToString(codes(d.violations));
  EXPECT_EQ(d.amount_fen, 150000u);  // no uplift outside the special account
  EXPECT_EQ(schemas::cst_date(d.expires_at), 2027y / February / 28);
}

// --- P1 -------------------------------------------------------------------------------------
TEST(Policy, P1_FourthSubsidyInOneYearIsRefused) {
  const std::vector history{
      subsidy(kNow - 100 * 86400), subsidy(kNow - 50 * 86400, 6010102),
      subsidy(kNow - 10 * 86400, 6010103, 5, FundSource::OtherDepartment, SubsidyRecord::Source::OtherDepartment)};
  const auto d = decide_issue(config(), request(), unemployed_holder(), history, kBudget);
  ASSERT_EQ(codes(d.violations), std::vector<std::string>{"P1_ANNUAL_LIMIT"});
  EXPECT_EQ(d.violations[0].values.at("limit"), "3");
  EXPECT_EQ(d.year_count, 3);
}

TEST(Policy, P1_ThirdSubsidyIsAllowed) {
  const std::vector history{subsidy(kNow - 100 * 86400), subsidy(kNow - 50 * 86400, 6010102)};
  EXPECT_TRUE(decide_issue(config(), request(), unemployed_holder(), history, kBudget).allowed());
}

TEST(Policy, P1_YearsAreChinaStandardTime) {
  // Three subsidies issued on 31 Dec 2026 at 23:30 CST (15:30 UTC) count in 2026; a request at
  // 00:10 CST on 1 Jan 2027 (16:10 UTC on 31 Dec) is in a new year.
  const auto dec31 = schemas::cst_start_of(2026y / December / 31) + 23 * 3600 + 1800;
  const std::vector history{subsidy(dec31), subsidy(dec31, 6010102), subsidy(dec31, 6010103)};
  auto r = request();
  r.now = schemas::cst_start_of(2027y / January / 1) + 600;
  EXPECT_TRUE(decide_issue(config(), r, unemployed_holder(), history, kBudget).allowed());
  r.now = dec31 + 600;  // 23:40 CST, still 2026
  EXPECT_TRUE(has(decide_issue(config(), r, unemployed_holder(), history, kBudget).violations, "P1_ANNUAL_LIMIT"));
}

TEST(Policy, P1_VoidedAndExpiredVouchersNoLongerCount) {
  std::vector history{subsidy(kNow - 100 * 86400), subsidy(kNow - 50 * 86400, 6010102), subsidy(kNow - 9, 6010103)};
  history[2].voided_or_expired_unredeemed = true;
  EXPECT_TRUE(decide_issue(config(), request(), unemployed_holder(), history, kBudget).allowed());
}

TEST(Policy, P1_RecheckedAtRedemption) {
  // Three other subsidies in the voucher's year reached the registry after it was issued.
  const auto v = voucher();
  const std::vector history{
      subsidy(v.issued_at - 5, 6010101, 5, FundSource::OtherDepartment, SubsidyRecord::Source::OtherBusinessSystem),
      subsidy(v.issued_at - 6, 6010102, 5, FundSource::OtherDepartment, SubsidyRecord::Source::OtherBusinessSystem),
      subsidy(v.issued_at - 7, 6010103, 5, FundSource::OtherDepartment, SubsidyRecord::Source::OtherDepartment)};
  EXPECT_TRUE(has(decide_redemption(config(), redemption(), history).violations, "P1_ANNUAL_LIMIT"));
  EXPECT_TRUE(decide_redemption(config(), redemption(), {history[0], history[1]}).allowed());
}

// --- P2 -------------------------------------------------------------------------------------
TEST(Policy, P2_SecondEmploymentFundSubsidyInAYearIsRefused) {
  const std::vector history{subsidy(kNow - 30 * 86400, 6010101, 5, FundSource::EmploymentSubsidyFund)};
  const auto d =
      decide_issue(config(), request(FundSource::EmploymentSubsidyFund), unemployed_holder(), history, kBudget);
  EXPECT_EQ(codes(d.violations), std::vector<std::string>{"P2_EMPLOYMENT_FUND_LIMIT"});
  // From another fund it is fine.
  EXPECT_TRUE(
      decide_issue(config(), request(FundSource::SpecialAccount), unemployed_holder(), history, kBudget).allowed());
}

// P13's "before paying": another system's employment-fund subsidy in the voucher's year that the
// registry learnt of after the voucher was issued.
TEST(Policy, P2_RecheckedAtRedemption) {
  auto ask = redemption();
  ask.voucher.fund = FundSource::EmploymentSubsidyFund;
  const std::vector history{subsidy(ask.voucher.issued_at + 86400, 6010101, 5, FundSource::EmploymentSubsidyFund,
                                    SubsidyRecord::Source::OtherBusinessSystem)};
  EXPECT_EQ(codes(decide_redemption(config(), ask, history).violations),
            std::vector<std::string>{"P2_EMPLOYMENT_FUND_LIMIT"});
  // Our own employment-fund voucher issued after this one is that voucher's to refuse, not this one's.
  auto ours_later = history[0];
  ours_later.source = SubsidyRecord::Source::Ours;
  ours_later.voucher = {0, 0, 0, 0, 0, 0, 0, 10};
  EXPECT_TRUE(decide_redemption(config(), ask, {ours_later}).allowed());
  ask.voucher.fund = FundSource::SpecialAccount;
  EXPECT_TRUE(decide_redemption(config(), ask, history).allowed());
}

// --- P3, P4 ---------------------------------------------------------------------------------
TEST(Policy, P3_SameOccupationAndLevelOnceEver) {
  const std::vector history{subsidy(kNow - 3 * 365 * 86400, 4040505, 4)};
  EXPECT_EQ(codes(decide_issue(config(), request(), unemployed_holder(), history, kBudget).violations),
            std::vector<std::string>{"P3_SAME_OCCUPATION_LEVEL"});
  auto higher = request();
  higher.level = 3;  // the next level up is a new subsidy
  EXPECT_TRUE(decide_issue(config(), higher, unemployed_holder(), history, kBudget).allowed());
}

TEST(Policy, P4_NotCombinedWithUnemploymentInsuranceOrSkillUpgradeSubsidies) {
  for (const auto source :
       {SubsidyRecord::Source::UnemploymentInsuranceTraining, SubsidyRecord::Source::SkillUpgrade}) {
    const std::vector history{subsidy(kNow - 400 * 86400, 4040505, 4, FundSource::UnemploymentInsuranceFund, source)};
    EXPECT_EQ(codes(decide_issue(config(), request(), unemployed_holder(), history, kBudget).violations),
              std::vector<std::string>{"P4_COMBINED_SUBSIDY"});
  }
}

TEST(Policy, P3_RecheckedAtRedemption) {
  const auto v = voucher();
  const std::vector history{subsidy(v.issued_at + 86400, v.occupation, v.level, FundSource::OtherDepartment,
                                    SubsidyRecord::Source::OtherDepartment)};
  EXPECT_EQ(codes(decide_redemption(config(), redemption(), history).violations),
            std::vector<std::string>{"P3_SAME_OCCUPATION_LEVEL"});
  auto other_level = history;
  other_level[0].level = 3;
  EXPECT_TRUE(decide_redemption(config(), redemption(), other_level).allowed());
  // The voucher itself is not its own repeat.
  auto itself = subsidy(v.issued_at, v.occupation, v.level);
  itself.voucher = v.id;
  EXPECT_TRUE(decide_redemption(config(), redemption(), {itself}).allowed());
}

TEST(Policy, P4_RecheckedAtRedemption) {
  const auto v = voucher();
  for (const auto source :
       {SubsidyRecord::Source::UnemploymentInsuranceTraining, SubsidyRecord::Source::SkillUpgrade}) {
    const std::vector history{
        subsidy(v.issued_at + 86400, v.occupation, v.level, FundSource::UnemploymentInsuranceFund, source)};
    EXPECT_EQ(codes(decide_redemption(config(), redemption(), history).violations),
              std::vector<std::string>{"P4_COMBINED_SUBSIDY"});
  }
}

// --- P5, P7 ---------------------------------------------------------------------------------
TEST(Policy, P5_KeyGroupsGetTwentyPercentMoreFromTheSpecialAccount) {
  auto r = request(FundSource::SpecialAccount);
  r.level = 3;  // standard 1 234.01 yuan: +20% = 148 081.2 fen -> 148 081
  EXPECT_EQ(decide_issue(config(), r, unemployed_holder(), {}, kBudget).amount_fen, 148081u);
  auto not_key_group = unemployed_holder();
  not_key_group.key_groups.clear();
  auto staff = request(FundSource::SpecialAccount);
  staff.programme = Programme::EnterpriseStaffUpgrade;
  not_key_group.insured = true;
  not_key_group.employed = true;
  EXPECT_EQ(decide_issue(config(), staff, not_key_group, {}, kBudget).amount_fen, 80000u);
  EXPECT_EQ(
      decide_issue(config(), request(FundSource::EmploymentSubsidyFund), unemployed_holder(), {}, kBudget).amount_fen,
      150000u);
}

TEST(Policy, P5_RoundingIsHalfUpToTheFen) {
  EXPECT_EQ(with_uplift(1234, 20), 1481u);  // 1480.8
  EXPECT_EQ(with_uplift(1, 20), 1u);        // 1.2
  EXPECT_EQ(with_uplift(3, 50), 5u);        // 4.5 rounds up
  EXPECT_EQ(with_uplift(150000, 20), 180000u);
}

TEST(Policy, P7_AmountComesFromTheStandardTable) {
  auto r = request();
  EXPECT_EQ(decide_issue(config(), r, unemployed_holder(), {}, kBudget).amount_fen, 180000u);  // 1 500 yuan + 20%
  r.level = 2;  // no standard: the policy is not configured for it, so it refuses (fail closed)
  EXPECT_TRUE(refused_as_not_configured(config(), r));
}

// "The region's current standard table": a county's own row, else its city's, else its
// province's, else the table without a region; the occupation's row before the any-occupation
// row at each of them.
TEST(Policy, P7_ARegionsOwnTableComesBeforeItsCitysItsProvincesAndTheDefault) {
  const auto c = PolicyConfig::from_toml(std::string(kDefaultRow) + R"(
[[standards]]
region = "420000"
programme = 3
occupation = "4-04-05-05"
level = 4
amount_fen = 110000

[[standards]]
region = "420500"
programme = 3
level = 4
amount_fen = 120000

[[standards]]
region = "420502"
programme = 3
occupation = "4-04-05-05"
level = 4
amount_fen = 130000
)",
                                         "t.toml");
  auto r = request(FundSource::EmploymentSubsidyFund);  // no P5 uplift: the base itself
  const auto amount = [&](std::uint32_t region, std::uint32_t occupation) {
    r.region = region;
    r.occupation = occupation;
    return decide_issue(c, r, unemployed_holder(), {}, kBudget).amount_fen;
  };
  EXPECT_EQ(amount(420502, 4040505), 130000u);  // the county's own row
  EXPECT_EQ(amount(420502, 6010101), 120000u);  // its city's any-occupation row
  EXPECT_EQ(amount(420503, 4040505), 120000u);  // another county of the city: the city's table
  EXPECT_EQ(amount(420100, 4040505), 110000u);  // Wuhan: the province's row for the occupation
  EXPECT_EQ(amount(420100, 6010101), 100000u);  // … and the default table for the rest
  EXPECT_EQ(amount(430100, 4040505), 100000u);  // another province: the default table
  r.level = 3;
  EXPECT_TRUE(refused_as_not_configured(c, r));
}

// "Current": a revised row takes effect on its CST date; vouchers issued before keep the old one.
TEST(Policy, P7_ARevisedStandardAppliesFromItsCstDate) {
  const auto c = PolicyConfig::from_toml(std::string(kDefaultRow) + R"(
[[standards]]
programme = 3
level = 4
amount_fen = 125000
from = 2026-12-01

[[standards]]
region = "420100"
programme = 3
level = 4
amount_fen = 140000
from = 2027-01-01
)",
                                         "t.toml");
  auto r = request(FundSource::EmploymentSubsidyFund);
  const auto amount = [&](std::uint64_t when) {
    r.now = when;
    return decide_issue(c, r, unemployed_holder(), {}, kBudget).amount_fen;
  };
  const auto december = schemas::cst_start_of(2026y / December / 1);
  EXPECT_EQ(amount(december - 1), 100000u);  // 23:59:59 CST on 30 November
  EXPECT_EQ(amount(december), 125000u);      // 00:00 CST on 1 December (16:00 UTC the day before)
  EXPECT_EQ(amount(schemas::cst_start_of(2027y / January / 1) - 1), 125000u);
  EXPECT_EQ(amount(schemas::cst_start_of(2027y / January / 1)), 140000u);  // Wuhan's own table from then
  r.region = 420500;
  EXPECT_EQ(amount(schemas::cst_start_of(2027y / January / 1)), 125000u);  // Yichang keeps the default's
}

// --- P6 -------------------------------------------------------------------------------------
TEST(Policy, P6_AgeSixteenToSixty) {
  auto f = unemployed_holder();
  f.date_of_birth = 2010y / November / 29;  // 16 tomorrow
  EXPECT_TRUE(has(decide_issue(config(), request(), f, {}, kBudget).violations, "P6_AGE"));
  f.date_of_birth = 2010y / November / 28;  // 16 today
  EXPECT_TRUE(decide_issue(config(), request(), f, {}, kBudget).allowed());
  f.date_of_birth = 1965y / November / 29;  // still 60
  EXPECT_TRUE(decide_issue(config(), request(), f, {}, kBudget).allowed());
  f.date_of_birth = 1965y / November / 28;  // 61 today
  EXPECT_TRUE(has(decide_issue(config(), request(), f, {}, kBudget).violations, "P6_AGE"));
}

TEST(Policy, P6_FishermenMayBeOlderWhereTheRegionSaysSo) {
  auto f = unemployed_holder();
  f.date_of_birth = 1963y / January / 1;  // 63
  f.retired_fisherman = true;
  auto yichang = request();
  yichang.region = 420500;
  EXPECT_TRUE(decide_issue(config(), yichang, f, {}, kBudget).allowed());
  EXPECT_TRUE(has(decide_issue(config(), request(), f, {}, kBudget).violations, "P6_AGE"));  // Wuhan: 60
  // A county that raises max_age above its city's fishermen's limit raises it for them too.
  auto county =
      PolicyConfig::from_toml("[regions.420500]\nfisherman_max_age = 62\n[regions.420502]\nmax_age = 63\n", "t");
  county.standards_fen = config().standards_fen;
  auto at_county = request();
  at_county.region = 420502;
  EXPECT_FALSE(has(decide_issue(county, at_county, f, {}, kBudget).violations, "P6_AGE"));
}

// The notice names retired fishermen (退捕渔民) among the key groups of key-group
// employment-skills training, and P6 relaxes their age for it: a fisherman in none of P5's four
// groups may take it (without P5's uplift, which stays with those four).
TEST(Policy, P13_ARetiredFishermanInNoP5GroupMayTakeKeyGroupTraining) {
  auto f = unemployed_holder();
  f.key_groups.clear();
  f.date_of_birth = 1963y / January / 1;  // 63
  f.retired_fisherman = true;
  auto yichang = request();
  yichang.region = 420500;
  const auto d = decide_issue(config(), yichang, f, {}, kBudget);
  EXPECT_TRUE(d.allowed()) << (d.violations.empty() ? "" : d.violations[0].code);
  EXPECT_EQ(d.amount_fen, 150000u);  // no P5 uplift
  f.retired_fisherman = false;
  f.date_of_birth = 1980y / January / 1;
  EXPECT_TRUE(has(decide_issue(config(), yichang, f, {}, kBudget).violations, "P13_REGISTRY_MISMATCH"));
}

// --- P8, P9 ---------------------------------------------------------------------------------
TEST(Policy, P8_OnlineAtMostThirtyPercentOfHoursDelivered) {
  EXPECT_TRUE(decide_redemption(config(), redemption(70, 30), {}).allowed());  // exactly 30%
  EXPECT_EQ(codes(decide_redemption(config(), redemption(69, 30), {}).violations),
            std::vector<std::string>{"P8_ONLINE_HOURS"});
}

TEST(Policy, P8_NeverAboveThePlan) {
  EXPECT_TRUE(has(decide_redemption(config(), redemption(71, 30), {}).violations, "P8_HOURS_OVER_PLAN"));
  auto over_online = redemption(100, 31);
  over_online.voucher.planned_hours = 200;
  EXPECT_TRUE(has(decide_redemption(config(), over_online, {}).violations, "P8_HOURS_OVER_PLAN"));
}

TEST(Policy, P8_NoHoursIsNoTrainingToSubsidise) {
  EXPECT_EQ(codes(decide_redemption(config(), redemption(0, 0), {}).violations),
            std::vector<std::string>{"P8_NO_HOURS"});
  auto r = request();
  r.planned_hours = 0;
  r.planned_online_hours = 0;
  EXPECT_EQ(codes(decide_issue(config(), r, unemployed_holder(), {}, kBudget).violations),
            std::vector<std::string>{"P8_NO_HOURS"});
}

TEST(Policy, P8_PlanIsCheckedAtIssue) {
  auto r = request();
  r.planned_online_hours = 37;  // 30.8% of 120
  EXPECT_EQ(codes(decide_issue(config(), r, unemployed_holder(), {}, kBudget).violations),
            std::vector<std::string>{"P8_ONLINE_HOURS"});
}

TEST(Policy, P9_EntrepreneurshipFullyOnlineOnlyWithTheRegionsSwitch) {
  auto r = redemption(0, 30);
  r.voucher.programme = Programme::EntrepreneurshipSyb;
  r.voucher.planned_online_hours = 100;
  EXPECT_EQ(codes(decide_redemption(config(), r, {}).violations), std::vector<std::string>{"P9_ONLINE_NOT_ALLOWED"});
  r.voucher.issuer = 420500;  // Yichang has the switch on
  r.voucher.eligible_regions = {420500};
  r.site_region = 420502;
  EXPECT_TRUE(decide_redemption(config(), r, {}).allowed());
}

TEST(Policy, P9_AFullyOnlineEntrepreneurshipPlanIsCheckedAtIssue) {
  auto r = request();
  r.programme = Programme::EntrepreneurshipSyb;
  r.planned_online_hours = r.planned_hours;
  EXPECT_TRUE(has(decide_issue(config(), r, unemployed_holder(), {}, kBudget).violations, "P9_ONLINE_NOT_ALLOWED"));
  r.region = 420500;  // Yichang has the switch on
  EXPECT_FALSE(has(decide_issue(config(), r, unemployed_holder(), {}, kBudget).violations, "P9_ONLINE_NOT_ALLOWED"));
}

// --- P10 ------------------------------------------------------------------------------------
TEST(Policy, P10_TrainInPlaceOfWorkIsClosed) {
  auto r = request();
  r.programme = Programme::TrainInPlaceOfWork;
  EXPECT_TRUE(has(decide_issue(config(), r, unemployed_holder(), {}, kBudget).violations, "P10_PROGRAMME_CLOSED"));
  r.programme = static_cast<Programme>(42);
  EXPECT_TRUE(has(decide_issue(config(), r, unemployed_holder(), {}, kBudget).violations, "P10_PROGRAMME_UNKNOWN"));
}

// --- P12 ------------------------------------------------------------------------------------
TEST(Policy, P12_OfflineReceiptsOnlyWithinTheSyncWindow) {
  auto r = redemption();
  r.offline = true;
  r.terminal_time = kNow - 72 * 3600;  // exactly 72 h: still in
  EXPECT_TRUE(decide_redemption(config(), r, {}).allowed());
  r.terminal_time = kNow - 72 * 3600 - 1;
  const auto d = decide_redemption(config(), r, {});
  ASSERT_EQ(codes(d.violations), std::vector<std::string>{"P12_SYNC_WINDOW"});
  EXPECT_EQ(d.violations[0].values.at("hours"), "72");
}

TEST(Policy, P12_ForgedOfflineTimeIsRefused) {
  auto r = redemption();
  r.offline = true;
  r.terminal_time = kNow + 3600;  // from the future
  EXPECT_TRUE(has(decide_redemption(config(), r, {}).violations, "RECEIPT_TIME_IN_FUTURE"));
  r.terminal_time = kNow - 3600;
  r.previous_receipt_time = kNow - 60;  // a lower counter an hour later: back-dated
  EXPECT_TRUE(has(decide_redemption(config(), r, {}).violations, "RECEIPT_OUT_OF_ORDER"));
  r.previous_receipt_time = kNow - 3600 + 600;  // within the card's 10-minute tolerance
  EXPECT_FALSE(has(decide_redemption(config(), r, {}).violations, "RECEIPT_OUT_OF_ORDER"));
  // Synced after a higher counter: a time later than that one's by more than 10 minutes.
  r.previous_receipt_time.reset();
  r.next_receipt_time = kNow - 3600 - 601;
  EXPECT_TRUE(has(decide_redemption(config(), r, {}).violations, "RECEIPT_OUT_OF_ORDER"));
  r.next_receipt_time = kNow - 3600 - 600;
  EXPECT_FALSE(has(decide_redemption(config(), r, {}).violations, "RECEIPT_OUT_OF_ORDER"));
}

TEST(Policy, P12_AnOnlineReceiptFromTheFutureIsRefusedToo) {
  auto r = redemption();
  r.offline = false;
  r.terminal_time = kNow + 300;  // within the tolerance
  EXPECT_TRUE(decide_redemption(config(), r, {}).allowed());
  r.terminal_time = kNow + 301;
  EXPECT_EQ(codes(decide_redemption(config(), r, {}).violations), std::vector<std::string>{"RECEIPT_TIME_IN_FUTURE"});
  r.terminal_time = 0xFFFFFFF0;  // a terminal pushing a card's time mark to the end of time
  EXPECT_TRUE(has(decide_redemption(config(), r, {}).violations, "RECEIPT_TIME_IN_FUTURE"));
}

// --- P13 ------------------------------------------------------------------------------------
TEST(Policy, P13_RegistryDecidesNotTheApplicant) {
  RegistryFacts unknown;
  EXPECT_TRUE(has(decide_issue(config(), request(), unknown, {}, kBudget).violations, "P13_REGISTRY_MISMATCH"));
  auto staff = request();
  staff.programme = Programme::EnterpriseStaffUpgrade;
  auto f = unemployed_holder();
  f.insured = false;
  EXPECT_TRUE(has(decide_issue(config(), staff, f, {}, kBudget).violations, "P13_NOT_INSURED"));
  auto no_group = unemployed_holder();
  no_group.key_groups.clear();
  EXPECT_TRUE(has(decide_issue(config(), request(), no_group, {}, kBudget).violations, "P13_REGISTRY_MISMATCH"));
  // Enterprise staff training is for employees (企业职工): insured is not enough.
  auto insured_not_employed = unemployed_holder();
  insured_not_employed.insured = true;
  insured_not_employed.employed = false;
  EXPECT_EQ(codes(decide_issue(config(), staff, insured_not_employed, {}, kBudget).violations),
            std::vector<std::string>{"P13_NOT_EMPLOYED"});
  auto apprentice = staff;
  apprentice.programme = Programme::EnterpriseApprenticeship;
  EXPECT_TRUE(
      has(decide_issue(config(), apprentice, insured_not_employed, {}, kBudget).violations, "P13_NOT_EMPLOYED"));
  insured_not_employed.employed = true;
  EXPECT_TRUE(decide_issue(config(), staff, insured_not_employed, {}, kBudget).allowed());
  // … while key-group training does not ask for employment (its groups are mostly unemployed).
  EXPECT_TRUE(decide_issue(config(), request(), unemployed_holder(), {}, kBudget).allowed());
}

// --- P15 ------------------------------------------------------------------------------------
TEST(Policy, P15_SingleUseLifecycleAndValidity) {
  auto r = redemption();
  r.state = RedemptionRequest::State::Redeemed;
  EXPECT_TRUE(has(decide_redemption(config(), r, {}).violations, "P15_ALREADY_REDEEMED"));
  r = redemption();
  r.state = RedemptionRequest::State::Voided;
  EXPECT_TRUE(has(decide_redemption(config(), r, {}).violations, "P15_VOUCHER_VOIDED"));
  r = redemption();
  r.now = r.voucher.expires_at;
  EXPECT_TRUE(has(decide_redemption(config(), r, {}).violations, "P15_VOUCHER_EXPIRED"));
  r = redemption();
  r.now = r.voucher.not_before - 1;
  EXPECT_TRUE(has(decide_redemption(config(), r, {}).violations, "P15_VOUCHER_NOT_YET_VALID"));
}

TEST(Policy, P15_OnlyWhereTheVoucherIsValid) {
  auto r = redemption();
  r.site_region = 420502;  // Yichang
  EXPECT_EQ(codes(decide_redemption(config(), r, {}).violations), std::vector<std::string>{"REGION_NOT_ELIGIBLE"});
  r.voucher.eligible_regions.clear();
  r.voucher.eligible_providers = {20002};
  EXPECT_EQ(codes(decide_redemption(config(), r, {}).violations), std::vector<std::string>{"PROVIDER_NOT_ELIGIBLE"});
  r.site_provider = 20002;
  EXPECT_TRUE(decide_redemption(config(), r, {}).allowed());
}

TEST(Policy, P15_ExpiryIsThreeCalendarMonthsInCst) {
  auto r = request();
  r.now = schemas::cst_start_of(2026y / January / 31) + 3600;
  EXPECT_EQ(schemas::cst_date(decide_issue(config(), r, unemployed_holder(), {}, kBudget).expires_at),
            2026y / April / 30);
}

// --- P16 ------------------------------------------------------------------------------------
TEST(Policy, P16_BudgetIsNeverOverspent) {
  EXPECT_TRUE(decide_issue(config(), request(), unemployed_holder(), {}, 180000).allowed());  // exactly enough
  EXPECT_EQ(codes(decide_issue(config(), request(), unemployed_holder(), {}, 179999).violations),
            std::vector<std::string>{"P16_BUDGET_EXHAUSTED"});
}

// --- every violated rule at once, each with a catalogue message ------------------------------
TEST(Policy, EveryViolatedRuleIsReported) {
  auto r = request(FundSource::EmploymentSubsidyFund);
  r.planned_online_hours = 100;
  auto f = unemployed_holder();
  f.date_of_birth = 2012y / January / 1;
  const std::vector history{subsidy(kNow - 9, 4040505, 4, FundSource::EmploymentSubsidyFund),
                            subsidy(kNow - 8, 6010102), subsidy(kNow - 7, 6010103)};
  const auto d = decide_issue(config(), r, f, history, 0);
  for (const auto* code : {"P6_AGE", "P1_ANNUAL_LIMIT", "P2_EMPLOYMENT_FUND_LIMIT", "P3_SAME_OCCUPATION_LEVEL",
                           "P8_ONLINE_HOURS", "P16_BUDGET_EXHAUSTED"}) {
    EXPECT_TRUE(has(d.violations, code)) << code;
  }
  for (const auto& v : d.violations) {
    const auto& entry = schemas::refusal(v.code);  // every code is in the catalogue
    EXPECT_EQ(schemas::render(entry.en, v.values).find('{'), std::string::npos) << v.code;
  }
}

// --- configuration ----------------------------------------------------------------------------
TEST(PolicyConfig, BadFilesAreRefusedWithLineAndReason) {
  auto error = [](const std::string& text) {
    try {
      PolicyConfig::from_toml(text, "policy.toml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(error("[defaults]\nannual_limit = \"three\"\n"), "policy.toml:2: 'annual_limit' must be an integer");
  EXPECT_EQ(error("[defaults]\nonline_max_percent = 130\n"),
            "policy.toml:2: 'online_max_percent' = 130 is outside 0..100");
  EXPECT_EQ(error("[defaults]\nanual_limit = 3\n"), "policy.toml:2: unknown setting 'anual_limit'");
  EXPECT_EQ(error("[regions.4201]\nannual_limit = 3\n"),
            "policy.toml:1: '4201' is not a 6-digit region code (GB/T 2260)");
  EXPECT_NE(error("[defaults\n").find("policy.toml:1:"), std::string::npos);
  EXPECT_EQ(error("[[standards]]\nprogramme = 42\nlevel = 4\namount_fen = 1\n"),
            "policy.toml:1: programme 42 is not a programme type");
  EXPECT_EQ(error("[[standards]]\nprogramme = 3\nlevel = 4\namount_fen = 1\n[[standards]]\nprogramme = 3\nlevel = 4\n"
                  "amount_fen = 2\n"),
            "policy.toml:5: this region's table already has a standard for this programme, occupation and level "
            "from that date");
  EXPECT_EQ(error("[[standards]]\nregoin = \"420100\"\nprogramme = 3\nlevel = 4\namount_fen = 1\n"),
            "policy.toml:2: unknown key 'regoin' in a standard");
  EXPECT_EQ(error("[[standards]]\nregion = 420100\nprogramme = 3\nlevel = 4\namount_fen = 1\n"),
            "policy.toml:2: region must be a string like \"420100\"");
  EXPECT_EQ(error("[[standards]]\nregion = \"4201\"\nprogramme = 3\nlevel = 4\namount_fen = 1\n"),
            "policy.toml:2: '4201' is not a 6-digit region code (GB/T 2260)");
  EXPECT_EQ(error("[[standards]]\nfrom = \"2026-12-01\"\nprogramme = 3\nlevel = 4\namount_fen = 1\n"),
            "policy.toml:2: from must be a date like 2026-07-01 (CST)");
  // P6: a fisherman's limit relaxes the upper age, never tightens it.
  EXPECT_EQ(error("[regions.420500]\nfisherman_max_age = 55\n"),
            "policy.toml:2: fisherman_max_age 55 is below max_age 60 (P6 relaxes the limit for retired fishermen, "
            "never tightens it)");
  // The same row in two regions' tables, or from two dates, is not a duplicate.
  EXPECT_EQ(error("[[standards]]\nprogramme = 3\nlevel = 4\namount_fen = 1\n[[standards]]\nregion = \"420100\"\n"
                  "programme = 3\nlevel = 4\namount_fen = 2\n[[standards]]\nprogramme = 3\nlevel = 4\n"
                  "amount_fen = 3\nfrom = 2027-01-01\n"),
            "accepted");
}

// docs/policy.md: a county inherits its city's settings, a city its province's — each entry
// overrides only what it names, over what its parents set.
TEST(PolicyConfig, ARegionInheritsWhatItsProvinceAndCitySetAndOverridesOnlyWhatItNames) {
  const auto c = PolicyConfig::from_toml(
      "[regions.420502]\nonline_max_percent = 40\n"
      "[regions.420000]\nentrepreneurship_fully_online = true\nannual_limit = 4\n"
      "[regions.420500]\nfisherman_max_age = 65\nannual_limit = 2\n",
      "t");
  EXPECT_TRUE(c.rules_for(420500).entrepreneurship_fully_online);  // from the province
  EXPECT_EQ(c.rules_for(420500).annual_limit, 2);                  // its own
  EXPECT_EQ(c.rules_for(420500).fisherman_max_age, 65);
  EXPECT_TRUE(c.rules_for(420502).entrepreneurship_fully_online);  // province, through the city
  EXPECT_EQ(c.rules_for(420502).annual_limit, 2);                  // the city's
  EXPECT_EQ(c.rules_for(420502).fisherman_max_age, 65);
  EXPECT_EQ(c.rules_for(420502).online_max_percent, 40);            // its own
  EXPECT_EQ(c.rules_for(420100).annual_limit, 4);                   // another city: the province's
  EXPECT_EQ(c.rules_for(420100).online_max_percent, 30);            // the defaults'
  EXPECT_FALSE(c.rules_for(430100).entrepreneurship_fully_online);  // another province
}

TEST(PolicyConfig, DefaultsAreThePolicyDigestsAndRegionsInherit) {
  const auto c = PolicyConfig::from_toml("[regions.420500]\nfisherman_max_age = 65\n", "t");
  EXPECT_EQ(c.defaults.annual_limit, 3);
  EXPECT_EQ(c.defaults.employment_fund_limit, 1);
  EXPECT_EQ(c.defaults.key_group_uplift_percent, 20);
  EXPECT_EQ(c.defaults.max_age, 60);
  EXPECT_EQ(c.defaults.online_max_percent, 30);
  EXPECT_EQ(c.defaults.sync_window_hours, 72);
  EXPECT_EQ(c.defaults.voucher_validity_months, 3);
  EXPECT_EQ(c.rules_for(420502).fisherman_max_age, 65);  // a county inherits its city's rules
  EXPECT_EQ(c.rules_for(420100).fisherman_max_age, std::nullopt);
}
