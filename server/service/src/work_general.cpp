// The handler's general endpoints (health, metrics, trust list, revocations, nonces, budgets,
// voucher verification) and the checks every area shares.
#include <algorithm>
#include <set>

#include "skillcard/crypto/backend.hpp"
#include "skillcard/ledger/cst.hpp"
#include "skillcard/schemas/refusals.hpp"
#include "skillcard/schemas/voucher.hpp"
#include "skillcard/service/encoding.hpp"
#include "work.hpp"

namespace skillcard::service::detail {

json voucher_json(const schemas::VoucherClaims& c) {
  // Member by member, not from an initializer list: nlohmann copies every element of one, and
  // this runs for every verified token.
  json j = json::object();
  j["id"] = ledger::lower_hex(c.id);
  j["issuer"] = c.issuer;
  j["holder"] = ledger::lower_hex(c.holder);
  j["programme"] = static_cast<unsigned>(c.programme);
  j["occupation"] = schemas::format_occupation(c.occupation);
  j["level"] = c.level;
  j["fund"] = static_cast<unsigned>(c.fund);
  j["face_value_fen"] = c.face_value_fen;
  j["planned_hours"] = c.planned_hours;
  j["planned_online_hours"] = c.planned_online_hours;
  j["eligible_regions"] = c.eligible_regions;
  j["eligible_providers"] = c.eligible_providers;
  j["issued_at"] = c.issued_at;
  j["not_before"] = c.not_before;
  j["expires_at"] = c.expires_at;
  return j;
}

void write_voucher(JsonWriter& out, const schemas::VoucherClaims& c) {
  out.begin_object();
  out.key("id").hex(c.id);
  out.key("issuer").number(c.issuer);
  out.key("holder").hex(c.holder);
  out.key("programme").number(static_cast<unsigned>(c.programme));
  out.key("occupation").text(schemas::format_occupation(c.occupation));
  out.key("level").number(c.level);
  out.key("fund").number(static_cast<unsigned>(c.fund));
  out.key("face_value_fen").number(c.face_value_fen);
  out.key("planned_hours").number(c.planned_hours);
  out.key("planned_online_hours").number(c.planned_online_hours);
  out.key("eligible_regions").numbers(c.eligible_regions);
  out.key("eligible_providers").numbers(c.eligible_providers);
  out.key("issued_at").number(c.issued_at);
  out.key("not_before").number(c.not_before);
  out.key("expires_at").number(c.expires_at);
  out.end_object();
}

Response Work::run(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::Healthz:
      return healthz();
    case Endpoint::Metrics:
      return metrics();
    case Endpoint::TrustList:
      return trust_list();
    case Endpoint::Revocations:
      return revocations();
    case Endpoint::Nonces:
      return nonces();
    case Endpoint::Verify:
      return verify();
    case Endpoint::Budget:
      return budget();
    case Endpoint::Issue:
      return issue();
    case Endpoint::Written:
      return written();
    case Endpoint::Void:
      return void_voucher();
    case Endpoint::Redemptions:
      return redemptions();
    case Endpoint::RedemptionSync:
      return sync();
    case Endpoint::Certificates:
      return certificates();
    case Endpoint::RegisterCard:
      return register_card();
    case Endpoint::CardInfo:
      return card_info();
    case Endpoint::CardLost:
      return card_lost();
    case Endpoint::CardHolderCheck:
      return card_holder_check();
    case Endpoint::HolderVouchers:
      return holder_vouchers();
    case Endpoint::HolderPortfolio:
      return holder_portfolio();
    case Endpoint::Report:
      return report();
  }
  return Handler::refusal("NOT_IMPLEMENTED");
}

// --- shared checks -------------------------------------------------------------------------

std::string_view Work::segment(std::size_t index) const {
  std::string_view path = request_.target;
  if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  path.remove_prefix(1);  // routing matched a pattern that starts with '/'
  for (std::size_t i = 0; i < index; ++i) path.remove_prefix(std::min(path.size(), path.find('/') + 1));
  return path.substr(0, path.find('/'));
}

void Work::require_empty_body() const {
  if (!request_.body.empty()) bad_field("body", "must be empty");
}

std::map<std::string, std::string, std::less<>> Work::query(const std::vector<std::string_view>& allowed) const {
  std::map<std::string, std::string, std::less<>> out;
  const auto q = request_.target.find('?');
  if (q == std::string::npos) return out;
  std::string_view rest = std::string_view(request_.target).substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    const auto name = std::string(pair.substr(0, eq));
    const auto value = eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      bad_field(name.substr(0, 64), "unknown query parameter");
    }
    if (!out.emplace(name, value).second) bad_field(name, "given twice");
  }
  return out;
}

std::uint64_t Work::query_number(const std::map<std::string, std::string, std::less<>>& params, std::string_view name,
                                 std::uint64_t min, std::uint64_t max) {
  const auto it = params.find(name);
  if (it == params.end()) bad_field(name, "missing");
  const auto& text = it->second;
  if (text.empty() || text.size() > 10 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    bad_field(name, "must be a number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  const auto value = std::stoull(text);
  if (value < min || value > max) {
    bad_field(name, "must be a number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return value;
}

void Work::require_policy() const {
  if (!ctx_.policy || !ctx_.registry) refuse("POLICY_NOT_CONFIGURED");
}

void Work::refuse_token(std::string_view code, std::string_view check, const Values& values) const {
  if (ctx_.metrics) ctx_.metrics->count_verification(false);
  Values extra{{"check", std::string(check)}};
  if (const auto it = values.find("detail"); it != values.end()) extra.emplace("detail", it->second);
  refuse(code, values, extra);
}

void Work::refuse_violations(const std::vector<policy::Violation>& violations) const {
  auto first = Handler::refusal(violations.front().code, violations.front().values);
  auto body = json::parse(first.body);
  json all = json::array();
  std::set<std::string> rules;
  for (const auto& v : violations) {
    const auto one = json::parse(Handler::refusal(v.code, v.values).body);
    for (const auto& rule : one.at("rules")) rules.insert(rule.get<std::string>());
    all.push_back(one);
  }
  body["rules"] = rules;
  body["violations"] = std::move(all);
  throw Refused{json_response(first.status, body)};
}

std::vector<policy::SubsidyRecord> Work::history(const schemas::HolderRef& holder) const {
  std::vector<policy::SubsidyRecord> out;
  for (const auto& v : ctx_.ledger->holder_vouchers(holder)) {
    policy::SubsidyRecord r;
    r.source = policy::SubsidyRecord::Source::Ours;
    r.voucher = v.id();
    r.issued_at = v.claims.issued_at;
    r.fund = v.claims.fund;
    r.occupation = v.claims.occupation;
    r.level = v.claims.level;
    // A moved voucher is the same subsidy as its successor, which is in the list itself.
    r.voided_or_expired_unredeemed = !ledger::counts_as_subsidy(v.state);
    out.push_back(r);
  }
  if (ctx_.registry) {
    auto theirs = ctx_.registry->external_subsidies(holder);
    out.insert(out.end(), theirs.begin(), theirs.end());
  }
  return out;
}

const crypto::Signer& Work::voucher_signer(std::uint32_t region, std::uint32_t* bureau) const {
  for (const auto code : {region, region / 100 * 100, region / 10000 * 10000}) {
    if (const auto it = ctx_.voucher_signers.find(code); it != ctx_.voucher_signers.end() && it->second) {
      *bureau = code;
      return *it->second;
    }
  }
  refuse("POLICY_NOT_CONFIGURED");
}

ledger::TokenMinter Work::minter(const crypto::Signer& signer) const {
  return [&signer](const schemas::VoucherClaims& claims) {
    return schemas::sign_voucher(claims, signer.kid(), [&](ByteView tbs) { return signer.sign(tbs); });
  };
}

// --- endpoints -----------------------------------------------------------------------------

Response Work::healthz() {
  require_empty_body();
  return json_response(200, json{{"status", "ok"}, {"trust_list_sequence", ctx_.trust->claims().sequence}});
}

Response Work::metrics() {
  require_empty_body();
  return Response{200,
                  ctx_.metrics ? ctx_.metrics->render() : std::string(),
                  {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}, {"Cache-Control", "no-store"}}};
}

Response Work::trust_list() {
  require_empty_body();
  const auto& claims = ctx_.trust->claims();
  return json_response(200, json{{"trust_list", base64url_encode(ctx_.trust->signed_list())},
                                 {"sequence", claims.sequence},
                                 {"issued_at", claims.issued_at},
                                 {"next_update", claims.next_update}});
}

Response Work::revocations() {
  require_empty_body();
  const auto revoked = ctx_.ledger->revocations(now());
  json vouchers = json::array();
  for (const auto& id : revoked.vouchers) vouchers.push_back(ledger::lower_hex(id));
  json terminals = json::array();
  if (ctx_.terminal_revocations) {
    ctx_.terminal_revocations->reload_if_changed();
    for (const auto& t : ctx_.terminal_revocations->list()) terminals.push_back(t);
  }
  return json_response(200, json{{"vouchers", std::move(vouchers)},
                                 {"cards", revoked.cards},
                                 {"terminals", std::move(terminals)},
                                 {"at", now()}});
}

Response Work::nonces() {
  (void)parse_object(request_.body, {}, /*empty_ok=*/true);
  const auto actor = actor_of(request_);
  const auto issued_at = now();
  const auto expires_at = issued_at + kNonceLifetime;
  // P12: the shortest sync window of any region this service applies — the terminal's slip, its
  // warnings and its time left go by it, so that a receipt uploaded in time is never refused.
  int window_hours = policy::RegionRules{}.sync_window_hours;
  if (ctx_.policy) {
    window_hours = ctx_.policy->defaults.sync_window_hours;
    for (const auto& [code, rules] : ctx_.policy->regions)
      window_hours = std::min(window_hours, rules.sync_window_hours);
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    schemas::Nonce nonce{};
    nonce[0] = static_cast<std::uint8_t>(schemas::NonceKind::Server);
    ctx_.random(std::span<std::uint8_t>(nonce).subspan(1));
    const auto status = ctx_.ledger->issue_nonce(nonce, request_.terminal.id, issued_at, expires_at, actor);
    if (status == ledger::NonceStatus::Ok) {
      return json_response(201, json{{"nonce", ledger::lower_hex(nonce)},
                                     {"issued_at", issued_at},
                                     {"expires_at", expires_at},
                                     {"sync_window_hours", window_hours}});
    }
    if (status != ledger::NonceStatus::Duplicate) break;
  }
  refuse("SERVICE_UNAVAILABLE", {{"detail", "nonce"}});
}

Response Work::budget() {
  static constexpr FieldRule rules[] = {{"fund", Kind::Unsigned, true}, {"allocated_fen", Kind::Unsigned, true}};
  const auto body = parse_object(request_.body, rules, false);
  const auto fund = static_cast<schemas::FundSource>(number(body, "fund", 1, 4));
  const auto allocated = static_cast<std::int64_t>(number(body, "allocated_fen", 0, 1'000'000'000'000'000ULL));
  const auto status = ctx_.ledger->set_budget(fund, allocated, actor_of(request_), now());
  if (status != ledger::BudgetStatus::Set) bad_field("allocated_fen", "below what is already committed and spent");
  const auto b = ctx_.ledger->budget(fund).value_or(ledger::Budget{});
  return json_response(200, json{{"fund", static_cast<unsigned>(fund)},
                                 {"allocated_fen", b.allocated_fen},
                                 {"committed_fen", b.committed_fen},
                                 {"spent_fen", b.spent_fen},
                                 {"remaining_fen", b.remaining_fen()}});
}

Response Work::verify() {
  static constexpr FieldRule rules[] = {{"token", Kind::String, true}};
  // Every well-formed verify body is {"token": "<base64url>"}: read as it stands, without
  // building a JSON document; any other body is parsed in full (and refused by name).
  json body;
  std::string_view text_token;
  if (const auto plain = sole_plain_string(request_.body, "token")) {
    text_token = *plain;
  } else {
    body = parse_object(request_.body, rules, false);
    text_token = text(body, "token");
  }
  if (text_token.size() > (schemas::kMaxVoucherToken * 4 + 2) / 3) {
    refuse_token("TOKEN_MALFORMED", "format",
                 {{"detail", "larger than " + std::to_string(schemas::kMaxVoucherToken) + " bytes"}});
  }
  const auto token = base64url_text(text_token, "token", schemas::kMaxVoucherToken);

  // 1. format (tag, profile of the protected header, claims)
  std::optional<schemas::Signed<schemas::VoucherClaims>> decoded;
  try {
    decoded = schemas::decode_voucher_token(token);
  } catch (const schemas::DecodeError& e) {
    if (e.kind() == schemas::DecodeErrorKind::NewerFormat) refuse_token("TOKEN_NEWER_FORMAT", "format");
    refuse_token("TOKEN_MALFORMED", "format", {{"detail", e.what()}});
  }
  const auto& claims = decoded->claims;
  const auto at = now();
  // 2. kid on the current trust list, role voucher, bureau = iss
  const auto key = ctx_.trust->find(decoded->kid, schemas::TrustRole::Voucher, claims.issuer, at);
  if (!key) refuse_token("TOKEN_UNKNOWN_KID", "kid", {{"detail", "kid " + ledger::lower_hex(decoded->kid)}});
  // 3. signature (tag and algorithm again, then ES256 over the bytes received)
  const auto verdict = decoded->envelope.verify(
      [&](ByteView tbs, const crypto::EcSignature& sig) { return crypto::OpenSsl::verify(*key->key, tbs, sig); });
  if (!verdict.ok()) {
    if (verdict.failure == schemas::CoseFailure::BadSignature) refuse_token("TOKEN_BAD_SIGNATURE", "signature");
    refuse_token("TOKEN_MALFORMED", "format", {{"detail", verdict.reason}});
  }
  // 4. validity window, by the service clock
  if (at < claims.not_before) refuse_token("P15_VOUCHER_NOT_YET_VALID", "validity");
  if (at >= claims.expires_at) refuse_token("P15_VOUCHER_EXPIRED", "validity");
  // 5. the ledger's state
  const auto record = ctx_.ledger->voucher_standing(claims.id);
  if (!record) refuse_token("VOUCHER_UNKNOWN", "ledger");
  using S = ledger::VoucherState;
  switch (record->state) {
    case S::Issued:
    case S::Written:
      break;
    case S::Redeemed:
      refuse_token("P15_ALREADY_REDEEMED", "ledger");
    case S::Voided:
    case S::Moved:
      refuse_token("P15_VOUCHER_VOIDED", "ledger", {{"detail", std::string(ledger::to_string(record->state))}});
    case S::Expired:
      refuse_token("P15_VOUCHER_EXPIRED", "ledger");
  }
  if (record->token != token) {
    refuse_token("TOKEN_UNKNOWN_KID", "ledger", {{"detail", "not the token the ledger issued under this id"}});
  }
  if (ctx_.metrics) ctx_.metrics->count_verification(true);
  // Written directly (the same members as voucher_json, tested so): this answer goes out for
  // every verified token.
  JsonWriter answer;
  answer.begin_object();
  answer.key("valid").boolean(true);
  answer.key("kid").hex(decoded->kid);
  answer.key("state").text(ledger::to_string(record->state));
  answer.key("voucher");
  write_voucher(answer, claims);
  answer.end_object();
  return json_text_response(200, std::move(answer).take());
}

}  // namespace skillcard::service::detail
