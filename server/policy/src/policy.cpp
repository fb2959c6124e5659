// The rules P1-P16 as pure functions. Each check names its rule; a rule switched off by the
// test-only setting is skipped, which is how CI shows that each rule's tests need the rule.
#include "skillcard/policy/policy.hpp"

#include <algorithm>

#include "skillcard/schemas/cst.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::policy {

namespace {

using schemas::FundSource;
using schemas::Programme;

bool is_entrepreneurship(Programme p) {
  return p == Programme::EntrepreneurshipGyb || p == Programme::EntrepreneurshipSyb ||
         p == Programme::EntrepreneurshipIyb || p == Programme::EntrepreneurshipEyb;
}

// Enterprise programmes are for insured, employed staff (企业职工): P13 checks both 参保 and
// 就业 against the registry, as the notice asks (对企业职工参保、劳动者就业…进行核验比对).
bool enterprise_programme(Programme p) {
  return p == Programme::EnterpriseStaffUpgrade || p == Programme::EnterpriseApprenticeship;
}

struct Collector {
  const PolicyConfig& config;
  std::vector<Violation> violations;
  // Adds `code` when `violated` and `rule` is switched on.
  void check(std::string_view rule, bool violated, std::string code,
             std::map<std::string, std::string, std::less<>> values = {}) {
    if (violated && config.enabled(rule)) violations.push_back({std::move(code), std::move(values)});
  }
};

bool counts(const SubsidyRecord& r) { return !r.voided_or_expired_unredeemed; }

// P8/P9 on a pair of (total, online) hours: online at most `percent` of the total, unless
// entrepreneurship training may be fully online in the region.
void check_online_share(Collector& c, const RegionRules& rules, Programme programme, std::uint32_t total,
                        std::uint32_t online) {
  const bool over =
      std::uint64_t{online} * 100 > std::uint64_t{total} * static_cast<std::uint64_t>(rules.online_max_percent);
  if (is_entrepreneurship(programme)) {
    // P9: entrepreneurship may be 100% online only while the region's switch is on.
    c.check("P9", over && !rules.entrepreneurship_fully_online, "P9_ONLINE_NOT_ALLOWED");
  } else {
    c.check("P8", over, "P8_ONLINE_HOURS", {{"percent", std::to_string(rules.online_max_percent)}});
  }
}

}  // namespace

std::uint32_t with_uplift(std::uint32_t amount_fen, int percent) {
  // Integer fen throughout; half a fen rounds up (docs/policy.md, "Money").
  const auto scaled = std::uint64_t{amount_fen} * static_cast<std::uint64_t>(100 + percent);
  return static_cast<std::uint32_t>((scaled + 50) / 100);
}

IssueDecision decide_issue(const PolicyConfig& config, const IssueRequest& req, const RegistryFacts& facts,
                           const std::vector<SubsidyRecord>& history, std::int64_t fund_remaining_fen) {
  Collector c{config, {}};
  IssueDecision d;
  const auto& rules = config.rules_for(req.region);

  // P10: the programme exists and is not closed.
  c.check("P10", req.programme == Programme::TrainInPlaceOfWork, "P10_PROGRAMME_CLOSED");
  c.check("P10", !schemas::is_known(req.programme), "P10_PROGRAMME_UNKNOWN");

  // P13: the registry of record knows the person; enterprise programmes need insurance; a
  // key-group programme needs a key group the registry confirms: one of P5's four, or a retired
  // fisherman (退捕渔民, whom the notice names among the key groups of this training and whose age
  // limit P6 relaxes for it; P5's 20% uplift stays with P5's four).
  c.check("P13", !facts.known, "P13_REGISTRY_MISMATCH");
  if (facts.known) {
    c.check("P13", enterprise_programme(req.programme) && !facts.insured, "P13_NOT_INSURED");
    c.check("P13", enterprise_programme(req.programme) && !facts.employed, "P13_NOT_EMPLOYED");
    c.check(
        "P13",
        req.programme == Programme::KeyGroupEmploymentSkills && facts.key_groups.empty() && !facts.retired_fisherman,
        "P13_REGISTRY_MISMATCH");
  }

  // P6: age on the day of issue (CST), with the relaxed limit for retired fishermen.
  if (facts.known) {
    const int age = schemas::age_on(facts.date_of_birth, schemas::cst_date(req.now));
    // A relaxation only: a county that raised max_age above its city's fisherman limit keeps it.
    const int max_age = facts.retired_fisherman && rules.fisherman_max_age
                            ? std::max(*rules.fisherman_max_age, rules.max_age)
                            : rules.max_age;
    c.check("P6", age < rules.min_age || age > max_age, "P6_AGE",
            {{"min", std::to_string(rules.min_age)}, {"max", std::to_string(max_age)}});
  }

  // P1, P2: this CST calendar year, every system and fund; voided or expired vouchers no longer count.
  const int year = schemas::cst_year(req.now);
  for (const auto& r : history) {
    if (!counts(r) || schemas::cst_year(r.issued_at) != year) continue;
    ++d.year_count;
    if (r.fund == FundSource::EmploymentSubsidyFund) ++d.employment_fund_year_count;
  }
  c.check("P1", d.year_count >= rules.annual_limit, "P1_ANNUAL_LIMIT", {{"limit", std::to_string(rules.annual_limit)}});
  c.check("P2",
          req.fund == FundSource::EmploymentSubsidyFund && d.employment_fund_year_count >= rules.employment_fund_limit,
          "P2_EMPLOYMENT_FUND_LIMIT", {{"limit", std::to_string(rules.employment_fund_limit)}});

  // P3: the same occupation at the same level once, ever; P4: not on top of an
  // unemployment-insurance-fund training subsidy or a skill-upgrade subsidy for it.
  bool same_level = false, combined = false;
  for (const auto& r : history) {
    if (!counts(r) || r.occupation != req.occupation || r.level != req.level) continue;
    if (r.source == SubsidyRecord::Source::UnemploymentInsuranceTraining ||
        r.source == SubsidyRecord::Source::SkillUpgrade) {
      combined = true;
    } else {
      same_level = true;
    }
  }
  c.check("P3", same_level, "P3_SAME_OCCUPATION_LEVEL");
  c.check("P4", combined, "P4_COMBINED_SUBSIDY");

  // P8/P9 on the plan the voucher will carry.
  c.check("P8", req.planned_hours == 0, "P8_NO_HOURS");
  c.check("P8", req.planned_online_hours > req.planned_hours, "P8_HOURS_OVER_PLAN");
  if (req.planned_hours > 0) check_online_share(c, rules, req.programme, req.planned_hours, req.planned_online_hours);

  // P7, P5: the amount; no standard for this training means the policy is not configured.
  if (const auto base = config.standard(req.region, req.programme, req.occupation, req.level, req.now)) {
    const bool uplift = config.enabled("P5") && req.fund == FundSource::SpecialAccount && !facts.key_groups.empty();
    d.amount_fen = uplift ? with_uplift(*base, rules.key_group_uplift_percent) : *base;
  } else if (config.enabled("P7")) {
    c.violations.push_back({"POLICY_NOT_CONFIGURED", {}});
  }

  // P16: never spend more than the fund has.
  c.check("P16", static_cast<std::int64_t>(d.amount_fen) > fund_remaining_fen, "P16_BUDGET_EXHAUSTED");

  // P15: the voucher's validity.
  d.expires_at = schemas::add_cst_months(req.now, rules.voucher_validity_months);
  d.violations = std::move(c.violations);
  return d;
}

RedemptionDecision decide_redemption(const PolicyConfig& config, const RedemptionRequest& req,
                                     const std::vector<SubsidyRecord>& history) {
  Collector c{config, {}};
  const auto& v = req.voucher;
  const auto& rules = config.rules_for(req.rules_region != 0 ? req.rules_region : v.issuer);
  using State = RedemptionRequest::State;

  // P15: single use, lifecycle, validity window. Offline, the moment of redemption is the
  // receipt's time (bounded by P12 below), not the moment it reaches us.
  c.check("P15", req.state == State::Redeemed, "P15_ALREADY_REDEEMED");
  c.check("P15", req.state == State::Voided, "P15_VOUCHER_VOIDED");
  const std::uint64_t when = req.offline ? req.terminal_time : req.now;
  c.check("P15", req.state == State::Expired || when >= v.expires_at, "P15_VOUCHER_EXPIRED");
  c.check("P15", when < v.not_before, "P15_VOUCHER_NOT_YET_VALID");
  // A voucher for a city or province is good in its counties (GB/T 2260: xxxx00, xx0000).
  const bool region_ok = schemas::region_eligible(v.eligible_regions, req.site_region);
  const bool provider_ok = std::find(v.eligible_providers.begin(), v.eligible_providers.end(), req.site_provider) !=
                           v.eligible_providers.end();
  if (!region_ok && !provider_ok) {
    c.check("P15", true, v.eligible_providers.empty() ? "REGION_NOT_ELIGIBLE" : "PROVIDER_NOT_ELIGIBLE");
  }

  // P8/P9 on the hours delivered: never above the plan, online within its share.
  const std::uint32_t total = std::uint32_t{req.classroom_hours} + req.online_hours;
  c.check("P8", total > v.planned_hours || req.online_hours > v.planned_online_hours, "P8_HOURS_OVER_PLAN");
  c.check("P8", total == 0, "P8_NO_HOURS");
  if (total > 0) check_online_share(c, rules, v.programme, total, req.online_hours);

  // P12: no receipt from the future, online or not (the card raised its time mark to that
  // time: such a terminal's clock must be put right, not paid); an offline receipt within the
  // sync window by our clock, and in the card's counter order.
  c.check("P12", req.terminal_time > req.now + 300, "RECEIPT_TIME_IN_FUTURE");
  if (req.offline) {
    const auto window = static_cast<std::uint64_t>(rules.sync_window_hours) * 3600;
    c.check("P12", req.now > req.terminal_time && req.now - req.terminal_time > window, "P12_SYNC_WINDOW",
            {{"hours", std::to_string(rules.sync_window_hours)}});
    c.check("P12",
            (req.previous_receipt_time && *req.previous_receipt_time > req.terminal_time + 600) ||
                (req.next_receipt_time && *req.next_receipt_time + 600 < req.terminal_time),
            "RECEIPT_OUT_OF_ORDER");
  }

  // P1–P4 again (P13: "before issuing or paying"): subsidies that reached the registry after this
  // voucher was issued may have made it one too many for its year, a second from the employment
  // fund, a repeat of its occupation and level, or one on top of an unemployment-insurance or
  // skill-upgrade subsidy for them. The voucher itself, and our vouchers issued after it (theirs
  // to refuse), are not counted against it.
  int others = 0, employment_fund = 0;
  bool same_level = false, combined = false;
  const int year = schemas::cst_year(v.issued_at);
  for (const auto& r : history) {
    if (!counts(r) || r.voucher == v.id) continue;
    if (r.source == SubsidyRecord::Source::Ours && r.issued_at > v.issued_at) continue;
    if (schemas::cst_year(r.issued_at) == year) {
      ++others;
      if (r.fund == FundSource::EmploymentSubsidyFund) ++employment_fund;
    }
    if (r.occupation == v.occupation && r.level == v.level) {
      const bool p4 = r.source == SubsidyRecord::Source::UnemploymentInsuranceTraining ||
                      r.source == SubsidyRecord::Source::SkillUpgrade;
      (p4 ? combined : same_level) = true;
    }
  }
  c.check("P1", others >= rules.annual_limit, "P1_ANNUAL_LIMIT", {{"limit", std::to_string(rules.annual_limit)}});
  c.check("P2", v.fund == FundSource::EmploymentSubsidyFund && employment_fund >= rules.employment_fund_limit,
          "P2_EMPLOYMENT_FUND_LIMIT", {{"limit", std::to_string(rules.employment_fund_limit)}});
  c.check("P3", same_level, "P3_SAME_OCCUPATION_LEVEL");
  c.check("P4", combined, "P4_COMBINED_SUBSIDY");
  return RedemptionDecision{std::move(c.violations)};
}

}  // namespace skillcard::policy
