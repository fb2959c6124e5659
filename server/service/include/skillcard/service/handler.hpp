// The service's pure request handler (docs/design.md, "HTTP conventions"): a request with the
// authenticated terminal in, a response out. No sockets, no Boost: the network layer
// (server.hpp) authenticates the terminal, reads the request, and writes what this returns.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "skillcard/crypto/signer.hpp"
#include "skillcard/ledger/ledger.hpp"
#include "skillcard/policy/config.hpp"
#include "skillcard/registry/registry.hpp"
#include "skillcard/registry/sqlite_registry.hpp"
#include "skillcard/reports/reports.hpp"
#include "skillcard/service/metrics.hpp"
#include "skillcard/service/terminal.hpp"
#include "skillcard/service/trust_store.hpp"

namespace skillcard::service {

inline constexpr std::size_t kMaxBody = 64 * 1024;
inline constexpr std::uint64_t kNonceLifetime = 5 * 60;  // seconds
inline constexpr std::string_view kClerkHeader = "skillcard-clerk";

struct Request {
  std::string method;                                       // "GET", "POST", ...
  std::string target;                                       // path and query, e.g. "/v1/nonces"
  std::map<std::string, std::string, std::less<>> headers;  // the Skillcard-* ones, names in lower case
  std::string body;
  Terminal terminal;  // authenticated by the network layer
};

struct Response {
  int status = 200;
  std::string body;                                          // JSON, or Prometheus text for /metrics
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Type among them
};

struct ServiceContext {
  ledger::Ledger* ledger = nullptr;                     // required
  const TrustStore* trust = nullptr;                    // required
  Metrics* metrics = nullptr;                           // optional
  std::function<std::uint64_t()> clock;                 // UTC seconds; default: system clock
  std::function<void(std::span<std::uint8_t>)> random;  // default: OpenSsl::random_bytes
  std::size_t max_body = kMaxBody;

  // What the write paths need. A missing policy configuration or registry refuses every
  // request that needs a policy decision (POLICY_NOT_CONFIGURED: fail closed, never allow-all).
  const policy::PolicyConfig* policy = nullptr;
  const registry::Registry* registry = nullptr;
  // Citizen ID → holder reference (the master key store's keyed hash); required for counter
  // writes, which refuse with SERVICE_UNAVAILABLE without it.
  std::function<crypto::HolderRef(std::string_view citizen_id)> holder_ref;
  // Voucher signers by bureau code (a counter in region 420102 issues for 420102, else its city
  // 420100, else its province 420000); the portfolio signer for e-portfolio digests. Signer is an
  // interface so that an HSM can replace the key files.
  std::map<std::uint32_t, std::shared_ptr<const crypto::Signer>> voucher_signers;
  std::shared_ptr<const crypto::Signer> portfolio_signer;
  // Operator reports (GET /v1/reports/…): the SQLite registry of record for regions and outside
  // subsidies (optional: without it person-times count in their issuing bureau's region) and the
  // P19 targets (optional: POLICY.md's defaults).
  const registry::SqliteRegistry* registry_db = nullptr;
  const reports::Targets* targets = nullptr;
  // Terminal revocations, listed by GET /v1/revocations (optional; re-read when the file changed).
  TerminalRevocations* terminal_revocations = nullptr;
  // Where the storage failures behind a 503 or 500 are told (SQLSTATE, call site; never request
  // data); optional.
  std::function<void(const std::string&)> log;
};

inline constexpr std::uint64_t kPortfolioDigestLifetime = 3ULL * 365 * 86'400;  // design "Time": 3 years

class Handler {
 public:
  explicit Handler(ServiceContext context);
  // Never throws: every failure is a response (bad input 4xx, storage trouble 503, bugs 500).
  Response handle(const Request& request) const;

  // The refusal body of the catalogue for `code` (docs/design.md, "Refusal catalogue"), with
  // `values` filled into the messages and `extra` members added (e.g. "field", "check").
  static Response refusal(std::string_view code, const std::map<std::string, std::string, std::less<>>& values = {},
                          const std::map<std::string, std::string, std::less<>>& extra = {});

 private:
  ServiceContext ctx_;
};

}  // namespace skillcard::service
