// skillcard-ledger end to end: backup and restore, checkpoint and verify-audit (exit 4 on a
// tampered log), export, and usage errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "fixtures.hpp"
#include "skillcard/crypto/key_files.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;
using schemas::NonceKind;

extern char** environ;

namespace {

ToolRun tool(const std::string& args) { return run_ledger_tool(args); }

struct LedgerTool : ::testing::Test {
  void SetUp() override {
    auto s = seeded(db, 1);
    for (unsigned v = 0; v < 4; ++v) {
      const auto voucher = issue_ok(
          *s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), s.cards[0].number);
      s.ledger->record_redemption(
          redeem_request(receipt(voucher.id(), v + 1, nonce(NonceKind::Terminal, v)), s.cards[0].number));
    }
    const auto key = crypto::OpenSsl::PrivateKey::generate();
    crypto::write_private_key(dir / "audit-signer.key.pem", key);
    crypto::write_public_key(dir / "audit-signer.pub.pem", key.public_key());
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  TempDir dir;
  fs::path db = dir / "ledger.db";
};

}  // namespace

TEST_F(LedgerTool, CheckpointThenVerifyAuditPassesAndFindsTampering) {
  auto r =
      tool("checkpoint --db " + db.string() + " --key " + path("audit-signer.key.pem") + " --out " + path("cp-1.cose"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("checkpoint: "), std::string::npos);
  r = tool("verify-audit --db " + db.string() + " --key " + path("audit-signer.pub.pem") + " --checkpoint " +
           path("cp-1.cose"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 of 1 checkpoints matched: OK"), std::string::npos) << r.output;
  {
    RawDb raw(db);
    raw.exec("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 3");
  }
  r = tool("verify-audit --db " + db.string() + " --key " + path("audit-signer.pub.pem") + " --checkpoint-dir " +
           dir.path().string());
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("PROBLEM gap at 3"), std::string::npos) << r.output;
}

// Periodic checkpoints (threat model T7): a process of its own, holding the audit key, writes one
// into a folder outside the database whenever the head moved — none while nothing happens — and
// stops cleanly on SIGTERM; verify-audit then matches all of them.
TEST_F(LedgerTool, CheckpointEveryWritesOneWheneverTheHeadMovedUntilSigterm) {
  const auto folder = dir / "checkpoints";
  fs::create_directories(folder);
  const auto files = [&] {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(folder)) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto wait_for = [&](std::size_t n) {
    for (int i = 0; i < 200 && files().size() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return files().size();
  };
  const std::string tool_path = SKILLCARD_LEDGER_TOOL;
  const std::string db_text = db.string(), key_text = path("audit-signer.key.pem"), dir_text = folder.string();
  std::vector<const char*> argv{
      tool_path.c_str(), "checkpoint", "--db", db_text.c_str(), "--key", key_text.c_str(), "--out-dir",
      dir_text.c_str(),  "--every",    "1",    nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, tool_path.c_str(), &actions, nullptr, const_cast<char* const*>(argv.data()), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(wait_for(1), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two periods, nothing new: nothing written
  EXPECT_EQ(files().size(), 1u);
  {
    auto l = SqliteLedger::open(db);
    issue_ok(*l, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000009));
  }
  EXPECT_EQ(wait_for(2), 2u);
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const auto written = files();
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[0].filename().string().rfind("checkpoint-", 0), 0u);
  const auto r = tool("verify-audit --db " + db.string() + " --key " + path("audit-signer.pub.pem") +
                      " --checkpoint-dir " + folder.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 of 2 checkpoints matched: OK"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("not covered"), std::string::npos) << r.output;
  // An empty folder (a backup disk not mounted) is an error, not "OK".
  fs::create_directories(dir / "empty");
  EXPECT_EQ(tool("verify-audit --db " + db.string() + " --key " + path("audit-signer.pub.pem") + " --checkpoint-dir " +
                 (dir / "empty").string())
                .exit_code,
            2);
  // Rows after the newest checkpoint are named as not covered.
  {
    auto l = SqliteLedger::open(db);
    issue_ok(*l, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000010));
  }
  const auto tail = tool("verify-audit --db " + db.string() + " --key " + path("audit-signer.pub.pem") +
                         " --checkpoint-dir " + folder.string());
  EXPECT_EQ(tail.exit_code, 0) << tail.output;
  EXPECT_NE(tail.output.find("are not covered by any checkpoint yet"), std::string::npos) << tail.output;
}

TEST_F(LedgerTool, BackupAndRestoreRoundTrip) {
  auto r = tool("backup --db " + db.string() + " --out " + path("backup.db"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = tool("backup --db " + db.string() + " --out " + path("backup.db"));
  EXPECT_EQ(r.exit_code, 2) << "refuses to overwrite: " << r.output;
  r = tool("restore --from " + path("backup.db") + " --db " + path("restored.db"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto original = SqliteLedger::open(db);
  auto restored = SqliteLedger::open(path("restored.db"));
  EXPECT_EQ(restored->audit_head(), original->audit_head());
  EXPECT_EQ(restored->list_redemptions({}), original->list_redemptions({}));
  r = tool("restore --from " + path("backup.db") + " --db " + path("restored.db"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  // The backup onto itself: refused at once (it used to wait on its own lock for ever).
  r = tool("restore --from " + path("backup.db") + " --db " + path("backup.db") + " --force");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("same file"), std::string::npos) << r.output;
  // A read-only command on an empty file named by mistake does not turn it into a ledger.
  std::ofstream(dir / "empty.db").close();
  r = tool("verify-audit --db " + path("empty.db") + " --key " + path("audit-signer.pub.pem"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("holds no ledger"), std::string::npos) << r.output;
  EXPECT_EQ(fs::file_size(dir / "empty.db"), 0u);
}

// An operator reverses a redemption made in error: marked reversed with the reason and the
// operator, out of the settlement, the voucher never redeemable again; a repeat says so; a
// voucher without a redemption has nothing to reverse (5).
TEST_F(LedgerTool, ReverseTakesARedemptionOutOfTheSettlement) {
  const auto voucher = [&] {
    auto l = SqliteLedger::open(db);
    return lower_hex(l->list_redemptions({}).at(1).redemption.voucher);
  }();
  const auto reverse = "reverse --db " + db.string() + " --voucher " + voucher;
  auto r = tool(reverse + " --reason 'site reported a wrong card' --operator ops-1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("reversed: voucher " + voucher), std::string::npos) << r.output;
  r = tool("export --db " + db.string() + " --what settlement --format csv");
  EXPECT_EQ(r.output,
            "provider,fund,count,total_fen,recovered_count,recovered_fen,net_fen\r\n10001,1,3,3000,0,0,3000\r\n");
  {
    auto l = SqliteLedger::open(db);
    VoucherId id{};
    const auto bytes = from_hex(voucher);
    std::copy(bytes.begin(), bytes.end(), id.begin());
    const auto record = l->redemption(id);
    ASSERT_TRUE(record);
    EXPECT_TRUE(record->reversed_at);
    EXPECT_EQ(record->reversal_reason, "site reported a wrong card");
  }
  r = tool(reverse + " --reason again --operator ops-2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("already reversed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("site reported a wrong card"), std::string::npos) << "the first reason stands";
  r = tool("reverse --db " + db.string() + " --voucher 00000000000000ff --reason x --operator ops-1");
  EXPECT_EQ(r.exit_code, 5) << r.output;
  EXPECT_NE(r.output.find("nothing to reverse"), std::string::npos) << r.output;
  EXPECT_EQ(tool("reverse --db " + db.string() + " --voucher 12xy --reason x --operator o").exit_code, 2);
  EXPECT_EQ(tool("reverse --db " + db.string() + " --voucher " + voucher + " --operator o").exit_code, 2);
  EXPECT_EQ(
      tool("reverse --db " + db.string() + " --voucher " + voucher + " --reason \"$(printf '\\377')\" --operator o")
          .exit_code,
      2);
}

TEST_F(LedgerTool, ExportWritesCsvAndJson) {
  auto r = tool("export --db " + db.string() + " --what settlement --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "provider,fund,count,total_fen,recovered_count,recovered_fen,net_fen\r\n10001,1,4,4000,0,0,4000\r\n");
  r = tool("export --db " + db.string() + " --format json --provider 10001 --fund 1 --out " + path("r.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "r.json"));
  EXPECT_GT(fs::file_size(dir / "r.json"), 100u);
}

// An export that fails leaves no file behind: an empty or cut settlement file would be read as a
// complete one, and a rerun would be refused because the file exists.
TEST_F(LedgerTool, FailedExportLeavesNoFile) {
  auto r = tool("export --db " + db.string() + " --to 18446744073709551615 --out " + path("s.csv"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(dir / "s.csv"));
  r = tool("export --db " + path("missing.db") + " --out " + path("s.csv"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(dir / "s.csv"));
  r = tool("export --db " + db.string() + " --what settlement --out " + path("s.csv"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "s.csv"));
  // A missing checkpoint folder is a usage error, not an internal one.
  r = tool("verify-audit --db " + db.string() + " --key " + path("audit-signer.pub.pem") + " --checkpoint-dir " +
           path("no-such-folder"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no-such-folder"), std::string::npos) << r.output;
}

TEST_F(LedgerTool, UsageErrorsExitWithTwo) {
  EXPECT_EQ(tool("").exit_code, 2);
  EXPECT_EQ(tool("export --db " + path("missing.db")).exit_code, 2);
  EXPECT_EQ(tool("export --db " + db.string() + " --format xml").exit_code, 2);
  EXPECT_EQ(tool("verify-audit --db " + db.string() + " --key " + path("nope.pem")).exit_code, 3);
}
