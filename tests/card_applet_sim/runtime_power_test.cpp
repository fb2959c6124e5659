// Tests for power and reset semantics: the ATR, what power-off, warm reset and power-on clear
// (selection, transient RAM, PIN-verified state, pending GET RESPONSE data, an open chain) and
// keep (persistent memory), power cuts during commands, and applet installation rules.
#include <gtest/gtest.h>

#include "skillcard/card/card.hpp"
#include "test_support.hpp"

namespace skillcard::card {
namespace {

using testing::make_card;
using testing::select_hex;
using testing::send;
using testing::TestApplet;

class Runtime : public ::testing::Test {
 protected:
  void SetUp() override {
    card = make_card(&log, &test_applet);
    card->power_on();
  }
  void verify_pin() {
    ASSERT_EQ(send(*card, select_hex(TestApplet::kAid(), "0C", false)), "9000");
    ASSERT_EQ(send(*card,
                   "0052000004"
                   "31323334"),
              "9000");
    ASSERT_EQ(send(*card,
                   "0054000004"
                   "31323334"),
              "9000");
    ASSERT_EQ(send(*card, "0056000001"), "019000");
  }
  std::vector<std::string> log;
  TestApplet* test_applet = nullptr;
  std::unique_ptr<Card> card;
};

TEST(Atr, IsAT1AtrNamingSkillcard) {
  const Bytes& atr = Card::atr();
  EXPECT_EQ(to_hex(atr), "3B9B138131FE458059736B696C6C63617264" + to_hex(Bytes{atr.back()}));
  std::uint8_t x = 0;
  for (std::size_t i = 1; i < atr.size(); ++i) x = static_cast<std::uint8_t>(x ^ atr[i]);
  EXPECT_EQ(x, 0) << "TCK makes T0..TCK XOR to zero";
  EXPECT_LE(atr.size(), 33u);
  EXPECT_EQ(atr[1] & 0x0F, 11) << "K = 11 historical bytes";
}

TEST(Atr, PowerOnAndResetReturnIt) {
  auto card = make_card();
  EXPECT_EQ(card->power_on(), Card::atr());
  EXPECT_EQ(card->reset(), Card::atr());
}

TEST(RuntimeOff, CardStartsOffAndRefusesCommands) {
  auto card = make_card();
  EXPECT_FALSE(card->powered());
  EXPECT_THROW(card->process(from_hex("00A4040000")), CardNotPowered);
}

TEST_F(Runtime, PowerOffClearsEveryVolatileState) {
  verify_pin();
  card->power_off();
  EXPECT_FALSE(card->powered());
  EXPECT_EQ(card->selected(), nullptr);
  EXPECT_THROW(card->process(from_hex("0056000001")), CardNotPowered);
  card->power_on();
  EXPECT_EQ(card->selected(), nullptr);
  EXPECT_EQ(send(*card, "0056000001"), "6D00") << "no applet selected after power-on";
  ASSERT_EQ(send(*card, select_hex(TestApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(send(*card, "0056000001"), "009000") << "PIN-verified flag gone";
}

TEST_F(Runtime, PowerOffKeepsPersistentState) {
  verify_pin();
  card->power_off();
  card->power_on();
  EXPECT_EQ(to_hex(card->memory().read(testing::kTestOffset, 9)),
            "03"
            "00000001"
            "31323334");
}

TEST_F(Runtime, WarmResetClearsVolatileStateAndKeepsMemory) {
  verify_pin();
  const auto writes = card->eeprom().writes();
  EXPECT_EQ(card->reset(), Card::atr());
  EXPECT_TRUE(card->powered());
  EXPECT_EQ(card->selected(), nullptr);
  EXPECT_EQ(card->eeprom().writes(), writes) << "a warm reset writes nothing";
  EXPECT_TRUE(card->memory().mounted());
  ASSERT_EQ(send(*card, select_hex(TestApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(send(*card, "0056000001"), "009000");
  EXPECT_EQ(to_hex(card->memory().read(testing::kTestOffset, 1)), "03");
}

TEST_F(Runtime, AppletsAreToldOfResetsWithTransientRamAlreadyZero) {
  verify_pin();
  card->reset();
  card->power_off();  // no callback: power is simply gone
  card->power_on();
  EXPECT_EQ(log, (std::vector<std::string>{"power_reset verified=0", "select", "power_reset verified=0",
                                           "power_reset verified=0"}));
}

TEST_F(Runtime, ResetAndPowerOffDropPendingResponseAndChain) {
  ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  ASSERT_EQ(send(*card,
                 "80100000"
                 "03"
                 "AABBCC"
                 "01"),
            "AA6102");
  EXPECT_EQ(card->pending_response_bytes(), 2u);
  card->reset();
  EXPECT_EQ(card->pending_response_bytes(), 0u);
  EXPECT_EQ(send(*card, "00C0000002"), "6985");

  ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  ASSERT_EQ(send(*card, "9010000002AABB"), "9000");
  card->power_off();
  card->power_on();
  ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(send(*card, "8010000001CC00"), "CC9000") << "the chain did not survive the power cycle";
}

TEST(RuntimeOff, ResetOfACardWithoutPowerIsAPowerOn) {
  auto card = make_card();
  EXPECT_EQ(card->reset(), Card::atr());
  EXPECT_TRUE(card->powered());
  EXPECT_TRUE(card->memory().mounted());
}

TEST_F(Runtime, PowerCutDuringACommandPowersTheCardOff) {
  ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  card->eeprom().arm({3, CutMode::During, 1});
  EXPECT_THROW(card->process(from_hex("8014000004")), PowerLost);
  EXPECT_FALSE(card->powered());
  EXPECT_EQ(card->last_command_writes(), 4u) << "writes 0-3, the last one cut";
  EXPECT_EQ(card->selected(), nullptr);
  card->power_on();
  EXPECT_EQ(card->last_mount().journal, MountReport::Journal::Replayed);
  ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(send(*card, "8014000004"), "000000029000") << "the cut command was committed (cut after its record)";
}

TEST_F(Runtime, PowerLostSwallowedByAnAppletIsStillAPowerLoss) {
  ASSERT_EQ(send(*card, select_hex(TestApplet::kAid(), "0C", false)), "9000");
  card->eeprom().arm({1, CutMode::Before, 0});
  EXPECT_THROW(card->process(from_hex("005C000001")), PowerLost);
  EXPECT_FALSE(card->powered());
  card->power_on();
  EXPECT_EQ(to_hex(card->memory().read(testing::kTestOffset, 1)), "00") << "the commit never reached its record";
}

TEST_F(Runtime, PowerCutDuringRecoveryLeavesTheCardOff) {
  ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  card->eeprom().arm({3, CutMode::Before, 0});  // after the record: recovery will replay
  EXPECT_THROW(card->process(from_hex("8014000004")), PowerLost);
  card->eeprom().arm({0, CutMode::During, 2});
  EXPECT_THROW(card->power_on(), PowerLost);
  EXPECT_FALSE(card->powered());
  EXPECT_EQ(card->power_on(), Card::atr());
  EXPECT_EQ(to_hex(card->memory().read(testing::kEchoOffset, 4)), "00000001");
}

TEST_F(Runtime, LastCommandWritesCountsPhysicalPageWrites) {
  ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(card->last_command_writes(), 0u);
  ASSERT_EQ(send(*card, "8014000004"), "000000019000");
  EXPECT_EQ(card->last_command_writes(), 6u) << "1 page + header: 2n + 2";
  ASSERT_EQ(send(*card,
                 "80160000"
                 "00"
                 "0101" +
                     std::string(257 * 2, 'A')),
            "9000");
  EXPECT_EQ(card->last_command_writes(), 2u * 6 + 2) << "257 bytes over 5 pages + header";
  ASSERT_EQ(send(*card, "8012000001"), "009000");
  EXPECT_EQ(card->last_command_writes(), 0u);
}

TEST(Install, RejectsBadAidsAndOverlappingWindows) {
  Card card(testing::formatted());
  card.install(std::make_unique<EchoApplet>(), 0, 128);
  EXPECT_THROW(card.install(std::make_unique<EchoApplet>(), 256, 64), std::invalid_argument) << "duplicate AID";
  EXPECT_THROW(card.install(std::make_unique<TestApplet>(), 64, 128), std::invalid_argument) << "overlap";
  EXPECT_THROW(card.install(std::make_unique<TestApplet>(), 30 * 64 - 10, 11), std::out_of_range);
  EXPECT_THROW(card.install(nullptr, 0, 0), std::invalid_argument);
  EXPECT_NO_THROW(card.install(std::make_unique<TestApplet>(), 128, 128));

  struct ShortAid : TestApplet {
    Bytes aid() const override { return {0xF0, 0x01, 0x02, 0x03}; }
  };
  struct LongAid : TestApplet {
    Bytes aid() const override { return Bytes(17, 0xF0); }
  };
  EXPECT_THROW(card.install(std::make_unique<ShortAid>(), 512, 0), std::invalid_argument);
  EXPECT_THROW(card.install(std::make_unique<LongAid>(), 512, 0), std::invalid_argument);
}

}  // namespace
}  // namespace skillcard::card
