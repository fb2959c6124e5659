// Issuing, confirming and voiding vouchers (counter): the policy engine decides (P1-P16), the
// ledger applies the decision atomically with the counts it rests on, the bureau's voucher
// signer signs inside the ledger's transaction (docs/design.md, "Counter issue").
#include "skillcard/ledger/cst.hpp"
#include "skillcard/schemas/cst.hpp"
#include "skillcard/schemas/voucher.hpp"
#include "skillcard/service/encoding.hpp"
#include "work.hpp"

namespace skillcard::service::detail {

namespace {

// What the registry of record knows from other systems, as the ledger's atomic check adds it.
ledger::ExternalCounts external_counts(const std::vector<policy::SubsidyRecord>& history,
                                       const ledger::IssueQuery& query) {
  ledger::ExternalCounts out;
  for (const auto& r : history) {
    if (r.source == policy::SubsidyRecord::Source::Ours || r.voided_or_expired_unredeemed) continue;
    if (schemas::cst_year(r.issued_at) == query.cst_year) {
      ++out.holder_year;
      if (r.fund == schemas::FundSource::EmploymentSubsidyFund) ++out.holder_employment_fund_year;
    }
    const bool combined = r.source == policy::SubsidyRecord::Source::UnemploymentInsuranceTraining ||
                          r.source == policy::SubsidyRecord::Source::SkillUpgrade;
    if (!combined && r.occupation == query.occupation && r.level == query.level) ++out.same_occupation_level;
  }
  return out;
}

// Codes from min to max, ascending without repeats (the voucher's own rule, checked here so that a
// bad code is the request's 400 before the card proof's nonce is spent).
std::vector<std::uint32_t> sorted_codes(const json& body, std::string_view field, std::uint32_t min, std::uint32_t max,
                                        std::string_view what) {
  std::vector<std::uint32_t> out;
  if (!body.contains(std::string(field))) return out;
  for (const auto& v : body.at(std::string(field))) {
    const auto code = v.get<std::uint64_t>();
    if (code < min || code > max) bad_field(field, std::string(what));
    out.push_back(static_cast<std::uint32_t>(code));
  }
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end()) bad_field(field, "duplicate code");
  return out;
}

json voucher_state_json(const ledger::VoucherRecord& v) {
  return json{{"voucher_id", ledger::lower_hex(v.id())}, {"state", ledger::to_string(v.state)}};
}

// The answer to a state change the ledger made (or found made): 200 with the state, or the
// refusal that names why the voucher's state does not allow it.
Response state_change_answer(const ledger::VoucherOutcome& outcome) {
  switch (outcome.status) {
    case ledger::VoucherStatus::Changed:
    case ledger::VoucherStatus::AlreadyInState:
      return json_response(200, voucher_state_json(*outcome.voucher));
    case ledger::VoucherStatus::VoucherUnknown:
      refuse("VOUCHER_UNKNOWN");
    case ledger::VoucherStatus::WrongState:
      break;
  }
  const auto state = outcome.voucher ? outcome.voucher->state : ledger::VoucherState::Voided;
  if (state == ledger::VoucherState::Redeemed) refuse("P15_ALREADY_REDEEMED");
  if (state == ledger::VoucherState::Expired) refuse("P15_VOUCHER_EXPIRED");
  refuse("P15_VOUCHER_VOIDED", {}, {{"detail", std::string(ledger::to_string(state))}});
}

}  // namespace

Response Work::issue() {
  static constexpr FieldRule rules[] = {
      {"card", Kind::String, true},
      {"citizen_id", Kind::String, true},
      {"programme", Kind::Unsigned, true},
      {"occupation", Kind::String, true},
      {"level", Kind::Unsigned, true},
      {"fund", Kind::Unsigned, true},
      {"planned_hours", Kind::Unsigned, true},
      {"planned_online_hours", Kind::Unsigned, true},
      {"eligible_regions", Kind::UnsignedArray, false},
      {"eligible_providers", Kind::UnsignedArray, false},
      {"card_proof", Kind::Object, true},
  };
  const auto body = parse_object(request_.body, rules, false);
  const auto actor = actor_of(request_);
  const auto number_text = card_number(body, "card");
  const auto citizen = citizen_id(body, "citizen_id");
  const auto programme = static_cast<schemas::Programme>(number(body, "programme", 1, 255));
  const auto occ = occupation(body, "occupation");
  const auto level = static_cast<std::uint8_t>(number(body, "level", 1, 5));
  const auto fund = static_cast<schemas::FundSource>(number(body, "fund", 1, 4));
  const auto planned = static_cast<std::uint16_t>(number(body, "planned_hours", 1, 65535));
  const auto planned_online = static_cast<std::uint16_t>(number(body, "planned_online_hours", 0, 65535));
  auto regions = sorted_codes(body, "eligible_regions", 100000, 999999,
                              "region codes are 6-digit GB/T 2260 codes, 100000 to 999999");
  auto providers = sorted_codes(body, "eligible_providers", 1, 0xFFFFFFFFU, "provider ids are 1 to 4294967295");
  if (regions.empty() && providers.empty()) regions.push_back(request_.terminal.region);
  if (regions.size() + providers.size() > 4) bad_field("eligible_regions", "at most 4 regions and providers together");
  const auto proof = parse_card_proof(body.at("card_proof"), "card_proof.");
  if (proof.card != number_text) bad_field("card_proof.card", "not the card named in \"card\"");

  // The card, its presence (its signature on our nonce) and the person at the counter — in that
  // order, so that no terminal can test citizen IDs against card numbers without the card. The
  // nonce is used up only once the request is known to be servable: a corrected retry (another
  // citizen ID typed, a policy loaded) needs no second tap.
  const auto card = active_card(number_text);
  (void)check_card_proof(proof, /*consume=*/false, {});
  const auto holder = holder_of(citizen);
  require_holder(card, holder);
  require_policy();
  std::uint32_t bureau = 0;
  const auto& signer = voucher_signer(request_.terminal.region, &bureau);
  consume_proof_nonce(proof, "voucher.issue");

  const auto facts = ctx_.registry->facts(citizen);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto at = now();
    const ledger::IssueQuery query{holder, schemas::cst_year(at), fund, occ, level};
    const auto counts = ctx_.ledger->read_issue_counts(query);
    const auto past = history(holder);
    const policy::IssueRequest ask{request_.terminal.region, programme, occ, level, fund, planned, planned_online, at};
    const auto decision = policy::decide_issue(*ctx_.policy, ask, facts, past, counts.fund_remaining_fen);
    if (!decision.allowed()) refuse_violations(decision.violations);

    const auto& region_rules = ctx_.policy->rules_for(request_.terminal.region);
    ledger::IssueDecision allow;
    allow.ledger_counts = counts;
    allow.external = external_counts(past, query);
    allow.annual_limit = static_cast<std::uint32_t>(region_rules.annual_limit);
    allow.employment_fund_limit = static_cast<std::uint32_t>(region_rules.employment_fund_limit);
    // Switched-off rules (the mutation job) must not come back through the ledger's own guard.
    constexpr auto kNoLimit = std::numeric_limits<std::uint32_t>::max() / 2;
    if (!ctx_.policy->enabled("P1")) allow.annual_limit = kNoLimit;
    if (!ctx_.policy->enabled("P2")) allow.employment_fund_limit = kNoLimit;
    if (!ctx_.policy->enabled("P3")) allow.same_occupation_level_limit = kNoLimit;

    ledger::IssueRequest request;
    auto& c = request.claims;
    c.issuer = bureau;
    c.holder = holder;
    c.programme = programme;
    c.occupation = occ;
    c.level = level;
    c.fund = fund;
    c.face_value_fen = decision.amount_fen;
    c.planned_hours = planned;
    c.planned_online_hours = planned_online;
    c.eligible_regions = regions;
    c.eligible_providers = providers;
    c.issued_at = at;
    c.not_before = at;
    c.expires_at = decision.expires_at;
    request.card = number_text;
    request.issuing_region = request_.terminal.region;
    const auto outcome = ctx_.ledger->issue_voucher(request, allow, minter(signer), actor, at);
    switch (outcome.status) {
      case ledger::IssueStatus::Issued: {
        const auto& v = *outcome.voucher;
        return json_response(201, json{{"voucher_id", ledger::lower_hex(v.id())},
                                       {"token", base64url_encode(v.token)},
                                       {"state", ledger::to_string(v.state)},
                                       {"voucher", voucher_json(v.claims)}});
      }
      case ledger::IssueStatus::StaleDecision:
        continue;  // a racing issue moved the counts: decide again on the fresh ones
      case ledger::IssueStatus::Refused: {
        // The ledger's own guard refused on counts that moved under the decision: its message
        // names the same limits as the policy engine's.
        std::vector<policy::Violation> violations;
        for (const auto code : outcome.violated) {
          policy::Violation v{std::string(code), {}};
          if (v.code == "P1_ANNUAL_LIMIT") v.values["limit"] = std::to_string(allow.annual_limit);
          if (v.code == "P2_EMPLOYMENT_FUND_LIMIT") v.values["limit"] = std::to_string(allow.employment_fund_limit);
          violations.push_back(std::move(v));
        }
        if (violations.empty()) violations.push_back({"POLICY_NOT_CONFIGURED", {}});
        refuse_violations(violations);
      }
      case ledger::IssueStatus::CardUnknown:
        refuse("CARD_UNKNOWN");
      case ledger::IssueStatus::CardNotActive:
        refuse("CARD_REVOKED");
      case ledger::IssueStatus::CardOfAnotherHolder:
        refuse("P13_REGISTRY_MISMATCH");
    }
  }
  refuse("SERVICE_UNAVAILABLE", {{"detail", "issue contention"}});
}

Response Work::written() {
  require_empty_body();
  const auto actor = actor_of(request_);
  const auto id = voucher_id_from_hex(segment(2), "id");
  return state_change_answer(ctx_.ledger->mark_written(id, actor, now()));
}

Response Work::void_voucher() {
  static constexpr FieldRule rules[] = {{"reason", Kind::String, true}};
  const auto body = parse_object(request_.body, rules, false);
  const auto actor = actor_of(request_);
  const auto id = voucher_id_from_hex(segment(2), "id");
  const auto& reason = free_text(body, "reason", 200);
  return state_change_answer(ctx_.ledger->void_voucher(id, reason, actor, now()));
}

}  // namespace skillcard::service::detail
