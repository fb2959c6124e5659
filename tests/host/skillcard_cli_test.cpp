// The skillcard CLI's contract with scripts (docs/cli.md): exit codes and --json output, for
// the commands that need no reader (queue listing, sync against no service, usage errors).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/x509.hpp"
#include "skillcard/host/offline_queue.hpp"
#include "skillcard/schemas/refusals.hpp"

namespace skillcard::host {
namespace {

struct Run {
  int code = -1;
  std::string out;
};

// stdout, or with `with_stderr` both streams.
Run run(const std::string& args, bool with_stderr = false) {
  const std::string command = std::string(SKILLCARD_CLI_EXE) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  std::FILE* pipe = ::popen(command.c_str(), "r");
  Run r;
  if (!pipe) return r;
  std::array<char, 4096> buffer{};
  std::size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class SkillcardCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("skillcard_cli_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    queue = (dir / "queue.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  std::string queue;
};

TEST_F(SkillcardCli, QueueListingIsJsonWithTimeLeft) {
  {
    OfflineQueue q(queue);
    VoucherId id{};
    id[7] = 9;
    q.enqueue(id, "4201000001", Bytes(140, 0xD2), 4'000'000'000ull);  // made "in the future": full window
  }
  const auto r = run("--json site --queue " + queue + " queue");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["receipts"].size(), 1u);
  EXPECT_EQ(j["receipts"][0]["voucher_id"], "0000000000000009");
  EXPECT_EQ(j["receipts"][0]["refused"], false);
  EXPECT_GT(j["receipts"][0]["seconds_left"].get<std::uint64_t>(), 0u);
}

// A receipt the service refused stays in the queue for the operator, shown with its rule and the
// refusal in words (both languages in JSON; the clerk's in the table), not a bare code.
TEST_F(SkillcardCli, QueueListingShowsARefusalsRuleAndMessage) {
  {
    OfflineQueue q(queue);
    VoucherId id{};
    id[7] = 3;
    q.enqueue(id, "4201000001", Bytes(140, 0xD2), 4'000'000'000ull);
    // As a sync's 422 leaves it: the service's words, its placeholders filled.
    q.mark_refused(Bytes(140, 0xD2), "P12_SYNC_WINDOW", {"P12"},
                   {schemas::render(schemas::refusal("P12_SYNC_WINDOW").zh_cn, {{"hours", "72"}}),
                    schemas::render(schemas::refusal("P12_SYNC_WINDOW").en, {{"hours", "72"}})});
  }
  const auto j = nlohmann::json::parse(run("--json site --queue " + queue + " queue").out);
  ASSERT_EQ(j["receipts"].size(), 1u);
  EXPECT_EQ(j["receipts"][0]["refused"], true);
  EXPECT_EQ(j["receipts"][0]["rules"], nlohmann::json::array({"P12"}));
  EXPECT_FALSE(j["receipts"][0]["message"]["zh-CN"].get<std::string>().empty());
  EXPECT_FALSE(j["receipts"][0]["message"]["en"].get<std::string>().empty());
  const auto zh = run("--lang zh-CN site --queue " + queue + " queue").out;
  EXPECT_NE(zh.find("P12_SYNC_WINDOW [P12]: "), std::string::npos) << zh;
  EXPECT_NE(zh.find(std::string(schemas::refusal("P12_SYNC_WINDOW").zh_cn).substr(0, 12)), std::string::npos) << zh;
  // The service's words, not the catalogue's template: no placeholder is left unfilled.
  EXPECT_EQ(zh.find("{hours}"), std::string::npos) << zh;
  EXPECT_NE(zh.find("72"), std::string::npos) << zh;
  EXPECT_EQ(j["receipts"][0]["message"]["en"].get<std::string>().find("{hours}"), std::string::npos);
}

TEST_F(SkillcardCli, SyncWithoutAServiceExitsFourAndKeepsTheReceipts) {
  {
    OfflineQueue q(queue);
    q.enqueue(VoucherId{}, "4201000001", Bytes(140, 0xD2), 1000);
  }
  // Port 9 (discard) on loopback: nothing listens in the test environment.
  const auto r = run("--json --plain-http --service 127.0.0.1:9 --clerk c1 site --queue " + queue + " sync");
  EXPECT_EQ(r.code, 4) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["service_unavailable"], true);
  EXPECT_EQ(j["remaining"], 1);
  EXPECT_EQ(OfflineQueue(queue).size(), 1u);
}

// P12: a receipt whose 72-hour window closes within a day is said on every sync (in the clerk's
// language, and in JSON), so an offline weekend is noticed before the receipts cannot be paid.
TEST_F(SkillcardCli, P12_ReceiptsNearTheSyncLimitAreWarnedAboutAtEverySync) {
  const auto now = static_cast<std::uint64_t>(::time(nullptr));
  {
    OfflineQueue q(queue);
    VoucherId soon{}, later{};
    soon[7] = 1;
    later[7] = 2;
    q.enqueue(soon, "4201000001", Bytes(140, 0xD1), now - 60 * 3600);  // 12 h left
    q.enqueue(later, "4201000001", Bytes(140, 0xD2), now - 3600);      // 71 h left
  }
  const std::string sync = "--plain-http --service 127.0.0.1:9 --clerk c1 site --queue " + queue + " sync";
  const auto j = nlohmann::json::parse(run("--json " + sync).out);
  ASSERT_EQ(j["warnings"].size(), 1u) << j.dump();
  EXPECT_EQ(j["warnings"][0]["voucher_id"], "0000000000000001");
  EXPECT_LE(j["warnings"][0]["seconds_left"].get<std::uint64_t>(), 12u * 3600);
  const auto zh = run("--lang zh-CN " + sync, true);
  EXPECT_NE(zh.out.find("将在 12 小时内超过72小时补传时限（P12）"), std::string::npos) << zh.out;
  const auto en = run("--lang en " + sync, true);
  EXPECT_NE(en.out.find("1 queued receipt(s) reach the 72-hour sync limit (P12) within 12 h"), std::string::npos)
      << en.out;
}

// `site queue` and `site sync` read the queue, never create it: a mistyped --queue is said, and
// leaves no empty file behind that the next run would take for the queue.
TEST_F(SkillcardCli, AQueueFileThatDoesNotExistIsSaidAndNotCreated) {
  const auto missing = (dir / "typo.db").string();
  const auto listing = run("--lang en site --queue " + missing + " queue", true);
  EXPECT_EQ(listing.code, 0) << listing.out;
  EXPECT_NE(listing.out.find("no offline queue at this path"), std::string::npos) << listing.out;
  const auto sync = run("--json --plain-http --service 127.0.0.1:9 --clerk c1 site --queue " + missing + " sync");
  EXPECT_EQ(sync.code, 0) << sync.out;
  EXPECT_EQ(nlohmann::json::parse(sync.out)["remaining"], 0);
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(SkillcardCli, UsageErrorsExitOne) {
  EXPECT_EQ(run("site redeem --site 1").code, 1);
  // No clerk for a command that writes: said before the network (the service would refuse it).
  const auto no_clerk = run("--plain-http --service 127.0.0.1:9 site --queue " + queue + " sync", true);
  EXPECT_EQ(no_clerk.code, 1) << no_clerk.out;
  EXPECT_NE(no_clerk.out.find("--clerk is required"), std::string::npos) << no_clerk.out;
  EXPECT_EQ(run("--plain-http --service 127.0.0.1:9 counter read", true).code, 1);
  EXPECT_EQ(run("--lang fr site --queue " + queue + " queue").code, 1);
  EXPECT_EQ(run("--help").code, 0);
}

// design.md, "Where keys live": a site terminal holds M_site only, a kiosk M_kiosk only. The
// CLI reads the command's role master alone, so a terminal's key file (skillcard-keytool
// role-keys) is enough, and another role's file is a configuration error naming the key.
TEST_F(SkillcardCli, ATerminalNeedsOnlyItsOwnRolesMasterKey) {
  const auto site_keys = dir / "site-keys.toml";
  const auto kiosk_keys = dir / "kiosk-keys.toml";
  crypto::write_new_file(site_keys, crypto::FileMasterKeyStore::role_toml(crypto::CardRole::Site, Bytes(16, 0x5A)),
                         0600);
  crypto::write_new_file(kiosk_keys, crypto::FileMasterKeyStore::role_toml(crypto::CardRole::Kiosk, Bytes(16, 0x6B)),
                         0600);
  // A reader that does not exist: the command gets past its configuration and stops at the
  // reader, touching no other test's card.
  const std::string redeem = " --reader 'no such reader' site --queue " + queue +
                             " redeem --site 10001 --region 420100 --classroom-hours 8 "
                             "--online-hours 0";
  const auto with_site =
      run("--plain-http --service 127.0.0.1:9 --clerk c1 --master-keys " + site_keys.string() + redeem, true);
  EXPECT_NE(with_site.code, 0) << with_site.out;
  EXPECT_NE(with_site.code, 1) << with_site.out;
  EXPECT_EQ(with_site.out.find("--master-keys"), std::string::npos) << with_site.out;

  const auto with_kiosk =
      run("--plain-http --service 127.0.0.1:9 --clerk c1 --master-keys " + kiosk_keys.string() + redeem, true);
  EXPECT_EQ(with_kiosk.code, 1) << with_kiosk.out;
  EXPECT_NE(with_kiosk.out.find("--master-keys"), std::string::npos) << with_kiosk.out;
  EXPECT_NE(with_kiosk.out.find("[scp03] site is missing"), std::string::npos) << with_kiosk.out;
}

// A held trust list that is not one (emptied by a crash before writes were durable, or
// damaged) is a configuration error naming --trust-list, found before the reader or the network
// is touched (docs/cli.md, exit 1) — not a TOKEN_MALFORMED refusal at every run.
TEST_F(SkillcardCli, AnUnusableHeldTrustListIsAConfigurationErrorNamingTheFile) {
  const auto root_key = crypto::OpenSsl::PrivateKey::generate();
  crypto::CertificateSpec spec;
  spec.subject = {"test root", "skillcard", "", "", ""};
  spec.usage = crypto::CertificateUsage::Ca;
  spec.path_length = 1;
  const auto root = crypto::Certificate::issue(spec, root_key.public_key(), root_key, nullptr);
  const auto root_pem = dir / "root.cert.pem";
  crypto::write_new_file(root_pem, root.to_pem(), 0644);
  const auto kiosk_keys = dir / "kiosk-keys.toml";
  crypto::write_new_file(kiosk_keys, crypto::FileMasterKeyStore::role_toml(crypto::CardRole::Kiosk, Bytes(16, 0x6B)),
                         0600);
  const auto held = dir / "trust.cose";
  crypto::write_new_file(held, "", 0644);
  const auto r =
      run("--plain-http --service 127.0.0.1:9 --root " + root_pem.string() + " --trust-list " + held.string() +
              " --master-keys " + kiosk_keys.string() + " --reader 'no such reader' --pin-fd 0 kiosk show",
          true);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("configuration error: --trust-list " + held.string()), std::string::npos) << r.out;
  EXPECT_EQ(std::filesystem::file_size(held), 0u);  // left for the operator to look at
}

}  // namespace
}  // namespace skillcard::host
