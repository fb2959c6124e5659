// The service's workflows over real TLS with client certificates from skillcard-keytool for
// every role, the process started as it is deployed (skillcard-server with a key folder, a
// policy file and a registry CSV): issue, written, redeem once, a kiosk read with card proof,
// a lost card and its replacement, roles refused, and a terminal revoked without a restart.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "../support/http_client.hpp"
#include "../support/server_process.hpp"
#include "service_support.hpp"
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/registry/registry.hpp"
#include "skillcard/service/encoding.hpp"

namespace skillcard::service {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace skillcard::service::testing;

const std::string kAlice = citizen("42010219900101002");
const std::string kBob = citizen("42010219850505003");

void run(const std::string& command) { ASSERT_EQ(std::system((command + " >/dev/null").c_str()), 0) << command; }

struct Answer {
  int status = 0;
  json body;
};

class ServiceTlsFlow : public ::testing::Test {
 protected:
  ServiceTlsFlow() {
    dir = fs::temp_directory_path() / ("skillcard-tls-flow-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    keys = dir / "keys";
    const std::string tool = SKILLCARD_KEYTOOL;
    run(tool + " init --out " + keys.string());
    run(tool + " server --keys " + keys.string() + " --out " + (dir / "srv").string() + " --ip 127.0.0.1");
    for (const auto& [id, role] : std::vector<std::pair<std::string, std::string>>{
             {"C1", "counter"}, {"K1", "kiosk"}, {"O1", "operator"}, {"R1", "counter"}}) {
      run(tool + " terminal --keys " + keys.string() + " --role " + role + " --id " + id + " --region 420100 --out " +
          (dir / "t").string());
    }
    run(tool + " terminal --keys " + keys.string() + " --role site --id S1 --region 420100 --site 10001 --out " +
        (dir / "t").string());
    registry::write_people_csv(dir / "people.csv", {registered_person(kAlice), registered_person(kBob)});
    std::ofstream(dir / "policy.toml") << "[[standards]]\nprogramme = 3\noccupation = \"*\"\nlevel = 4\n"
                                          "amount_fen = 150000\n";
    server = std::make_unique<skillcard::testing::ServerProcess>(
        SKILLCARD_SERVER,
        std::vector<std::string>{"--keys", keys.string(), "--tls-cert", (dir / "srv/service.cert.pem").string(),
                                 "--tls-key", (dir / "srv/service.key.pem").string(), "--ledger",
                                 (dir / "ledger.sqlite").string(), "--policy", (dir / "policy.toml").string(),
                                 "--registry", (dir / "people.csv").string()},
        dir);
    card_ca = std::make_unique<crypto::OpenSsl::PrivateKey>(crypto::load_private_key(keys / "card-ca.key.pem"));
    master = crypto::FileMasterKeyStore::load(keys / "master-keys.toml");
  }
  ~ServiceTlsFlow() override {
    for (auto& [id, ctx] : contexts) SSL_CTX_free(ctx);
    server.reset();
    fs::remove_all(dir);
  }

  SSL_CTX* context(const std::string& terminal) {
    auto& ctx = contexts[terminal];
    if (!ctx) {
      ctx = SSL_CTX_new(TLS_client_method());
      SSL_CTX_load_verify_locations(ctx, (keys / "province-root.cert.pem").c_str(), nullptr);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      SSL_CTX_use_certificate_file(ctx, (dir / "t" / (terminal + ".cert.pem")).c_str(), SSL_FILETYPE_PEM);
      SSL_CTX_use_PrivateKey_file(ctx, (dir / "t" / (terminal + ".key.pem")).c_str(), SSL_FILETYPE_PEM);
    }
    return ctx;
  }

  // One request on a fresh connection as `terminal`.
  Answer call(const std::string& terminal, const std::string& method, const std::string& path,
              const json& body = nullptr, const std::string& headers = "Skillcard-Clerk: CLERK1\r\n") {
    skillcard::testing::Client client(server->port(), context(terminal));
    std::string text;
    const int status = client.request(method, path, body.is_null() ? "" : body.dump(), headers, &text);
    return {status, json::parse(text, nullptr, false)};
  }

  std::string nonce(const std::string& terminal) {
    const auto a = call(terminal, "POST", "/v1/nonces");
    EXPECT_EQ(a.status, 201) << a.body;
    return a.body.value("nonce", "");
  }

  void register_card(TestCard& card, const std::string& id) {
    const auto a = call("C1", "POST", "/v1/cards",
                        json{{"certificate", base64url_encode(card.certificate(*card_ca, now()))}, {"citizen_id", id}});
    ASSERT_EQ(a.status, 201) << a.body;
  }

  Answer redeem(const std::string& voucher, const Bytes& receipt, const std::string& card = {}) {
    json body{{"voucher_id", voucher}, {"receipt", base64url_encode(receipt)}};
    if (!card.empty()) body["card"] = card;
    return call("S1", "POST", "/v1/redemptions", body);
  }

  static std::uint64_t now() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  }

  fs::path dir, keys;
  std::unique_ptr<skillcard::testing::ServerProcess> server;
  std::unique_ptr<crypto::OpenSsl::PrivateKey> card_ca;
  std::unique_ptr<crypto::FileMasterKeyStore> master;
  std::map<std::string, SSL_CTX*> contexts;
};

TEST_F(ServiceTlsFlow, IssueRedeemKioskLostCardAndRevocationOverMutualTls) {
  TestCard alice, replacement;
  alice.number = "4201000001";
  replacement.number = "4201000002";
  ASSERT_EQ(call("O1", "POST", "/v1/budgets", json{{"fund", 1}, {"allocated_fen", 10'000'000}}).status, 200);
  register_card(alice, kAlice);
  register_card(replacement, kAlice);

  // Counter: issue on the card's proof, then confirm the write.
  const json ask{{"card", alice.number},
                 {"citizen_id", kAlice},
                 {"programme", 3},
                 {"occupation", "4-04-05-05"},
                 {"level", 4},
                 {"fund", 1},
                 {"planned_hours", 120},
                 {"planned_online_hours", 36},
                 {"eligible_providers", {kSite}},
                 {"card_proof", json::parse(alice.proof(nonce("C1"), false))}};
  const auto issued = call("C1", "POST", "/v1/vouchers", ask);
  ASSERT_EQ(issued.status, 201) << issued.body;
  const auto v1 = issued.body.at("voucher_id").get<std::string>();
  EXPECT_EQ(call("C1", "POST", "/v1/vouchers/" + v1 + "/written").status, 200);
  auto second = ask;
  second["occupation"] = "4-04-05-06";
  second["card_proof"] = json::parse(alice.proof(nonce("C1"), false));
  const auto v2 = call("C1", "POST", "/v1/vouchers", second).body.value("voucher_id", "");
  ASSERT_FALSE(v2.empty());

  // Roles: a site never issues, a kiosk never writes, a counter never redeems.
  EXPECT_EQ(call("S1", "POST", "/v1/vouchers", ask).body.value("error", ""), "TERMINAL_ROLE_FORBIDDEN");
  EXPECT_EQ(call("K1", "POST", "/v1/vouchers/" + v1 + "/void", json{{"reason", "x"}}).body.value("error", ""),
            "TERMINAL_ROLE_FORBIDDEN");
  EXPECT_EQ(call("C1", "POST", "/v1/redemptions", json::object()).body.value("error", ""), "TERMINAL_ROLE_FORBIDDEN");

  // Site: redeem once; the same receipt again is the same record; the site's id comes from its
  // certificate (serialNumber), so a receipt naming another site is refused.
  const auto receipt = alice.receipt(v1, nonce_from_hex(nonce("S1")), now());
  const auto first = redeem(v1, receipt);
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(redeem(v1, receipt).body.at("redemption"), first.body.at("redemption"));
  EXPECT_EQ(redeem(v2, alice.receipt(v2, nonce_from_hex(nonce("S1")), now(), 10002)).body.value("error", ""),
            "RECEIPT_WRONG_SITE");

  // Kiosk: nothing without the card; with its proof (PIN verified) the holder's vouchers.
  const auto ref = ledger::lower_hex(master->holder_ref(kAlice));
  EXPECT_EQ(call("K1", "GET", "/v1/holders/" + ref + "/vouchers", nullptr, "").body.value("error", ""),
            "CARD_PROOF_REQUIRED");
  const auto proof = alice.proof(nonce("K1"), true);
  const auto read = call("K1", "GET", "/v1/holders/" + ref + "/vouchers", nullptr,
                         "Skillcard-Card-Proof: " + base64url_encode(Bytes(proof.begin(), proof.end())) + "\r\n");
  ASSERT_EQ(read.status, 200) << read.body;
  EXPECT_EQ(read.body.at("vouchers").size(), 2u);

  // Lost card: its unredeemed voucher moves to the replacement; its receipts are refused.
  const auto lost = call("C1", "POST", "/v1/cards/" + alice.number + "/lost",
                         json{{"citizen_id", kAlice}, {"replacement", replacement.number}});
  ASSERT_EQ(lost.status, 200) << lost.body;
  ASSERT_EQ(lost.body.at("moved").size(), 1u);
  const auto moved = lost.body.at("moved")[0].at("voucher_id").get<std::string>();
  EXPECT_EQ(redeem(v2, alice.receipt(v2, nonce_from_hex(nonce("S1")), now())).body.value("error", ""), "CARD_REVOKED");
  const auto on_new = redeem(moved, replacement.receipt(moved, nonce_from_hex(nonce("S1")), now()), replacement.number);
  EXPECT_EQ(on_new.status, 201) << on_new.body;
  const auto revocations = call("S1", "GET", "/v1/revocations");
  EXPECT_EQ(revocations.body.at("cards"), json({alice.number}));

  // A terminal revoked while the service runs is refused from its next connection.
  EXPECT_EQ(call("R1", "GET", "/healthz").status, 200);
  std::ofstream(keys / "terminal-revocations.txt") << "R1\n";
  const auto revoked = call("R1", "GET", "/healthz");
  EXPECT_EQ(revoked.status, 403);
  EXPECT_EQ(revoked.body.value("error", ""), "TERMINAL_REVOKED");
  EXPECT_EQ(call("C1", "GET", "/healthz").status, 200);
  EXPECT_EQ(server->stop(SIGTERM), 0) << server->log();
}

}  // namespace
}  // namespace skillcard::service
