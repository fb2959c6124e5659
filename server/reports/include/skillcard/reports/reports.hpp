// Statistics, settlement and reconciliation (POLICY.md P17, P18, P19; docs/reports.md): pure
// functions over plain input rows, so that they are tested without a database. load.hpp fills
// the rows from a ledger and the registry of record; render.hpp prints the results as JSON, CSV
// and text tables. Money is integer fen; months and years are China Standard Time (UTC+8).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "skillcard/ledger/types.hpp"
#include "skillcard/policy/policy.hpp"

namespace skillcard::reports {

using ledger::UtcSeconds;
using schemas::FundSource;
using schemas::HolderRef;

// ---------------------------------------------------------------------------------------------
// Input rows.

struct VoucherRow {  // one ledger voucher, without its token
  std::uint64_t serial = 0;
  HolderRef holder{};
  std::uint32_t issuer = 0;  // the issuing bureau's region code
  schemas::Programme programme = schemas::Programme::KeyGroupEmploymentSkills;
  FundSource fund = FundSource::SpecialAccount;
  std::uint32_t occupation = 0;
  std::uint8_t level = 5;
  std::uint32_t face_value_fen = 0;
  UtcSeconds issued_at = 0;
  UtcSeconds moved_at = 0;  // when it was moved to a replacement card (P13 lost card); 0: never
  ledger::VoucherState state = ledger::VoucherState::Issued;
  std::string card;  // "" if issued without a card
  static VoucherRow from(const ledger::VoucherRecord& record);
};

struct RedemptionRow {        // one recorded receipt, with its voucher's fund and face value
  std::uint64_t voucher = 0;  // serial
  std::string card;
  std::uint32_t counter = 0;  // the card's receipt counter: 1, 2, 3 … per card
  std::uint32_t site = 0;     // training provider / site id
  UtcSeconds server_time = 0;
  bool reversed = false;
  UtcSeconds reversed_at = 0;  // when reversed
  FundSource fund = FundSource::SpecialAccount;
  std::uint32_t face_value_fen = 0;
  static RedemptionRow from(const ledger::RedemptionExportRow& row);
};

struct CertificateRow {  // one certificate record (P14)
  HolderRef holder{};
  schemas::CertificateKind kind = schemas::CertificateKind::TrainingCertificate;
  std::uint32_t occupation = 0;
  std::uint8_t level = 5;
  std::uint32_t date_days = 0;  // the certificate's date, days since 1970-01-01 (a civil date)
  static CertificateRow from(const ledger::CertificateEntry& entry);
};

struct HolderRow {  // what the registry of record says about where a holder belongs
  HolderRef holder{};
  std::uint32_t region = 0;  // GB/T 2260 county-level code
};

struct ExternalRow {  // a subsidy paid outside this system, as the registry knows it
  HolderRef holder{};
  std::uint32_t region = 0;  // the person's region in the registry
  policy::SubsidyRecord record;
};

struct ReportInput {
  std::vector<VoucherRow> vouchers;
  std::vector<RedemptionRow> redemptions;  // reversed ones included
  std::vector<CertificateRow> certificates;
  std::vector<HolderRow> holders;
  std::vector<ExternalRow> external;
  std::vector<ledger::Budget> budgets;
};

// ---------------------------------------------------------------------------------------------
// Regions (GB/T 2260): province xx0000, city xxxx00, county xxxxxx. A county-level city
// administered by the province directly (xx90xx, e.g. Xiantao 429004) stands for its own city.

enum class RegionLevel { Province, City, County };
std::string_view to_string(RegionLevel level) noexcept;
std::uint32_t province_of(std::uint32_t code) noexcept;
std::uint32_t city_of(std::uint32_t code) noexcept;
RegionLevel level_of(std::uint32_t code) noexcept;

// The UTC instants [from, to) of a CST month.
struct Period {
  UtcSeconds from = 0;
  UtcSeconds to = 0;
};
Period cst_month_period(int year, unsigned month);
Period cst_year_period(int year);

// ---------------------------------------------------------------------------------------------
// P18: monthly report per region.

// Categories of subsidised training person-times. Disjoint; every person-time is in one.
enum class Category : std::uint8_t {
  EnterpriseStaff = 0,   // programme 1, special industry 8-10, the other business system
  Apprenticeship = 1,    // programme 2, enterprise new apprenticeship (P19's 14 000)
  KeyGroup = 2,          // programmes 3-7 and 11, unemployment-insurance-fund training
  OtherDepartment = 3,   // training run by other departments (P18: included)
  JobStabilisation = 4,  // enterprise training paid from job-stabilisation refunds (P18: included)
};
inline constexpr std::size_t kCategories = 5;
std::string_view to_string(Category category) noexcept;
// The category of our voucher's programme; nothing for a closed programme (以工代训).
std::optional<Category> category_of(schemas::Programme programme) noexcept;
// The category of an outside subsidy; nothing for a skill-upgrade subsidy (a payment for a
// certificate, not a training person-time).
std::optional<Category> category_of(policy::SubsidyRecord::Source source) noexcept;

struct Tally {
  std::array<std::uint64_t, kCategories> person_times{};  // by Category
  std::uint64_t technician = 0;                           // new level-2 (技师) certificates
  std::uint64_t senior_technician = 0;                    // new level-1 (高级技师) certificates
  std::uint64_t total_person_times() const noexcept;
  Tally& operator+=(const Tally& other) noexcept;
  std::uint64_t of(Category c) const noexcept { return person_times[static_cast<std::size_t>(c)]; }
  bool operator==(const Tally&) const = default;
};

struct RegionLine {
  std::uint32_t region = 0;  // 0: holders the registry does not know
  RegionLevel level = RegionLevel::Province;
  Tally month;
  Tally year_to_date;  // 1 January 00:00 CST to the end of the month
};

struct MonthlyReport {
  int year = 0;
  unsigned month = 0;
  std::vector<RegionLine> lines;  // province, then each city followed by its counties
  // Person-times reported more than once (by two systems, or twice by one) and counted once.
  std::uint64_t duplicates_month = 0;
  std::uint64_t duplicates_year_to_date = 0;
  const RegionLine* line(std::uint32_t region) const;
};

// Counting rule (P18, 防止重统、漏统): a subsidised person-time is identified by (holder,
// occupation, level) within the CST year — P3 allows one subsidy per occupation and level, so two
// records with the same key are the same training reported twice. It is counted once, at its
// earliest report (ours first on a tie): our redemptions (not reversed) at their server time,
// outside subsidies at their date. Its region is the holder's in the registry, else the issuing
// bureau's. Certificates: a new technician / senior technician certificate is a vocational
// qualification or skill-level certificate at level 2 / 1, counted once per (holder, occupation,
// level) on its date.
MonthlyReport monthly_report(const ReportInput& input, int year, unsigned month);

// ---------------------------------------------------------------------------------------------
// P19: progress against targets (targets.hpp reads them from TOML).

struct RegionTarget {
  std::uint64_t person_times = 0;
  std::uint64_t apprenticeships = 0;
  bool operator==(const RegionTarget&) const = default;
};
struct Targets {
  std::map<std::uint32_t, RegionTarget> regions;  // province, city or county code
  std::uint64_t base_floor = 2000;                // each provincial high-skill training base
  std::map<std::uint32_t, std::string> bases;     // provider (site) id → name
  // POLICY.md's defaults: Hubei 420000 550 000 person-times of which 14 000 apprenticeships;
  // floor 2 000.
  static Targets defaults();
};

struct ProgressLine {
  std::uint32_t region = 0;
  RegionLevel level = RegionLevel::Province;
  RegionTarget target;
  std::uint64_t person_times = 0;  // year to date, counted as in monthly_report
  std::uint64_t apprenticeships = 0;
  // Thousandths of the target reached (rounded down); nothing without a target.
  std::optional<std::uint64_t> permille() const noexcept;
  std::optional<std::uint64_t> apprenticeship_permille() const noexcept;
};
struct BaseLine {
  std::uint32_t provider = 0;
  std::string name;
  std::uint64_t person_times = 0;  // our redemptions at the base, counted once, year to date
  std::uint64_t floor = 0;
  bool met() const noexcept { return person_times >= floor; }
};
struct Progress {
  int year = 0;
  unsigned through_month = 12;
  std::vector<ProgressLine> lines;  // every region with a target, province first
  std::vector<BaseLine> bases;
};
Progress progress(const ReportInput& input, const Targets& targets, int year, unsigned through_month);

// ---------------------------------------------------------------------------------------------
// Settlement: what is owed per training provider and fund. A period's settlement never changes
// once the period is over (it was paid): a redemption reversed after its period's end is owed in
// that period and recovered in the period of its reversal.

struct SettlementLine {
  std::uint32_t provider = 0;
  FundSource fund = FundSource::SpecialAccount;
  std::uint64_t count = 0;  // redeemed in the period, not reversed by its end
  std::int64_t total_fen = 0;
  std::uint64_t recovered_count = 0;  // redeemed before the period, reversed in it
  std::int64_t recovered_fen = 0;
  std::int64_t net_fen() const noexcept { return total_fen - recovered_fen; }
  bool operator==(const SettlementLine&) const = default;
};
struct Settlement {
  Period period;
  std::vector<SettlementLine> lines;    // by provider, then fund
  std::vector<SettlementLine> by_fund;  // provider 0: totals per fund
  std::uint64_t count = 0;
  std::int64_t total_fen = 0;
  std::uint64_t recovered_count = 0;
  std::int64_t recovered_fen = 0;
  std::uint64_t reversed_excluded = 0;  // redeemed and reversed within the period (owed nothing)
  std::int64_t net_fen() const noexcept { return total_fen - recovered_fen; }
};
// Redemptions with server time in [period.from, period.to), and earlier ones reversed in it.
Settlement settlement(const std::vector<RedemptionRow>& redemptions, Period period);

// ---------------------------------------------------------------------------------------------
// P17: reconciliation (账实相符、账表相符).

enum class DifferenceKind {
  BudgetCommitted,                // fund: the budget's committed total ≠ face value of issued + written vouchers
  BudgetSpent,                    // fund: the budget's spent total ≠ face value of redeemed vouchers
  RedemptionsSpent,               // fund: redemptions not reversed ≠ face value of redeemed vouchers
  RedeemedWithoutRedemption,      // voucher: redeemed, but no redemption (not reversed) recorded
  RedemptionOnUnredeemedVoucher,  // voucher: a redemption not reversed, the voucher not redeemed
  ReversedButNotVoided,           // voucher: its redemption was reversed, it is not voided
  RedemptionOfUnknownVoucher,     // a redemption names a voucher the ledger does not have
  RedemptionOnOtherCard,          // voucher bound to one card, receipt from another
  CounterGap,                     // card: receipt counters missing from 1..highest
  CounterDuplicate,               // card: one counter on two receipts
  NeverWritten,                   // voucher: issued, never written to a card, older than the grace period
};
std::string_view to_string(DifferenceKind kind) noexcept;

struct Difference {
  DifferenceKind kind = DifferenceKind::BudgetCommitted;
  std::optional<std::uint64_t> voucher;  // serial
  std::string card;
  std::optional<FundSource> fund;
  std::int64_t expected = 0;  // what the other side says (fen, or a counter)
  std::int64_t found = 0;
  std::string detail;
};

struct FundReconciliation {
  FundSource fund = FundSource::SpecialAccount;
  std::int64_t vouchers_committed_fen = 0;  // issued + written vouchers
  std::int64_t vouchers_spent_fen = 0;      // redeemed vouchers
  std::int64_t redemptions_fen = 0;         // redemptions not reversed (what cards reported)
  std::uint64_t redemptions = 0;
  std::int64_t budget_committed_fen = 0;
  std::int64_t budget_spent_fen = 0;
  bool has_budget = false;
};

struct Reconciliation {
  UtcSeconds as_of = 0;
  UtcSeconds grace_seconds = 0;
  std::vector<FundReconciliation> funds;
  std::uint64_t vouchers = 0;
  std::uint64_t redemptions = 0;
  std::uint64_t cards = 0;  // cards with receipts, their counters checked
  std::vector<Difference> differences;
  bool agrees() const noexcept { return differences.empty(); }
};

// `now`: the reconciliation's time; a voucher still only issued (not written to its card) with
// issued_at + grace < now is listed as NeverWritten.
Reconciliation reconcile(const ReportInput& input, UtcSeconds now, UtcSeconds grace_seconds);

}  // namespace skillcard::reports
