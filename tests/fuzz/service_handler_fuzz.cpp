// libFuzzer target for the service's request handler: byte 0 picks the terminal's role, byte 1
// the endpoint, the rest is the body (or, for one endpoint in eight, "target\nbody"). Whatever
// comes in, the handler must answer with a status below 500 (501 for endpoints still to come)
// and, unless it is /metrics, a JSON body.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdlib>
#include <string>

#include "../server/service_support.hpp"
#include "skillcard/service/handler.hpp"

using namespace skillcard;
using namespace skillcard::service;

namespace {

struct World {
  testing::KeySet keys;
  testing::FakeLedger ledger;
  std::unique_ptr<TrustStore> trust;
  Metrics metrics;
  std::unique_ptr<Handler> handler;
  World() {
    trust = TrustStore::from_signed_list(keys.signed_list(), keys.root.public_key());
    const auto claims = testing::sample_claims(1);
    ledger.put(claims, testing::sign_token(claims, keys.voucher), ledger::VoucherState::Written);
    ServiceContext ctx;
    ctx.ledger = &ledger;
    ctx.trust = trust.get();
    ctx.metrics = &metrics;
    ctx.clock = [] { return testing::kNow; };
    handler = std::make_unique<Handler>(ctx);
  }
};

constexpr std::array<std::pair<const char*, const char*>, 8> kTargets{{
    {"POST", "/v1/vouchers/verify"},
    {"POST", "/v1/nonces"},
    {"GET", "/healthz"},
    {"GET", "/v1/trust-list"},
    {"GET", "/metrics"},
    {"POST", "/v1/vouchers"},
    {"GET", "/v1/holders/00/vouchers"},
    {"POST", ""},  // target from the input
}};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World world;
  if (size < 2) return 0;
  Request request;
  request.terminal = Terminal{"T0001", static_cast<Role>(data[0] & 3), testing::kBureau, std::nullopt};
  if (request.terminal.role == Role::Site) request.terminal.site = 10001;
  const auto& [method, target] = kTargets[data[1] % kTargets.size()];
  request.method = method;
  std::string rest(reinterpret_cast<const char*>(data + 2), size - 2);
  if (*target == '\0') {
    const auto nl = rest.find('\n');
    request.target = rest.substr(0, nl);
    rest = nl == std::string::npos ? std::string() : rest.substr(nl + 1);
  } else {
    request.target = target;
  }
  request.body = std::move(rest);
  request.headers.emplace("skillcard-clerk", "C1");
  const auto response = world.handler->handle(request);
  if (response.status >= 500 && response.status != 501) std::abort();
  const bool is_json = !response.headers.empty() && response.headers.front().second.rfind("application/json", 0) == 0;
  if (is_json && nlohmann::json::parse(response.body, nullptr, false).is_discarded()) std::abort();
  if (world.ledger.nonces.size() > 100000) world.ledger.nonces.clear();
  return 0;
}
