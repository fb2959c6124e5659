// Tests for the in-process transport: the host library's transmit_all over it (GET RESPONSE,
// 6Cxx), chaining from split_for_chaining, and how power loss and power-off surface as the
// CardChannel error types.
#include "skillcard/card/in_process_channel.hpp"

#include <gtest/gtest.h>

#include "test_support.hpp"

namespace skillcard::card {
namespace {

using iso7816::CommandApdu;
using iso7816::StatusWord;
using testing::make_card;
using testing::TestApplet;

class Channel : public ::testing::Test {
 protected:
  void SetUp() override {
    card = make_card();
    card->power_on();
  }
  std::unique_ptr<Card> card;
};

TEST_F(Channel, TransmitAllFollowsGetResponse) {
  InProcessChannel channel(*card);
  ASSERT_TRUE(channel.transmit(CommandApdu::select_by_aid(EchoApplet::kAid())).is_success());
  Bytes data(700);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i ^ 0x5A);
  // Short Le: the card hands out 256 bytes and 61xx, transmit_all fetches the rest.
  const auto raw = channel.transmit(CommandApdu(0x80, EchoApplet::kInsEcho, 0, 0, data, 256));
  EXPECT_EQ(raw.sw(), iso7816::make_sw(0x61, 0x00));
  EXPECT_EQ(raw.data().size(), 256u);
  const auto all = iso7816::transmit_all(channel, CommandApdu(0x80, EchoApplet::kInsEcho, 0, 0, data, 256));
  EXPECT_TRUE(all.is_success());
  EXPECT_EQ(all.data(), data);
}

TEST_F(Channel, TransmitAllOfACase3CommandWithAnAnswer) {
  InProcessChannel channel(*card);
  // SELECT without Le: the FCI comes as 61xx.
  const auto r = iso7816::transmit_all(channel, CommandApdu(0x00, 0xA4, 0x04, 0x00, EchoApplet::kAid()));
  EXPECT_TRUE(r.is_success());
  EXPECT_EQ(to_hex(r.data()), "6F0D840B" + to_hex(EchoApplet::kAid()));
}

TEST_F(Channel, ChainedCommandFromTheHostLibrary) {
  InProcessChannel channel(*card);
  ASSERT_TRUE(channel.transmit(CommandApdu::select_by_aid(TestApplet::kAid())).is_success());
  const Bytes data(600, 0x42);
  const auto parts = iso7816::split_for_chaining(CommandApdu(0x00, TestApplet::kInsEcho, 0, 0, data, 65536), 255);
  ASSERT_EQ(parts.size(), 3u);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) EXPECT_TRUE(channel.transmit(parts[i]).is_success());
  const auto last = channel.transmit(parts.back());
  EXPECT_TRUE(last.is_success());
  EXPECT_EQ(last.data(), data);
}

TEST_F(Channel, ChainedProprietaryCommandFromTheHostLibrary) {
  // 80 chained as 90, as a WRITE DIGEST over short APDUs will be.
  InProcessChannel channel(*card);
  ASSERT_TRUE(channel.transmit(CommandApdu::select_by_aid(EchoApplet::kAid())).is_success());
  Bytes data(510);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
  const auto parts = iso7816::split_for_chaining(CommandApdu(0x80, EchoApplet::kInsEcho, 0, 0, data, 256));
  ASSERT_EQ(parts.size(), 2u);  // 255 + 255
  EXPECT_EQ(parts[0].cla(), 0x90);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) EXPECT_TRUE(channel.transmit(parts[i]).is_success());
  const auto all = iso7816::transmit_all(channel, parts.back());
  EXPECT_TRUE(all.is_success());
  EXPECT_EQ(all.data(), data);
}

TEST_F(Channel, PowerLossDuringACommandIsAnUnknownOutcome) {
  InProcessChannel channel(*card);
  ASSERT_TRUE(channel.transmit(CommandApdu::select_by_aid(EchoApplet::kAid())).is_success());
  card->eeprom().arm({4, CutMode::After, 0});
  try {
    channel.transmit(CommandApdu(0x80, EchoApplet::kInsIncrement, 0, 0, 4));
    FAIL() << "no error";
  } catch (const iso7816::UnknownOutcomeError& e) {
    EXPECT_NE(std::string(e.what()).find("80 14 00 00 Le=04"), std::string::npos) << e.what();
  }
  // The host finds out from the card's state: the increment did commit.
  channel.reset();
  ASSERT_TRUE(channel.transmit(CommandApdu::select_by_aid(EchoApplet::kAid())).is_success());
  EXPECT_EQ(to_hex(channel.transmit(CommandApdu(0x80, EchoApplet::kInsRead, 0, 0, 4)).data()), "00000001");
}

TEST_F(Channel, PoweredOffCardIsARemovedCard) {
  InProcessChannel channel(*card);
  card->power_off();
  EXPECT_THROW(channel.transmit(CommandApdu::select_by_aid(EchoApplet::kAid())), iso7816::CardRemovedError);
  channel.reset();
  EXPECT_TRUE(card->powered());
  EXPECT_TRUE(channel.transmit(CommandApdu::select_by_aid(EchoApplet::kAid())).is_success());
}

TEST_F(Channel, ResetIsAWarmReset) {
  InProcessChannel channel(*card);
  ASSERT_TRUE(channel.transmit(CommandApdu::select_by_aid(EchoApplet::kAid())).is_success());
  channel.reset();
  EXPECT_EQ(channel.transmit(CommandApdu(0x80, EchoApplet::kInsGenerate, 0, 0, 1)).sw(), StatusWord::ClaNotSupported);
  EXPECT_EQ(channel.atr(), Card::atr());
}

}  // namespace
}  // namespace skillcard::card
