// Tests for transmit_all (GET RESPONSE and wrong-Le handling, ISO/IEC 7816-4:2005 §5.1.3,
// §7.6.1) and the CardChannel error hierarchy, against a scripted fake card.
#include "skillcard/iso7816/card_channel.hpp"

#include <gtest/gtest.h>

#include "fake_channel.hpp"

namespace skillcard::iso7816 {
namespace {

using testing::FakeChannel;
using Sent = std::vector<std::string>;

Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + i);
  return out;
}

const Bytes kAid = from_hex("F0736B696C6C6361726401");

TEST(CardChannel, TransmitAllPassesPlainAnswerThrough) {
  FakeChannel card;
  card.reply("6F009000");
  const auto r = transmit_all(card, CommandApdu::select_by_aid(kAid));
  EXPECT_EQ(r, ResponseApdu(from_hex("6F00"), StatusWord::Success));
  EXPECT_EQ(card.sent(), Sent{"00A404000BF0736B696C6C636172640100"});
}

TEST(CardChannel, TransmitAllPassesErrorsThrough) {
  FakeChannel card;
  card.reply("6A82");
  EXPECT_EQ(transmit_all(card, CommandApdu::select_by_aid(kAid)).sw(), StatusWord::FileNotFound);
  EXPECT_EQ(card.sent().size(), 1u);
}

TEST(CardChannel, TransmitAllFollowsGetResponse) {
  // T=0 style: the card answers a case 4 command with 61xx and no data.
  const Bytes fci = pattern(0x10, 0x40);
  FakeChannel card;
  card.reply("6110").reply(to_hex(fci) + "9000");
  const auto r = transmit_all(card, CommandApdu::select_by_aid(kAid));
  EXPECT_EQ(r.data(), fci);
  EXPECT_EQ(r.sw(), StatusWord::Success);
  EXPECT_EQ(card.sent(), (Sent{"00A404000BF0736B696C6C636172640100", "00C0000010"}));
  EXPECT_EQ(card.unused_replies(), 0u);
}

TEST(CardChannel, TransmitAllConcatenatesSeveralGetResponses) {
  const Bytes first = pattern(3, 0x01), second = pattern(256, 0x10), third = pattern(5, 0xA0);
  FakeChannel card;
  card.reply(to_hex(first) + "6100")   // 256 more
      .reply(to_hex(second) + "6105")  // 5 more
      .reply(to_hex(third) + "9000");
  const auto r = transmit_all(card, CommandApdu::get_data(0x0103));
  EXPECT_EQ(r.data(), concat({first, second, third}));
  EXPECT_EQ(r.sw(), StatusWord::Success);
  EXPECT_EQ(card.sent(), (Sent{"00CA010300", "00C0000000", "00C0000005"}));
}

TEST(CardChannel, TransmitAllReturnsLastStatusWordAfterGetResponse) {
  FakeChannel card;
  card.reply("6102").reply("AABB6282");  // end of file reached before Ne bytes
  const auto r = transmit_all(card, CommandApdu(0x00, 0xB0, 0x00, 0x00, 256));
  EXPECT_EQ(r, ResponseApdu(from_hex("AABB"), make_sw(0x62, 0x82)));
}

TEST(CardChannel, TransmitAllResendsWithCorrectedLe) {
  FakeChannel card;
  card.reply("6C0A").reply(to_hex(pattern(10, 0x30)) + "9000");
  const auto r = transmit_all(card, CommandApdu::get_data(0x0101));
  EXPECT_EQ(r.data(), pattern(10, 0x30));
  EXPECT_TRUE(r.is_success());
  EXPECT_EQ(card.sent(), (Sent{"00CA010100", "00CA01010A"}));
}

TEST(CardChannel, TransmitAllCorrectedLeOfZeroMeans256) {
  FakeChannel card;
  card.reply("6C00").reply(to_hex(pattern(256, 0)) + "9000");
  const auto r = transmit_all(card, CommandApdu(0x00, 0xB0, 0x00, 0x00, 16));
  EXPECT_EQ(r.data().size(), 256u);
  EXPECT_EQ(card.sent(), (Sent{"00B0000010", "00B0000000"}));
}

TEST(CardChannel, TransmitAllAddsLeToCommandWithoutOne) {
  FakeChannel card;
  card.reply("6C04").reply("010203049000");
  const auto r = transmit_all(card, CommandApdu(0x00, 0x88, 0x00, 0x00, from_hex("AABB")));
  EXPECT_EQ(r.data(), from_hex("01020304"));
  EXPECT_EQ(card.sent(), (Sent{"0088000002AABB", "0088000002AABB04"}));
}

TEST(CardChannel, TransmitAllResendsOnlyOnce) {
  FakeChannel card;
  card.reply("6C0A").reply("6C05");
  EXPECT_EQ(transmit_all(card, CommandApdu::get_data(0x0101)).sw(), make_sw(0x6C, 0x05));
  EXPECT_EQ(card.sent().size(), 2u);
}

TEST(CardChannel, TransmitAllFixesLeOfGetResponseToo) {
  FakeChannel card;
  card.reply("6110").reply("6C08").reply(to_hex(pattern(8, 0)) + "9000");
  const auto r = transmit_all(card, CommandApdu::get_data(0x0104));
  EXPECT_EQ(r.data(), pattern(8, 0));
  EXPECT_EQ(card.sent(), (Sent{"00CA010400", "00C0000010", "00C0000008"}));
}

TEST(CardChannel, GetResponseStaysOnTheLogicalChannel) {
  // {command CLA, GET RESPONSE CLA}: channel bits kept, SM and chaining bits dropped; the
  // GlobalPlatform proprietary classes map to the interindustry class of the same channel.
  const std::vector<std::pair<std::uint8_t, std::string>> cases = {
      {0x00, "00"}, {0x03, "03"}, {0x0C, "00"}, {0x0F, "03"}, {0x41, "41"},
      {0x6F, "4F"}, {0x80, "00"}, {0x84, "00"}, {0x87, "03"}, {0xC5, "45"},
  };
  for (const auto& [cla, gr_cla] : cases) {
    FakeChannel card;
    card.reply("6101").reply("AA9000");
    transmit_all(card, CommandApdu::get_data(0x0101).with_cla(cla));
    ASSERT_EQ(card.sent().size(), 2u);
    EXPECT_EQ(card.sent()[1], gr_cla + "C0000001") << "CLA " << int{cla};
  }
}

TEST(CardChannel, TransmitAllRefusesGetResponseWithoutProgress) {
  FakeChannel card;
  card.reply("6110").reply("6110");
  EXPECT_THROW(transmit_all(card, CommandApdu::get_data(0x0101)), CardError);
}

TEST(CardChannel, TransmitAllStopsAtMaximumResponseLength) {
  // A card that never stops offering more.
  class EndlessCard : public CardChannel {
   public:
    ResponseApdu transmit(const CommandApdu&) override {
      ++calls;
      return ResponseApdu(Bytes(256, 0x55), make_sw(0x61, 0x00));
    }
    Bytes atr() const override { return {}; }
    void reset() override {}
    int calls = 0;
  } card;
  EXPECT_THROW(transmit_all(card, CommandApdu::get_data(0x0101)), CardError);
  // 65536 bytes are allowed: the first answer plus 255 GET RESPONSEs, then one too many.
  EXPECT_EQ(card.calls, 257);
}

TEST(CardChannel, TransmitAllLetsLinkErrorsThrough) {
  FakeChannel card;
  card.reply("6110").fail(std::make_exception_ptr(UnknownOutcomeError("card removed mid-command")));
  EXPECT_THROW(transmit_all(card, CommandApdu::get_data(0x0101)), UnknownOutcomeError);

  FakeChannel gone;
  gone.fail(std::make_exception_ptr(CardRemovedError("no card")));
  EXPECT_THROW(transmit_all(gone, CommandApdu::get_data(0x0101)), CardRemovedError);

  // 61xx: the command ran. A card gone while its answer is fetched is an unknown outcome.
  FakeChannel ran;
  ran.reply("6110").fail(std::make_exception_ptr(CardRemovedError("no card")));
  try {
    transmit_all(ran, CommandApdu::get_data(0x0101));
    ADD_FAILURE() << "no error";
  } catch (const UnknownOutcomeError& e) {
    EXPECT_NE(std::string(e.what()).find("went away before its answer was fetched"), std::string::npos) << e.what();
  }
  // The same for any other failure of the link then (a reset, a mute card): it ran.
  FakeChannel reset;
  reset.reply("6110").fail(std::make_exception_ptr(CardError("card reset by another application")));
  EXPECT_THROW(transmit_all(reset, CommandApdu::get_data(0x0101)), UnknownOutcomeError);
}

TEST(CardChannel, ErrorHierarchyKeepsUnknownOutcomeApart) {
  const UnknownOutcomeError unknown("short response");
  const CardError& as_card_error = unknown;
  EXPECT_STREQ(as_card_error.what(), "short response");
  EXPECT_EQ(dynamic_cast<const CardRemovedError*>(&as_card_error), nullptr);
  const CardRemovedError removed("no card");
  const std::runtime_error& as_runtime = removed;
  EXPECT_NE(dynamic_cast<const CardError*>(&as_runtime), nullptr);
  EXPECT_EQ(dynamic_cast<const UnknownOutcomeError*>(&as_runtime), nullptr);
}

TEST(CardChannel, FakeChannelIsUsableThroughTheInterface) {
  FakeChannel fake(from_hex("3B00"));
  CardChannel& channel = fake;
  EXPECT_EQ(channel.atr(), from_hex("3B00"));
  channel.reset();
  EXPECT_EQ(fake.resets(), 1);
  EXPECT_THROW(channel.transmit(CommandApdu::get_response(1)), std::logic_error);
}

}  // namespace
}  // namespace skillcard::iso7816
