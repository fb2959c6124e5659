// The policy engine (POLICY.md P1-P16): a pure function from a request, the holder's history,
// the registry's facts, the region's configuration and the time to "allow" or "refuse" with
// EVERY violated rule, each a code of the shared refusal catalogue. No I/O, no clock, no
// database: the ledger applies an allowed decision atomically with the counts it was based on.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "skillcard/policy/config.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::policy {

// Key groups of P5 (and P13's employment facts), as the registry of record knows them.
enum class KeyGroup {
  RegisteredUnemployed,      // 城镇登记失业人员
  PovertyAlleviatedLabour,   // 脱贫劳动力
  PoorFamilyChild,           // 贫困家庭子女
  UnemployedRecentGraduate,  // 离校2年未就业高校毕业生
};

// What the registry of record says about a person (P13); never taken from the applicant.
struct RegistryFacts {
  bool known = false;  // the registry has the person at all
  std::chrono::year_month_day date_of_birth{};
  bool insured = false;  // social-insurance enrolment (参保)
  bool employed = false;
  bool retired_fisherman = false;  // 退捕渔民
  std::set<KeyGroup> key_groups;
};

// One subsidy in the holder's history, ours or from elsewhere (P1-P4 count them all).
struct SubsidyRecord {
  enum class Source {
    Ours,                           // a voucher of this system
    OtherBusinessSystem,            // the other of the two business systems
    UnemploymentInsuranceTraining,  // unemployment-insurance-fund training subsidy (P4)
    SkillUpgrade,                   // skill-upgrade subsidy, 技能提升补贴 (P4)
    OtherDepartment,
    JobStabilisationRefund,  // enterprise training paid from job-stabilisation refunds (稳岗返还, P18)
  };
  Source source = Source::Ours;
  schemas::VoucherId voucher{};  // ours only
  std::uint64_t issued_at = 0;   // UTC seconds; the year it counts in (CST)
  schemas::FundSource fund = schemas::FundSource::SpecialAccount;
  std::uint32_t occupation = 0;
  std::uint8_t level = 0;
  bool voided_or_expired_unredeemed = false;  // no longer a subsidy (P1: counts "until voided or expires")
};

// One violated rule: its catalogue code, and the values its message mentions.
struct Violation {
  std::string code;
  std::map<std::string, std::string, std::less<>> values;
  bool operator==(const Violation&) const = default;
};

struct IssueRequest {
  std::uint32_t region = 0;  // the issuing bureau's region
  schemas::Programme programme = schemas::Programme::KeyGroupEmploymentSkills;
  std::uint32_t occupation = 0;
  std::uint8_t level = 5;
  schemas::FundSource fund = schemas::FundSource::SpecialAccount;
  std::uint16_t planned_hours = 0;
  std::uint16_t planned_online_hours = 0;
  std::uint64_t now = 0;  // the service's clock, UTC seconds
};

struct IssueDecision {
  std::vector<Violation> violations;  // empty: allowed
  std::uint32_t amount_fen = 0;       // P7 base, with P5's uplift when it applies
  std::uint64_t expires_at = 0;       // P15
  // The counts the decision rests on, for the ledger to re-check inside its transaction (P1,
  // P2, P16): if any changed, the decision is void and is taken again.
  int year_count = 0;
  int employment_fund_year_count = 0;
  bool allowed() const noexcept { return violations.empty(); }
};

// fund_remaining_fen: what the fund source still has (P16), from the ledger.
IssueDecision decide_issue(const PolicyConfig& config, const IssueRequest& request, const RegistryFacts& facts,
                           const std::vector<SubsidyRecord>& history, std::int64_t fund_remaining_fen);

struct RedemptionRequest {
  schemas::VoucherClaims voucher;
  // The region whose settings the voucher was issued under — the issuing counter's — so that what
  // issue allowed (P8/P9 shares, P1/P2 limits) is what redemption checks; 0: the issuer's.
  std::uint32_t rules_region = 0;
  enum class State { Issued, Written, Redeemed, Voided, Expired } state = State::Written;
  std::uint32_t site_region = 0;
  std::uint32_t site_provider = 0;
  std::uint16_t classroom_hours = 0;
  std::uint16_t online_hours = 0;
  bool offline = false;             // a receipt with a terminal-made nonce (P12)
  std::uint64_t terminal_time = 0;  // from the receipt
  std::uint64_t now = 0;            // the service's clock
  // The card's accepted receipts around this one's counter, for the order check: the latest time
  // of a lower counter, the earliest of a higher one.
  std::optional<std::uint64_t> previous_receipt_time;
  std::optional<std::uint64_t> next_receipt_time;
};

struct RedemptionDecision {
  std::vector<Violation> violations;
  bool allowed() const noexcept { return violations.empty(); }
};

RedemptionDecision decide_redemption(const PolicyConfig& config, const RedemptionRequest& request,
                                     const std::vector<SubsidyRecord>& history);

// P5's uplift on a fen amount, rounded half up to the fen: 1 234 fen + 20% = 1 480.8 -> 1 481.
std::uint32_t with_uplift(std::uint32_t amount_fen, int percent);

}  // namespace skillcard::policy
