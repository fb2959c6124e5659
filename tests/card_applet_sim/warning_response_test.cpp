// Applets answering data with a warning status word (card.hpp, WarningResponse): the data goes
// out by the usual Ne rules and the warning follows the last byte, through GET RESPONSE too.
#include <gtest/gtest.h>

#include "skillcard/card/card.hpp"
#include "skillcard/card/in_process_channel.hpp"
#include "skillcard/iso7816/card_channel.hpp"
#include "test_support.hpp"

using namespace skillcard;
using namespace skillcard::card;
using iso7816::CommandApdu;
using iso7816::StatusWord;

namespace {

class WarningApplet : public Applet {
 public:
  Bytes aid() const override { return from_hex("F07761726E01"); }
  Bytes process(const CommandApdu& command, AppletContext&) override {
    // P1 = data length, P2 = SW2 of 63xx.
    Bytes data(command.p1());
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i);
    throw WarningResponse(iso7816::make_sw(0x63, command.p2()), data);
  }
};

std::unique_ptr<Card> warning_card() {
  auto card = std::make_unique<Card>(card::testing::formatted());
  card->install(std::make_unique<WarningApplet>(), 0, 64);
  card->power_on();
  return card;
}

}  // namespace

TEST(WarningResponse, DataThenTheWarning) {
  auto card = warning_card();
  EXPECT_EQ(card::testing::send(*card, "00A40400 06 F07761726E01 00").substr(0, 2), "6F");
  EXPECT_EQ(card::testing::send(*card, "80 01 08 C2 00"), "000102030405060763C2");
  EXPECT_EQ(card::testing::send(*card, "80 01 00 C1 00"), "63C1");
  // Longer than Ne: 61xx, and the warning after the last GET RESPONSE.
  EXPECT_EQ(card::testing::send(*card, "80 01 0A C0 04"),
            "00010203"
            "6106");
  EXPECT_EQ(card::testing::send(*card, "00 C0 00 00 04"),
            "04050607"
            "6102");
  EXPECT_EQ(card::testing::send(*card, "00 C0 00 00 02"),
            "0809"
            "63C0");
  EXPECT_EQ(card::testing::send(*card, "00 C0 00 00 02"), "6985");
  InProcessChannel channel(*card);
  const auto r = iso7816::transmit_all(channel, CommandApdu(0x80, 0x01, 0x20, 0xC2, 16));
  EXPECT_EQ(r.data().size(), 0x20u);
  EXPECT_EQ(r.sw(), iso7816::make_sw(0x63, 0xC2));
  // A case 3 command (no Le): all of it via GET RESPONSE, still ending in the warning.
  const auto r3 = iso7816::transmit_all(channel, CommandApdu(0x80, 0x01, 0x08, 0xC1, Bytes{1}));
  EXPECT_EQ(r3.data().size(), 8u);
  EXPECT_EQ(r3.sw(), iso7816::make_sw(0x63, 0xC1));
}

TEST(WarningResponse, OnlyWarningsQualify) {
  EXPECT_THROW(WarningResponse(StatusWord::SecurityStatusNotSatisfied, {}), std::invalid_argument);
  EXPECT_THROW(WarningResponse(StatusWord::Success, {}), std::invalid_argument);
  EXPECT_NO_THROW(WarningResponse(iso7816::make_sw(0x62, 0x83), {}));
}
