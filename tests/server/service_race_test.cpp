// Two skillcard-server processes on one ledger, raced by many clients: many different receipts
// for the same vouchers → exactly one redemption each; issues against a small budget → never
// over it (P16); a holder near the annual cap → never over it (P1). Nothing that must be shared
// lives in a service's memory, so the ledger alone decides. The backend is SQLite here, or the
// test PostgreSQL (SKILLCARD_PG_CONNINFO, from the ctest fixture) when set.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "../support/http_client.hpp"
#include "../support/pg_schema.hpp"
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

constexpr int kHolders = 24;
constexpr std::uint32_t kAmount = 180'000;  // 150 000 + 20% (P5)

std::string citizen_of(int i) {
  char first17[18];
  std::snprintf(first17, sizeof first17, "420102199001%05d", i);
  return citizen(first17);
}

class ServiceRace : public ::testing::Test {
 protected:
  ServiceRace() {
    dir = fs::temp_directory_path() / ("skillcard-race-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    keys = dir / "keys";
    EXPECT_EQ(std::system((std::string(SKILLCARD_KEYTOOL) + " init --out " + keys.string() + " >/dev/null").c_str()),
              0);
    std::vector<registry::Person> people;
    for (int i = 0; i < kHolders; ++i) people.push_back(registered_person(citizen_of(i)));
    registry::write_people_csv(dir / "people.csv", people);
    std::ofstream(dir / "policy.toml") << "[[standards]]\nprogramme = 3\noccupation = \"*\"\nlevel = 4\n"
                                          "amount_fen = 150000\n";
    std::vector<std::string> ledger_args{"--ledger", (dir / "ledger.sqlite").string()};
    if (!skillcard::testing::pg_conninfo().empty()) ledger_args = {"--pg", skillcard::testing::pg_fresh_schema("race")};
    for (int i = 0; i < 2; ++i) {
      std::vector<std::string> args{"--keys",
                                    keys.string(),
                                    "--policy",
                                    (dir / "policy.toml").string(),
                                    "--registry",
                                    (dir / "people.csv").string(),
                                    "--insecure-loopback",
                                    "--threads",
                                    "4"};
      args.insert(args.end(), ledger_args.begin(), ledger_args.end());
      servers.push_back(std::make_unique<skillcard::testing::ServerProcess>(SKILLCARD_SERVER, args, dir));
    }
    card_ca = std::make_unique<crypto::OpenSsl::PrivateKey>(crypto::load_private_key(keys / "card-ca.key.pem"));
    cards.resize(kHolders);
    for (int i = 0; i < kHolders; ++i) {
      char number[11];
      std::snprintf(number, sizeof number, "42010%05d", i);
      cards[static_cast<std::size_t>(i)].number = number;
    }
  }
  ~ServiceRace() override {
    servers.clear();
    fs::remove_all(dir);
  }

  static std::string headers(const std::string& terminal, const std::string& role) {
    std::string h = "Skillcard-Dev-Terminal-Id: " + terminal + "\r\nSkillcard-Dev-Terminal-Role: " + role +
                    "\r\nSkillcard-Dev-Terminal-Region: 420100\r\nSkillcard-Clerk: CLERK\r\n";
    if (role == "site") h += "Skillcard-Dev-Terminal-Site: 10001\r\n";
    return h;
  }

  // One request to instance `instance` (0 or 1) on a fresh connection.
  std::pair<int, json> call(int instance, const std::string& terminal, const std::string& role,
                            const std::string& method, const std::string& path, const json& body = nullptr) {
    skillcard::testing::Client client(servers[static_cast<std::size_t>(instance)]->port(), nullptr);
    std::string text;
    const int status = client.request(method, path, body.is_null() ? "" : body.dump(), headers(terminal, role), &text);
    return {status, json::parse(text, nullptr, false)};
  }

  std::string nonce(int instance, const std::string& terminal, const std::string& role) {
    return call(instance, terminal, role, "POST", "/v1/nonces").second.value("nonce", "");
  }

  json issue_body(int holder, const std::string& occupation, int instance, const std::string& terminal) {
    auto& card = cards[static_cast<std::size_t>(holder)];
    std::string proof;
    {
      const std::lock_guard lock(card_mutex);
      proof = card.proof(nonce(instance, terminal, "counter"), false);
    }
    return json{{"card", card.number},
                {"citizen_id", citizen_of(holder)},
                {"programme", 3},
                {"occupation", occupation},
                {"level", 4},
                {"fund", 1},
                {"planned_hours", 120},
                {"planned_online_hours", 36},
                {"eligible_providers", {kSite}},
                {"card_proof", json::parse(proof)}};
  }

  void set_budget(std::int64_t allocated) {
    ASSERT_EQ(call(0, "O1", "operator", "POST", "/v1/budgets", json{{"fund", 1}, {"allocated_fen", allocated}}).first,
              200);
  }

  void register_all() {
    for (int i = 0; i < kHolders; ++i) {
      auto& card = cards[static_cast<std::size_t>(i)];
      const auto r = call(
          i % 2, "C0", "counter", "POST", "/v1/cards",
          json{{"certificate", base64url_encode(card.certificate(*card_ca, now()))}, {"citizen_id", citizen_of(i)}});
      ASSERT_EQ(r.first, 201) << r.second;
    }
  }

  static std::uint64_t now() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  }

  fs::path dir, keys;
  std::vector<std::unique_ptr<skillcard::testing::ServerProcess>> servers;
  std::unique_ptr<crypto::OpenSsl::PrivateKey> card_ca;
  std::vector<TestCard> cards;
  std::mutex card_mutex;
};

TEST_F(ServiceRace, TwoInstancesRedeemEachVoucherExactlyOnce) {
  register_all();
  set_budget(100 * kAmount);
  constexpr int kVouchers = 8;
  constexpr int kReceiptsEach = 6;
  std::vector<std::string> vouchers;
  for (int v = 0; v < kVouchers; ++v) {
    const auto r = call(v % 2, "C0", "counter", "POST", "/v1/vouchers", issue_body(v, "4-04-05-05", v % 2, "C0"));
    ASSERT_EQ(r.first, 201) << r.second;
    vouchers.push_back(r.second.at("voucher_id").get<std::string>());
  }
  // Many different receipts per voucher (each its own nonce and card counter), made first, then
  // sent all at once to both instances.
  struct Attempt {
    int instance;
    std::string terminal;
    json body;
  };
  std::vector<Attempt> attempts;
  for (int v = 0; v < kVouchers; ++v) {
    for (int k = 0; k < kReceiptsEach; ++k) {
      const int instance = k % 2;
      const std::string terminal = "SITE" + std::to_string(k);
      const auto n = nonce_from_hex(nonce(instance, terminal, "site"));
      const auto receipt = cards[static_cast<std::size_t>(v)].receipt(vouchers[static_cast<std::size_t>(v)], n, now());
      attempts.push_back(
          {instance, terminal,
           json{{"voucher_id", vouchers[static_cast<std::size_t>(v)]}, {"receipt", base64url_encode(receipt)}}});
    }
  }
  std::map<std::string, std::vector<int>> statuses;
  std::mutex mutex;
  std::vector<std::thread> threads;
  std::atomic<std::size_t> next{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (std::size_t i; (i = next++) < attempts.size();) {
        const auto& a = attempts[i];
        const auto [status, body] = call(a.instance, a.terminal, "site", "POST", "/v1/redemptions", a.body);
        const std::lock_guard lock(mutex);
        statuses[a.body.at("voucher_id").get<std::string>()].push_back(status);
        if (status != 201) {
          EXPECT_EQ(body.value("error", ""), "P15_ALREADY_REDEEMED") << body;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(statuses.size(), static_cast<std::size_t>(kVouchers));
  for (const auto& [voucher, got] : statuses) {
    EXPECT_EQ(std::count(got.begin(), got.end(), 201), 1) << voucher;
    EXPECT_EQ(got.size(), static_cast<std::size_t>(kReceiptsEach));
  }
}

TEST_F(ServiceRace, RacingIssuesNeverOverspendTheBudgetNorTheAnnualCap) {
  register_all();
  // P16: room for exactly 5 vouchers; 20 holders ask at once, through both instances.
  set_budget(5 * kAmount);
  std::vector<json> asks;
  for (int h = 0; h < 20; ++h) asks.push_back(issue_body(h, "4-04-05-05", h % 2, "C" + std::to_string(h % 2)));
  std::atomic<int> issued{0}, exhausted{0};
  std::vector<std::thread> threads;
  for (int h = 0; h < 20; ++h) {
    threads.emplace_back([&, h] {
      const auto [status, body] = call(h % 2, "C" + std::to_string(h % 2), "counter", "POST", "/v1/vouchers",
                                       asks[static_cast<std::size_t>(h)]);
      if (status == 201) ++issued;
      if (body.value("error", "") == "P16_BUDGET_EXHAUSTED") ++exhausted;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(issued.load(), 5);
  EXPECT_EQ(exhausted.load(), 15);
  const auto budget =
      call(0, "O1", "operator", "POST", "/v1/budgets", json{{"fund", 1}, {"allocated_fen", 5 * kAmount}});
  EXPECT_EQ(budget.second.at("committed_fen"), 5 * kAmount);
  EXPECT_EQ(budget.second.at("remaining_fen"), 0);

  // P1: holder 23 has 2 subsidies this year; 6 issues for other occupations race for the last.
  set_budget(100 * kAmount);
  const int holder = 23;
  for (const auto* occ : {"4-01-00-01", "4-01-00-02"}) {
    ASSERT_EQ(call(0, "C0", "counter", "POST", "/v1/vouchers", issue_body(holder, occ, 0, "C0")).first, 201);
  }
  std::vector<json> last;
  for (int k = 0; k < 6; ++k) {
    last.push_back(issue_body(holder, "4-02-00-0" + std::to_string(k + 1), k % 2, "C" + std::to_string(k % 2)));
  }
  std::atomic<int> third{0}, capped{0};
  threads.clear();
  for (int k = 0; k < 6; ++k) {
    threads.emplace_back([&, k] {
      const auto [status, body] = call(k % 2, "C" + std::to_string(k % 2), "counter", "POST", "/v1/vouchers",
                                       last[static_cast<std::size_t>(k)]);
      if (status == 201) ++third;
      if (body.value("error", "") == "P1_ANNUAL_LIMIT") ++capped;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(third.load(), 1);
  EXPECT_EQ(capped.load(), 5);
}

}  // namespace
}  // namespace skillcard::service
