// kill -9 of skillcard-server under load: every write it acknowledged (a 201 with a server
// nonce) is in the ledger afterwards, the ledger opens cleanly, and a restarted service serves
// on the same ledger. The service acknowledges only after its batch is durable (group commit).
// SQLite, or the test PostgreSQL when SKILLCARD_PG_CONNINFO is set (the ctest fixture).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "../support/http_client.hpp"
#include "../support/pg_schema.hpp"
#include "../support/server_process.hpp"
#include "skillcard/ledger/pg_ledger.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"

namespace skillcard {
namespace {

namespace fs = std::filesystem;

struct Acked {
  std::string terminal;
  schemas::Nonce nonce{};
  std::uint64_t issued_at = 0;
};

std::optional<Acked> parse_ack(const std::string& terminal, const std::string& body) {
  const auto at = body.find("\"nonce\":\"");
  const auto t = body.find("\"issued_at\":");
  if (at == std::string::npos || t == std::string::npos || body.size() < at + 9 + 34) return std::nullopt;
  Acked a{terminal, {}, std::stoull(body.substr(t + 12))};
  for (std::size_t i = 0; i < a.nonce.size(); ++i) {
    a.nonce[i] = static_cast<std::uint8_t>(std::stoul(body.substr(at + 9 + 2 * i, 2), nullptr, 16));
  }
  return a;
}

class ServiceKill : public ::testing::Test {
 protected:
  ServiceKill() {
    dir = fs::temp_directory_path() / ("skillcard-kill-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto cmd = std::string(SKILLCARD_KEYTOOL) + " init --out " + (dir / "keys").string() + " >/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    if (!testing::pg_conninfo().empty()) pg = testing::pg_fresh_schema("kill");
  }
  ~ServiceKill() override { fs::remove_all(dir); }

  std::unique_ptr<testing::ServerProcess> start() {
    return std::make_unique<testing::ServerProcess>(
        SKILLCARD_SERVER,
        std::vector<std::string>{"--keys", (dir / "keys").string(), pg.empty() ? "--ledger" : "--pg",
                                 pg.empty() ? (dir / "ledger.sqlite").string() : pg, "--insecure-loopback", "--threads",
                                 "8"},
        dir);
  }

  std::unique_ptr<ledger::Ledger> open_ledger() const {
    if (!pg.empty()) return ledger::PgLedger::open(pg);
    ledger::SqliteOptions existing;
    existing.create = false;
    return ledger::SqliteLedger::open(dir / "ledger.sqlite", existing);
  }

  fs::path dir;
  std::string pg;  // the PostgreSQL connection string, or "" for SQLite
};

TEST_F(ServiceKill, AcknowledgedWritesSurviveKillNineUnderLoad) {
  std::vector<Acked> acked;
  std::mutex mutex;
  std::mt19937 random(42);
  for (int round = 0; round < 3; ++round) {
    const auto acked_before = [&] {
      const std::lock_guard lock(mutex);
      return acked.size();
    }();
    auto server = start();
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 6; ++c) {
      clients.emplace_back([&, c] {
        const std::string terminal = "C" + std::to_string(round) + std::to_string(c);
        const std::string headers = "Skillcard-Dev-Terminal-Id: " + terminal +
                                    "\r\nSkillcard-Dev-Terminal-Role: counter\r\nSkillcard-Dev-Terminal-Region: "
                                    "420100\r\nSkillcard-Clerk: CLERK\r\n";
        try {
          testing::Client client(server->port(), nullptr);
          while (!stop) {
            std::string body;
            if (client.post("/v1/nonces", "", headers, &body) != 201) continue;
            if (auto a = parse_ack(terminal, body)) {
              const std::lock_guard lock(mutex);
              acked.push_back(*a);
            }
          }
        } catch (const std::exception&) {
          // the connection died with the service: expected
        }
      });
    }
    // Under load before the kill, however slow this machine's syncs: 40 acknowledgements in,
    // then a random moment.
    for (int i = 0; i < 4000; ++i) {
      {
        const std::lock_guard lock(mutex);
        if (acked.size() >= acked_before + 40) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + random() % 400));
    EXPECT_EQ(server->stop(SIGKILL), 128 + SIGKILL);
    stop = true;
    for (auto& t : clients) t.join();
  }
  ASSERT_GT(acked.size(), 100u) << "the load did not get going";
  // Every acknowledged nonce is in the ledger, live for the terminal it was issued to.
  auto ledger = open_ledger();
  std::size_t missing = 0;
  for (const auto& a : acked) {
    if (ledger->check_nonce(a.nonce, a.terminal, a.issued_at) != ledger::NonceStatus::Ok) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged";
  ledger.reset();
  // And the service starts again on the same file.
  auto again = start();
  testing::Client client(again->port(), nullptr);
  EXPECT_EQ(client.post("/v1/nonces", "",
                        "Skillcard-Dev-Terminal-Id: C9\r\nSkillcard-Dev-Terminal-Role: counter\r\n"
                        "Skillcard-Dev-Terminal-Region: 420100\r\nSkillcard-Clerk: CLERK\r\n"),
            201);
  EXPECT_EQ(again->stop(SIGTERM), 0) << again->log();
}

}  // namespace
}  // namespace skillcard
