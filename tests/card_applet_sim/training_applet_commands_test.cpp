// Every training applet command and every status word it can answer (docs/card-commands.md),
// through InProcessChannel with a host-side SCP03 session, as a terminal talks to the card.
#include <gtest/gtest.h>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "training_support.hpp"

using namespace skillcard;
using namespace skillcard::card;
using namespace skillcard::card::testing;
using iso7816::CommandApdu;
using iso7816::ResponseApdu;
using iso7816::StatusWord;
using training::CardState;
using training::SlotState;

namespace {

constexpr StatusWord kOk = StatusWord::Success;
constexpr StatusWord k6982 = StatusWord::SecurityStatusNotSatisfied;
const StatusWord k6A89 = iso7816::make_sw(0x6A, 0x89);

std::uint32_t be32(ByteView b, std::size_t off = 0) {
  return (std::uint32_t{b[off]} << 24) | (std::uint32_t{b[off + 1]} << 16) | (std::uint32_t{b[off + 2]} << 8) |
         b[off + 3];
}

class TrainingApplet : public ::testing::Test {
 protected:
  void SetUp() override {
    card = make_training_card(&applet);
    card->power_on();
    t = std::make_unique<Terminal>(*card);
    ASSERT_EQ(t->select().sw(), kOk);
  }

  CardState state() { return training::read_state(card->memory()); }

  // Opens a session for the role (and verifies the PIN unless told not to).
  void open(Role role, bool with_pin = true) {
    ASSERT_EQ(t->open(role), kOk);
    if (with_pin) {
      ASSERT_EQ(t->send(cmd::verify(kPin)).sw(), kOk);
    }
  }

  void store(std::uint64_t serial) {
    open(Role::Counter, false);
    ASSERT_EQ(t->send(cmd::store(voucher_token(serial))).sw(), kOk);
  }

  Bytes redeem(const RedeemSpec& spec) {
    open(Role::Site);
    const auto r = t->send(cmd::redeem(spec));
    EXPECT_EQ(r.sw(), kOk);
    return r.data();
  }

  // Vouchers 1-31 stored (one slot left empty), voucher 5 redeemed and purged: a counter session
  // is open after it.
  void fill_redeem_and_purge_the_fifth() {
    open(Role::Counter, false);
    for (std::uint64_t i = 1; i <= 31; ++i) ASSERT_EQ(t->send(cmd::store(voucher_token(i))).sw(), kOk) << i;
    redeem({.serial = 5});
    open(Role::Counter, false);
    ASSERT_EQ(t->send(cmd::purge(5)).sw(), kOk);
  }

  std::unique_ptr<Card> card;
  training::TrainingApplet* applet = nullptr;
  std::unique_ptr<Terminal> t;
};

}  // namespace

// --- personalisation, SELECT, class and INS ---------------------------------------------------

TEST_F(TrainingApplet, PersonalisedImageHoldsTheIdentityAndFreshCounters) {
  const auto s = state();
  EXPECT_EQ(s.card_number, kCardNumber);
  EXPECT_EQ(s.region, kRegion);
  EXPECT_EQ(s.holder, holder_ref());
  EXPECT_EQ(s.certificate, card_certificate());
  EXPECT_EQ(s.certificate.size(), 194u);
  EXPECT_EQ(s.pin_length, 6);
  EXPECT_EQ(s.tries_left, 3);
  EXPECT_EQ(s.max_tries, 3);
  EXPECT_EQ(s.redemption_counter, 0u);
  EXPECT_EQ(s.time_mark, 0u);
  for (const auto& slot : s.slots) EXPECT_EQ(slot.state, SlotState::Empty);
}

TEST_F(TrainingApplet, UnpersonalisedCardAnswers6985ToEverything) {
  Eeprom blank = Eeprom::in_memory(training::kImagePages);
  PersistentMemory::format(blank);
  auto c = make_training_card(nullptr, std::move(blank));
  c->power_on();
  Terminal term(*c);
  EXPECT_EQ(term.select().sw(), kOk);
  EXPECT_EQ(term.send(cmd::get_data(0x01)).sw(), StatusWord::ConditionsNotSatisfied);
  EXPECT_EQ(term.send_raw(CommandApdu(0x80, 0x50, 0x21, 0, Bytes(8), 256)).sw(), StatusWord::ConditionsNotSatisfied);
}

TEST_F(TrainingApplet, SelectAnswersTheFciAndNeedsA192PageImage) {
  const auto r = t->select();
  EXPECT_EQ(to_hex(r.data()), "6F0D840BF0736B696C6C6361726401");
  Card small(Eeprom::in_memory(40));
  EXPECT_THROW(training::install(small), std::invalid_argument);
}

TEST_F(TrainingApplet, ClassAndInstructionErrors) {
  EXPECT_EQ(t->send_raw(CommandApdu(0x80, 0xCA, 0x01, 0x01, 256)).sw(), StatusWord::ClaNotSupported);
  EXPECT_EQ(t->send_raw(CommandApdu(0x00, 0x30, 0x00, 0x00, Bytes(5))).sw(), StatusWord::ClaNotSupported);
  EXPECT_EQ(t->send_raw(CommandApdu(0x0C, 0xCA, 0x01, 0x01, 256)).sw(), StatusWord::SecureMessagingNotSupported);
  EXPECT_EQ(t->send_raw(CommandApdu(0x80, 0x44, 0x00, 0x00)).sw(), StatusWord::InsNotSupported);
  EXPECT_EQ(t->send_raw(CommandApdu(0x80, 0x4E, 0x00, 0x00)).sw(), StatusWord::InsNotSupported);
  EXPECT_EQ(t->send_raw(CommandApdu(0x00, 0xB0, 0x00, 0x00, 256)).sw(), StatusWord::InsNotSupported);
  EXPECT_EQ(t->send_raw(CommandApdu(0x84, 0x50, 0x21, 0x00, Bytes(8), 256)).sw(), StatusWord::ClaNotSupported);
}

// --- GET DATA -----------------------------------------------------------------------------

TEST_F(TrainingApplet, GetDataPlainAndInEverySession) {
  for (auto role : {Role::None, Role::Counter, Role::Site, Role::Kiosk}) {
    SCOPED_TRACE(std::string(training::to_string(role)));
    if (role != Role::None) {
      ASSERT_EQ(t->open(role), kOk);
    }
    EXPECT_EQ(t->send(cmd::get_data(0x01)).data(), Bytes(kCardNumber.begin(), kCardNumber.end()));
    EXPECT_EQ(to_hex(t->send(cmd::get_data(0x02)).data()), "00066904");
    const auto cert = t->send(cmd::get_data(0x03));
    EXPECT_EQ(cert.data(), card_certificate());
    const auto counters = t->send(cmd::get_data(0x04));
    ASSERT_EQ(counters.data().size(), 25u);
  }
  // The certificate verifies under the card CA and names the card's keys.
  const auto cert = schemas::decode_card_certificate(t->send(cmd::get_data(0x03)).data());
  const auto ca = crypto::OpenSsl::VerifyKey::parse(card_ca_public_key());
  EXPECT_TRUE(
      cert.envelope.verify([&](ByteView m, const crypto::EcSignature& s) { return crypto::OpenSsl::verify(ca, m, s); })
          .ok());
  EXPECT_EQ(cert.claims.receipt_key, receipt_public_key().compressed());
  EXPECT_EQ(cert.claims.card_number, kCardNumber);
}

TEST_F(TrainingApplet, GetDataCountersLayout) {
  store(1);
  redeem({});
  ASSERT_EQ(t->open(Role::Kiosk), kOk);  // sequence counters: counter 1, site 1, kiosk 1
  const auto c = t->send(cmd::get_data(0x04)).data();
  ASSERT_EQ(c.size(), 25u);
  EXPECT_EQ(be32(c, 0), 1u);                                         // redemption
  EXPECT_EQ(be32(c, 4), 0u);                                         // internal authenticate
  EXPECT_EQ(be32(c, 8), 0u);                                         // attendance
  EXPECT_EQ(be32(c, 12), kIssuedAt + 86'400);                        // time mark
  EXPECT_EQ(to_hex(ByteView(c).subspan(16)), "000001000001000001");  // one session of each role
}

TEST_F(TrainingApplet, GetDataRefusals) {
  EXPECT_EQ(t->send(CommandApdu(0x00, 0xCA, 0x01, 0x05, 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0xCA, 0x02, 0x01, 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0xCA, 0x01, 0x00, 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0xCA, 0x01, 0x01, Bytes(1), 256)).sw(), StatusWord::WrongLength);
}

// --- INTERNAL AUTHENTICATE ------------------------------------------------------------------

namespace {
Bytes auth_message(std::uint32_t counter, std::uint8_t pin_state, ByteView challenge) {
  Bytes m(as_bytes("skillcard/card-auth/v1").begin(), as_bytes("skillcard/card-auth/v1").end());
  m.push_back(0);
  m.insert(m.end(), kCardNumber.begin(), kCardNumber.end());
  for (int i = 3; i >= 0; --i) m.push_back(static_cast<std::uint8_t>(counter >> (8 * i)));
  m.push_back(pin_state);
  m.insert(m.end(), challenge.begin(), challenge.end());
  return m;
}

void expect_auth(const ResponseApdu& r, std::uint32_t counter, std::uint8_t pin_state, ByteView challenge) {
  ASSERT_EQ(r.sw(), StatusWord::Success);
  ASSERT_EQ(r.data().size(), 69u);
  EXPECT_EQ(be32(r.data()), counter);
  EXPECT_EQ(r.data()[4], pin_state);
  crypto::EcSignature sig{};
  std::copy_n(r.data().begin() + 5, 64, sig.begin());
  EXPECT_TRUE(crypto::OpenSsl::verify(auth_public_key(), auth_message(counter, pin_state, challenge), sig));
  EXPECT_FALSE(crypto::OpenSsl::verify(receipt_public_key(), auth_message(counter, pin_state, challenge), sig));
}
}  // namespace

TEST_F(TrainingApplet, InternalAuthenticatePlainSignsPinStateZeroAndCounts) {
  const Bytes nonce(17, 0x01);
  expect_auth(t->send(cmd::internal_authenticate(nonce)), 1, 0x00, nonce);
  expect_auth(t->send(cmd::internal_authenticate(Bytes(16, 2))), 2, 0x00, Bytes(16, 2));
  expect_auth(t->send(cmd::internal_authenticate(Bytes(32, 3))), 3, 0x00, Bytes(32, 3));
  EXPECT_EQ(state().auth_counter, 3u);
  EXPECT_EQ(applet->signatures(), 3u);
  EXPECT_EQ(t->send(cmd::internal_authenticate(Bytes(15))).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(cmd::internal_authenticate(Bytes(33))).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x88, 0x00, 0x01, Bytes(16), 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(state().auth_counter, 3u);
}

TEST_F(TrainingApplet, InternalAuthenticateSignsTheSessionsPinState) {
  const Bytes nonce(17, 0x01);
  open(Role::Counter, false);
  expect_auth(t->send(cmd::internal_authenticate(nonce)), 1, 0x00, nonce);
  ASSERT_EQ(t->send(cmd::verify(kPin)).sw(), kOk);
  expect_auth(t->send(cmd::internal_authenticate(nonce)), 2, 0x01, nonce);
  open(Role::Kiosk);
  expect_auth(t->send(cmd::internal_authenticate(nonce)), 3, 0x01, nonce);
  // A new session (new IU) forgets the PIN: the kiosk may not ask before VERIFY.
  open(Role::Kiosk, false);
  EXPECT_EQ(t->send(cmd::internal_authenticate(nonce)).sw(), k6982);
  EXPECT_EQ(state().auth_counter, 3u);
}

// --- secure channel -----------------------------------------------------------------------

TEST_F(TrainingApplet, InitializeUpdateAnswersTheCardNumberAndCountsPerKvn) {
  for (auto role : {Role::Counter, Role::Counter, Role::Site, Role::Kiosk}) {
    t->host().close();
    const auto r = t->send_raw(t->host().initialize_update(kvn_of(role)));
    ASSERT_EQ(r.sw(), kOk);
    const auto info = crypto::scp03::InitializeUpdateResponse::parse(r.data());
    EXPECT_EQ(std::string(info.diversification_data.begin(), info.diversification_data.end()), kCardNumber);
    EXPECT_EQ(info.kvn, kvn_of(role));
    EXPECT_EQ(info.scp, 0x03);
    EXPECT_EQ(info.i, 0x70);
  }
  EXPECT_EQ(state().sequence_counters, (std::array<std::uint32_t, 3>{2, 1, 1}));
}

TEST_F(TrainingApplet, InitializeUpdateRefusals) {
  EXPECT_EQ(t->send_raw(CommandApdu(0x80, 0x50, 0x30, 0x00, Bytes(8), 256)).sw(), StatusWord::ReferencedDataNotFound);
  EXPECT_EQ(t->send_raw(CommandApdu(0x80, 0x50, 0x21, 0x01, Bytes(8), 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send_raw(CommandApdu(0x80, 0x50, 0x21, 0x00, Bytes(7), 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(state().sequence_counters, (std::array<std::uint32_t, 3>{0, 0, 0}));
  // Exhausted counter: 6985, nothing written.
  {
    auto tx = card->memory().begin();
    tx.write(training::layout::kSequenceCounters + 3, from_hex("FFFFFF"));
    tx.commit();
  }
  EXPECT_EQ(t->open(Role::Site), StatusWord::ConditionsNotSatisfied);
  EXPECT_EQ(state().sequence_counters[1], 0xFFFFFFu);
  {
    auto tx = card->memory().begin();
    tx.write(training::layout::kSequenceCounters + 3, from_hex("FFFFFE"));
    tx.commit();
  }
  EXPECT_EQ(t->open(Role::Site), kOk);  // the last value is usable
}

TEST_F(TrainingApplet, ExternalAuthenticateRefusals) {
  EXPECT_EQ(t->open(Role::Counter, 0x11), StatusWord::IncorrectP1P2);                  // only level 33
  EXPECT_EQ(t->send_raw(CommandApdu(0x84, 0x82, 0x33, 0x00, Bytes(16))).sw(), k6982);  // no IU
  // A wrong host cryptogram: 6300, and the session is gone.
  const auto iu = t->send_raw(t->host().initialize_update(training::kKvnSite));
  const auto info = crypto::scp03::InitializeUpdateResponse::parse(iu.data());
  const auto enc = card_key(Role::Site, crypto::scp03::KeyType::Enc);
  const auto mac = card_key(Role::Site, crypto::scp03::KeyType::Mac);
  auto ea = t->host().external_authenticate(enc.view(), mac.view(), info, 0x33);
  Bytes bad = ea.data();
  bad[0] ^= 1;
  EXPECT_EQ(t->send_raw(CommandApdu(0x84, 0x82, 0x33, 0x00, bad)).sw(), StatusWord::VerificationFailed);
  EXPECT_EQ(t->send_raw(ea).sw(), k6982);  // the right one, too late
  // The keys of another role for this KVN: the host already sees a wrong card cryptogram.
  t->host().close();
  const auto iu2 = t->send_raw(t->host().initialize_update(training::kKvnCounter));
  const auto info2 = crypto::scp03::InitializeUpdateResponse::parse(iu2.data());
  EXPECT_THROW(t->host().external_authenticate(enc.view(), mac.view(), info2, 0x33), crypto::scp03::SecureChannelError);
  // EXTERNAL AUTHENTICATE twice: the second finds no pending INITIALIZE UPDATE.
  ASSERT_EQ(t->open(Role::Site), kOk);
  EXPECT_EQ(t->send_raw(CommandApdu(0x84, 0x82, 0x33, 0x00, Bytes(16))).sw(), k6982);
}

// GlobalPlatform: EXTERNAL AUTHENTICATE directly after INITIALIZE UPDATE, or never. Any command
// in between (answered, or refused) abandons the handshake.
TEST_F(TrainingApplet, ACommandBetweenInitializeUpdateAndExternalAuthenticateAbandonsTheHandshake) {
  const auto enc = card_key(Role::Site, crypto::scp03::KeyType::Enc);
  const auto mac = card_key(Role::Site, crypto::scp03::KeyType::Mac);
  for (const auto& between : {cmd::get_data(0x01), CommandApdu(0x80, 0x44, 0x00, 0x00)}) {
    t->host().close();
    const auto iu = t->send_raw(t->host().initialize_update(training::kKvnSite));
    ASSERT_EQ(iu.sw(), kOk);
    const auto ea = t->host().external_authenticate(enc.view(), mac.view(),
                                                    crypto::scp03::InitializeUpdateResponse::parse(iu.data()), 0x33);
    (void)t->send_raw(between);
    EXPECT_EQ(t->send_raw(ea).sw(), k6982);
    EXPECT_EQ(applet->role(), Role::None);
  }
  t->host().close();
  EXPECT_EQ(t->open(Role::Site), kOk);  // a fresh handshake still works
  EXPECT_EQ(applet->role(), Role::Site);
}

TEST_F(TrainingApplet, MacFailureUnwrappedAndUnsessionedCommandsAre6982AndCloseTheSession) {
  open(Role::Counter, false);
  auto wrapped = t->host().wrap(cmd::get_data(0x01));
  Bytes data = wrapped.data();
  data.back() ^= 1;
  EXPECT_EQ(t->send_raw(CommandApdu(wrapped.cla(), wrapped.ins(), wrapped.p1(), wrapped.p2(), data, 256)).sw(), k6982);
  EXPECT_EQ(t->send(cmd::get_data(0x01)).sw(), k6982);  // genuine, but the session is closed
  EXPECT_EQ(applet->role(), Role::None);

  // Replay of an accepted command.
  open(Role::Counter, false);
  const auto again = t->host().wrap(cmd::get_data(0x01));
  EXPECT_EQ(t->send_raw(again).sw(), kOk);
  EXPECT_EQ(t->send_raw(again).sw(), k6982);

  // An unwrapped command inside a session.
  open(Role::Counter, false);
  EXPECT_EQ(t->send_raw(cmd::get_data(0x01)).sw(), k6982);
  EXPECT_EQ(t->send(cmd::get_data(0x01)).sw(), k6982);

  // A wrapped-looking command with no session at all.
  t->close();
  EXPECT_EQ(t->send_raw(CommandApdu(0x84, 0x32, 0x00, 0x00, Bytes(8), 256)).sw(), k6982);
  // Too short for a MAC: 6988.
  open(Role::Counter, false);
  EXPECT_EQ(t->send_raw(CommandApdu(0x84, 0x32, 0x00, 0x00, Bytes(4), 256)).sw(), StatusWord::IncorrectSmDataObjects);
}

// A wrapped command the card refuses before unwrapping it (unknown INS, wrong class, a wrapped
// INITIALIZE UPDATE) has moved the host's MAC chain but not the card's: the card ends the session
// then and there, so the host's next command is refused as sessionless, never as a MAC mismatch
// that looks like a role refusal.
TEST_F(TrainingApplet, AWrappedCommandRefusedBeforeUnwrappingEndsTheSession) {
  for (const auto& refused : {CommandApdu(0x80, 0x44, 0x00, 0x00), CommandApdu(0x00, 0x32, 0x00, 0x00, 256),
                              CommandApdu(0x80, 0x50, training::kKvnCounter, 0x00, Bytes(8), 256)}) {
    open(Role::Counter, false);
    const auto wrapped = t->host().wrap(refused);
    const auto answer = t->send_raw(wrapped).sw();
    EXPECT_TRUE(answer == StatusWord::InsNotSupported || answer == StatusWord::ClaNotSupported)
        << std::hex << static_cast<unsigned>(answer);
    EXPECT_EQ(applet->role(), Role::None) << std::hex << unsigned{refused.ins()};
  }
  // EXTERNAL AUTHENTICATE refused for its class ends the handshake: the right one after it is 6982.
  const auto enc = card_key(Role::Site, crypto::scp03::KeyType::Enc);
  const auto mac = card_key(Role::Site, crypto::scp03::KeyType::Mac);
  t->host().close();
  const auto iu = t->send_raw(t->host().initialize_update(training::kKvnSite));
  ASSERT_EQ(iu.sw(), kOk);
  const auto ea = t->host().external_authenticate(enc.view(), mac.view(),
                                                  crypto::scp03::InitializeUpdateResponse::parse(iu.data()), 0x33);
  EXPECT_EQ(t->send_raw(CommandApdu(0x88, 0x82, 0x33, 0x00, ea.data())).sw(), StatusWord::SecureMessagingNotSupported);
  EXPECT_EQ(t->send_raw(ea).sw(), k6982);
  EXPECT_EQ(applet->role(), Role::None);
}

// The card out of the field keeps no session key in the applet object (a real card's RAM is gone).
TEST_F(TrainingApplet, PowerOffDropsTheSessionAtOnce) {
  open(Role::Site);
  ASSERT_EQ(applet->role(), Role::Site);
  card->power_off();
  EXPECT_EQ(applet->role(), Role::None);  // before any power-on or command
  card->power_on();
}

TEST_F(TrainingApplet, SelectResetAndPowerEndTheSessionAndThePinState) {
  open(Role::Site);
  EXPECT_EQ(applet->role(), Role::Site);
  ASSERT_EQ(t->select().sw(), kOk);
  EXPECT_EQ(applet->role(), Role::None);
  // A probe for an unknown AID keeps the session (the OS rule).
  open(Role::Site);
  EXPECT_EQ(t->send_raw(CommandApdu::select_by_aid(from_hex("A000000003000000"))).sw(), StatusWord::FileNotFound);
  EXPECT_EQ(t->send(cmd::list(0)).sw(), kOk);
  card->reset();
  EXPECT_EQ(applet->role(), Role::None);
  ASSERT_EQ(t->select().sw(), kOk);
  open(Role::Site);
  card->power_off();
  card->power_on();
  ASSERT_EQ(t->select().sw(), kOk);
  ASSERT_EQ(t->open(Role::Site), kOk);
  EXPECT_EQ(t->send(cmd::list(0)).sw(), k6982);  // PIN state gone with the power
}

// --- PIN ----------------------------------------------------------------------------------

TEST_F(TrainingApplet, VerifyRightWrongAndBlocked) {
  ASSERT_EQ(t->open(Role::Site), kOk);
  EXPECT_EQ(t->send(cmd::verify_status()).sw(), iso7816::make_verification_failed(3));
  EXPECT_EQ(t->send(cmd::verify("000000")).sw(), iso7816::make_verification_failed(2));
  EXPECT_EQ(state().tries_left, 2);
  EXPECT_EQ(t->send(cmd::verify(kPin)).sw(), kOk);
  EXPECT_EQ(state().tries_left, 3);
  EXPECT_EQ(t->send(cmd::verify_status()).sw(), kOk);
  // A wrong PIN after a right one ends the verified state.
  EXPECT_EQ(t->send(cmd::verify("1234")).sw(), iso7816::make_verification_failed(2));
  EXPECT_EQ(t->send(cmd::list(0)).sw(), k6982);
  EXPECT_EQ(t->send(cmd::verify("12345678")).sw(), iso7816::make_verification_failed(1));
  EXPECT_EQ(t->send(cmd::verify("999999")).sw(), iso7816::make_verification_failed(0));
  EXPECT_EQ(t->send(cmd::verify(kPin)).sw(), StatusWord::AuthenticationMethodBlocked);
  EXPECT_EQ(t->send(cmd::verify_status()).sw(), StatusWord::AuthenticationMethodBlocked);
  EXPECT_EQ(state().tries_left, 0);
  EXPECT_EQ(t->send(cmd::list(0)).sw(), k6982);
}

TEST_F(TrainingApplet, VerifyShapeErrorsSpendNoTry) {
  ASSERT_EQ(t->open(Role::Kiosk), kOk);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x20, 0x00, 0x81, Bytes(11, '1'), 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x20, 0x00, 0x80, training::pin_block(kPin), 256)).sw(),
            StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x20, 0x01, 0x81, training::pin_block(kPin), 256)).sw(),
            StatusWord::IncorrectP1P2);
  EXPECT_EQ(state().tries_left, 3);
  // A malformed block is simply a wrong PIN: one try, no oracle on the format.
  EXPECT_EQ(t->send(cmd::verify_block(Bytes(12, 'A'))).sw(), iso7816::make_verification_failed(2));
}

TEST_F(TrainingApplet, WrongPinAnswerCarriesAnRMac) {
  ASSERT_EQ(t->open(Role::Site), kOk);
  const auto wrapped = t->host().wrap(cmd::verify("000000"));
  const auto raw = t->send_raw(wrapped);
  EXPECT_EQ(raw.sw(), iso7816::make_verification_failed(2));
  EXPECT_EQ(raw.data().size(), 8u);  // R-MAC over chaining value ‖ 63C2
  EXPECT_EQ(t->host().unwrap(raw).sw(), iso7816::make_verification_failed(2));
  // A forged 63C3 (tries unchanged) with the same R-MAC is caught by the host.
  const auto wrapped2 = t->host().wrap(cmd::verify("000000"));
  const auto raw2 = t->send_raw(wrapped2);
  EXPECT_THROW(t->host().unwrap(ResponseApdu(raw2.data(), iso7816::make_verification_failed(3))),
               crypto::scp03::SecureChannelError);
  // Errors travel without R-MAC.
  ASSERT_EQ(t->open(Role::Site), kOk);
  const auto raw3 = t->send_raw(t->host().wrap(cmd::list(0)));
  EXPECT_EQ(raw3.sw(), k6982);
  EXPECT_TRUE(raw3.data().empty());
}

TEST_F(TrainingApplet, ChangeReferenceData) {
  open(Role::Counter, false);
  EXPECT_EQ(t->send(cmd::change(kPin, "9876")).sw(), kOk);
  EXPECT_EQ(state().pin_length, 4);
  EXPECT_EQ(t->send(cmd::verify(kPin)).sw(), iso7816::make_verification_failed(2));
  EXPECT_EQ(t->send(cmd::verify("9876")).sw(), kOk);
  // Wrong old PIN: a try spent, nothing else changes.
  EXPECT_EQ(t->send(cmd::change("1111", "2222")).sw(), iso7816::make_verification_failed(2));
  EXPECT_EQ(t->send(cmd::verify("9876")).sw(), kOk);
  // A malformed new PIN is refused before any try is spent.
  EXPECT_EQ(t->send(cmd::change("9876", "123")).sw(), StatusWord::WrongData);
  EXPECT_EQ(t->send(cmd::change("9876", "12a4")).sw(), StatusWord::WrongData);
  Bytes gap = training::pin_block("9876");
  const Bytes digits_with_a_gap = from_hex("3132FF34FFFFFFFFFFFFFFFF");
  gap.insert(gap.end(), digits_with_a_gap.begin(), digits_with_a_gap.end());
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x24, 0x00, 0x81, gap, 256)).sw(), StatusWord::WrongData);
  EXPECT_EQ(state().tries_left, 3);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x24, 0x00, 0x81, Bytes(23, '1'), 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x24, 0x01, 0x81, Bytes(24, '1'), 256)).sw(), StatusWord::IncorrectP1P2);
  // Blocked: 6983.
  for (int i = 0; i < 3; ++i) t->send(cmd::verify("0000"));
  EXPECT_EQ(t->send(cmd::change("9876", "2222")).sw(), StatusWord::AuthenticationMethodBlocked);
}

TEST_F(TrainingApplet, ResetRetryCounterUnblocksWithANewPin) {
  ASSERT_EQ(t->open(Role::Site), kOk);
  for (int i = 0; i < 3; ++i) t->send(cmd::verify("0000"));
  EXPECT_EQ(state().tries_left, 0);
  open(Role::Counter, false);
  EXPECT_EQ(t->send(cmd::reset_retry_counter("12")).sw(), StatusWord::WrongData);
  EXPECT_EQ(t->send(cmd::reset_retry_counter("abcd")).sw(), StatusWord::WrongData);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x2C, 0x00, 0x81, training::pin_block("2468"), 256)).sw(),
            StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send(CommandApdu(0x00, 0x2C, 0x02, 0x81, Bytes(13, '1'), 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(state().tries_left, 0);
  EXPECT_EQ(t->send(cmd::reset_retry_counter("246813579012")).sw(), kOk);
  EXPECT_EQ(state().tries_left, 3);
  EXPECT_EQ(state().pin_length, 12);
  ASSERT_EQ(t->open(Role::Site), kOk);
  EXPECT_EQ(t->send(cmd::verify("246813579012")).sw(), kOk);
}

// --- vouchers -----------------------------------------------------------------------------

TEST_F(TrainingApplet, StoreFillsASlotAndRaisesTheTimeMark) {
  store(7);
  const auto s = state();
  EXPECT_EQ(s.time_mark, kIssuedAt);
  const auto& slot = s.slots[0];
  EXPECT_EQ(slot.state, SlotState::Stored);
  EXPECT_EQ(slot.id, voucher_id(7));
  EXPECT_EQ(slot.expiry, kIssuedAt + 90u * 86'400);
  EXPECT_EQ(slot.counter, 0u);
  EXPECT_EQ(slot.eligible_count, 2);
  EXPECT_EQ(slot.kinds, 0x02);  // code 0 a region, code 1 a provider
  EXPECT_EQ(slot.codes, (std::array<std::uint32_t, 4>{420100, 10001, 0, 0}));
  EXPECT_EQ(slot.body, voucher_token(7));
  // An older voucher does not lower the mark.
  VoucherSpec older;
  older.serial = 8;
  older.issued_at = kIssuedAt - 1000;
  EXPECT_EQ(t->send(cmd::store(voucher_token(older))).sw(), kOk);
  EXPECT_EQ(state().time_mark, kIssuedAt);
}

TEST_F(TrainingApplet, StoreRefusals) {
  store(1);
  EXPECT_EQ(t->send(cmd::store(voucher_token(1))).sw(), k6A89);
  VoucherSpec other;
  other.serial = 2;
  other.holder = crypto::HolderRef{};
  EXPECT_EQ(t->send(cmd::store(voucher_token(other))).sw(), StatusWord::WrongData);
  auto token = voucher_token(3);
  token.pop_back();
  EXPECT_EQ(t->send(cmd::store(token)).sw(), StatusWord::WrongData);
  EXPECT_EQ(t->send(cmd::store(Bytes(201, 0x84))).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x30, 0x00, 0x01, voucher_token(3), 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(state().slots[1].state, SlotState::Empty);
}

TEST_F(TrainingApplet, ThirtyTwoSlotsThenFullAndAPurgedVoucherKeepsItsSlotWhileItMayBeValid) {
  open(Role::Counter, false);
  for (std::uint64_t i = 1; i <= 32; ++i) ASSERT_EQ(t->send(cmd::store(voucher_token(i))).sw(), kOk) << i;
  EXPECT_EQ(t->send(cmd::store(voucher_token(33))).sw(), StatusWord::NotEnoughMemory);
  const auto all = t->send(cmd::list(training::kListAll));  // 24 + 32 × 35 = 1144 bytes, via GET RESPONSE
  EXPECT_EQ(all.sw(), kOk);
  EXPECT_EQ(all.data().size(), 1144u);
  redeem({.serial = 5});
  open(Role::Counter, false);
  EXPECT_EQ(t->send(cmd::store(voucher_token(33))).sw(), StatusWord::NotEnoughMemory);  // redeemed is not free
  EXPECT_EQ(t->send(cmd::purge(5)).sw(), kOk);
  EXPECT_EQ(state().slots[4].state, SlotState::PurgedPending);
  // Voucher 5 has not expired by the card's time: its slot keeps its id, so the same token
  // cannot come back for a second receipt, and the card counts as full.
  EXPECT_EQ(t->send(cmd::store(voucher_token(33))).sw(), StatusWord::NotEnoughMemory);
  EXPECT_EQ(t->send(cmd::store(voucher_token(5))).sw(), iso7816::make_sw(0x6A, 0x89));
  EXPECT_EQ(t->send(cmd::get_receipt(1)).sw(), kOk);  // and its receipt stays readable
}

// A purged slot is free again once its voucher has expired by the card's time mark.
TEST_F(TrainingApplet, APurgedSlotIsReusedOnceItsVoucherHasExpired) {
  ASSERT_NO_FATAL_FAILURE(fill_redeem_and_purge_the_fifth());
  // A voucher issued after voucher 5's expiry takes the last empty slot and raises the mark.
  const auto late = [](std::uint64_t serial) {
    VoucherSpec spec;
    spec.serial = serial;
    spec.issued_at = kIssuedAt + 91ull * 86'400;
    return voucher_token(spec);
  };
  ASSERT_EQ(t->send(cmd::store(late(32))).sw(), kOk);
  EXPECT_EQ(state().time_mark, kIssuedAt + 91u * 86'400);
  EXPECT_EQ(t->send(cmd::store(late(33))).sw(), kOk);
  EXPECT_EQ(state().slots[4].id, voucher_id(33));
  EXPECT_EQ(state().slots[4].state, SlotState::Stored);
  EXPECT_EQ(t->send(cmd::get_receipt(1)).sw(), StatusWord::ReferencedDataNotFound);  // gone with the slot
  EXPECT_EQ(t->send(cmd::store(late(34))).sw(), StatusWord::NotEnoughMemory);
}

// The card still takes a REDEEM dated up to kTimeTolerance before its time mark, so a purged
// voucher's id stays on the card until the mark is past its expiry by that much: until then the
// same token stored again is 6A89, never a second receipt.
TEST_F(TrainingApplet, APurgedSlotIsKeptUntilItsVoucherCannotBeRedeemedEvenWithinTheTolerance) {
  ASSERT_NO_FATAL_FAILURE(fill_redeem_and_purge_the_fifth());
  const std::uint64_t expiry = kIssuedAt + 90ull * 86'400;
  const auto issued = [](std::uint64_t serial, std::uint64_t at) {
    VoucherSpec spec;
    spec.serial = serial;
    spec.issued_at = at;
    return voucher_token(spec);
  };
  // The mark reaches the expiry and one second less than the tolerance beyond it: not yet.
  ASSERT_EQ(t->send(cmd::store(issued(32, expiry + training::kTimeTolerance - 1))).sw(), kOk);
  EXPECT_EQ(state().time_mark, expiry + training::kTimeTolerance - 1);
  EXPECT_EQ(t->send(cmd::store(issued(33, expiry + training::kTimeTolerance - 1))).sw(), StatusWord::NotEnoughMemory);
  EXPECT_EQ(t->send(cmd::store(voucher_token(5))).sw(), iso7816::make_sw(0x6A, 0x89));
  // One second more on the mark (a REDEEM of voucher 32 raises it) and the slot is free.
  redeem({.serial = 32, .time = static_cast<std::uint32_t>(expiry + training::kTimeTolerance)});
  EXPECT_EQ(state().time_mark, expiry + training::kTimeTolerance);
  open(Role::Counter, false);
  ASSERT_EQ(t->send(cmd::store(issued(34, expiry + training::kTimeTolerance))).sw(), kOk);
  EXPECT_EQ(state().slots[4].id, voucher_id(34));
}

TEST_F(TrainingApplet, ListHeaderAndFilter) {
  open(Role::Counter, false);
  for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_EQ(t->send(cmd::store(voucher_token(i))).sw(), kOk);
  redeem({.serial = 2});
  open(Role::Site);
  const auto stored = t->send(cmd::list(training::kListStored)).data();
  ASSERT_EQ(stored.size(), 24u + 2 * 35u);
  const auto holder = holder_ref();
  EXPECT_EQ(Bytes(stored.begin(), stored.begin() + 16), Bytes(holder.begin(), holder.end()));
  EXPECT_EQ(be32(stored, 16), 1u);
  EXPECT_EQ(be32(stored, 20), kIssuedAt + 86'400);
  EXPECT_EQ(stored[24], 0x01);
  const auto id = voucher_id(1);
  EXPECT_EQ(Bytes(stored.begin() + 25, stored.begin() + 33), Bytes(id.begin(), id.end()));
  const auto all = t->send(cmd::list(training::kListAll)).data();
  ASSERT_EQ(all.size(), 24u + 3 * 35u);
  EXPECT_EQ(all[24 + 35], 0x02);
  EXPECT_EQ(be32(all, 24 + 35 + 13), 1u);  // its redemption counter
  EXPECT_EQ(t->send(cmd::list(0x02)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x32, 0x00, 0x01, 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x32, 0x00, 0x00, Bytes(1), 256)).sw(), StatusWord::WrongLength);
}

TEST_F(TrainingApplet, ReadVoucherGivesTheTokenThenTheReceipt) {
  store(1);
  EXPECT_EQ(t->send(cmd::read_voucher(1)).data(), voucher_token(1));
  const auto receipt = redeem({});
  open(Role::Kiosk);
  EXPECT_EQ(t->send(cmd::read_voucher(1)).data(), receipt);
  EXPECT_EQ(t->send(cmd::read_voucher(9)).sw(), StatusWord::ReferencedDataNotFound);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x34, 0x00, 0x00, Bytes(7), 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x34, 0x01, 0x00, Bytes(8), 256)).sw(), StatusWord::IncorrectP1P2);
}

TEST_F(TrainingApplet, RedeemSignsAReceiptInOneCommit) {
  store(1);
  const RedeemSpec spec{.serial = 1, .site = 10001, .nonce_kind = 0x01, .time = kIssuedAt + 3600};
  const auto receipt = redeem(spec);
  EXPECT_EQ(receipt.size(), 140u);
  const auto decoded = schemas::decode_receipt(receipt);
  EXPECT_EQ(decoded.kid, crypto::kid_of<crypto::OpenSsl>(receipt_public_key()));
  EXPECT_EQ(decoded.claims.voucher, voucher_id(1));
  EXPECT_EQ(decoded.claims.site, 10001u);
  EXPECT_EQ(decoded.claims.counter, 1u);
  EXPECT_EQ(decoded.claims.terminal_time, kIssuedAt + 3600);
  EXPECT_EQ(decoded.claims.classroom_hours, 84);
  EXPECT_EQ(decoded.claims.online_hours, 36);
  EXPECT_EQ(decoded.claims.nonce, ([] {
              schemas::Nonce n{};
              const auto d = redeem_data({});
              std::copy_n(d.begin() + 12, 17, n.begin());
              return n;
            }()));
  EXPECT_TRUE(decoded.envelope
                  .verify([](ByteView m, const crypto::EcSignature& s) {
                    return crypto::OpenSsl::verify(receipt_public_key(), m, s);
                  })
                  .ok());
  EXPECT_FALSE(decoded.envelope
                   .verify([](ByteView m, const crypto::EcSignature& s) {
                     return crypto::OpenSsl::verify(auth_public_key(), m, s);
                   })
                   .ok());
  const auto s = state();
  EXPECT_EQ(s.redemption_counter, 1u);
  EXPECT_EQ(s.time_mark, kIssuedAt + 3600);
  EXPECT_EQ(s.slots[0].state, SlotState::Redeemed);
  EXPECT_EQ(s.slots[0].counter, 1u);
  EXPECT_EQ(s.slots[0].body, receipt);
  // One commit of page 17, the slot's 4 pages and the header: 2 × 6 + 2 page writes.
  EXPECT_EQ(card->last_command_writes(), 14u);
  EXPECT_EQ(applet->signatures(), 1u);
}

TEST_F(TrainingApplet, SecondRedeemOfTheSameVoucherIs6985AndChangesNothing) {
  store(1);
  const auto receipt = redeem({});
  const auto before = state();
  const auto again = t->send(cmd::redeem({.time = kIssuedAt + 90'000}));
  EXPECT_EQ(again.sw(), StatusWord::ConditionsNotSatisfied);
  EXPECT_EQ(state(), before);
  // Purged: still 6985.
  open(Role::Counter, false);
  ASSERT_EQ(t->send(cmd::purge(1)).sw(), kOk);
  open(Role::Site);
  EXPECT_EQ(t->send(cmd::redeem({})).sw(), StatusWord::ConditionsNotSatisfied);
  EXPECT_EQ(applet->signatures(), 1u);
}

TEST_F(TrainingApplet, RedeemRefusals) {
  store(1);
  open(Role::Site);
  EXPECT_EQ(t->send(cmd::redeem({.serial = 2})).sw(), StatusWord::ReferencedDataNotFound);
  EXPECT_EQ(t->send(cmd::redeem({.site = 0})).sw(), StatusWord::WrongData);
  EXPECT_EQ(t->send(cmd::redeem({.nonce_kind = 0x03})).sw(), StatusWord::WrongData);
  // The time mark is iat (from STORE): 10 minutes before it is fine, one second more is not.
  EXPECT_EQ(t->send(cmd::redeem({.time = kIssuedAt - 601})).sw(), StatusWord::WrongData);
  Bytes short_data = redeem_data({});
  short_data.pop_back();
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x36, 0x00, 0x00, short_data, 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x36, 0x00, 0x01, redeem_data({}), 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(state().redemption_counter, 0u);
  EXPECT_EQ(t->send(cmd::redeem({.time = kIssuedAt - 600})).sw(), kOk);
  EXPECT_EQ(state().time_mark, kIssuedAt);  // not lowered
}

// A site whose clock is far ahead (or that lies) must not raise the card's time mark beyond
// every voucher's life: REDEEM refuses a terminal time at or after the voucher's expiry, and
// the card stays redeemable at honest sites.
TEST_F(TrainingApplet, P12_RedeemAfterTheVouchersExpiryIsRefusedAndTheMarkStays) {
  open(Role::Counter, false);
  for (std::uint64_t i = 1; i <= 2; ++i) ASSERT_EQ(t->send(cmd::store(voucher_token(i))).sw(), kOk);
  open(Role::Site);
  const std::uint32_t expiry = kIssuedAt + 90 * 86'400;
  EXPECT_EQ(t->send(cmd::redeem({.serial = 1, .time = 0xFFFFFFF0})).sw(), StatusWord::WrongData);
  EXPECT_EQ(t->send(cmd::redeem({.serial = 1, .time = expiry})).sw(), StatusWord::WrongData);
  EXPECT_EQ(state().time_mark, kIssuedAt);
  EXPECT_EQ(state().redemption_counter, 0u);
  EXPECT_EQ(t->send(cmd::redeem({.serial = 2, .time = kIssuedAt + 86'400})).sw(), kOk);  // an honest site
  EXPECT_EQ(t->send(cmd::redeem({.serial = 1, .time = expiry - 1})).sw(), kOk);          // the last second
  EXPECT_EQ(state().time_mark, expiry - 1);
}

TEST_F(TrainingApplet, GetReceiptIsByteIdentical) {
  open(Role::Counter, false);
  for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_EQ(t->send(cmd::store(voucher_token(i))).sw(), kOk);
  const auto r1 = redeem({.serial = 3});
  const auto r2 = redeem({.serial = 1, .time = kIssuedAt + 90'000});
  EXPECT_EQ(t->send(cmd::get_receipt(1)).data(), r1);
  EXPECT_EQ(t->send(cmd::get_receipt(2)).data(), r2);
  EXPECT_EQ(t->send(cmd::get_receipt(3)).sw(), StatusWord::ReferencedDataNotFound);
  EXPECT_EQ(t->send(cmd::get_receipt(0)).sw(), StatusWord::ReferencedDataNotFound);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x38, 0x00, 0x00, Bytes(3), 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x38, 0x01, 0x00, Bytes(4), 256)).sw(), StatusWord::IncorrectP1P2);
  open(Role::Counter, false);
  ASSERT_EQ(t->send(cmd::purge(3)).sw(), kOk);
  EXPECT_EQ(t->send(cmd::get_receipt(1)).data(), r1);  // purged-pending keeps it readable
}

TEST_F(TrainingApplet, PurgeRefusalsAndIdempotence) {
  store(1);
  EXPECT_EQ(t->send(cmd::purge(1)).sw(), StatusWord::CommandNotAllowedNoEf);
  EXPECT_EQ(t->send(cmd::purge(2)).sw(), StatusWord::ReferencedDataNotFound);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x3A, 0x00, 0x00, Bytes(9), 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x3A, 0x00, 0x02, Bytes(8), 256)).sw(), StatusWord::IncorrectP1P2);
  redeem({});
  open(Role::Counter, false);
  EXPECT_EQ(t->send(cmd::purge(1)).sw(), kOk);
  const auto s = state();
  EXPECT_EQ(t->send(cmd::purge(1)).sw(), kOk);
  EXPECT_EQ(card->last_command_writes(), 0u);
  EXPECT_EQ(state(), s);
}

// --- portfolio digest ---------------------------------------------------------------------

TEST_F(TrainingApplet, DigestWriteAndRead) {
  ASSERT_EQ(t->open(Role::Kiosk), kOk);
  ASSERT_EQ(t->send(cmd::verify(kPin)).sw(), kOk);
  EXPECT_EQ(t->send(cmd::read_digest()).sw(), StatusWord::ReferencedDataNotFound);
  open(Role::Counter, false);
  Bytes digest(510);
  for (std::size_t i = 0; i < digest.size(); ++i) digest[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(t->send(cmd::write_digest(digest)).sw(), kOk);  // extended APDU, 520 bytes wrapped
  EXPECT_EQ(t->send(cmd::read_digest()).data(), digest);
  EXPECT_EQ(t->send(cmd::write_digest(Bytes(511))).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x40, 0x00, 0x00, 256)).sw(), StatusWord::WrongLength);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x40, 0x01, 0x00, Bytes(3), 256)).sw(), StatusWord::IncorrectP1P2);
  EXPECT_EQ(t->send(CommandApdu(0x80, 0x42, 0x00, 0x00, Bytes(1), 256)).sw(), StatusWord::WrongLength);
  // A shorter digest replaces it entirely; the rest of the area is zero again.
  EXPECT_EQ(t->send(cmd::write_digest(Bytes(3, 0xEE))).sw(), kOk);
  EXPECT_EQ(t->send(cmd::read_digest()).data(), Bytes(3, 0xEE));
  EXPECT_EQ(state().digest, Bytes(3, 0xEE));
  // Wrapped first, then chained in short APDUs (84 → 94), as a short-APDU reader sends it.
  const auto wrapped = t->host().wrap(cmd::write_digest(digest));
  const auto chunks = iso7816::split_for_chaining(wrapped, 255);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].cla(), 0x94);
  iso7816::ResponseApdu last(StatusWord::Success);
  for (const auto& c : chunks) last = t->send_raw(c);
  EXPECT_EQ(t->host().unwrap(last).sw(), kOk);
  EXPECT_EQ(state().digest, digest);
}

TEST_F(TrainingApplet, GetDataCountersAfterSessions) {
  // Sequence counters: each INITIALIZE UPDATE of a KVN adds one to that KVN's counter.
  ASSERT_EQ(t->open(Role::Counter), kOk);
  ASSERT_EQ(t->open(Role::Counter), kOk);
  ASSERT_EQ(t->open(Role::Kiosk), kOk);
  const auto c = t->send(cmd::get_data(0x04)).data();
  EXPECT_EQ(to_hex(ByteView(c).subspan(16)), "000002000000000001");
}
