// libFuzzer target for the service's request handler over a real SQLite ledger with the policy
// engine and a registry configured: byte 0 picks the terminal's role, byte 1 the endpoint, the
// rest is the body (or, for one endpoint in the table, "target\nbody"). Whatever comes in, the
// handler must answer with a status below 500 and, unless it is /metrics, a JSON body.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdlib>
#include <string>

#include <unistd.h>
#include <filesystem>

#include "../server/service_support.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/service/handler.hpp"

using namespace skillcard;
using namespace skillcard::service;

namespace {

crypto::HolderRef holder_of(std::string_view id) {
  const auto digest = crypto::OpenSsl::sha256(Bytes(id.begin(), id.end()));
  crypto::HolderRef ref{};
  std::copy_n(digest.begin(), ref.size(), ref.begin());
  return ref;
}

struct World {
  testing::KeySet keys;
  std::filesystem::path dir;
  std::unique_ptr<ledger::SqliteLedger> ledger;
  std::unique_ptr<TrustStore> trust;
  policy::PolicyConfig config = policy::PolicyConfig::from_toml(
      "[[standards]]\nprogramme = 3\noccupation = \"*\"\nlevel = 4\namount_fen = 150000\n", "fuzz.toml");
  std::unique_ptr<registry::MemoryRegistry> people;
  Metrics metrics;
  std::unique_ptr<Handler> handler;
  World() {
    dir = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                              : std::filesystem::temp_directory_path();
    dir /= "skillcard-fuzz-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    ledger = ledger::SqliteLedger::open(dir / "ledger.db");
    trust = TrustStore::from_signed_list(keys.signed_list(), keys.root.public_key());
    registry::Person p;
    p.citizen_id = "11010519491231002X";
    p.region = testing::kBureau;
    p.facts.known = true;
    p.facts.date_of_birth = std::chrono::year{1990} / 1 / 1;
    p.facts.insured = true;
    people =
        std::make_unique<registry::MemoryRegistry>(std::vector{p}, std::vector<registry::ExternalSubsidy>{}, holder_of);
    ServiceContext ctx;
    ctx.ledger = ledger.get();
    ctx.trust = trust.get();
    ctx.metrics = &metrics;
    ctx.clock = [] { return testing::kNow; };
    ctx.policy = &config;
    ctx.registry = people.get();
    ctx.holder_ref = holder_of;
    ctx.voucher_signers[testing::kBureau] = std::make_shared<crypto::KeyFileSigner>(
        crypto::OpenSsl::PrivateKey::from_scalar(ByteView(keys.voucher.scalar().data(), 32)));
    ctx.portfolio_signer = std::make_shared<crypto::KeyFileSigner>(
        crypto::OpenSsl::PrivateKey::from_scalar(ByteView(keys.portfolio.scalar().data(), 32)));
    handler = std::make_unique<Handler>(ctx);
  }
  ~World() {
    handler.reset();
    ledger.reset();
    std::filesystem::remove_all(dir);
  }
};

constexpr std::array<std::pair<const char*, const char*>, 16> kTargets{{
    {"POST", "/v1/vouchers/verify"},
    {"POST", "/v1/nonces"},
    {"GET", "/healthz"},
    {"GET", "/v1/trust-list"},
    {"GET", "/metrics"},
    {"POST", "/v1/vouchers"},
    {"GET", "/v1/holders/00112233445566778899aabbccddeeff/vouchers"},
    {"POST", ""},  // target from the input
    {"POST", "/v1/redemptions"},
    {"POST", "/v1/redemptions/sync"},
    {"POST", "/v1/certificates"},
    {"POST", "/v1/cards"},
    {"POST", "/v1/cards/4201000001/lost"},
    {"POST", "/v1/vouchers/0000000000000001/void"},
    {"POST", "/v1/budgets"},
    {"GET", "/v1/revocations"},
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
  if (data[0] & 4) request.headers.emplace("skillcard-card-proof", request.body.substr(0, 200));
  const auto response = world.handler->handle(request);
  if (response.status >= 500) std::abort();
  const bool is_json = !response.headers.empty() && response.headers.front().second.rfind("application/json", 0) == 0;
  if (is_json && nlohmann::json::parse(response.body, nullptr, false).is_discarded()) std::abort();
  return 0;
}
