// The skillcard CLI's contract with scripts (docs/cli.md): exit codes and --json output, for
// the commands that need no reader (queue listing, sync against no service, usage errors).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "skillcard/host/offline_queue.hpp"

namespace skillcard::host {
namespace {

struct Run {
  int code = -1;
  std::string out;
};

Run run(const std::string& args) {
  const std::string command = std::string(SKILLCARD_CLI_EXE) + " " + args + " 2>/dev/null";
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

TEST_F(SkillcardCli, SyncWithoutAServiceExitsFourAndKeepsTheReceipts) {
  {
    OfflineQueue q(queue);
    q.enqueue(VoucherId{}, "4201000001", Bytes(140, 0xD2), 1000);
  }
  // Port 9 (discard) on loopback: nothing listens in the test environment.
  const auto r = run("--json --plain-http --service 127.0.0.1:9 site --queue " + queue + " sync");
  EXPECT_EQ(r.code, 4) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["service_unavailable"], true);
  EXPECT_EQ(j["remaining"], 1);
  EXPECT_EQ(OfflineQueue(queue).size(), 1u);
}

TEST_F(SkillcardCli, UsageErrorsExitOne) {
  EXPECT_EQ(run("site redeem --site 1").code, 1);
  EXPECT_EQ(run("--lang fr site --queue " + queue + " queue").code, 1);
  EXPECT_EQ(run("--help").code, 0);
}

}  // namespace
}  // namespace skillcard::host
