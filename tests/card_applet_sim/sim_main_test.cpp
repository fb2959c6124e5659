// Tests for the skillcard-sim executable, started as a real process against a test-played vpcd:
// image creation and write-through, SIGUSR1 and --pull-after pulling the card mid-APDU,
// SIGTERM ending it cleanly, and the exit codes for refused images and bad endpoints.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "fake_vpcd.hpp"
#include "skillcard/card/persistent_memory.hpp"
#include "skillcard/card/training_applet.hpp"
#include "test_support.hpp"

extern char** environ;

namespace skillcard::card {
namespace {

using namespace std::chrono_literals;
using testing::FakeVpcd;
using testing::select_hex;
using testing::TempDir;

// One skillcard-sim process; killed at the end of the test if still running.
class SimProcess {
 public:
  SimProcess(const std::vector<std::string>& args, const std::filesystem::path& log) {
    std::vector<std::string> all{SKILLCARD_SIM_EXE};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 2, 1);
    const int rc = posix_spawn(&pid_, SKILLCARD_SIM_EXE, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " SKILLCARD_SIM_EXE);
  }
  ~SimProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  void signal(int number) const { ::kill(pid_, number); }
  // Exit status, or -1 if it is still running after the timeout (or died of a signal).
  int wait(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Sim : public ::testing::Test {
 protected:
  std::vector<std::string> args(std::vector<std::string> extra = {}) {
    std::vector<std::string> a{
        "--image", image.string(), "--vpcd", "127.0.0.1:" + std::to_string(vpcd.port()), "--reinsert-delay-ms",
        "20",      "--echo-applet"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // Powers the card on, selects the echo applet and sends INCREMENT (80 14), at which the option
  // under test takes the card out of the reader; then waits for it to come back, powered and
  // selected.
  void increment_pulled_then_reinserted() {
    ASSERT_TRUE(vpcd.accept()) << read_text(log);
    vpcd.send_control(0x01);
    ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
    vpcd.send_apdu(from_hex("8014000004"));
    EXPECT_TRUE(vpcd.closed_by_peer());
    ASSERT_TRUE(vpcd.accept());
    vpcd.send_control(0x01);
    ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  }
  TempDir dir;
  std::filesystem::path image = dir / "card.img";
  std::filesystem::path log = dir / "sim.log";
  FakeVpcd vpcd;
};

TEST_F(Sim, ServesACreatedImageAndStopsCleanlyOnSigterm) {
  SimProcess sim(args({"--create", "--pages", "24", "--verbose"}), log);
  ASSERT_TRUE(vpcd.accept()) << read_text(log);
  vpcd.send_control(0x01);
  vpcd.send_control(0x04);
  EXPECT_EQ(vpcd.receive(), Card::atr());
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000019000");
  sim.signal(SIGTERM);
  EXPECT_EQ(sim.wait(), 0) << read_text(log);
  const std::string text = read_text(log);
  EXPECT_NE(text.find("created"), std::string::npos) << text;
  EXPECT_NE(text.find("stopped after 2 APDUs"), std::string::npos) << text;
  // Written through: the file holds the committed counter, in a valid image.
  PersistentMemory m(Eeprom::open_file(image));
  m.mount();
  EXPECT_EQ(m.eeprom().page_count(), 24u);
  EXPECT_EQ(to_hex(m.read(m.size() - 4 * kPageSize, 4)), "00000001") << "echo window: the last four pages";
}

TEST_F(Sim, SigusrOnePullsTheCardDuringTheNextApdu) {
  SimProcess sim(args({"--create", "--pages", "24"}), log);
  ASSERT_TRUE(vpcd.accept()) << read_text(log);
  vpcd.send_control(0x01);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  sim.signal(SIGUSR1);
  std::this_thread::sleep_for(100ms);  // let the handler run before the APDU arrives
  vpcd.send_apdu(from_hex("8014000004"));
  EXPECT_TRUE(vpcd.closed_by_peer()) << read_text(log);
  ASSERT_TRUE(vpcd.accept()) << "reinserted";
  vpcd.send_control(0x01);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8018000004"), "000000019000") << "the unanswered command committed";
  sim.signal(SIGINT);
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(Sim, PullAfterOption) {
  SimProcess sim(args({"--create", "--pull-after", "2"}), log);
  increment_pulled_then_reinserted();
  if (HasFatalFailure()) return;
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000029000");
  sim.signal(SIGTERM);
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(Sim, PullOnOption) {
  SimProcess sim(args({"--create", "--pull-on", "80 14"}), log);
  increment_pulled_then_reinserted();
  if (HasFatalFailure()) return;
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000029000");
  sim.signal(SIGTERM);
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(Sim, CutOnOption) {
  SimProcess sim(args({"--create", "--cut-on", "8014:0"}), log);
  increment_pulled_then_reinserted();
  if (HasFatalFailure()) return;
  EXPECT_EQ(vpcd.transmit("8018000004"), "000000009000");
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000019000");
  sim.signal(SIGTERM);
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(Sim, CutOnWithABadIndexIsAUsageError) {
  SimProcess sim(args({"--create", "--cut-on", "8014:x"}), log);
  EXPECT_EQ(sim.wait(), 2);
  EXPECT_NE(read_text(log).find("--cut-on wants HEX[:N]"), std::string::npos) << read_text(log);
}

TEST_F(Sim, CorruptImageExitsWithCode3) {
  {
    std::ofstream out(image, std::ios::binary);
    out << std::string(24 * 64, 'x');
  }
  SimProcess sim(args(), log);
  EXPECT_EQ(sim.wait(), 3);
  EXPECT_NE(read_text(log).find("[bad-magic]"), std::string::npos) << read_text(log);
}

TEST_F(Sim, MissingImageWithoutCreateExitsWithCode3) {
  SimProcess sim(args(), log);
  EXPECT_EQ(sim.wait(), 3);
  EXPECT_NE(read_text(log).find("cannot open image"), std::string::npos) << read_text(log);
  EXPECT_FALSE(std::filesystem::exists(image));
}

TEST_F(Sim, BadEndpointsExitWithCode2) {
  {
    SimProcess sim({"--image", image.string(), "--create", "--vpcd", "localhost"}, log);
    EXPECT_EQ(sim.wait(), 2);
    EXPECT_NE(read_text(log).find("HOST:PORT"), std::string::npos) << read_text(log);
  }
  {
    SimProcess sim({"--image", image.string(), "--create", "--vpcd", "192.0.2.7:35963"}, log);
    EXPECT_EQ(sim.wait(), 2);
    EXPECT_NE(read_text(log).find("not a loopback address"), std::string::npos) << read_text(log);
  }
  {
    SimProcess sim({"--vpcd", "127.0.0.1:1"}, log);
    EXPECT_EQ(sim.wait(), 2) << "--image is required";
  }
  {
    SimProcess sim({"--image", image.string(), "--create", "--pull-on", "80G4"}, log);
    EXPECT_EQ(sim.wait(), 2);
    EXPECT_NE(read_text(log).find("--pull-on"), std::string::npos) << read_text(log);
  }
}

TEST_F(Sim, ServesAPersonalisedImageWithTheTrainingAppletByDefault) {
  {
    Eeprom e = Eeprom::create_file(image, training::kImagePages);
    PersistentMemory::format(e);
    PersistentMemory m(std::move(e));
    m.mount();
    training::Personalisation p;
    p.card_number = "4201000009";
    p.region = 420100;
    p.certificate = Bytes(194, 0xCE);
    p.receipt_scalar = crypto::SecretBytes(Bytes(32, 1));
    p.auth_scalar = crypto::SecretBytes(Bytes(32, 2));
    for (auto& set : p.keys) {
      for (auto& k : set) k = crypto::SecretBytes(Bytes(16, 3));
    }
    p.pin = "123456";
    training::personalise(m, p);
  }
  const std::string endpoint = "127.0.0.1:" + std::to_string(vpcd.port());
  SimProcess sim({"--image", image.string(), "--vpcd", endpoint}, log);
  ASSERT_TRUE(vpcd.accept()) << read_text(log);
  vpcd.send_control(0x01);
  ASSERT_EQ(vpcd.transmit(select_hex(training::aid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("00CA010100"), to_hex(as_bytes("4201000009")) + "9000");
  EXPECT_EQ(vpcd.transmit("00CA010200"), "000669049000");
  EXPECT_EQ(vpcd.transmit("80320000 00"), "6982") << "LIST needs a session";
  sim.signal(SIGTERM);
  EXPECT_EQ(sim.wait(), 0) << read_text(log);
  EXPECT_NE(read_text(log).find("with the training applet (card 4201000009)"), std::string::npos) << read_text(log);

  // --no-training-applet: nobody answers the training AID.
  SimProcess plain({"--image", image.string(), "--vpcd", endpoint, "--no-training-applet"}, log);
  ASSERT_TRUE(vpcd.accept()) << read_text(log);
  vpcd.send_control(0x01);
  EXPECT_EQ(vpcd.transmit(select_hex(training::aid(), "0C", false)), "6A82");
  plain.signal(SIGTERM);
  EXPECT_EQ(plain.wait(), 0);
}

TEST_F(Sim, TrainingAppletOptionConflictsExitWithCode2) {
  const std::string endpoint = "127.0.0.1:" + std::to_string(vpcd.port());
  {
    SimProcess sim({"--image", image.string(), "--create", "--vpcd", endpoint, "--training-applet", "--echo-applet"},
                   log);
    EXPECT_EQ(sim.wait(), 2);
    EXPECT_NE(read_text(log).find("--echo-applet"), std::string::npos) << read_text(log);
  }
  {
    SimProcess sim({"--image", image.string(), "--create", "--pages", "24", "--vpcd", endpoint, "--training-applet"},
                   log);
    EXPECT_EQ(sim.wait(), 2);
    EXPECT_NE(read_text(log).find("192-page image"), std::string::npos) << read_text(log);
  }
}

}  // namespace
}  // namespace skillcard::card
