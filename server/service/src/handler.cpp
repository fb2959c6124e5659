#include "skillcard/service/handler.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <set>
#include <string_view>
#include <variant>

#include "skillcard/schemas/refusals.hpp"
#include "skillcard/schemas/voucher.hpp"
#include "skillcard/service/encoding.hpp"

namespace skillcard::service {

namespace {

using json = nlohmann::json;
using Values = std::map<std::string, std::string, std::less<>>;

const std::pair<std::string, std::string> kJsonType{"Content-Type", "application/json; charset=utf-8"};
const std::pair<std::string, std::string> kNoStore{"Cache-Control", "no-store"};

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Response json_response(int status, const json& body) { return Response{status, dump(body), {kJsonType, kNoStore}}; }

// Answers that are not refusals of the catalogue (routing, the service's own trouble).
Response bad_field(std::string_view field, std::string_view detail) {
  return Handler::refusal("BAD_REQUEST_FIELD", {{"field", std::string(field)}, {"detail", std::string(detail)}},
                          {{"field", std::string(field)}});
}

// --- routing --------------------------------------------------------------------------------

enum class Endpoint {
  Healthz,
  Metrics,
  TrustList,
  Revocations,
  Nonces,
  Verify,
  Issue,
  Written,
  Void,
  Redemptions,
  RedemptionSync,
  Certificates,
  CardLost,
  HolderVouchers,
  HolderPortfolio,
};

constexpr unsigned bit(Role r) { return 1U << static_cast<unsigned>(r); }
constexpr unsigned kAll = bit(Role::Counter) | bit(Role::Site) | bit(Role::Kiosk) | bit(Role::Operator);

struct Route {
  std::string_view method;
  std::string_view pattern;  // "{}" matches one path segment
  std::string_view label;    // metrics label
  unsigned roles;
  Endpoint endpoint;
};

// docs/design.md, "Terminal certificates": the role table.
constexpr std::array kRoutes{
    Route{"GET", "/healthz", "GET /healthz", kAll, Endpoint::Healthz},
    Route{"GET", "/metrics", "GET /metrics", bit(Role::Operator), Endpoint::Metrics},
    Route{"GET", "/v1/trust-list", "GET /v1/trust-list", kAll, Endpoint::TrustList},
    Route{"GET", "/v1/revocations", "GET /v1/revocations", kAll, Endpoint::Revocations},
    Route{"POST", "/v1/nonces", "POST /v1/nonces", bit(Role::Counter) | bit(Role::Site) | bit(Role::Kiosk),
          Endpoint::Nonces},
    Route{"POST", "/v1/vouchers/verify", "POST /v1/vouchers/verify", kAll, Endpoint::Verify},
    Route{"POST", "/v1/vouchers", "POST /v1/vouchers", bit(Role::Counter), Endpoint::Issue},
    Route{"POST", "/v1/vouchers/{}/written", "POST /v1/vouchers/{id}/written", bit(Role::Counter), Endpoint::Written},
    Route{"POST", "/v1/vouchers/{}/void", "POST /v1/vouchers/{id}/void", bit(Role::Counter) | bit(Role::Operator),
          Endpoint::Void},
    Route{"POST", "/v1/redemptions", "POST /v1/redemptions", bit(Role::Site), Endpoint::Redemptions},
    Route{"POST", "/v1/redemptions/sync", "POST /v1/redemptions/sync", bit(Role::Site), Endpoint::RedemptionSync},
    Route{"POST", "/v1/certificates", "POST /v1/certificates", bit(Role::Counter), Endpoint::Certificates},
    Route{"POST", "/v1/cards/{}/lost", "POST /v1/cards/{number}/lost", bit(Role::Counter), Endpoint::CardLost},
    Route{"GET", "/v1/holders/{}/vouchers", "GET /v1/holders/{ref}/vouchers", bit(Role::Counter) | bit(Role::Kiosk),
          Endpoint::HolderVouchers},
    Route{"GET", "/v1/holders/{}/portfolio", "GET /v1/holders/{ref}/portfolio", bit(Role::Counter) | bit(Role::Kiosk),
          Endpoint::HolderPortfolio},
};

bool path_matches(std::string_view pattern, std::string_view path) {
  while (!pattern.empty() && !path.empty()) {
    if (pattern.substr(0, 2) == "{}") {
      const auto end = path.find('/');
      const auto segment = path.substr(0, end);
      if (segment.empty()) return false;
      pattern.remove_prefix(2);
      path.remove_prefix(segment.size());
      continue;
    }
    if (pattern.front() != path.front()) return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
  }
  return pattern.empty() && path.empty();
}

// --- strict JSON ----------------------------------------------------------------------------

enum class Kind { String, Unsigned, Boolean };
struct FieldRule {
  std::string_view name;
  Kind kind;
  bool required;
};

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::String:
      return "must be a string";
    case Kind::Unsigned:
      return "must be an unsigned integer";
    case Kind::Boolean:
      return "must be true or false";
  }
  return "has the wrong type";
}

bool has_kind(const json& value, Kind kind) {
  switch (kind) {
    case Kind::String:
      return value.is_string();
    case Kind::Unsigned:
      return value.is_number_unsigned();
    case Kind::Boolean:
      return value.is_boolean();
  }
  return false;
}

std::string clip(std::string_view name) { return std::string(name.substr(0, 64)); }

constexpr int kMaxDepth = 16;

// The body as a JSON object holding exactly the fields `rules` allow (each of its type, the
// required ones present), or the 400 that names the first field that is wrong. An empty body
// counts as {} when `empty_ok`.
std::variant<json, Response> parse_object(const std::string& body, std::span<const FieldRule> rules, bool empty_ok) {
  if (body.empty() && empty_ok) return json::object();
  std::vector<std::set<std::string>> keys;
  std::string problem;
  std::string problem_field = "body";
  const json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (!problem.empty()) return true;
    if (depth > kMaxDepth) problem = "nested more than " + std::to_string(kMaxDepth) + " levels deep";
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() && !keys.back().insert(parsed.get<std::string>()).second) {
          problem = "duplicate member";
          problem_field = clip(parsed.get<std::string>());
        }
        break;
      default:
        break;
    }
    return true;
  };
  json value = json::parse(body, callback, /*allow_exceptions=*/false);
  if (value.is_discarded()) return bad_field("body", "not well-formed JSON");
  if (!problem.empty()) return bad_field(problem_field, problem);
  if (!value.is_object()) return bad_field("body", "must be a JSON object");
  for (const auto& item : value.items()) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const auto& name = item.key();
    const auto& member = item.value();
    const auto rule = std::find_if(rules.begin(), rules.end(), [&](const FieldRule& r) { return r.name == name; });
    if (rule == rules.end()) return bad_field(clip(name), "unknown field");
    if (!has_kind(member, rule->kind)) return bad_field(rule->name, kind_name(rule->kind));
  }
  for (const auto& rule : rules) {
    if (rule.required && !value.contains(std::string(rule.name))) return bad_field(rule.name, "missing");
  }
  return value;
}

// Every write names the clerk logged in at the terminal; a kiosk has none (self-service).
std::variant<std::string, Response> clerk_of(const Request& request) {
  const auto it = request.headers.find(kClerkHeader);
  if (it == request.headers.end() || it->second.empty()) {
    if (request.terminal.role == Role::Kiosk) return std::string("self-service");
    return bad_field("Skillcard-Clerk", "required for every write: the operator logged in at the terminal");
  }
  const auto& clerk = it->second;
  if (clerk.size() > 64 || !std::all_of(clerk.begin(), clerk.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return bad_field("Skillcard-Clerk", "1-64 printable ASCII characters without spaces");
  }
  return clerk;
}

std::string_view state_name(ledger::VoucherState state) { return ledger::to_string(state); }

json voucher_json(const schemas::VoucherClaims& c) {
  return json{{"id", ledger::lower_hex(c.id)},
              {"issuer", c.issuer},
              {"holder", ledger::lower_hex(c.holder)},
              {"programme", static_cast<unsigned>(c.programme)},
              {"occupation", schemas::format_occupation(c.occupation)},
              {"level", c.level},
              {"fund", static_cast<unsigned>(c.fund)},
              {"face_value_fen", c.face_value_fen},
              {"planned_hours", c.planned_hours},
              {"planned_online_hours", c.planned_online_hours},
              {"eligible_regions", c.eligible_regions},
              {"eligible_providers", c.eligible_providers},
              {"issued_at", c.issued_at},
              {"not_before", c.not_before},
              {"expires_at", c.expires_at}};
}

class Work {
 public:
  Work(const ServiceContext& ctx, const Request& request) : ctx_(ctx), request_(request) {}

  Response run(Endpoint endpoint) {
    switch (endpoint) {
      case Endpoint::Healthz:
        return healthz();
      case Endpoint::Metrics:
        return metrics();
      case Endpoint::TrustList:
        return trust_list();
      case Endpoint::Nonces:
        return nonces();
      case Endpoint::Verify:
        return verify();
      default:
        return Handler::refusal("NOT_IMPLEMENTED");
    }
  }

 private:
  std::uint64_t now() const { return ctx_.clock(); }

  Response healthz() {
    if (!request_.body.empty()) return bad_field("body", "must be empty");
    return json_response(200, json{{"status", "ok"}, {"trust_list_sequence", ctx_.trust->claims().sequence}});
  }

  Response metrics() {
    if (!request_.body.empty()) return bad_field("body", "must be empty");
    return Response{200,
                    ctx_.metrics ? ctx_.metrics->render() : std::string(),
                    {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}, kNoStore}};
  }

  Response trust_list() {
    if (!request_.body.empty()) return bad_field("body", "must be empty");
    const auto& claims = ctx_.trust->claims();
    return json_response(200, json{{"trust_list", base64url_encode(ctx_.trust->signed_list())},
                                   {"sequence", claims.sequence},
                                   {"issued_at", claims.issued_at},
                                   {"next_update", claims.next_update}});
  }

  Response nonces() {
    auto parsed = parse_object(request_.body, {}, /*empty_ok=*/true);
    if (auto* r = std::get_if<Response>(&parsed)) return std::move(*r);
    auto clerk = clerk_of(request_);
    if (auto* r = std::get_if<Response>(&clerk)) return std::move(*r);
    const ledger::Actor actor{request_.terminal.id, std::get<std::string>(clerk)};
    const auto issued_at = now();
    const auto expires_at = issued_at + kNonceLifetime;
    for (int attempt = 0; attempt < 3; ++attempt) {
      schemas::Nonce nonce{};
      nonce[0] = static_cast<std::uint8_t>(schemas::NonceKind::Server);
      ctx_.random(std::span<std::uint8_t>(nonce).subspan(1));
      const auto status = ctx_.ledger->issue_nonce(nonce, request_.terminal.id, issued_at, expires_at, actor);
      if (status == ledger::NonceStatus::Ok) {
        return json_response(
            201, json{{"nonce", ledger::lower_hex(nonce)}, {"issued_at", issued_at}, {"expires_at", expires_at}});
      }
      if (status != ledger::NonceStatus::Duplicate) break;
    }
    return Handler::refusal("SERVICE_UNAVAILABLE", {{"detail", "nonce"}});
  }

  Response refuse_token(std::string_view code, std::string_view check, const Values& values = {}) {
    if (ctx_.metrics) ctx_.metrics->count_verification(false);
    Values extra{{"check", std::string(check)}};
    if (const auto it = values.find("detail"); it != values.end()) extra.emplace("detail", it->second);
    return Handler::refusal(code, values, extra);
  }

  Response verify() {
    static constexpr FieldRule rules[] = {{"token", Kind::String, true}};
    auto parsed = parse_object(request_.body, rules, false);
    if (auto* r = std::get_if<Response>(&parsed)) return std::move(*r);
    const auto& text = std::get<json>(parsed)["token"].get_ref<const std::string&>();
    if (text.size() > (schemas::kMaxVoucherToken * 4 + 2) / 3) {
      return refuse_token("TOKEN_MALFORMED", "format",
                          {{"detail", "larger than " + std::to_string(schemas::kMaxVoucherToken) + " bytes"}});
    }
    const auto token = base64url_decode(text);
    if (!token) return bad_field("token", "not base64url without padding");

    // 1. format (tag, profile of the protected header, claims)
    std::optional<schemas::Signed<schemas::VoucherClaims>> decoded;
    try {
      decoded = schemas::decode_voucher_token(*token);
    } catch (const schemas::DecodeError& e) {
      if (e.kind() == schemas::DecodeErrorKind::NewerFormat) return refuse_token("TOKEN_NEWER_FORMAT", "format");
      return refuse_token("TOKEN_MALFORMED", "format", {{"detail", e.what()}});
    }
    const auto& claims = decoded->claims;
    const auto at = now();
    // 2. kid on the current trust list, role voucher, bureau = iss
    const auto key = ctx_.trust->find(decoded->kid, schemas::TrustRole::Voucher, claims.issuer, at);
    if (!key) return refuse_token("TOKEN_UNKNOWN_KID", "kid", {{"detail", "kid " + ledger::lower_hex(decoded->kid)}});
    // 3. signature (tag and algorithm again, then ES256 over the bytes received)
    const auto verdict = decoded->envelope.verify(
        [&](ByteView tbs, const crypto::EcSignature& sig) { return crypto::OpenSsl::verify(*key->key, tbs, sig); });
    if (!verdict.ok()) {
      if (verdict.failure == schemas::CoseFailure::BadSignature)
        return refuse_token("TOKEN_BAD_SIGNATURE", "signature");
      return refuse_token("TOKEN_MALFORMED", "format", {{"detail", verdict.reason}});
    }
    // 4. validity window, by the service clock
    if (at < claims.not_before) return refuse_token("P15_VOUCHER_NOT_YET_VALID", "validity");
    if (at >= claims.expires_at) return refuse_token("P15_VOUCHER_EXPIRED", "validity");
    // 5. the ledger's state
    const auto record = ctx_.ledger->voucher(claims.id);
    if (!record) return refuse_token("VOUCHER_UNKNOWN", "ledger");
    using S = ledger::VoucherState;
    switch (record->state) {
      case S::Issued:
      case S::Written:
        break;
      case S::Redeemed:
        return refuse_token("P15_ALREADY_REDEEMED", "ledger");
      case S::Voided:
      case S::Moved:
        return refuse_token("P15_VOUCHER_VOIDED", "ledger", {{"detail", std::string(state_name(record->state))}});
      case S::Expired:
        return refuse_token("P15_VOUCHER_EXPIRED", "ledger");
    }
    if (record->token != *token) {
      return refuse_token("TOKEN_UNKNOWN_KID", "ledger", {{"detail", "not the token the ledger issued under this id"}});
    }
    if (ctx_.metrics) ctx_.metrics->count_verification(true);
    return json_response(200, json{{"valid", true},
                                   {"kid", ledger::lower_hex(decoded->kid)},
                                   {"state", state_name(record->state)},
                                   {"voucher", voucher_json(claims)}});
  }

  const ServiceContext& ctx_;
  const Request& request_;
};

}  // namespace

Response Handler::refusal(std::string_view code, const Values& values, const Values& extra) {
  const auto& entry = schemas::refusal(code);
  json rules = json::array();
  for (const auto& rule : entry.rules) rules.push_back(rule);
  json body{{"error", entry.code},
            {"rules", std::move(rules)},
            {"message", {{"zh-CN", schemas::render(entry.zh_cn, values)}, {"en", schemas::render(entry.en, values)}}}};
  for (const auto& [name, value] : extra) body[name] = value;
  return json_response(entry.http_status > 0 ? entry.http_status : 400, body);
}

Handler::Handler(ServiceContext context) : ctx_(std::move(context)) {
  if (!ctx_.ledger || !ctx_.trust) throw std::invalid_argument("Handler needs a ledger and a trust store");
  if (!ctx_.clock) {
    ctx_.clock = [] {
      return static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
              .count());
    };
  }
  if (!ctx_.random) ctx_.random = [](std::span<std::uint8_t> out) { crypto::OpenSsl::random_bytes(out); };
}

Response Handler::handle(const Request& request) const {
  const auto started = std::chrono::steady_clock::now();
  std::string_view label = "unmatched";
  Response response;
  try {
    std::string_view path = request.target;
    if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    const Route* route = nullptr;
    std::string allow;
    for (const auto& r : kRoutes) {
      if (!path_matches(r.pattern, path)) continue;
      if (r.method == request.method) {
        route = &r;
        break;
      }
      if (!allow.empty()) allow += ", ";
      allow += r.method;
    }
    if (!route && !allow.empty()) {
      response = refusal("METHOD_NOT_ALLOWED");
      response.headers.emplace_back("Allow", allow);
    } else if (!route) {
      response = refusal("NOT_FOUND");
    } else {
      label = route->label;
      if ((route->roles & bit(request.terminal.role)) == 0) {
        response = refusal("TERMINAL_ROLE_FORBIDDEN");
      } else if (request.body.size() > ctx_.max_body) {
        response = bad_field("body", "larger than " + std::to_string(ctx_.max_body) + " bytes");
      } else {
        response = Work(ctx_, request).run(route->endpoint);
      }
    }
  } catch (const ledger::StorageError&) {
    response = refusal("SERVICE_UNAVAILABLE", {{"detail", "storage"}});
  } catch (const std::exception&) {
    response = refusal("INTERNAL");
  }
  if (ctx_.metrics) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    ctx_.metrics->count_request(label, response.status, took.count());
    if (response.status >= 400 && response.status < 500) {
      const auto body = json::parse(response.body, nullptr, false);
      if (body.is_object() && body.contains("error") && body["error"].is_string()) {
        const auto& code = body["error"].get_ref<const std::string&>();
        if (code != "NOT_FOUND" && code != "METHOD_NOT_ALLOWED") ctx_.metrics->count_refusal(code);
      }
    }
  }
  return response;
}

}  // namespace skillcard::service
