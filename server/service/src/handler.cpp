// The service's pure request handler: routing by method and path, the role table, the body
// limit, and the mapping of every failure to an answer (docs/design.md, "HTTP conventions").
// The endpoints themselves live in work_*.cpp.
#include "skillcard/service/handler.hpp"

#include <array>
#include <chrono>

#include "request.hpp"
#include "skillcard/registry/registry.hpp"
#include "skillcard/schemas/refusals.hpp"
#include "work.hpp"

namespace skillcard::service {

namespace {

using detail::Endpoint;
using detail::json;
using detail::Values;

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
    Route{"POST", "/v1/budgets", "POST /v1/budgets", bit(Role::Operator), Endpoint::Budget},
    Route{"POST", "/v1/vouchers/verify", "POST /v1/vouchers/verify", kAll, Endpoint::Verify},
    Route{"POST", "/v1/vouchers", "POST /v1/vouchers", bit(Role::Counter), Endpoint::Issue},
    Route{"POST", "/v1/vouchers/{}/written", "POST /v1/vouchers/{id}/written", bit(Role::Counter), Endpoint::Written},
    Route{"POST", "/v1/vouchers/{}/void", "POST /v1/vouchers/{id}/void", bit(Role::Counter) | bit(Role::Operator),
          Endpoint::Void},
    Route{"POST", "/v1/redemptions", "POST /v1/redemptions", bit(Role::Site), Endpoint::Redemptions},
    Route{"POST", "/v1/redemptions/sync", "POST /v1/redemptions/sync", bit(Role::Site), Endpoint::RedemptionSync},
    Route{"POST", "/v1/certificates", "POST /v1/certificates", bit(Role::Counter), Endpoint::Certificates},
    Route{"POST", "/v1/cards", "POST /v1/cards", bit(Role::Counter), Endpoint::RegisterCard},
    Route{"GET", "/v1/cards/{}", "GET /v1/cards/{number}", bit(Role::Counter) | bit(Role::Operator),
          Endpoint::CardInfo},
    Route{"POST", "/v1/cards/{}/lost", "POST /v1/cards/{number}/lost", bit(Role::Counter), Endpoint::CardLost},
    Route{"POST", "/v1/cards/{}/holder-check", "POST /v1/cards/{number}/holder-check", bit(Role::Counter),
          Endpoint::CardHolderCheck},
    Route{"GET", "/v1/holders/{}/vouchers", "GET /v1/holders/{ref}/vouchers", bit(Role::Counter) | bit(Role::Kiosk),
          Endpoint::HolderVouchers},
    Route{"GET", "/v1/reports/{}", "GET /v1/reports/{kind}", bit(Role::Operator), Endpoint::Report},
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

}  // namespace

Response Handler::refusal(std::string_view code, const Values& values, const Values& extra) {
  const auto& entry = schemas::refusal(code);
  json rules = json::array();
  for (const auto& rule : entry.rules) rules.push_back(rule);
  json body{{"error", entry.code},
            {"rules", std::move(rules)},
            {"message", {{"zh-CN", schemas::render(entry.zh_cn, values)}, {"en", schemas::render(entry.en, values)}}}};
  for (const auto& [name, value] : extra) body[name] = value;
  return detail::json_response(entry.http_status > 0 ? entry.http_status : 400, body);
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
    const Route* found = nullptr;
    std::string allow;
    for (const auto& r : kRoutes) {
      if (!path_matches(r.pattern, path)) continue;
      if (r.method == request.method) {
        found = &r;
        break;
      }
      if (!allow.empty()) allow += ", ";
      allow += r.method;
    }
    if (!found && !allow.empty()) {
      response = refusal("METHOD_NOT_ALLOWED");
      response.headers.emplace_back("Allow", allow);
    } else if (!found) {
      response = refusal("NOT_FOUND");
    } else {
      label = found->label;
      if ((found->roles & bit(request.terminal.role)) == 0) {
        response = refusal("TERMINAL_ROLE_FORBIDDEN");
      } else if (request.body.size() > ctx_.max_body) {
        response = refusal("BAD_REQUEST_FIELD",
                           {{"field", "body"}, {"detail", "larger than " + std::to_string(ctx_.max_body) + " bytes"}},
                           {{"field", "body"}});
      } else {
        try {
          response = detail::Work(ctx_, request).run(found->endpoint);
        } catch (detail::Refused& refused) {
          response = std::move(refused.response);
        }
      }
    }
  } catch (const ledger::StorageError& e) {
    // An outage is retried; a damaged ledger is not the caller's to retry; a write whose commit
    // answer was lost (PostgreSQL gone during COMMIT, its fate not found out) must not be told
    // "nothing was changed".
    using K = ledger::StorageErrorKind;
    if (ctx_.log) ctx_.log(std::string("storage: ") + std::string(ledger::to_string(e.kind())) + ": " + e.what());
    if (e.kind() == K::OutcomeUnknown) {
      response = refusal("OUTCOME_UNKNOWN");
    } else if (e.kind() == K::Corrupt || e.kind() == K::NotADatabase) {
      response = refusal("INTERNAL");
    } else {
      response = refusal("SERVICE_UNAVAILABLE", {{"detail", "storage"}});
    }
  } catch (const registry::RegistryStorageError& e) {
    // The registry of record could not answer: nothing was decided on it; the caller retries.
    if (ctx_.log) ctx_.log(std::string("registry: ") + e.what());
    response = refusal("SERVICE_UNAVAILABLE", {{"detail", "registry"}});
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
