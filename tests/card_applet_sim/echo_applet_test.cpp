// Tests for the diagnostic echo applet's command table (docs/card-os.md, "Echo applet").
#include "skillcard/card/echo_applet.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace skillcard::card {
namespace {

using testing::select_hex;
using testing::send;

class Echo : public ::testing::Test {
 protected:
  void SetUp() override {
    card = std::make_unique<Card>(testing::formatted(20));  // 3 applet pages = 192 bytes
    card->install(std::make_unique<EchoApplet>(), 0, 192);
    card->power_on();
    ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  }
  std::unique_ptr<Card> card;
};

TEST_F(Echo, AidIsTheDocumentedTestAid) { EXPECT_EQ(to_hex(EchoApplet::kAid()), "F0736B696C6C63617264FE"); }

TEST_F(Echo, EchoReturnsTheData) {
  EXPECT_EQ(send(*card, "8010000002ABCD00"), "ABCD9000");
  EXPECT_EQ(send(*card, "8010000000"), "6700");
  EXPECT_EQ(send(*card, "8010010002ABCD00"), "6A86");
}

TEST_F(Echo, GenerateIsCase2) {
  EXPECT_EQ(send(*card, "8012000003"), "0001029000");
  EXPECT_EQ(send(*card, "80120000"), "6700");
  EXPECT_EQ(send(*card, "8012000001AA03"), "6700");
}

TEST_F(Echo, IncrementCommitsACounter) {
  EXPECT_EQ(send(*card, "8014000004"), "000000019000");
  EXPECT_EQ(send(*card, "8014000004"), "000000029000");
  EXPECT_EQ(send(*card, "8018000004"), "000000029000");
  EXPECT_EQ(send(*card, "8014000001AA"), "6700");
}

TEST_F(Echo, WriteAndReadTheStorageWindow) {
  EXPECT_EQ(send(*card, "801600BE02A1A2"), "9000");
  EXPECT_EQ(send(*card, "801800BE02"), "A1A29000");
  EXPECT_EQ(send(*card, "801800BE00"), "A1A29000") << "a read past the end returns what there is";
  EXPECT_EQ(send(*card, "801600BF02A1A2"), "6B00");
  EXPECT_EQ(send(*card, "801800C001"), "6B00");
  EXPECT_EQ(send(*card, "80160000"), "6700");
}

TEST_F(Echo, WriteLargerThanOneCommitIs6700) {
  Card big(testing::formatted(40));
  big.install(std::make_unique<EchoApplet>(), 0, 23 * 64);
  big.power_on();
  ASSERT_EQ(send(big, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(send(big,
                 "80160000"
                 "00"
                 "0381" +
                     std::string(0x381 * 2, '1')),
            "6700");
  EXPECT_EQ(big.last_command_writes(), 0u);
  EXPECT_EQ(send(big,
                 "80160000"
                 "00"
                 "0380" +
                     std::string(0x380 * 2, '1')),
            "9000");
}

TEST_F(Echo, VolatileValueLivesUntilDeselect) {
  EXPECT_EQ(send(*card, "801C000000"), "9000");
  EXPECT_EQ(send(*card, "801A000002BEEF"), "9000");
  EXPECT_EQ(send(*card, "801C000000"), "BEEF9000");
  EXPECT_EQ(send(*card, "801A000021" + std::string(66, '0')), "6700") << "33 bytes";
  EXPECT_EQ(send(*card, "801A0000"), "6700");
}

TEST_F(Echo, RaiseAnswersTheStatusWord) {
  EXPECT_EQ(send(*card, "801E6A80"), "6A80");
  EXPECT_EQ(send(*card, "801E6283"), "6283");
  EXPECT_EQ(send(*card, "801E9000"), "9000");
  EXPECT_EQ(send(*card, "801E1234"), "6A86") << "not a status word";
  EXPECT_EQ(send(*card, "801E9001"), "6A86");
}

TEST_F(Echo, ClassesOtherThan80AreRefused) {
  EXPECT_EQ(send(*card, "0012000001"), "6E00");
  EXPECT_EQ(send(*card, "8412000001"), "6882");
}

}  // namespace
}  // namespace skillcard::card
