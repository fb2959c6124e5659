// CardSession against the training applet in-process: sessions per role, typed commands,
// every status word mapped to its catalogue code by command (design.md's SW table), PINs,
// long commands sent extended or chained, and the genuineness checks on the card's answers.
#include "skillcard/host/card_session.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../card_applet_sim/training_support.hpp"
#include "host_test_support.hpp"
#include "skillcard/host/encoding.hpp"
#include "skillcard/host/trust.hpp"

namespace skillcard::host {
namespace {

using crypto::CardRole;
using iso7816::StatusWord;
using namespace host::testing;
namespace ct = card::testing;

TEST(RefusalCode, EveryRowOfTheStatusWordTable) {
  using C = CardCommand;
  const auto site = std::optional<CardRole>(CardRole::Site);
  const auto counter = std::optional<CardRole>(CardRole::Counter);
  EXPECT_EQ(refusal_code(C::ExternalAuthenticate, StatusWord::VerificationFailed, std::nullopt),
            "SECURE_CHANNEL_FAILED");
  EXPECT_EQ(refusal_code(C::Verify, iso7816::make_verification_failed(2), site), "PIN_WRONG");
  EXPECT_EQ(refusal_code(C::ChangeReferenceData, iso7816::make_verification_failed(1), counter), "PIN_WRONG");
  // The last wrong try blocked the PIN: said as blocked (reset at a counter), not "0 tries left".
  EXPECT_EQ(refusal_code(C::Verify, iso7816::make_verification_failed(0), site), "PIN_BLOCKED");
  EXPECT_EQ(refusal_code(C::ChangeReferenceData, iso7816::make_verification_failed(0), counter), "PIN_BLOCKED");
  EXPECT_EQ(refusal_code(C::WriteDigest, StatusWord::WrongLength, counter), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::StoreVoucher, StatusWord::SecurityStatusNotSatisfied, site), "TERMINAL_ROLE_FORBIDDEN");
  EXPECT_EQ(refusal_code(C::ListVouchers, StatusWord::SecurityStatusNotSatisfied, site), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::ListVouchers, StatusWord::IncorrectSmDataObjects, site), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::Verify, StatusWord::AuthenticationMethodBlocked, site), "PIN_BLOCKED");
  EXPECT_EQ(refusal_code(C::Redeem, StatusWord::ConditionsNotSatisfied, site), "P15_ALREADY_REDEEMED");
  EXPECT_EQ(refusal_code(C::InitializeUpdate, StatusWord::ConditionsNotSatisfied, std::nullopt), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::Purge, StatusWord::CommandNotAllowedNoEf, counter), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::ChangeReferenceData, StatusWord::WrongData, counter), "PIN_FORMAT");
  EXPECT_EQ(refusal_code(C::ResetRetryCounter, StatusWord::WrongData, counter), "PIN_FORMAT");
  EXPECT_EQ(refusal_code(C::StoreVoucher, StatusWord::WrongData, counter), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::Redeem, StatusWord::WrongData, site), "CARD_TIME_REGRESSION");
  EXPECT_EQ(refusal_code(C::Select, StatusWord::FileNotFound, std::nullopt), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::StoreVoucher, StatusWord::NotEnoughMemory, counter), "CARD_SLOTS_FULL");
  EXPECT_EQ(refusal_code(C::GetData, StatusWord::IncorrectP1P2, std::nullopt), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::GetData, StatusWord::InsNotSupported, std::nullopt), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::GetData, StatusWord::SecureMessagingNotSupported, std::nullopt), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::ReadVoucher, StatusWord::ReferencedDataNotFound, counter), "VOUCHER_NOT_ON_CARD");
  EXPECT_EQ(refusal_code(C::GetReceipt, StatusWord::ReferencedDataNotFound, site), "VOUCHER_NOT_ON_CARD");
  EXPECT_EQ(refusal_code(C::ReadDigest, StatusWord::ReferencedDataNotFound, counter), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::InitializeUpdate, StatusWord::ReferencedDataNotFound, std::nullopt), "CARD_ERROR");
  EXPECT_EQ(refusal_code(C::StoreVoucher, iso7816::make_sw(0x6A, 0x89), counter), "VOUCHER_ALREADY_ON_CARD");
}

TEST(CardRefusal, MessagesInBothLanguagesWithTheirValues) {
  const CardRefusal wrong(CardCommand::Verify, iso7816::make_verification_failed(1), CardRole::Site);
  EXPECT_EQ(wrong.tries_left(), 1);
  EXPECT_EQ(wrong.message(Lang::En), "Wrong PIN; 1 tries left.");
  EXPECT_EQ(wrong.message(Lang::ZhCn), "密码错误，还可尝试1次。");
  const CardRefusal odd(CardCommand::GetData, iso7816::make_sw(0x6F, 0x00), std::nullopt);
  EXPECT_EQ(odd.code(), "CARD_ERROR");
  EXPECT_NE(odd.message(Lang::En).find("6F00"), std::string::npos);
}

// A card answer the host cannot read is MalformedCardAnswer (still a std::invalid_argument, the
// parsers' one refusal), which the CLI reports as CARD_ERROR, never as a usage mistake.
TEST(CardAnswers, AnAnswerThatCannotBeReadIsAMalformedCardAnswer) {
  EXPECT_THROW(VoucherList::parse(Bytes(5, 0)), MalformedCardAnswer);
  Bytes bad_state(24 + 35, 0);
  bad_state[24] = 9;  // slot state 9
  EXPECT_THROW(VoucherList::parse(bad_state), MalformedCardAnswer);
  EXPECT_THROW(CardCounters::parse(Bytes(3, 0)), MalformedCardAnswer);
  EXPECT_THROW(CardCounters::parse(Bytes(3, 0)), std::invalid_argument);
}

TEST(Pin, RefusesAnythingButFourToTwelveDigitsWithoutEchoingIt) {
  for (const char* bad : {"123", "1234567890123", "12a456", ""}) {
    try {
      Pin p(bad);
      FAIL() << "accepted a bad PIN";
    } catch (const HostRefusal& e) {
      EXPECT_EQ(e.code(), "PIN_FORMAT");
      if (std::string_view(bad).size() >= 3) {
        EXPECT_EQ(std::string(e.what()).find(bad), std::string::npos);
      }
    }
  }
  const Pin p("1234");
  const auto block = p.block();
  EXPECT_EQ(Bytes(block.view().begin(), block.view().end()), from_hex("31323334FFFFFFFFFFFFFFFF"));
}

class Session : public ::testing::Test {
 protected:
  void SetUp() override {
    card = ct::make_training_card();
    card->power_on();
    channel = std::make_unique<TestChannel>(*card);
  }
  std::unique_ptr<card::Card> card;
  std::unique_ptr<TestChannel> channel;
};

TEST_F(Session, EachRoleOpensWithItsKeySetAndReadsTheCard) {
  for (const auto role : {CardRole::Counter, CardRole::Site, CardRole::Kiosk}) {
    const auto keys = key_source(role);
    CardSession s(*channel, *keys);
    s.select();
    s.open(role);
    EXPECT_EQ(s.role(), role);
    EXPECT_EQ(s.card_number(), ct::kCardNumber);
    EXPECT_EQ(s.read_card_number(), ct::kCardNumber);
    EXPECT_EQ(s.read_region(), ct::kRegion);
    EXPECT_EQ(s.pin_tries_left(), 3);
    s.verify(Pin(ct::kPin));
    EXPECT_EQ(s.pin_tries_left(), std::nullopt);
  }
  const auto keys = key_source(CardRole::Site);
  CardSession s(*channel, *keys);
  s.select();
  // One INITIALIZE UPDATE per KVN above, each counted on the card.
  EXPECT_EQ(s.read_counters().sequence, (std::array<std::uint32_t, 3>{1, 1, 1}));
}

TEST_F(Session, AnotherRolesMasterCannotOpenTheSession) {
  // A terminal whose site master is wrong (or not this card's issuer).
  RoleMasterKeySource wrong(CardRole::Site, crypto::SecretBytes(Bytes(16, 0x42)));
  CardSession s(*channel, wrong);
  s.select();
  try {
    s.open(CardRole::Site);
    FAIL();
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "SECURE_CHANNEL_FAILED");
  }
  EXPECT_FALSE(s.is_open());
  // And the key source refuses a role it holds no master for.
  EXPECT_THROW(s.open(CardRole::Counter), std::invalid_argument);
}

TEST_F(Session, APinIsNeverSentWithoutASecureChannel) {
  const auto keys = key_source(CardRole::Counter);
  CardSession s(*channel, *keys);
  s.select();
  const auto before = channel->exchanges;
  const std::function<void()> pin_commands[] = {
      [&] { s.verify(Pin(ct::kPin)); },
      [&] { s.change_pin(Pin(ct::kPin), Pin("8642")); },
      [&] { s.reset_retry_counter(Pin("8642")); },
  };
  for (const auto& command : pin_commands) {
    try {
      command();
      ADD_FAILURE() << "a PIN command ran without a secure channel";
    } catch (const CardRefusal& e) {
      EXPECT_EQ(e.code(), "SECURE_CHANNEL_FAILED");
    }
  }
  EXPECT_EQ(channel->exchanges, before) << "a PIN block reached the card in the clear";
  // Open, the same PIN goes (wrapped) and verifies.
  s.open(CardRole::Counter);
  s.verify(Pin(ct::kPin));
  EXPECT_GT(channel->exchanges, before);
}

TEST_F(Session, ACommandOutsideTheRoleIsTerminalRoleForbidden) {
  const auto keys = key_source(CardRole::Site);
  CardSession s(*channel, *keys);
  s.select();
  s.open(CardRole::Site);
  try {
    s.store_voucher(ct::voucher_token(1));
    FAIL();
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "TERMINAL_ROLE_FORBIDDEN");
    EXPECT_EQ(e.sw(), StatusWord::SecurityStatusNotSatisfied);
    EXPECT_EQ(e.command(), CardCommand::StoreVoucher);
  }
  // LIST before VERIFY: allowed to the role, but the card wants the PIN first.
  try {
    s.list_vouchers();
    FAIL();
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "CARD_ERROR");
  }
  EXPECT_TRUE(s.is_open());  // a role refusal keeps the session
}

TEST_F(Session, CounterCommandsAndTheirRefusals) {
  const auto keys = key_source(CardRole::Counter);
  CardSession s(*channel, *keys);
  s.select();
  s.open(CardRole::Counter);
  s.store_voucher(ct::voucher_token(1));
  try {
    s.store_voucher(ct::voucher_token(1));
    FAIL();
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "VOUCHER_ALREADY_ON_CARD");
  }
  EXPECT_EQ(s.read_voucher(ct::voucher_id(1)), ct::voucher_token(1));
  try {
    s.read_voucher(ct::voucher_id(9));
    FAIL();
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "VOUCHER_NOT_ON_CARD");
  }
  try {
    s.purge(ct::voucher_id(1));  // still stored
    FAIL();
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "CARD_ERROR");
    EXPECT_EQ(e.sw(), StatusWord::CommandNotAllowedNoEf);
  }
  const auto list = s.list_vouchers();
  EXPECT_EQ(list.holder, ct::holder_ref());
  ASSERT_EQ(list.slots.size(), 1u);
  EXPECT_EQ(list.slots[0].state, SlotState::Stored);
  EXPECT_EQ(list.slots[0].regions, std::vector<std::uint32_t>{420100});
  EXPECT_EQ(list.slots[0].providers, std::vector<std::uint32_t>{10001});
  EXPECT_TRUE(list.slots[0].usable_at(420100, 1, kNow));
  EXPECT_TRUE(list.slots[0].usable_at(1, 10001, kNow));
  EXPECT_FALSE(list.slots[0].usable_at(1, 1, kNow));
  EXPECT_FALSE(list.slots[0].usable_at(420100, 1, list.slots[0].expiry));
  EXPECT_EQ(s.read_digest(), std::nullopt);
  try {
    s.reset_retry_counter(Pin("1234"));
    s.change_pin(Pin("1234"), Pin("5678"));
  } catch (const CardRefusal& e) {
    FAIL() << e.what();
  }
}

TEST_F(Session, ALongDigestGoesExtendedOrChained) {
  const Bytes digest(510, 0xD1);
  for (const bool chain : {false, true}) {
    const auto keys = key_source(CardRole::Counter);
    CardSession s(*channel, *keys, {chain});
    s.select();
    s.open(CardRole::Counter);
    channel->exchanges = 0;
    s.write_digest(digest);
    EXPECT_EQ(channel->exchanges, chain ? 3u : 1u);
    EXPECT_EQ(s.read_digest(), digest);
  }
}

TEST_F(Session, CardGenuinenessCertificateAndInternalAuthenticate) {
  const auto keys = key_source(CardRole::Counter);
  CardSession s(*channel, *keys);
  s.select();
  const auto trust = pki().anchors();
  const auto card_cert = s.read_certificate();
  const auto verified = verify_card_certificate(card_cert, trust, kNow);
  EXPECT_EQ(verified.claims.card_number, ct::kCardNumber);
  EXPECT_EQ(verified.auth_key, ct::auth_public_key());
  schemas::Nonce nonce{};
  nonce[0] = 0x01;
  nonce[5] = 0x77;
  const auto answer = s.internal_authenticate(nonce);
  EXPECT_FALSE(answer.pin_verified);
  const auto proof = verify_internal_authenticate(verified, answer, nonce);
  const auto j = nlohmann::json::parse(proof.to_json());
  EXPECT_EQ(j["card"], ct::kCardNumber);
  EXPECT_EQ(j["nonce"], lower_hex(nonce));
  EXPECT_EQ(j["counter"], answer.counter);
  EXPECT_EQ(j["pin_verified"], false);
  EXPECT_EQ(base64url_decode(j["signature"].get<std::string>()),
            Bytes(answer.signature.begin(), answer.signature.end()));
  const auto header = base64url_decode(proof.header_value());
  EXPECT_EQ(std::string(header.begin(), header.end()), proof.to_json());

  // An answer for another nonce, or a flipped bit, is not a proof.
  auto other = nonce;
  other[5] ^= 1;
  EXPECT_THROW(verify_internal_authenticate(verified, answer, other), HostRefusal);
  auto flipped = answer;
  flipped.signature[10] ^= 0x01;
  try {
    verify_internal_authenticate(verified, flipped, nonce);
    FAIL();
  } catch (const HostRefusal& e) {
    EXPECT_EQ(e.code(), "CARD_PROOF_INVALID");
  }
  // A certificate with one byte changed fails its CA signature; an expired one its validity.
  auto tampered = card_cert;
  tampered[40] ^= 0x01;
  EXPECT_THROW(verify_card_certificate(tampered, trust, kNow), HostRefusal);
  EXPECT_THROW(verify_card_certificate(card_cert, trust, kNow + 20ull * 365 * 86'400), HostRefusal);
}

// A terminal's held copy is replaced by a newer list: a higher sequence, or the same sequence
// signed later (else a list re-signed with unchanged keys would leave the copy to go stale).
TEST(TrustAnchors, ANewerListReplacesTheHeldCopyAnOlderOneNever) {
  const auto& p = pki();
  const auto held = p.anchors();
  const auto resigned = [&](std::uint64_t sequence, std::uint64_t issued_at) {
    auto claims = held.claims();
    claims.sequence = sequence;
    claims.issued_at = issued_at;
    claims.next_update = issued_at + 90 * 86'400;
    return TrustAnchors::from_trust_list(
        schemas::sign_trust_list(claims, crypto::kid_of<crypto::OpenSsl>(p.root.public_key()),
                                 [&](ByteView tbs) { return p.root.sign(tbs); }),
        p.root.public_key(), held.claims().sequence);
  };
  const auto issued = held.claims().issued_at;
  EXPECT_TRUE(resigned(1, issued + 86'400).replaces(held));   // same keys, signed a day later
  EXPECT_TRUE(resigned(2, issued).replaces(held));            // a ceremony's next list
  EXPECT_FALSE(resigned(1, issued).replaces(held));           // the same list again
  EXPECT_FALSE(resigned(1, issued - 86'400).replaces(held));  // signed before the held one
  EXPECT_FALSE(held.replaces(resigned(2, issued)));
}

TEST(TrustAnchors, RefusesRollbackStaleListsAndForeignRoots) {
  const auto& p = pki();
  EXPECT_NO_THROW(TrustAnchors::from_trust_list(p.trust_list, p.root.public_key(), 1));
  try {
    TrustAnchors::from_trust_list(p.trust_list, p.root.public_key(), 2);
    FAIL();
  } catch (const HostRefusal& e) {
    EXPECT_EQ(e.code(), "TRUST_LIST_ROLLBACK");
  }
  const auto other_root = crypto::OpenSsl::PrivateKey::generate();
  EXPECT_THROW(TrustAnchors::from_trust_list(p.trust_list, other_root.public_key()), HostRefusal);
  const auto t = p.anchors();
  EXPECT_NO_THROW(t.require_fresh(t.claims().next_update + kTrustListGrace));
  try {
    t.require_fresh(t.claims().next_update + kTrustListGrace + 1);
    FAIL();
  } catch (const HostRefusal& e) {
    EXPECT_EQ(e.code(), "TRUST_LIST_STALE");
  }
  // The voucher signer's kid is not a card CA.
  try {
    t.key(crypto::kid_of<crypto::OpenSsl>(p.voucher_signer.public_key()), schemas::TrustRole::CardCa, kNow);
    FAIL();
  } catch (const HostRefusal& e) {
    EXPECT_EQ(e.code(), "TOKEN_UNKNOWN_KID");
  }
}

}  // namespace
}  // namespace skillcard::host
