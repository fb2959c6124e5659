// The province-year generator end to end: a scaled-down year written through the Ledger API
// obeys P1/P2/P3 (with the registry's outside subsidies), and the reports over it agree with the
// ledger — the reconciliation finds exactly the vouchers never written to a card, the
// settlement equals the budgets' spent totals, months add up to the year and cities to the
// province.
#include "skillcard/registry/province_year.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <set>
#include <tuple>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/ledger/cst.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/registry/sqlite_registry.hpp"
#include "skillcard/reports/load.hpp"
#include "skillcard/reports/reports.hpp"
#include "skillcard/schemas/cst.hpp"

using namespace skillcard;
namespace fs = std::filesystem;

namespace {

crypto::HolderRef test_ref(std::string_view id) {
  const auto mac = crypto::OpenSsl::hmac_sha256(as_bytes("province year"), as_bytes(id));
  crypto::HolderRef ref{};
  std::copy_n(mac.begin(), ref.size(), ref.begin());
  return ref;
}

class ProvinceYear : public ::testing::Test {
 public:  // the helpers below read the shared year
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("skillcard-province-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    ledger_ = ledger::SqliteLedger::open(*dir_ / "ledger.db").release();
    registry::ProvinceYearOptions options;
    options.scale = 0.004;  // 1 200 people
    options.threads = 8;
    stats_ = new registry::ProvinceYearStats;
    data_ = new registry::GeneratedData(registry::generate_province_year(*ledger_, options, test_ref, stats_));
    registry_ = registry::SqliteRegistry::open(*dir_ / "registry.db").release();
    registry_->import_rows(data_->people, data_->subsidies, test_ref);
    input_ = new reports::ReportInput(reports::load_input(*ledger_, registry_));
  }
  static void TearDownTestSuite() {
    delete input_;
    delete registry_;
    delete ledger_;
    delete data_;
    delete stats_;
    fs::remove_all(*dir_);
    delete dir_;
  }
  static inline fs::path* dir_ = nullptr;
  static inline ledger::SqliteLedger* ledger_ = nullptr;
  static inline registry::SqliteRegistry* registry_ = nullptr;
  static inline registry::GeneratedData* data_ = nullptr;
  static inline registry::ProvinceYearStats* stats_ = nullptr;
  static inline reports::ReportInput* input_ = nullptr;
  static constexpr int kYear = 2026;
};

TEST_F(ProvinceYear, GeneratedAtScale) {
  EXPECT_EQ(stats_->people, 1200u);
  EXPECT_EQ(stats_->cards, stats_->people);
  EXPECT_GE(stats_->vouchers, stats_->people * 550 / 300);  // ≥ 550 000 per 300 000 people
  EXPECT_EQ(input_->vouchers.size(), stats_->vouchers);
  EXPECT_EQ(input_->redemptions.size(), stats_->redeemed);
  EXPECT_EQ(input_->certificates.size(), stats_->certificates);
  EXPECT_GT(stats_->reversed, 0u);
  EXPECT_GT(stats_->certificates, 0u);
  std::set<std::uint32_t> cities;
  for (const auto& p : data_->people) {
    EXPECT_EQ(crypto::citizen_id_problem(p.citizen_id), "");
    cities.insert(reports::city_of(p.region));
  }
  EXPECT_EQ(cities.size(), 17u);
}

// An outside record of one of our vouchers' trainings (same holder, occupation, level).
bool double_report(const reports::ExternalRow& e) {
  static const auto ours = [] {
    std::set<std::tuple<crypto::HolderRef, std::uint32_t, std::uint8_t>> out;
    for (const auto& v : ProvinceYear::input_->vouchers) out.insert(std::tuple{v.holder, v.occupation, v.level});
    return out;
  }();
  return ours.count(std::tuple{e.holder, e.record.occupation, e.record.level}) != 0;
}

TEST_F(ProvinceYear, P1_P2_P3_ObeyedWithOutsideSubsidies) {
  struct PerHolder {
    std::uint32_t year = 0, employment_fund = 0;
    std::multiset<std::pair<std::uint32_t, std::uint8_t>> occupation_levels;
  };
  std::map<crypto::HolderRef, PerHolder> h;
  for (const auto& v : input_->vouchers) {
    if (!ledger::counts_as_subsidy(v.state)) continue;
    auto& x = h[v.holder];
    ++x.year;
    if (v.fund == schemas::FundSource::EmploymentSubsidyFund) ++x.employment_fund;
    x.occupation_levels.insert({v.occupation, v.level});
  }
  for (const auto& e : input_->external) {
    if (double_report(e)) continue;  // the same subsidy reported again, not another one
    auto& x = h[e.holder];
    if (schemas::cst_year(e.record.issued_at) == kYear) ++x.year;
    if (e.record.fund == schemas::FundSource::EmploymentSubsidyFund) ++x.employment_fund;
    x.occupation_levels.insert({e.record.occupation, e.record.level});
  }
  for (const auto& [holder, x] : h) {
    EXPECT_LE(x.year, 3u);
    EXPECT_LE(x.employment_fund, 1u);
    for (const auto& ol : x.occupation_levels) EXPECT_EQ(x.occupation_levels.count(ol), 1u);
  }
}

TEST_F(ProvinceYear, P17_ReconciliationFindsOnlyTheUnwrittenVouchers) {
  const auto now = ledger::cst_year_start(kYear + 1);
  const auto r = reports::reconcile(*input_, now, 7 * 86400);
  std::set<std::uint64_t> unwritten;
  for (const auto& v : input_->vouchers) {
    if (v.state == ledger::VoucherState::Issued && v.issued_at + 7 * 86400 < now) unwritten.insert(v.serial);
  }
  ASSERT_FALSE(unwritten.empty());
  std::set<std::uint64_t> listed;
  for (const auto& d : r.differences) {
    EXPECT_EQ(d.kind, reports::DifferenceKind::NeverWritten) << d.detail;
    listed.insert(d.voucher.value_or(0));
  }
  EXPECT_EQ(listed, unwritten);
  std::set<std::string> cards;
  for (const auto& x : input_->redemptions) cards.insert(x.card);
  EXPECT_EQ(r.cards, cards.size());
  EXPECT_LE(r.cards, stats_->cards);
}

TEST_F(ProvinceYear, SettlementOfTheYearEqualsTheBudgetsSpent) {
  const auto st = reports::settlement(input_->redemptions, {0, ledger::cst_year_start(kYear + 2)});
  std::int64_t spent = 0;
  for (const auto& b : input_->budgets) spent += b.spent_fen;
  EXPECT_EQ(st.total_fen, spent);
  EXPECT_EQ(st.count, stats_->redeemed - stats_->reversed);
  EXPECT_EQ(st.reversed_excluded, stats_->reversed);
}

TEST_F(ProvinceYear, SettlementAgreesWithTheLedgersOwnPerMonth) {
  for (unsigned m = 1; m <= 12; ++m) {
    const auto period = reports::cst_month_period(kYear, m);
    const auto ours = reports::settlement(input_->redemptions, period);
    ledger::RedemptionFilter filter;
    filter.from = period.from;
    filter.to = period.to;
    const auto theirs = ledger_->settlement(filter);
    ASSERT_EQ(ours.lines.size(), theirs.size()) << m;
    for (std::size_t i = 0; i < theirs.size(); ++i) {
      EXPECT_EQ(ours.lines[i].provider, theirs[i].provider);
      EXPECT_EQ(ours.lines[i].fund, theirs[i].fund);
      EXPECT_EQ(ours.lines[i].count, theirs[i].count);
      EXPECT_EQ(ours.lines[i].total_fen, theirs[i].total_fen);
      EXPECT_EQ(ours.lines[i].recovered_count, theirs[i].recovered_count);
      EXPECT_EQ(ours.lines[i].recovered_fen, theirs[i].recovered_fen);
    }
  }
}

TEST_F(ProvinceYear, P18_MonthsAddUpToTheYearAndCitiesToTheProvince) {
  std::uint64_t months = 0;
  for (unsigned m = 1; m <= 12; ++m) {
    const auto r = reports::monthly_report(*input_, kYear, m);
    if (const auto* p = r.line(420000)) months += p->month.total_person_times();
  }
  const auto dec = reports::monthly_report(*input_, kYear, 12);
  const auto* province = dec.line(420000);
  ASSERT_NE(province, nullptr);
  EXPECT_EQ(months, province->year_to_date.total_person_times());
  std::uint64_t cities = 0, technicians = 0;
  for (const auto& l : dec.lines) {
    if (l.level == reports::RegionLevel::City) {
      cities += l.year_to_date.total_person_times();
      technicians += l.year_to_date.technician + l.year_to_date.senior_technician;
    }
  }
  EXPECT_EQ(cities, province->year_to_date.total_person_times());
  EXPECT_EQ(technicians, province->year_to_date.technician + province->year_to_date.senior_technician);
  for (const auto c :
       {reports::Category::EnterpriseStaff, reports::Category::Apprenticeship, reports::Category::KeyGroup,
        reports::Category::OtherDepartment, reports::Category::JobStabilisation}) {
    EXPECT_GT(province->year_to_date.of(c), 0u) << reports::to_string(c);  // every category occurs
  }
  // Redemptions in the year not reversed, and outside training, are all there: the ones not
  // counted are exactly the duplicates.
  std::uint64_t reports_in_year = 0;
  const auto year = reports::cst_year_period(kYear);
  for (const auto& r : input_->redemptions) {
    if (!r.reversed && r.server_time >= year.from && r.server_time < year.to) ++reports_in_year;
  }
  for (const auto& e : input_->external) {
    if (e.record.source != policy::SubsidyRecord::Source::SkillUpgrade && e.record.issued_at >= year.from &&
        e.record.issued_at < year.to) {
      ++reports_in_year;
    }
  }
  EXPECT_EQ(province->year_to_date.total_person_times() + dec.duplicates_year_to_date, reports_in_year);
  // The duplicates are the other system's second reports of our redemptions in the year.
  std::map<std::uint64_t, const reports::RedemptionRow*> redemption_of;
  for (const auto& r : input_->redemptions) redemption_of[r.voucher] = &r;
  std::uint64_t expected = 0, double_reports = 0;
  for (const auto& e : input_->external) {
    if (!double_report(e)) continue;
    ++double_reports;
    for (const auto& v : input_->vouchers) {
      if (v.holder != e.holder || v.occupation != e.record.occupation || v.level != e.record.level) continue;
      const auto* r = redemption_of.at(v.serial);
      if (!r->reversed && r->server_time >= year.from && r->server_time < year.to && e.record.issued_at >= year.from &&
          e.record.issued_at < year.to) {
        ++expected;
      }
    }
  }
  EXPECT_EQ(double_reports, stats_->double_reports);
  EXPECT_GT(expected, 0u);
  EXPECT_EQ(dec.duplicates_year_to_date, expected);
}

}  // namespace
