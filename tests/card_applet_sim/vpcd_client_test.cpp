// Tests for the vpcd client without pcscd: the test plays vpcd on a loopback listener and
// checks framing, the control codes, APDUs, reconnecting after the socket closes or before vpcd
// listens, the pull-the-card hook, stopping, the loopback-only rule, the delayed-ACK fix and
// that logs never show APDU data.
#include "skillcard/card/vpcd_client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "fake_vpcd.hpp"
#include "test_support.hpp"

namespace skillcard::card {
namespace {

using namespace std::chrono_literals;
using testing::FakeVpcd;
using testing::select_hex;

constexpr std::uint8_t kOff = 0x00, kOn = 0x01, kReset = 0x02, kAtr = 0x04;

// A card with the echo applet and a client serving it from its own thread.
class Vpcd : public ::testing::Test {
 protected:
  void start(VpcdOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = vpcd.port();
    options.initial_backoff = 20ms;
    options.max_backoff = 100ms;
    options.reinsert_delay = 20ms;
    options.log = [this](std::string_view line) {
      const std::lock_guard lock(log_mutex);
      log.emplace_back(line);
    };
    client = std::make_unique<VpcdClient>(*card, options);
    thread = std::thread([this] { client->run(); });
    ASSERT_TRUE(vpcd.accept());
  }
  void TearDown() override { stop(); }
  void stop() {
    if (client) client->request_stop();
    if (thread.joinable()) thread.join();
  }
  std::vector<std::string> log_lines() {
    const std::lock_guard lock(log_mutex);
    return log;
  }

  std::unique_ptr<Card> card = testing::make_card();
  FakeVpcd vpcd;
  std::unique_ptr<VpcdClient> client;
  std::thread thread;
  std::mutex log_mutex;
  std::vector<std::string> log;
};

TEST_F(Vpcd, ServesControlCodesAndApdus) {
  start();
  vpcd.send_control(kOn);
  vpcd.send_control(kAtr);
  EXPECT_EQ(vpcd.receive(), Card::atr());
  EXPECT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000019000");
  EXPECT_EQ(vpcd.transmit("801A000002CAFE"), "9000");
  EXPECT_EQ(vpcd.transmit("801C000000"), "CAFE9000");
  vpcd.send_control(kReset);
  EXPECT_EQ(vpcd.transmit("801C000000"), "6E00") << "reset: nothing selected";
  EXPECT_EQ(vpcd.transmit("00A4"), "6700") << "malformed APDUs get a status word too";
  vpcd.send_control(kOff);
  vpcd.send_control(kAtr);
  EXPECT_EQ(vpcd.receive(), Card::atr()) << "the ATR is answered even with power off";
  stop();
  EXPECT_EQ(client->apdus(), 6u);
  EXPECT_EQ(client->connections(), 1u);
}

TEST_F(Vpcd, ApduToAnUnpoweredCardPowersItFirst) {
  start();
  EXPECT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8012000002"), "00019000");
}

TEST_F(Vpcd, LargeExtendedApduAndAnswer) {
  start();
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  const std::string answer = vpcd.transmit("80120000000FA0");  // 4000 bytes
  EXPECT_EQ(answer.size(), (4000u + 2) * 2);
  EXPECT_EQ(answer.substr(answer.size() - 4), "9000");
}

TEST_F(Vpcd, UnknownControlCodeIsIgnored) {
  start();
  vpcd.send_control(0x07);
  vpcd.send_control(kOn);
  EXPECT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
}

TEST_F(Vpcd, ReconnectsWhenVpcdClosesAndTheCardWasRemoved) {
  start();
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  ASSERT_EQ(vpcd.transmit("801A000002CAFE"), "9000");
  vpcd.close_connection();  // pcscd went away
  ASSERT_TRUE(vpcd.accept());
  vpcd.send_control(kOn);
  EXPECT_EQ(vpcd.transmit("801C000000"), "6E00") << "the card was powered off in between";
  EXPECT_EQ(client->connections(), 2u);
}

TEST(VpcdConnect, KeepsRetryingUntilVpcdListens) {
  auto card = testing::make_card();
  const std::uint16_t port = testing::unused_port();
  VpcdOptions options;
  options.port = port;
  options.initial_backoff = 10ms;
  options.max_backoff = 40ms;
  VpcdClient client(*card, options);
  std::thread thread([&] { client.run(); });
  std::this_thread::sleep_for(150ms);  // several refused attempts
  EXPECT_EQ(client.connections(), 0u);
  FakeVpcd vpcd(port);
  EXPECT_TRUE(vpcd.accept(5s));
  vpcd.send_control(kAtr);
  EXPECT_EQ(vpcd.receive(), Card::atr());
  client.request_stop();
  thread.join();
  EXPECT_EQ(client.connections(), 1u);
}

// A peer that accepts and closes at once (vpcd crash-looping, another program on the port):
// retried with a growing pause, not in a tight connect-close loop flooding the log. Without the
// pause this loop reconnects hundreds of times in the time it is watched; with it, a handful.
TEST(VpcdConnect, APeerThatClosesAtOnceIsRetriedEverMoreSlowly) {
  auto card = testing::make_card();
  FakeVpcd vpcd;
  VpcdOptions options;
  options.port = vpcd.port();
  options.initial_backoff = 10ms;
  options.max_backoff = 10s;
  VpcdClient client(*card, options);
  std::thread thread([&] { client.run(); });
  for (int i = 0; i < 40 && vpcd.accept(50ms); ++i) vpcd.close_connection();
  client.request_stop();
  thread.join();
  EXPECT_GE(client.connections(), 2u);
  EXPECT_LE(client.connections(), 12u);
}

TEST(VpcdConnect, StopWhileWaitingToReconnect) {
  auto card = testing::make_card();
  VpcdOptions options;
  options.port = testing::unused_port();
  options.initial_backoff = 10s;  // the stop must cut this wait short
  VpcdClient client(*card, options);
  const auto start = std::chrono::steady_clock::now();
  std::thread thread([&] { client.run(); });
  std::this_thread::sleep_for(50ms);
  client.request_stop();
  thread.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(Vpcd, StopWhileConnectedEndsRunAndPowersTheCardOff) {
  start();
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  stop();
  EXPECT_FALSE(card->powered());
  EXPECT_TRUE(vpcd.closed_by_peer(2s));
}

TEST_F(Vpcd, PullAfterNthApduClosesWithoutAnswerButTheCardCommitted) {
  VpcdOptions options;
  options.pull_after = 3;
  start(options);
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");  // 1
  ASSERT_EQ(vpcd.transmit("8014000004"), "000000019000");                         // 2
  vpcd.send_apdu(from_hex("8014000004"));                                         // 3: pulled
  EXPECT_TRUE(vpcd.closed_by_peer()) << "no answer, the connection closes";
  ASSERT_TRUE(vpcd.accept()) << "the card is reinserted";
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8018000004"), "000000029000") << "the unanswered increment did commit";
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000039000") << "only once";
  EXPECT_EQ(client->pulls(), 1u);
}

TEST_F(Vpcd, PullCardHookPullsDuringTheNextApdu) {
  start();
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  client->pull_card();
  vpcd.send_apdu(from_hex("8014000004"));
  EXPECT_TRUE(vpcd.closed_by_peer());
  ASSERT_TRUE(vpcd.accept());
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8018000004"), "000000019000");
  const auto lines = log_lines();
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("card pulled before answering") != std::string::npos;
  }));
}

TEST_F(Vpcd, PullOnAHeaderPrefixSkipsOtherApdus) {
  VpcdOptions options;
  options.pull_on = from_hex("8014");
  start(options);
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  ASSERT_EQ(vpcd.transmit("8012000001"), "009000");
  vpcd.send_apdu(from_hex("8014000004"));
  EXPECT_TRUE(vpcd.closed_by_peer());
  ASSERT_TRUE(vpcd.accept());
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000029000") << "committed once, pulled once";
}

TEST_F(Vpcd, CutOnAHeaderPrefixEndsTheCommandBeforeItCompletes) {
  VpcdOptions options;
  options.cut_on = VpcdOptions::CutOn{from_hex("8014"), 0};
  start(options);
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  ASSERT_EQ(vpcd.transmit("8012000001"), "009000");
  vpcd.send_apdu(from_hex("8014000004"));
  EXPECT_TRUE(vpcd.closed_by_peer()) << "no answer, the connection closes";
  ASSERT_TRUE(vpcd.accept()) << "the card is reinserted";
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8018000004"), "000000009000") << "the cut increment did not happen";
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000019000") << "cut once";
  EXPECT_EQ(client->pulls(), 1u);
}

TEST_F(Vpcd, ACutBeyondTheCommandsWritesIsDisarmedAfterIt) {
  // W: the page writes of one increment. A cut at write W of the first increment does not fire
  // in it; left armed, it would cut the next increment's first write.
  card->power_on();
  ASSERT_EQ(to_hex(card->process(from_hex(select_hex(EchoApplet::kAid(), "0C", false)))), "9000");
  ASSERT_EQ(to_hex(card->process(from_hex("8014000004"))), "000000019000");
  const auto writes = card->last_command_writes();
  ASSERT_GT(writes, 0u);
  card->power_off();
  VpcdOptions options;
  options.cut_on = VpcdOptions::CutOn{from_hex("8014"), writes};
  start(options);
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000029000");
  EXPECT_EQ(vpcd.transmit("8014000004"), "000000039000");
  EXPECT_EQ(client->pulls(), 0u);
}

TEST_F(Vpcd, PowerCutDuringAnApduClosesTheConnection) {
  start();
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  card->eeprom().arm({0, CutMode::Before, 0});  // only the client thread touches the card now
  vpcd.send_apdu(from_hex("8014000004"));
  EXPECT_TRUE(vpcd.closed_by_peer());
  ASSERT_TRUE(vpcd.accept());
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(vpcd.transmit("8018000004"), "000000009000");
}

TEST_F(Vpcd, RefusedImageMakesTheCardGoAwayAndComeBackLater) {
  card->eeprom().write_page(kFirstAppletPage, Bytes(kPageSize, 0xBD));  // behind the CRC's back
  start();
  const auto t0 = std::chrono::steady_clock::now();
  vpcd.send_control(kOn);
  EXPECT_TRUE(vpcd.closed_by_peer());
  ASSERT_TRUE(vpcd.accept());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms) << "waited max_backoff before reconnecting";
  EXPECT_FALSE(card->powered());
  const auto lines = log_lines();
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("card image refused at power-on: corrupt image: header CRC32") != std::string::npos;
  }));
}

TEST_F(Vpcd, SplitFramesFromVpcdAreAnsweredWithoutDelayedAckStalls) {
  // vpcd on Debian 12 writes length and payload separately with Nagle on: without our
  // TCP_QUICKACK after each read, every APDU would wait ~40 ms for a delayed ACK.
  start();
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  std::vector<double> ms;
  for (int i = 0; i < 40; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    vpcd.send_apdu(from_hex("8012000010"), /*split=*/true);
    ASSERT_TRUE(vpcd.receive().has_value());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  // A delayed ACK holds a round trip at least 40 ms (Linux's TCP_DELACK_MIN); a busy machine
  // (the sanitizer build, the other test job) slows some round trips but not most past 35 ms.
  const auto stalled = std::count_if(ms.begin(), ms.end(), [](double t) { return t >= 35.0; });
  EXPECT_LT(stalled, static_cast<std::ptrdiff_t>(ms.size() / 2)) << "round trips of 35 ms or more";
}

TEST_F(Vpcd, LogShowsHeadersAndStatusWordsNeverData) {
  start();
  vpcd.send_control(kOn);
  ASSERT_EQ(vpcd.transmit(select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  ASSERT_EQ(vpcd.transmit("8010000004"
                          "31323334"
                          "00"),
            "313233349000");
  stop();
  const auto lines = log_lines();
  ASSERT_FALSE(lines.empty());
  bool saw_header = false;
  for (const auto& l : lines) {
    EXPECT_EQ(l.find("31323334"), std::string::npos) << l;
    saw_header = saw_header || l.find("80100000 (10 bytes) -> 9000 (6 bytes)") != std::string::npos;
  }
  EXPECT_TRUE(saw_header);
}

TEST(VpcdConfig, NonLoopbackEndpointIsRefusedUnlessAllowed) {
  auto card = testing::make_card();
  VpcdOptions options;
  options.host = "192.0.2.7";  // TEST-NET-1
  try {
    VpcdClient client(*card, options);
    FAIL() << "accepted a remote endpoint";
  } catch (const VpcdConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not a loopback address"), std::string::npos) << e.what();
  }
  options.allow_remote = true;
  EXPECT_NO_THROW(VpcdClient(*card, options));
  options.host = "::1";
  options.allow_remote = false;
  EXPECT_NO_THROW(VpcdClient(*card, options));
}

}  // namespace
}  // namespace skillcard::card
