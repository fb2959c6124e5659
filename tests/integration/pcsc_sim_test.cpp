// The reader driver against a real pcscd with vsmartcard's vpcd and skillcard-sim as the card:
// the same code path a physical reader takes. Started by the ctest fixture pcscd_start.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <optional>

#include "sim_process.hpp"
#include "skillcard/reader/event_monitor.hpp"

using namespace skillcard;
using namespace skillcard::reader;
using namespace skillcard::integration;
using iso7816::CommandApdu;
using iso7816::StatusWord;

namespace {

const Bytes kEchoAid = from_hex("F0736B696C6C63617264FE");

std::string run(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ::pclose(p);
  return out;
}

struct Connected {
  Context context;
  std::unique_ptr<SimProcess> sim;
  std::unique_ptr<Connection> connection;
  int slot;
  explicit Connected(int slot_ = 0, std::vector<std::string> extra = {}) : slot(slot_) {
    // pcscd notices a previous test's card leaving only after a moment: wait for the empty
    // reader first, so that the card we connect to is the one this test starts.
    if (!wait_for_card(context, reader_name(slot), false)) throw std::runtime_error("the reader never emptied");
    sim = std::make_unique<SimProcess>(slot, std::move(extra));
    if (!wait_for_card(context, reader_name(slot), true)) throw std::runtime_error("the simulated card never appeared");
    connection = context.connect(reader_name(slot));
  }
  ~Connected() {
    connection.reset();
    sim.reset();
    wait_for_card(context, reader_name(slot), false);
  }
};

iso7816::ResponseApdu select_echo(iso7816::CardChannel& channel) {
  return iso7816::transmit_all(channel, CommandApdu::select_by_aid(kEchoAid));
}

}  // namespace

TEST(PcscSim, ListsBothVpcdReaders) {
  Context context;
  const auto readers = context.readers();
  EXPECT_NE(std::find(readers.begin(), readers.end(), reader_name(0)), readers.end());
  EXPECT_NE(std::find(readers.begin(), readers.end(), reader_name(1)), readers.end());
}

TEST(PcscSim, InsertAndRemoveEvents) {
  std::mutex m;
  std::condition_variable cv;
  std::vector<ReaderEvent> events;
  EventMonitor monitor(system_pcsc(), [&](const ReaderEvent& e) {
    std::lock_guard lock(m);
    if (e.reader == reader_name(0)) events.push_back(e);
    cv.notify_all();
  });
  auto wait_events = [&](std::size_t n) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(15), [&] { return events.size() >= n; });
  };
  {
    Context context;
    ASSERT_TRUE(wait_for_card(context, reader_name(0), false));
    SimProcess sim(0);
    ASSERT_TRUE(wait_events(1));
    EXPECT_EQ(events[0].kind, ReaderEvent::Kind::CardInserted);
    EXPECT_EQ(to_hex(events[0].atr).substr(0, 2), "3B");
    EXPECT_EQ(sim.stop(), 0);  // clean exit on SIGTERM
    ASSERT_TRUE(wait_events(2));
    EXPECT_EQ(events[1].kind, ReaderEvent::Kind::CardRemoved);
  }
  SimProcess again(0);
  ASSERT_TRUE(wait_events(3));
  EXPECT_EQ(events[2].kind, ReaderEvent::Kind::CardInserted);
}

TEST(PcscSim, EveryApduCaseThroughPcscd) {
  Connected c;
  PcscChannel channel(*c.connection);
  EXPECT_EQ(select_echo(channel).sw(), StatusWord::Success);
  // Case 3 and 4: echo.
  const auto echo = channel.transmit(CommandApdu(0x80, 0x10, 0x00, 0x00, from_hex("0102030405"), std::size_t{256}));
  EXPECT_EQ(to_hex(echo.data()), "0102030405");
  // Case 2: generated data.
  const auto gen = channel.transmit(CommandApdu(0x80, 0x12, 0x00, 0x00, std::size_t{16}));
  EXPECT_EQ(to_hex(gen.data()), "000102030405060708090A0B0C0D0E0F");
  // Case 1 raising a chosen status word comes back as that status word.
  EXPECT_EQ(channel.transmit(CommandApdu(0x80, 0x1E, 0x6A, 0x88)).sw(), StatusWord::ReferencedDataNotFound);
  // Unknown AID: 6A82.
  EXPECT_EQ(channel.transmit(CommandApdu::select_by_aid(from_hex("A000000003000000"))).sw(), StatusWord::FileNotFound);
}

TEST(PcscSim, ExtendedLengthBothWays) {
  Connected c;
  PcscChannel channel(*c.connection, LengthMode::Extended);
  ASSERT_TRUE(select_echo(channel).is_success());
  Bytes data(1000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
  const auto echo = channel.transmit(CommandApdu(0x80, 0x10, 0x00, 0x00, data, std::size_t{65536}));
  EXPECT_EQ(echo.sw(), StatusWord::Success);
  EXPECT_EQ(echo.data(), data);
}

TEST(PcscSim, ShortApdusGetResponseAndChaining) {
  Connected c;
  PcscChannel channel(*c.connection, LengthMode::ShortWithChaining);
  ASSERT_TRUE(select_echo(channel).is_success());
  // 400 bytes sent as a chain of short commands; the 400-byte answer does not fit a short Le
  // and arrives through 61xx + GET RESPONSE.
  const Bytes data(400, 0x3C);
  const auto echo = iso7816::transmit_all(channel, CommandApdu(0x80, 0x10, 0x00, 0x00, data, std::size_t{256}));
  EXPECT_EQ(echo.data(), data);
}

// The card is pulled while it processes an APDU: the host sees an unknown outcome, reconnects
// when the card is back, and finds out from the card what happened (here: the counter moved).
TEST(PcscSim, TornApduIsAnUnknownOutcomeAndRecoverable) {
  Connected c(0, {"--pull-after", "3", "--reinsert-delay-ms", "500"});
  PcscChannel channel(*c.connection);
  ASSERT_TRUE(select_echo(channel).is_success());                                            // APDU 1
  const auto first = channel.transmit(CommandApdu(0x80, 0x14, 0x00, 0x00, std::size_t{4}));  // APDU 2
  ASSERT_TRUE(first.is_success());
  EXPECT_THROW(channel.transmit(CommandApdu(0x80, 0x14, 0x00, 0x00, std::size_t{4})), iso7816::UnknownOutcomeError);
  // Back in the reader: reconnect and ask the card, retrying as a host would while pcscd sees
  // the card go and come back.
  std::optional<iso7816::ResponseApdu> read;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!read && std::chrono::steady_clock::now() < deadline) {
    try {
      auto again = c.context.connect(reader_name(0));
      PcscChannel recovered(*again);
      if (select_echo(recovered).is_success()) {
        read = recovered.transmit(CommandApdu(0x80, 0x18, 0x00, 0x00, std::size_t{4}));
      }
    } catch (const iso7816::CardError&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ASSERT_TRUE(read.has_value());
  ASSERT_TRUE(read->is_success());
  // The torn increment ran on the card before it was pulled: 2, not 1.
  EXPECT_EQ(to_hex(read->data()), to_hex(first.data()).substr(0, 6) + "02");
}

TEST(PcscSim, TwoReadersAtOnce) {
  Connected a(0);
  Connected b(1);
  PcscChannel ca(*a.connection);
  PcscChannel cb(*b.connection);
  ASSERT_TRUE(select_echo(ca).is_success());
  ASSERT_TRUE(select_echo(cb).is_success());
  EXPECT_EQ(to_hex(ca.transmit(CommandApdu(0x80, 0x10, 0, 0, from_hex("AA"), std::size_t{256})).data()), "AA");
  EXPECT_EQ(to_hex(cb.transmit(CommandApdu(0x80, 0x10, 0, 0, from_hex("BB"), std::size_t{256})).data()), "BB");
}

// While one application holds a transaction, another's BeginTransaction waits for it.
TEST(PcscSim, TransactionsAreExclusive) {
  Connected a;
  Context other;
  auto b = other.connect(reader_name(0));
  std::atomic<bool> a_ended{false};
  std::atomic<bool> b_saw_a_ended{false};
  auto tx = a.connection->begin_transaction();
  std::thread t([&] {
    auto tb = b->begin_transaction();
    b_saw_a_ended = a_ended.load();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // give B every chance to cut in
  a_ended = true;
  tx.end();
  t.join();
  EXPECT_TRUE(b_saw_a_ended);
}

// Independent PC/SC clients see the simulated card as a card.
TEST(PcscSim, OpenscToolSeesTheCard) {
  Connected c;
  const auto atr = to_hex(c.connection->atr());
  const auto list = run("opensc-tool -l");
  EXPECT_NE(list.find(reader_name(0)), std::string::npos) << list;
  EXPECT_NE(list.find("Yes"), std::string::npos) << list;
  const auto atr_out = run("opensc-tool -r 0 -a");
  std::string spaced;
  for (std::size_t i = 0; i < atr.size(); i += 2) spaced += (i ? ":" : "") + atr.substr(i, 2);
  std::string lower = atr_out;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::toupper);
  EXPECT_NE(lower.find(spaced), std::string::npos) << atr_out << " vs " << spaced;
  const auto select = run("opensc-tool -r 0 -s 00:A4:04:00:0B:F0:73:6B:69:6C:6C:63:61:72:64:FE");
  EXPECT_NE(select.find("SW1=0x90, SW2=0x00"), std::string::npos) << select;
}

// skillcard-apdu, the tool a counter uses with a real reader, against the simulated card.
TEST(PcscSim, ApduToolListsAndSends) {
  Connected c;
  c.connection.reset();  // let the tool have the card
  const std::string tool = SKILLCARD_APDU_TOOL;
  const auto list = run(tool + " list");
  EXPECT_NE(list.find(reader_name(0) + ": card present, ATR 3B"), std::string::npos) << list;
  const auto sent = run(tool + " send --reader '" + reader_name(0) +
                        "' 00A404000BF0736B696C6C63617264FE00 8010000003AABBCC00 801E6A88");
  EXPECT_NE(sent.find("AABBCC 9000"), std::string::npos) << sent;
  EXPECT_NE(sent.find("6A88"), std::string::npos) << sent;
  // The trace on stderr shows headers, never data, unless --secure-debug.
  EXPECT_NE(sent.find("80 10 00 00"), std::string::npos) << sent;
  EXPECT_EQ(sent.find("> Virtual PCD 00 00 8010000003AABBCC"), std::string::npos) << sent;
  // A malformed APDU anywhere in the list: nothing is sent, not even the good ones before it.
  const auto bad = run(tool + " send --reader '" + reader_name(0) + "' 00A404000BF0736B696C6C63617264FE00 00ZZ");
  EXPECT_NE(bad.find("nothing was sent"), std::string::npos) << bad;
  EXPECT_EQ(bad.find("00 A4 04 00"), std::string::npos) << "the SELECT before the bad APDU was sent: " << bad;
  // A VERIFY typed with a wrong Lc (9, with 8 bytes): the refusal names the APDU by its header, not its PIN digits.
  const auto pin = run(tool + " send --reader '" + reader_name(0) + "' 002000810931323334FFFFFFFF");
  EXPECT_NE(pin.find("nothing was sent"), std::string::npos) << pin;
  EXPECT_NE(pin.find("00200081"), std::string::npos) << pin;
  EXPECT_EQ(pin.find("31323334"), std::string::npos) << pin;
}
