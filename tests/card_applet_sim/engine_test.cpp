// Tests for the APDU engine (Card::process): ISO/IEC 7816-4 cases 1-4 in short and extended
// form, GET RESPONSE and 6Cxx, SELECT by AID, class byte and logical channels, command
// chaining, and the status word of every malformed or refused command.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "skillcard/iso7816/command_apdu.hpp"
#include "test_support.hpp"

namespace skillcard::card {
namespace {

using testing::make_card;
using testing::select_hex;
using testing::send;
using testing::TestApplet;

std::string pattern_hex(std::size_t n, std::size_t from = 0) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(from + i);
  return to_hex(out);
}

std::string len16(std::size_t n) {
  return to_hex(Bytes{static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
}

class Engine : public ::testing::Test {
 protected:
  void SetUp() override {
    card = make_card(&log, &test_applet);
    card->power_on();
  }
  void select_echo() { ASSERT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000"); }
  void select_test() { ASSERT_EQ(send(*card, select_hex(TestApplet::kAid(), "0C", false)), "9000"); }

  std::vector<std::string> log;
  TestApplet* test_applet = nullptr;
  std::unique_ptr<Card> card;
};

// --- the four cases, short and extended --------------------------------------------------------

TEST_F(Engine, Case1) {
  select_test();
  EXPECT_EQ(send(*card, "00560000"), "6101");  // an answer but no Le: announced, kept for GET RESPONSE
  EXPECT_EQ(send(*card, "00C0000001"), "009000");
  select_echo();
  EXPECT_EQ(send(*card, "801E9000"), "9000");
}

TEST_F(Engine, Case2Short) {
  select_echo();
  EXPECT_EQ(send(*card, "8012000010"), pattern_hex(16) + "9000");
}

TEST_F(Engine, Case2ShortLe00Means256) {
  select_echo();
  EXPECT_EQ(send(*card, "8012000000"), pattern_hex(256) + "9000");
}

TEST_F(Engine, Case3Short) {
  select_echo();
  EXPECT_EQ(send(*card, "8016000403AABBCC"), "9000");
  EXPECT_EQ(send(*card, "8018000403"), "AABBCC9000");
}

TEST_F(Engine, Case4Short) {
  select_echo();
  EXPECT_EQ(send(*card, "8010000003A1B2C300"), "A1B2C39000");
}

TEST_F(Engine, Case2Extended) {
  select_echo();
  EXPECT_EQ(send(*card, "8012000000" + len16(600)), pattern_hex(600) + "9000");
}

TEST_F(Engine, Case2ExtendedLe0000Means65536) {
  select_echo();
  const std::string r = send(*card,
                             "801200"
                             "00"
                             "000000");
  EXPECT_EQ(r.size(), (65536 + 2) * 2);
  EXPECT_EQ(r.substr(r.size() - 4), "9000");
}

TEST_F(Engine, Case3Extended) {
  select_echo();
  EXPECT_EQ(send(*card,
                 "80160000"
                 "00" +
                     len16(300) + pattern_hex(300)),
            "9000");
  EXPECT_EQ(send(*card, "8018000000" + len16(300)), pattern_hex(300) + "9000");
}

TEST_F(Engine, Case4Extended) {
  select_echo();
  EXPECT_EQ(send(*card,
                 "80100000"
                 "00" +
                     len16(300) + pattern_hex(300) + "0000"),
            pattern_hex(300) + "9000");
}

TEST_F(Engine, Case4ExtendedGetsGetResponse) {
  // Extended command data, but the host only takes 256 bytes of answer at a time.
  select_echo();
  EXPECT_EQ(send(*card,
                 "80100000"
                 "00" +
                     len16(300) + pattern_hex(300) + "0100"),
            pattern_hex(256) + "612C");
  EXPECT_EQ(card->pending_response_bytes(), 44u);
  EXPECT_EQ(send(*card, "00C000002C"), pattern_hex(44, 256) + "9000");
  EXPECT_EQ(card->pending_response_bytes(), 0u);
}

// --- GET RESPONSE and wrong Le -----------------------------------------------------------------

TEST_F(Engine, ShortLeShorterThanAnswerGives61xx) {
  select_echo();
  EXPECT_EQ(send(*card, "80100000FF" + pattern_hex(255) + "10"), pattern_hex(16) + "61EF");
  EXPECT_EQ(send(*card, "00C0000000"), pattern_hex(239, 16) + "9000");
}

TEST_F(Engine, GetResponseAcrossSeveralExchanges) {
  select_echo();
  // 600 bytes of answer to a host that takes 256 at a time: 256 + 256 + 88.
  EXPECT_EQ(send(*card,
                 "80100000"
                 "00" +
                     len16(600) + pattern_hex(600) + "0100"),
            pattern_hex(256) + "6100");
  EXPECT_EQ(send(*card, "00C0000000"), pattern_hex(256, 256) + "6158");
  EXPECT_EQ(send(*card, "00C0000058"), pattern_hex(88, 512) + "9000");
  EXPECT_EQ(send(*card, "00C0000000"), "6985");
}

TEST_F(Engine, GetResponseWithSmallerLeServesPartly) {
  select_echo();
  ASSERT_EQ(send(*card,
                 "80100000"
                 "00" +
                     len16(300) + pattern_hex(300) + "0100"),
            pattern_hex(256) + "612C");
  EXPECT_EQ(send(*card, "00C0000010"), pattern_hex(16, 256) + "611C");
  EXPECT_EQ(send(*card, "00C000001C"), pattern_hex(28, 272) + "9000");
}

TEST_F(Engine, GetResponseWithTooLargeShortLeGets6Cxx) {
  select_echo();
  ASSERT_EQ(send(*card,
                 "80100000"
                 "00" +
                     len16(300) + pattern_hex(300) + "0100"),
            pattern_hex(256) + "612C");
  EXPECT_EQ(send(*card, "00C0000030"), "6C2C");
  EXPECT_EQ(card->pending_response_bytes(), 44u) << "6Cxx must keep the data";
  EXPECT_EQ(send(*card, "00C000002C"), pattern_hex(44, 256) + "9000");
}

TEST_F(Engine, GetResponseExtendedLeTakesWhatIsLeft) {
  select_echo();
  ASSERT_EQ(send(*card,
                 "80100000"
                 "00" +
                     len16(300) + pattern_hex(300) + "0100"),
            pattern_hex(256) + "612C");
  EXPECT_EQ(send(*card, "00C00000000400"), pattern_hex(44, 256) + "9000");
}

TEST_F(Engine, GetResponseWithoutPendingData) { EXPECT_EQ(send(*card, "00C0000010"), "6985"); }

TEST_F(Engine, GetResponseMalformed) {
  select_echo();
  ASSERT_EQ(send(*card,
                 "80100000"
                 "00" +
                     len16(300) + pattern_hex(300) + "0100"),
            pattern_hex(256) + "612C");
  EXPECT_EQ(send(*card, "00C0010000"), "6A86");
  EXPECT_EQ(send(*card, "00C0000001AA"), "6700");
  EXPECT_EQ(send(*card, "00C00000"), "6700");
  EXPECT_EQ(card->pending_response_bytes(), 44u) << "a refused GET RESPONSE is still a GET RESPONSE";
}

TEST_F(Engine, AnyOtherCommandDiscardsPendingResponse) {
  select_echo();
  ASSERT_EQ(send(*card, "80100000FF" + pattern_hex(255) + "10"), pattern_hex(16) + "61EF");
  EXPECT_EQ(send(*card, "8012000002"), "00019000");
  EXPECT_EQ(send(*card, "00C0000000"), "6985");
  ASSERT_EQ(send(*card, "80100000FF" + pattern_hex(255) + "10"), pattern_hex(16) + "61EF");
  EXPECT_EQ(send(*card, "00A4"), "6700");  // even a malformed one
  EXPECT_EQ(send(*card, "00C0000000"), "6985");
}

TEST_F(Engine, ProprietaryGetResponseGoesToTheApplet) {
  select_echo();
  ASSERT_EQ(send(*card, "80100000FF" + pattern_hex(255) + "10"), pattern_hex(16) + "61EF");
  EXPECT_EQ(send(*card, "80C0000000"), "6D00");
}

// --- malformed APDUs and the class byte --------------------------------------------------------

TEST_F(Engine, MalformedApdusGetTheirStatusWord) {
  select_echo();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "6700"},                    // no header
      {"80", "6700"},                  // 1 byte
      {"801200", "6700"},              // 3 bytes
      {"FF120000", "6E00"},            // CLA FF is PPS
      {"80600000", "6D00"},            // INS 6X is a procedure byte
      {"80920000", "6D00"},            // INS 9X too
      {"8010000005AABB", "6700"},      // Lc says 5, 2 follow
      {"8010000002AABBCCDD", "6700"},  // bytes after Le
      {"8010000000000001", "6700"},    // extended Lc 0000
      {"801000000000", "6700"},        // short Lc 00 before a byte
      {"8010000000000201", "6700"},    // extended Lc 2, 1 data byte
      {"80100000000001AA00", "6700"},  // 1-byte Le after extended Lc
  };
  for (const auto& [apdu, sw] : cases) EXPECT_EQ(send(*card, apdu), sw) << apdu;
  EXPECT_TRUE(card->powered());
  ASSERT_NE(card->selected(), nullptr);
  EXPECT_EQ(card->selected()->aid(), EchoApplet::kAid());
  EXPECT_EQ(send(*card, "8012000001"), "009000");
}

TEST_F(Engine, ReservedClassesGet6E00) {
  select_echo();
  EXPECT_EQ(send(*card, "20120000"), "6E00");
  EXPECT_EQ(send(*card, "3F120000"), "6E00");
  EXPECT_EQ(send(*card, "A0120000"), "6E00");
  EXPECT_EQ(send(*card, "B0120000"), "6E00");
}

TEST_F(Engine, LogicalChannelsOtherThanZeroGet6881) {
  select_echo();
  EXPECT_EQ(send(*card, "01A404000B" + to_hex(EchoApplet::kAid())), "6881");
  EXPECT_EQ(send(*card, "8112000010"), "6881");
  EXPECT_EQ(send(*card, "0312000010"), "6881");
  EXPECT_EQ(send(*card, "4012000010"), "6881");  // channel 4
  EXPECT_EQ(send(*card, "C012000010"), "6881");  // proprietary, channel 4
  EXPECT_EQ(send(*card, "0070000001"), "6881");  // MANAGE CHANNEL open
  EXPECT_EQ(send(*card, "0070800100"), "6881");  // MANAGE CHANNEL close 1
}

TEST_F(Engine, CommandOnAnotherChannelLeavesChannelZeroAlone) {
  select_echo();
  ASSERT_EQ(send(*card, "80100000FF" + pattern_hex(255) + "10"), pattern_hex(16) + "61EF");
  EXPECT_EQ(send(*card, "8112000010"), "6881");
  EXPECT_EQ(send(*card, "00C0000000"), pattern_hex(239, 16) + "9000");
}

TEST_F(Engine, SecureMessagingClassOnOsCommandsGets6882) {
  EXPECT_EQ(send(*card, "04A404000B" + to_hex(EchoApplet::kAid())), "6882");
  EXPECT_EQ(card->selected(), nullptr);
  EXPECT_EQ(send(*card, "0CC0000010"), "6882");
}

TEST_F(Engine, SecureMessagingClassReachesTheApplet) {
  // Unwrapping is the applet's business (SCP03 in #5); the echo applet has none.
  select_echo();
  EXPECT_EQ(send(*card, "8412000010"), "6882");
  EXPECT_EQ(send(*card, "0412000010"), "6882");
}

TEST_F(Engine, NoAppletSelected) {
  EXPECT_EQ(send(*card, "8012000010"), "6E00");  // nobody claims the proprietary class
  EXPECT_EQ(send(*card, "00B0000010"), "6D00");  // nobody knows the instruction
  EXPECT_EQ(send(*card, "0020008100"), "6D00");
}

// --- SELECT ------------------------------------------------------------------------------------

TEST_F(Engine, SelectReturnsFci) {
  const std::string aid = to_hex(EchoApplet::kAid());
  EXPECT_EQ(send(*card, select_hex(EchoApplet::kAid())), "6F0D840B" + aid + "9000");
  EXPECT_EQ(card->selected()->aid(), EchoApplet::kAid());
}

TEST_F(Engine, SelectFciCarriesAppletProprietaryData) {
  EXPECT_EQ(send(*card, select_hex(TestApplet::kAid())),
            "6F1084"
            "06F07465737401"
            "A506"
            "500474657374"
            "9000");
}

TEST_F(Engine, SelectP2_0CAnswersNoData) {
  EXPECT_EQ(send(*card, select_hex(EchoApplet::kAid(), "0C", false)), "9000");
  EXPECT_EQ(card->selected()->aid(), EchoApplet::kAid());
}

TEST_F(Engine, SelectWithoutLeAnnouncesFciWith61xx) {
  const std::string aid = to_hex(EchoApplet::kAid());
  EXPECT_EQ(send(*card, select_hex(EchoApplet::kAid(), "00", false)), "610F");
  EXPECT_EQ(send(*card, "00C000000F"), "6F0D840B" + aid + "9000");
}

TEST_F(Engine, SelectByPartialAid) {
  // 10 of the 11 bytes: the first installed applet with that prefix, FCI naming its full AID.
  const Bytes prefix(EchoApplet::kAid().begin(), EchoApplet::kAid().end() - 1);
  EXPECT_EQ(send(*card, select_hex(prefix)), "6F0D840B" + to_hex(EchoApplet::kAid()) + "9000");
  // A whole RID (5 bytes) is the shortest partial AID.
  EXPECT_EQ(send(*card, select_hex(from_hex("F074657374"), "0C", false)), "9000");
  EXPECT_EQ(card->selected()->aid(), TestApplet::kAid());
  EXPECT_EQ(send(*card, select_hex(from_hex("F0746573"), "0C", false)), "6A82");
}

TEST_F(Engine, SelectUnknownAidKeepsSelectedAppletAndItsVolatileState) {
  select_echo();
  ASSERT_EQ(send(*card, "801A000003ABCDEF"), "9000");
  // A few of the AIDs middleware probes on connect (PIV, OpenPGP, PKCS#15, GP ISD), in each form.
  for (const char* aid : {"A000000308", "D27600012401", "A000000063504B43532D3135", "A000000151000000"}) {
    EXPECT_EQ(send(*card, select_hex(from_hex(aid))), "6A82") << aid;
    EXPECT_EQ(send(*card, select_hex(from_hex(aid), "0C", false)), "6A82") << aid;
  }
  EXPECT_EQ(send(*card, "00A40000023F00"), "6A82");  // MF by file id
  EXPECT_EQ(card->selected()->aid(), EchoApplet::kAid());
  EXPECT_EQ(send(*card, "801C000000"), "ABCDEF9000");
}

TEST_F(Engine, SelectOfAnotherAppletClearsVolatileState) {
  select_echo();
  ASSERT_EQ(send(*card, "801A000003ABCDEF"), "9000");
  select_test();
  select_echo();
  EXPECT_EQ(send(*card, "801C000000"), "9000");
}

TEST_F(Engine, ReselectingTheSameAppletDeselectsItFirst) {
  select_test();
  ASSERT_EQ(send(*card,
                 "0052000004"
                 "31323334"),
            "9000");
  ASSERT_EQ(send(*card,
                 "0054000004"
                 "31323334"),
            "9000");
  ASSERT_EQ(send(*card, "0056000001"), "019000");
  select_test();
  EXPECT_EQ(send(*card, "0056000001"), "009000");
  EXPECT_EQ(log, (std::vector<std::string>{"power_reset verified=0", "select", "deselect verified=1", "select"}));
}

TEST_F(Engine, SelectRefusedByAppletLeavesNoneSelected) {
  select_echo();
  test_applet->refuse_select = true;
  EXPECT_EQ(send(*card, select_hex(TestApplet::kAid())), "6999");
  EXPECT_EQ(card->selected(), nullptr);
  EXPECT_EQ(send(*card, "8012000001"), "6E00");
}

TEST_F(Engine, SelectParameterErrors) {
  const std::string aid = to_hex(EchoApplet::kAid());
  EXPECT_EQ(send(*card, "00A4040000"), "6700") << "no AID";
  EXPECT_EQ(send(*card, "00A4040011" + pattern_hex(17)), "6700") << "AID over 16 bytes";
  EXPECT_EQ(send(*card, "00A404040B" + aid), "6A86") << "FCP not offered";
  EXPECT_EQ(send(*card, "00A404020B" + aid), "6A86") << "next occurrence not offered";
  EXPECT_EQ(send(*card, "00A405000B" + aid), "6A86") << "P1 05 undefined";
  EXPECT_EQ(send(*card, "00A408000B" + aid), "6A82") << "path selection: no file system";
  EXPECT_EQ(card->selected(), nullptr);
}

// --- command chaining --------------------------------------------------------------------------

TEST_F(Engine, ChainingAssemblesInterindustryCommand) {
  select_test();
  EXPECT_EQ(send(*card, "1050000003AABBCC"), "9000");
  EXPECT_EQ(send(*card, "1050000001DD"), "9000");
  EXPECT_EQ(send(*card, "0050000002EEFF00"), "AABBCCDDEEFF9000");
}

TEST_F(Engine, ChainingProprietaryClassUsesBit5Too) {
  select_echo();
  EXPECT_EQ(send(*card, "9010000002AABB"), "9000");
  EXPECT_EQ(send(*card, "8010000001CC00"), "AABBCC9000");
}

TEST_F(Engine, ChainingWithSplitForChainingOfTheHostLibrary) {
  select_test();
  Bytes data(700);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 3);
  const auto parts = iso7816::split_for_chaining(iso7816::CommandApdu(0x00, 0x50, 0x00, 0x00, data, 256), 200);
  ASSERT_EQ(parts.size(), 4u);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) EXPECT_EQ(to_hex(card->process(parts[i].encode())), "9000");
  Bytes answer = card->process(parts.back().encode());
  EXPECT_EQ(to_hex(answer), to_hex(ByteView(data).first(256)) + "6100");
  answer = card->process(from_hex("00C0000000"));
  EXPECT_EQ(to_hex(answer), to_hex(ByteView(data).subspan(256, 256)) + "61BC");
}

TEST_F(Engine, ChainWithEmptyChunksBecomesCase2) {
  select_echo();
  EXPECT_EQ(send(*card, "90120000"), "9000");
  EXPECT_EQ(send(*card, "8012000003"), "0001029000");
}

TEST_F(Engine, ChainInterruptedByAnotherCommandGets6883) {
  select_echo();
  ASSERT_EQ(send(*card, "9010000002AABB"), "9000");
  EXPECT_EQ(send(*card, "8012000002"), "6883");
  // The chain is gone: the next command starts afresh.
  EXPECT_EQ(send(*card, "8010000001CC00"), "CC9000");
  ASSERT_EQ(send(*card, "9010000002AABB"), "9000");
  EXPECT_EQ(send(*card, "8010010001CC00"), "6883") << "same INS, other P1";
  ASSERT_EQ(send(*card, "9010000002AABB"), "9000");
  EXPECT_EQ(send(*card, "00A404000B" + to_hex(EchoApplet::kAid())), "6883") << "even SELECT";
  EXPECT_EQ(card->selected()->aid(), EchoApplet::kAid());
}

TEST_F(Engine, MalformedApduAbortsChain) {
  select_echo();
  ASSERT_EQ(send(*card, "9010000002AABB"), "9000");
  EXPECT_EQ(send(*card, "9010000005AA"), "6700");
  EXPECT_EQ(send(*card, "8010000001CC00"), "CC9000");
}

TEST_F(Engine, ChainingOfOsCommandsGets6884) {
  EXPECT_EQ(send(*card, "10A404000B" + to_hex(EchoApplet::kAid())), "6884");
  EXPECT_EQ(card->selected(), nullptr);
  EXPECT_EQ(send(*card, "10C0000000"), "6884");
}

TEST_F(Engine, ChainLongerThanTheApduBufferGets6700) {
  select_test();
  const std::string chunk =
      "10500000"
      "00" +
      len16(2000) + pattern_hex(2000);
  EXPECT_EQ(send(*card, chunk), "9000");
  EXPECT_EQ(send(*card, chunk), "9000");
  EXPECT_EQ(send(*card, chunk), "6700");  // 6000 > 4096
  EXPECT_EQ(send(*card, "0050000001AA00"), "AA9000") << "the chain was dropped";
  EXPECT_EQ(send(*card,
                 "00500000"
                 "00" +
                     len16(4097) + pattern_hex(4097)),
            "6700")
      << "one APDU, same buffer";
}

// --- what applets throw ------------------------------------------------------------------------

TEST_F(Engine, AppletStatusWordsPassThrough) {
  select_echo();
  EXPECT_EQ(send(*card, "801E6A88"), "6A88");
  EXPECT_EQ(send(*card, "801E63C2"), "63C2");
  EXPECT_EQ(send(*card, "801E9000"), "9000");
  EXPECT_EQ(send(*card, "80FF0000"), "6D00");
}

TEST_F(Engine, AppletMayNotRaiseTransportStatusWords) {
  select_echo();
  EXPECT_EQ(send(*card, "801E6110"), "6F00");
  EXPECT_EQ(send(*card, "801E6C10"), "6F00");
  EXPECT_EQ(card->pending_response_bytes(), 0u);
}

TEST_F(Engine, AppletBugsBecome6F00AndTheCardStaysUp) {
  select_test();
  const std::uint32_t crc = card->memory().stored_crc();
  EXPECT_EQ(send(*card, "0058000000"), "6F00");
  EXPECT_EQ(send(*card, "005A0000"), "6F00");  // TransactionTooLarge
  EXPECT_EQ(card->memory().stored_crc(), crc) << "the oversized transaction wrote nothing";
  EXPECT_EQ(card->last_command_writes(), 0u);
  EXPECT_EQ(send(*card, "0050000001AB00"), "AB9000");
}

TEST_F(Engine, TwoStepCommandCommitsBothSteps) {
  select_test();
  ASSERT_EQ(send(*card,
                 "0052000004"
                 "31323334"),
            "9000");
  EXPECT_EQ(send(*card,
                 "0054000004"
                 "39393939"),
            "63C2");
  EXPECT_EQ(card->last_command_writes(), 6u) << "one commit: 1 page + header";
  EXPECT_EQ(send(*card,
                 "0054000004"
                 "31323334"),
            "9000");
  EXPECT_EQ(card->last_command_writes(), 12u) << "two commits";
  const ByteView state = card->memory().read(testing::kTestOffset, 5);
  EXPECT_EQ(to_hex(state), "0300000001");
}

RC_GTEST_PROP(EngineProperty, EveryInputGetsAStatusWord, (const Bytes& apdu, bool select_first)) {
  auto card = make_card();
  card->power_on();
  if (select_first) card->process(from_hex(select_hex(EchoApplet::kAid())));
  const Bytes response = card->process(apdu);
  RC_ASSERT(response.size() >= 2);
  const std::uint8_t sw1 = response[response.size() - 2];
  RC_ASSERT((sw1 == 0x90 || sw1 == 0x61 || (sw1 >= 0x62 && sw1 <= 0x6F)));
  RC_ASSERT(card->powered());
}

}  // namespace
}  // namespace skillcard::card
