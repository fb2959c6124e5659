// The workflows against the training applet in-process and a contract-following fake service:
// issue and write, write failures, site redemption within 5 exchanges, a card pulled mid-REDEEM,
// service down and the offline queue, a blocked PIN reset at the counter, kiosk digest checks.
#include "skillcard/host/workflows.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "../card_applet_sim/training_support.hpp"
#include "host_test_support.hpp"
#include "skillcard/host/encoding.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/receipt.hpp"

namespace skillcard::host {
namespace {

using crypto::CardRole;
using namespace host::testing;
namespace ct = card::testing;

// The code of the refusal (the host's or the service's) that `f` throws; "(no refusal)" when it
// returns.
template <class F>
std::string refusal_of(F&& f) {
  try {
    f();
  } catch (const HostRefusal& e) {
    return e.code();
  } catch (const ServiceRefusal& e) {
    return e.code();
  }
  return "(no refusal)";
}

class Workflows : public ::testing::Test {
 public:  // the helpers below (Replacement) set up on its members
  void SetUp() override {
    card = ct::make_training_card();
    card->power_on();
    channel = std::make_unique<TestChannel>(*card);
    dir = std::filesystem::temp_directory_path() / ("skillcard_host_wf_" + std::to_string(::getpid()) + "_" +
                                                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    queue = std::make_unique<OfflineQueue>(dir / "queue.db");
  }
  void TearDown() override {
    queue.reset();
    std::filesystem::remove_all(dir);
  }

  // Puts a service-issued voucher on the card through a counter session, confirmed written.
  VoucherId stored_voucher(std::vector<std::uint32_t> regions, std::vector<std::uint32_t> providers) {
    const auto issued = service.issue_direct(std::move(regions), std::move(providers));
    CardSession s(*channel, *counter_keys);
    s.select();
    s.open(CardRole::Counter);
    s.store_voucher(issued.token);
    service.mark_written(issued.voucher_id);
    return issued.voucher_id;
  }

  std::unique_ptr<card::Card> card;
  std::unique_ptr<TestChannel> channel;
  FakeService service;
  TrustAnchors trust = pki().anchors();
  Clock clock = [] { return kNow; };
  std::unique_ptr<CardKeySource> counter_keys = key_source(CardRole::Counter);
  std::unique_ptr<CardKeySource> site_keys = key_source(CardRole::Site);
  std::unique_ptr<CardKeySource> kiosk_keys = key_source(CardRole::Kiosk);
  std::filesystem::path dir;
  std::unique_ptr<OfflineQueue> queue;
  SiteConfig site{kSite, kRegion};
};

// The holder's replacement card, registered at the service, in a reader of its own with a
// counter on it (the lost-card workflows).
struct Replacement {
  explicit Replacement(Workflows& w)
      : card([] {
          auto c = make_second_card();
          c->power_on();
          return c;
        }()),
        channel(*card),
        session(channel, *w.counter_keys),
        counter(session, w.service, w.trust, w.clock) {
    w.service.register_card(second_card_certificate(), citizen_id());
  }
  std::unique_ptr<card::Card> card;
  TestChannel channel;
  CardSession session;
  CounterWorkflow counter;
};

IssueInput issue_input() {
  IssueInput in;
  in.citizen_id = citizen_id();
  in.programme = 3;
  in.occupation = "4-04-05-05";
  in.level = 4;
  in.fund = 2;
  in.planned_hours = 120;
  in.planned_online_hours = 36;
  return in;
}

bool on_card(CardSession& s, const VoucherId& id, SlotState state) {
  s.select();
  s.open(CardRole::Counter);
  for (const auto& slot : s.list_vouchers(apdu::kListAll).slots)
    if (slot.id == id) return slot.state == state;
  return false;
}

TEST_F(Workflows, CounterIssueWritesTheVoucherAndConfirmsIt) {
  CardSession s(*channel, *counter_keys);
  CounterWorkflow counter(s, service, trust, clock);
  const auto out = counter.issue(issue_input());
  EXPECT_EQ(out.state, WriteState::Written) << out.problem;
  // GET DATA, INTERNAL AUTHENTICATE, IU, EA, STORE (design.md, "Counter issue").
  EXPECT_EQ(channel->exchanges - channel->by_ins[0xA4], 5u);
  EXPECT_EQ(service.vouchers.at(out.voucher_id).state, "written");
  EXPECT_TRUE(on_card(s, out.voucher_id, SlotState::Stored));
  EXPECT_EQ(channel->by_ins[apdu::kInsStoreVoucher], 1u);
}

TEST_F(Workflows, CounterReadsTheCardGenuineWithItsStateAtTheServiceAndItsSlots) {
  const auto id = stored_voucher({kRegion}, {});
  CardSession s(*channel, *counter_keys);
  CounterWorkflow counter(s, service, trust, clock);
  channel->exchanges = 0;
  channel->by_ins.clear();
  const auto r = counter.read_card();
  EXPECT_EQ(channel->exchanges - channel->by_ins[0xA4], 5u);
  EXPECT_EQ(r.genuine.card.claims.card_number, ct::kCardNumber);
  EXPECT_EQ(r.at_service.card, ct::kCardNumber);
  EXPECT_EQ(r.at_service.state, "active");
  EXPECT_EQ(r.on_card.holder, ct::holder_ref());
  const auto stored = std::count_if(r.on_card.slots.begin(), r.on_card.slots.end(), [&](const SlotSummary& slot) {
    return slot.id == id && slot.state == SlotState::Stored;
  });
  EXPECT_EQ(stored, 1);
  // A lost card reads as lost: the clerk sees it before doing anything else.
  service.lost_cards.insert(std::string(ct::kCardNumber));
  EXPECT_EQ(counter.read_card().at_service.state, "lost");
}

TEST_F(Workflows, CounterIssueVoidsWhenTheCardRefusesTheWrite) {
  for (int i = 0; i < 32; ++i) stored_voucher({kRegion}, {});
  CardSession s(*channel, *counter_keys);
  CounterWorkflow counter(s, service, trust, clock);
  const auto out = counter.issue(issue_input());
  EXPECT_EQ(out.state, WriteState::Voided);
  EXPECT_EQ(out.problem, "CARD_SLOTS_FULL");
  EXPECT_EQ(out.problem_values.at("sw"), "6A84");  // what fills a catalogue message's {sw}
  EXPECT_EQ(service.vouchers.at(out.voucher_id).state, "voided");
  EXPECT_FALSE(on_card(s, out.voucher_id, SlotState::Stored));
}

// The card took the voucher but the service refuses to record the write (an operator voided it
// meanwhile): the outcome still comes back, with its voucher id, for the clerk to settle.
TEST_F(Workflows, AWriteTheServiceRefusesToRecordStillReturnsTheVoucher) {
  CardSession s(*channel, *counter_keys);
  CounterWorkflow counter(s, service, trust, clock);
  service.void_after_issue = true;
  const auto out = counter.issue(issue_input());
  EXPECT_EQ(out.state, WriteState::Unknown);
  EXPECT_NE(out.problem.find("P15_VOUCHER_VOIDED"), std::string::npos) << out.problem;
  EXPECT_TRUE(on_card(s, out.voucher_id, SlotState::Stored));
}

TEST_F(Workflows, CounterIssueWithUnknownWriteOutcomeIsSettledByTheNextTapsList) {
  // Cut after the STORE's last page write (committed, answer lost) and at its first (nothing).
  for (const auto& [mode, written] : {std::pair{card::CutMode::After, true}, std::pair{card::CutMode::Before, false}}) {
    SCOPED_TRACE(written ? "committed" : "not committed");
    CardSession s(*channel, *counter_keys);
    CounterWorkflow counter(s, service, trust, clock);
    channel->cut = TestChannel::Cut{0x30, written ? 11u : 0u, mode};
    const auto out = counter.issue(issue_input());
    ASSERT_EQ(out.state, WriteState::Unknown);
    EXPECT_EQ(service.vouchers.at(out.voucher_id).state, "issued");
    card->power_on();
    EXPECT_EQ(counter.settle(out.voucher_id), written ? WriteState::Written : WriteState::Voided);
    EXPECT_EQ(service.vouchers.at(out.voucher_id).state, written ? "written" : "voided");
    EXPECT_EQ(on_card(s, out.voucher_id, SlotState::Stored), written);
  }
}

// The service issued a voucher but its answer was lost: the counter never saw it, and a retry
// would be refused by P3 (the same occupation and level). The next settle writes it onto the
// holder's card — and confirms one that reached the card but not the service's books.
TEST_F(Workflows, AnIssueWhoseAnswerWasLostIsWrittenByTheNextSettle) {
  CardSession s(*channel, *counter_keys);
  CounterWorkflow counter(s, service, trust, clock);
  const auto written = stored_voucher({kRegion}, {});  // settled long ago: left alone
  // The service down before any write was asked for (the nonce): nothing can have been issued.
  service.down = true;
  try {
    (void)counter.issue(issue_input());
    ADD_FAILURE() << "issued without a service";
  } catch (const WriteAnswerLost&) {
    ADD_FAILURE() << "no write was on its way: not an answer lost";
  } catch (const ServiceUnavailable&) {
  }
  service.down = false;
  service.lose_issue_answer = true;
  EXPECT_THROW(counter.issue(issue_input()), WriteAnswerLost);
  service.lose_issue_answer = false;
  ASSERT_EQ(service.vouchers.size(), 2u);
  VoucherId lost{};
  for (const auto& [id, v] : service.vouchers)
    if (v.state == "issued") lost = id;
  ASSERT_NE(lost, VoucherId{});
  EXPECT_FALSE(on_card(s, lost, SlotState::Stored));
  // A third voucher on the card whose …/written never reached the service.
  const auto unconfirmed = service.issue_direct({kRegion}, {});
  {
    CardSession direct(*channel, *counter_keys);
    direct.select();
    direct.open(CardRole::Counter);
    direct.store_voucher(unconfirmed.token);
  }
  channel->by_ins.clear();
  const auto settled = counter.settle_unwritten();
  ASSERT_EQ(settled.size(), 2u);
  for (const auto& o : settled) {
    EXPECT_EQ(o.state, WriteState::Written) << o.problem;
    EXPECT_EQ(service.vouchers.at(o.voucher_id).state, "written");
    EXPECT_TRUE(on_card(s, o.voucher_id, SlotState::Stored));
  }
  EXPECT_EQ(channel->by_ins[apdu::kInsStoreVoucher], 1u);  // only the lost one was stored
  EXPECT_EQ(service.vouchers.at(written).state, "written");
  EXPECT_TRUE(counter.settle_unwritten().empty());  // nothing left to settle
}

// `counter issue` again after a lost answer: the voucher issued meanwhile is written first, on
// the same proof of the card, and the issue goes on (here the fake service issues another; the
// real one would refuse it P3, with the first one now on the card either way).
TEST_F(Workflows, AnIssueFirstWritesTheHoldersVoucherWhoseIssueAnswerWasLost) {
  CardSession s(*channel, *counter_keys);
  CounterWorkflow counter(s, service, trust, clock);
  service.lose_issue_answer = true;
  EXPECT_THROW(counter.issue(issue_input()), ServiceUnavailable);
  service.lose_issue_answer = false;
  ASSERT_EQ(service.vouchers.size(), 1u);
  const auto lost = service.vouchers.begin()->first;
  channel->by_ins.clear();
  std::vector<IssueOutcome> settled;
  const auto next = counter.issue(issue_input(), &settled);
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_EQ(settled[0].voucher_id, lost);
  EXPECT_EQ(settled[0].state, WriteState::Written) << settled[0].problem;
  EXPECT_EQ(service.vouchers.at(lost).state, "written");
  EXPECT_TRUE(on_card(s, lost, SlotState::Stored));
  EXPECT_EQ(next.state, WriteState::Written) << next.problem;
  EXPECT_NE(next.voucher_id, lost);
  EXPECT_EQ(channel->by_ins[apdu::kInsInternalAuthenticate], 1u);  // one proof of the card for both
  // With nothing left to write, nothing is settled first.
  settled.clear();
  (void)counter.issue(issue_input(), &settled);
  EXPECT_TRUE(settled.empty());
}

// After an unknown write the clerk settles with whatever card is in the reader: another
// person's card (the next customer's) lacks the voucher, and must not have it voided.
TEST_F(Workflows, SettleWithAnotherHoldersCardNeitherVoidsNorConfirms) {
  CardSession s(*channel, *counter_keys);
  CounterWorkflow counter(s, service, trust, clock);
  channel->cut = TestChannel::Cut{0x30, 11u, card::CutMode::After};  // committed, answer lost
  const auto out = counter.issue(issue_input());
  ASSERT_EQ(out.state, WriteState::Unknown);
  auto other = make_second_card();
  service.register_card(second_card_certificate(), citizen_id());
  channel->swap_card(*other);
  // The second test card holds the same holder's reference (a replacement card); give the
  // service another holder for it by moving the voucher's holder instead.
  auto& v = service.vouchers.at(out.voucher_id);
  v.claims.holder[0] ^= 0x01;
  EXPECT_EQ(refusal_of([&] { counter.settle(out.voucher_id); }), "CARD_OF_ANOTHER_HOLDER");
  EXPECT_EQ(service.vouchers.at(out.voucher_id).state, "issued");
  // The holder's own card settles it.
  v.claims.holder[0] ^= 0x01;
  channel->swap_card(*card);
  EXPECT_EQ(counter.settle(out.voucher_id), WriteState::Written);
  EXPECT_EQ(service.vouchers.at(out.voucher_id).state, "written");
}

TEST_F(Workflows, CounterRefusesACardWhoseCaIsNotOnTheTrustList) {
  schemas::TrustListClaims claims = schemas::decode_trust_list(pki().trust_list).claims;
  std::erase_if(claims.entries, [](const auto& e) { return e.second.role == schemas::TrustRole::CardCa; });
  claims.sequence = 2;
  const auto list = schemas::sign_trust_list(claims, crypto::kid_of<crypto::OpenSsl>(pki().root.public_key()),
                                             [](ByteView m) { return pki().root.sign(m); });
  const auto other = TrustAnchors::from_trust_list(list, pki().root.public_key(), 1);
  CardSession s(*channel, *counter_keys);
  CounterWorkflow counter(s, service, other, clock);
  EXPECT_EQ(refusal_of([&] { counter.prove_genuine(); }), "TOKEN_UNKNOWN_KID") << "a card of an unlisted CA passed";
  EXPECT_TRUE(service.vouchers.empty());
}

TEST_F(Workflows, SiteRedeemsWithinFiveExchangesAfterSelect) {
  const auto id = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  const auto nonce = w.prepare();
  ASSERT_FALSE(nonce.offline);
  channel->exchanges = 0;
  channel->by_ins.clear();
  const auto out = w.redeem(nonce, Pin(ct::kPin), 84, 36);
  EXPECT_EQ(channel->by_ins[0xA4], 1u);
  EXPECT_LE(channel->exchanges - channel->by_ins[0xA4], 5u);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  EXPECT_EQ(out.voucher_id, id);
  EXPECT_EQ(out.counter, 1u);
  EXPECT_EQ(out.receipt_id, out.redemption->receipt_id);
  EXPECT_EQ(service.receipts.at(id), out.receipt);
  EXPECT_EQ(service.vouchers.at(id).state, "redeemed");
  EXPECT_EQ(queue->size(), 0u);
}

TEST_F(Workflows, SiteHolderChoosesAmongTheVouchersUsableHereDuringTheTap) {
  const auto first = stored_voucher({}, {kSite});
  stored_voucher({110000}, {});  // another region's: never offered here
  const auto third = stored_voucher({kRegion}, {});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  std::vector<VoucherId> offered;
  w.set_chooser([&](const std::vector<SlotSummary>& usable) {
    for (const auto& slot : usable) offered.push_back(slot.id);
    return usable.back().id;
  });
  channel->exchanges = 0;
  channel->by_ins.clear();
  const auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_EQ(offered, (std::vector<VoucherId>{first, third}));
  EXPECT_EQ(out.voucher_id, third);
  EXPECT_EQ(service.vouchers.at(third).state, "redeemed");
  EXPECT_EQ(service.vouchers.at(first).state, "written");
  EXPECT_LE(channel->exchanges - channel->by_ins[0xA4], 5u);
  // A choice outside the offer is refused before REDEEM.
  w.set_chooser([](const std::vector<SlotSummary>&) { return VoucherId{9, 9, 9, 9, 9, 9, 9, 9}; });
  channel->by_ins.clear();
  EXPECT_EQ(refusal_of([&] { w.redeem(w.prepare(), Pin(ct::kPin), 84, 36); }), "VOUCHER_NOT_ON_CARD")
      << "redeemed a voucher that was not offered";
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 0u);
}

TEST_F(Workflows, SiteRefusesWhenNoVoucherIsUsableHere) {
  {
    // Nothing on the card: said as such, not as a region problem.
    CardSession s(*channel, *site_keys);
    SiteWorkflow w(s, service, *queue, site, clock);
    EXPECT_EQ(refusal_of([&] { w.redeem(w.prepare(), Pin(ct::kPin), 84, 36); }), "NO_USABLE_VOUCHER");
  }
  stored_voucher({110000}, {});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  EXPECT_EQ(refusal_of([&] { w.redeem(w.prepare(), Pin(ct::kPin), 84, 36); }), "REGION_NOT_ELIGIBLE")
      << "redeemed a voucher of another region";
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 0u);
  // Every stored voucher expired (the holder's, usable here once): P15's expiry is the reason.
  const Clock later = [] { return kNow + 91ull * 86'400; };
  service.now = kNow + 91ull * 86'400;
  SiteWorkflow w2(s, service, *queue, site, later);
  EXPECT_EQ(refusal_of([&] { w2.redeem(w2.prepare(), Pin(ct::kPin), 84, 36); }), "P15_VOUCHER_EXPIRED");
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 0u);
}

TEST_F(Workflows, TheSameVoucherAgainIsRefusedAsAlreadyRedeemedWithoutASecondRedeem) {
  const auto id = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  ASSERT_EQ(w.redeem(w.prepare(), Pin(ct::kPin), 84, 36, id).status, RedeemStatus::Recorded);
  channel->by_ins.clear();
  EXPECT_EQ(refusal_of([&] { w.redeem(w.prepare(), Pin(ct::kPin), 84, 36, id); }), "P15_ALREADY_REDEEMED")
      << "redeemed a voucher twice";
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 0u);
  EXPECT_EQ(service.receipts.size(), 1u);
}

TEST_F(Workflows, CardPulledAfterRedeemCommittedIsRecoveredByGetReceiptNeverASecondRedeem) {
  const auto id = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  const auto first_nonce = w.prepare();
  // REDEEM commits 6 pages in 14 page writes; cut after the last: done on the card, answer lost.
  channel->cut = TestChannel::Cut{apdu::kInsRedeem, 13, card::CutMode::After};
  try {
    w.redeem(first_nonce, Pin(ct::kPin), 84, 36);
    FAIL() << "the lost answer went unnoticed";
  } catch (const RedemptionInDoubt& e) {
    EXPECT_EQ(e.code(), "UNKNOWN_OUTCOME");
    EXPECT_EQ(e.pending().voucher, id);
    EXPECT_EQ(e.pending().counter_before, 0u);
  }
  EXPECT_TRUE(service.redemptions.empty());
  ASSERT_EQ(queue->all_in_doubt().size(), 1u);
  EXPECT_EQ(queue->all_in_doubt()[0].since, kNow) << "when, for the P12 window the clerk is shown";
  // The site host restarts between the two taps: the in-doubt record is in the queue's file.
  queue = std::make_unique<OfflineQueue>(dir / "queue.db");
  SiteWorkflow w_after_restart(s, service, *queue, site, clock);
  card->power_on();
  channel->exchanges = 0;
  channel->by_ins.clear();
  const auto out = w_after_restart.redeem(w_after_restart.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_LE(channel->exchanges - channel->by_ins[0xA4], 5u);
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 0u);
  EXPECT_EQ(channel->by_ins[apdu::kInsGetReceipt], 1u);
  EXPECT_TRUE(out.recovered);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  // Byte-identical to what the card signed at the lost REDEEM (deterministic ECDSA).
  schemas::ReceiptClaims claims;
  claims.voucher = id;
  claims.site = kSite;
  claims.nonce = first_nonce.nonce;
  claims.counter = 1;
  claims.terminal_time = kNow;
  claims.classroom_hours = 84;
  claims.online_hours = 36;
  EXPECT_EQ(out.receipt, ct::expected_receipt(claims));
  EXPECT_EQ(service.redemptions.size(), 1u);
  EXPECT_EQ(service.receipts.at(id), out.receipt);
  EXPECT_TRUE(queue->all_in_doubt().empty());
}

TEST_F(Workflows, CardPulledBeforeRedeemCommittedRedeemsOnceOnTheNextTap) {
  const auto id = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  channel->cut = TestChannel::Cut{apdu::kInsRedeem, 2, card::CutMode::During};
  EXPECT_THROW(w.redeem(w.prepare(), Pin(ct::kPin), 84, 36), RedemptionInDoubt);
  card->power_on();
  const auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_FALSE(out.recovered);
  EXPECT_EQ(out.counter, 1u);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  EXPECT_EQ(service.redemptions.size(), 1u);
  EXPECT_EQ(service.redemptions.at(id).counter, 1u);
}

TEST_F(Workflows, ARedeemAnswerFailingItsRmacIsInDoubtAndRecoveredByGetReceipt) {
  const auto id = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  channel->corrupt_answer_of = apdu::kInsRedeem;
  EXPECT_THROW(w.redeem(w.prepare(), Pin(ct::kPin), 84, 36), RedemptionInDoubt);
  const auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_TRUE(out.recovered);
  EXPECT_EQ(out.voucher_id, id);
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 1u);
  EXPECT_EQ(service.receipts.at(id), out.receipt);
}

// The host (process, machine or power) dies after the card committed REDEEM and before the
// receipt was queued: nothing on disk but the in-doubt record written before REDEEM, which the
// next tap turns into the card's own receipt (GET RECEIPT), never a second REDEEM.
TEST_F(Workflows, HostDyingAfterTheCardsRedeemRecoversTheReceiptOnTheNextTap) {
  const auto id = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  channel->die_after_answer_of = apdu::kInsRedeem;
  EXPECT_THROW(w.redeem(w.prepare(), Pin(ct::kPin), 84, 36), std::runtime_error);
  EXPECT_TRUE(service.redemptions.empty());
  queue = std::make_unique<OfflineQueue>(dir / "queue.db");  // the host starts again
  ASSERT_EQ(queue->all_in_doubt().size(), 1u);
  SiteWorkflow after(s, service, *queue, site, clock);
  card->power_on();
  const auto out = after.redeem(after.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_TRUE(out.recovered);
  EXPECT_EQ(out.voucher_id, id);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 1u);
  EXPECT_EQ(service.redemptions.size(), 1u);
  EXPECT_EQ(service.receipts.at(id), out.receipt);
  EXPECT_TRUE(queue->all_in_doubt().empty());
}

// A REDEEM in doubt that did not happen, then the holder redeems another voucher at another
// site: back here, that site's receipt is not taken for ours; this tap redeems normally.
TEST_F(Workflows, RecoveryTakesOnlyTheReceiptOfTheVoucherInDoubtAtThisSite) {
  constexpr std::uint32_t kOtherSite = kSite + 1;
  const auto here = stored_voucher({}, {kSite});
  const auto there = stored_voucher({}, {kOtherSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  channel->cut = TestChannel::Cut{apdu::kInsRedeem, 2, card::CutMode::During};  // not committed
  EXPECT_THROW(w.redeem(w.prepare(), Pin(ct::kPin), 84, 36, here), RedemptionInDoubt);
  card->power_on();
  OfflineQueue other_queue(dir / "other-queue.db");
  SiteWorkflow elsewhere(s, service, other_queue, SiteConfig{kOtherSite, kRegion}, clock);
  service.terminal_site = kOtherSite;
  ASSERT_EQ(elsewhere.redeem(elsewhere.prepare(), Pin(ct::kPin), 84, 36, there).status, RedeemStatus::Recorded);
  service.terminal_site = kSite;
  card->power_on();
  const auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_FALSE(out.recovered);
  EXPECT_EQ(out.voucher_id, here);
  EXPECT_EQ(out.counter, 2u);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  EXPECT_EQ(service.redemptions.size(), 2u);
  EXPECT_TRUE(queue->all_in_doubt().empty());
  EXPECT_TRUE(queue->pending(kNow).empty());
}

// P15 as the service reads it: a voucher for the city (420100) is usable at a site in one of
// its districts (420106); the terminal does not refuse it before asking the card.
TEST_F(Workflows, P15_ACityVoucherIsUsableAtASiteInOneOfItsDistricts) {
  const auto id = stored_voucher({kRegion}, {});
  CardSession s(*channel, *site_keys);
  const SiteConfig district{kSite, kRegion + 6};
  SiteWorkflow w(s, service, *queue, district, clock);
  const auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_EQ(out.voucher_id, id);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  const SiteConfig elsewhere{kSite, kRegion + 100};  // another city of the province
  const auto other = stored_voucher({kRegion}, {});
  SiteWorkflow w2(s, service, *queue, elsewhere, clock);
  EXPECT_EQ(refusal_of([&] { w2.redeem(w2.prepare(), Pin(ct::kPin), 84, 36, other); }), "REGION_NOT_ELIGIBLE");
}

TEST_F(Workflows, ServiceDownQueuesTheReceiptAndSyncDeliversIt) {
  const auto id = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  w.prepare();  // an online contact first: the offline bounds start from it
  service.down = true;
  const auto nonce = w.prepare();
  EXPECT_TRUE(nonce.offline);
  EXPECT_EQ(nonce.nonce[0], 0x02);
  const auto out = w.redeem(nonce, Pin(ct::kPin), 84, 36);
  EXPECT_EQ(out.status, RedeemStatus::Queued);
  EXPECT_EQ(out.receipt_id, receipt_id(out.receipt));
  const auto waiting = queue->pending(kNow + 3600);
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0].receipt, out.receipt);
  EXPECT_EQ(waiting[0].seconds_left, kSyncWindowSeconds - 3600);
  // Still down: nothing is lost, the attempt is recorded.
  auto report = queue->sync(service);
  EXPECT_TRUE(report.service_unavailable);
  EXPECT_EQ(queue->pending(kNow)[0].attempts, 1u);
  service.down = false;
  service.now = kNow + 3600;
  report = queue->sync(service);
  EXPECT_EQ(report.acknowledged, 1u);
  EXPECT_EQ(report.remaining, 0u);
  EXPECT_EQ(service.receipts.at(id), out.receipt);
}

// An offline spell at `w`: an online contact, then the service down while `id` is redeemed (its
// receipt queued), then the service back.
RedeemOutcome redeem_offline(SiteWorkflow& w, FakeService& service, const VoucherId& id) {
  w.prepare();
  service.down = true;
  auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36, id);
  service.down = false;
  return out;
}

// P12: the first redemption the service answers after an offline spell takes the receipts that
// spell left waiting along, without a clerk's `site sync`; with nothing waiting, nothing is sent.
TEST_F(Workflows, P12_AnOnlineRedemptionDeliversWhatAnOfflineSpellLeftWaiting) {
  const auto first = stored_voucher({}, {kSite});
  const auto second = stored_voucher({}, {kSite});
  const auto third = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  const auto offline = redeem_offline(w, service, first);
  ASSERT_EQ(offline.status, RedeemStatus::Queued);
  EXPECT_FALSE(offline.synced.has_value()) << "no sync without the service";
  const auto online = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36, second);
  EXPECT_EQ(online.status, RedeemStatus::Recorded);
  ASSERT_TRUE(online.synced.has_value());
  EXPECT_EQ(online.synced->acknowledged, 1u);
  EXPECT_EQ(online.synced->remaining, 0u);
  EXPECT_TRUE(online.sync_problem.empty());
  EXPECT_EQ(service.receipts.at(first), offline.receipt);
  EXPECT_EQ(queue->size(), 0u);
  // Nothing waiting: the next online redemption sends no sync at all.
  const auto later = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36, third);
  EXPECT_EQ(later.status, RedeemStatus::Recorded);
  EXPECT_FALSE(later.synced.has_value());
}

// The sync behind an online redemption refused as a whole: the redemption stands, recorded; the
// problem is reported; the waiting receipt stays queued for site sync.
TEST_F(Workflows, P12_ASyncBehindARedemptionThatFailsLeavesTheRedemptionStanding) {
  const auto first = stored_voucher({}, {kSite});
  const auto second = stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  ASSERT_EQ(redeem_offline(w, service, first).status, RedeemStatus::Queued);
  service.refuse_sync = true;
  const auto online = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36, second);
  EXPECT_EQ(online.status, RedeemStatus::Recorded);
  EXPECT_FALSE(online.synced.has_value());
  EXPECT_NE(online.sync_problem.find("TERMINAL_ROLE_FORBIDDEN"), std::string::npos) << online.sync_problem;
  EXPECT_EQ(service.redemptions.count(second), 1u);
  ASSERT_EQ(queue->size(), 1u);
  EXPECT_EQ(queue->pending(kNow)[0].voucher_id, first);
}

TEST_F(Workflows, OfflineOnlyWithinTheBoundsOfTheLastContact) {
  stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  std::uint64_t now = kNow;
  SiteWorkflow w(s, service, *queue, site, [&] { return now; });
  service.down = true;
  const auto refused = [&](const char* why) {
    EXPECT_EQ(refusal_of([&] { w.prepare(); }), "OFFLINE_NOT_ALLOWED") << "offline allowed: " << why;
  };
  refused("no contact yet");
  service.down = false;
  w.prepare();
  service.down = true;
  now = kNow + 72 * 3600;
  EXPECT_TRUE(w.prepare().offline);
  now = kNow + 72 * 3600 + 1;
  refused("last contact over 72 h ago");
  now = kNow - 1;
  refused("clock earlier than at the contact");
  // A terminal clock 6 minutes off the service's at the contact.
  service.down = false;
  now = kNow + 360;
  w.prepare();
  service.down = true;
  refused("clock off by more than 5 min");
}

// P12: the sync window the service states with each nonce is kept with the contact, and the
// queued receipts' time left (the slip's deadline, the warnings) goes by it.
TEST_F(Workflows, P12_TheServicesSyncWindowIsKeptWithTheContact) {
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, [&] { return kNow; });
  EXPECT_EQ(queue->window(), kSyncWindowSeconds);
  service.sync_window_seconds = 24 * 3600;
  w.prepare();
  EXPECT_EQ(queue->window(), 24u * 3600);
  queue->enqueue(VoucherId{}, "4201000001", Bytes{0x01}, kNow);
  EXPECT_EQ(queue->pending(kNow + 3600).at(0).seconds_left, 23u * 3600);
}

TEST_F(Workflows, ATimeBeforeTheCardsTimeMarkIsRefusedBeforeRedeem) {
  service.now = kNow + 1201;
  stored_voucher({}, {kSite});  // the card's time mark is now the voucher's iat, kNow + 1201
  service.now = kNow;
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  EXPECT_EQ(refusal_of([&] { w.redeem(w.prepare(), Pin(ct::kPin), 84, 36); }), "CARD_TIME_REGRESSION")
      << "redeemed at a time more than 10 min before the card's time mark";
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 0u);
}

// Online, the redemption's time is the terminal's clock corrected by the service's (taken from
// the nonce): a terminal clock an hour slow or fast neither trips the card's time check nor
// gives a receipt from the future that the service would refuse after the card has signed it.
TEST_F(Workflows, OnlineTheTerminalClockIsCorrectedByTheServices) {
  stored_voucher({}, {kSite});
  stored_voucher({}, {kSite});
  for (const std::int64_t off : {-3600, 3600}) {
    CardSession s(*channel, *site_keys);
    SiteWorkflow w(s, service, *queue, site,
                   [off] { return static_cast<std::uint64_t>(static_cast<std::int64_t>(kNow) + off); });
    const auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
    EXPECT_EQ(out.status, RedeemStatus::Recorded) << off;
    EXPECT_EQ(out.terminal_time, kNow) << off;
    EXPECT_EQ(schemas::decode_receipt(out.receipt).claims.terminal_time, kNow) << off;
  }
}

TEST_F(Workflows, ExpiredNonceQueuesTheReceipt) {
  stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  service.expire_nonces = true;
  const auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_EQ(out.status, RedeemStatus::Queued);
  EXPECT_EQ(out.queued_because, "NONCE_EXPIRED");
  EXPECT_EQ(queue->size(), 1u);
  EXPECT_EQ(queue->sync(service).acknowledged, 1u);
  EXPECT_EQ(service.redemptions.size(), 1u);
}

// The online nonce unknown to the service (it failed over, or was restored, between the nonce and
// the receipt): a refusal of the request, not of the receipt, which waits for the sync — never
// parked as refused, and so never lost to the holder's subsidy.
TEST_F(Workflows, AnUnknownOnlineNonceQueuesTheReceiptForTheSync) {
  stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  service.forget_nonces = true;
  const auto out = w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_EQ(out.status, RedeemStatus::Queued);
  EXPECT_EQ(out.queued_because, "NONCE_UNKNOWN");
  ASSERT_EQ(queue->pending(kNow).size(), 1u);
  EXPECT_FALSE(queue->pending(kNow)[0].refused);
  EXPECT_EQ(queue->sync(service).acknowledged, 1u);
  EXPECT_EQ(service.redemptions.size(), 1u);
}

TEST_F(Workflows, WrongPinThreeTimesBlocksAndTheCounterResetsIt) {
  stored_voucher({}, {kSite});
  CardSession s(*channel, *site_keys);
  SiteWorkflow w(s, service, *queue, site, clock);
  const Pin wrong("999999");
  for (int tries_left = 2; tries_left >= 0; --tries_left) {
    try {
      w.redeem(w.prepare(), wrong, 84, 36);
      FAIL() << "a wrong PIN redeemed";
    } catch (const CardRefusal& e) {
      // The last wrong try blocks the PIN, and says so (with where to reset it).
      EXPECT_EQ(e.code(), tries_left == 0 ? "PIN_BLOCKED" : "PIN_WRONG");
      EXPECT_EQ(e.tries_left(), tries_left);
      if (tries_left > 0) {
        EXPECT_NE(e.message(Lang::En).find(std::to_string(tries_left)), std::string::npos);
      }
    }
  }
  try {
    w.redeem(w.prepare(), Pin(ct::kPin), 84, 36);
    FAIL() << "a blocked PIN redeemed";
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "PIN_BLOCKED");
    EXPECT_EQ(e.sw(), iso7816::StatusWord::AuthenticationMethodBlocked);
  }
  CardSession cs(*channel, *counter_keys);
  CounterWorkflow counter(cs, service, trust, clock);
  // Another person's identity document: refused at the service, the card is not touched.
  const std::string first17 = "11010519491231002";
  try {
    counter.reset_pin(first17 + crypto::citizen_id_check_character(first17), [&]() -> Pin {
      ADD_FAILURE() << "the new PIN was asked for before the holder was confirmed";
      return Pin("246810");
    });
    FAIL() << "reset for another person";
  } catch (const ServiceRefusal& e) {
    EXPECT_EQ(e.code(), "P13_REGISTRY_MISMATCH");
  }
  EXPECT_EQ(channel->by_ins[apdu::kInsResetRetryCounter], 0u);
  const auto reset = counter.reset_pin(citizen_id(), Pin("246810"));
  EXPECT_EQ(reset.card, ct::kCardNumber);
  EXPECT_EQ(channel->by_ins[apdu::kInsResetRetryCounter], 1u);
  const auto out = w.redeem(w.prepare(), Pin("246810"), 84, 36);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  EXPECT_EQ(channel->by_ins[apdu::kInsRedeem], 1u);
}

TEST_F(Workflows, ALostCardsPinIsNotResetAndTheCardIsNotTouched) {
  service.lost_cards.insert(std::string(ct::kCardNumber));
  CardSession cs(*channel, *counter_keys);
  CounterWorkflow counter(cs, service, trust, clock);
  try {
    counter.reset_pin(citizen_id(), Pin("246810"));
    FAIL() << "a lost card's PIN was reset";
  } catch (const ServiceRefusal& e) {
    EXPECT_EQ(e.code(), "CARD_REVOKED");
  }
  EXPECT_EQ(channel->by_ins[apdu::kInsResetRetryCounter], 0u);
}

// The holder check was for the card proven genuine; another card put in the reader while the
// new PIN is typed is refused, and neither card's PIN is reset.
TEST_F(Workflows, APinResetIsRefusedWhenAnotherCardIsPutInTheReader) {
  auto other = make_second_card();
  CardSession cs(*channel, *counter_keys);
  CounterWorkflow counter(cs, service, trust, clock);
  EXPECT_EQ(refusal_of([&] {
              counter.reset_pin(citizen_id(), [&] {
                channel->swap_card(*other);
                cs.select();  // even with the applet selected on the new card (a reader hiding the swap)
                return Pin("246810");
              });
            }),
            "CARD_REMOVED")
      << "the PIN of a card that was not checked was reset";
  EXPECT_EQ(channel->by_ins[apdu::kInsResetRetryCounter], 0u);
}

TEST_F(Workflows, CounterChangesThePinWithTheOldOne) {
  CardSession cs(*channel, *counter_keys);
  CounterWorkflow counter(cs, service, trust, clock);
  try {
    counter.change_pin(Pin("000000"), Pin("135790"));
    FAIL();
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "PIN_WRONG");
  }
  counter.change_pin(Pin(ct::kPin), Pin("135790"));
  cs.select();
  cs.open(CardRole::Counter);
  EXPECT_NO_THROW(cs.verify(Pin("135790")));
}

TEST_F(Workflows, CounterPurgesOnlyVouchersTheServiceReportsRedeemed) {
  const auto redeemed = stored_voucher({}, {kSite});
  CardSession ss(*channel, *site_keys);
  SiteWorkflow w(ss, service, *queue, site, clock);
  ASSERT_EQ(w.redeem(w.prepare(), Pin(ct::kPin), 84, 36).status, RedeemStatus::Recorded);
  const auto stored = stored_voucher({}, {kSite});
  CardSession cs(*channel, *counter_keys);
  CounterWorkflow counter(cs, service, trust, clock);
  const auto purged = counter.purge_redeemed();
  ASSERT_EQ(purged.size(), 1u);
  EXPECT_EQ(purged[0], redeemed);
  EXPECT_TRUE(on_card(cs, redeemed, SlotState::PurgedPending));
  EXPECT_TRUE(on_card(cs, stored, SlotState::Stored));
}

TEST_F(Workflows, LostCardsVouchersMoveToTheReplacementAndTheOldCardsReceiptIsRefused) {
  CardSession s1(*channel, *counter_keys);
  CounterWorkflow counter1(s1, service, trust, clock);
  const auto original = counter1.issue(issue_input());
  ASSERT_EQ(original.state, WriteState::Written);

  Replacement r(*this);
  auto& [replacement, channel2, s2, counter2] = r;
  const auto lost = counter2.replace_lost_card(std::string(ct::kCardNumber), citizen_id());
  EXPECT_EQ(lost.answer.state, "lost");
  ASSERT_EQ(lost.moved.size(), 1u);
  const auto moved = lost.moved[0].voucher_id;
  EXPECT_EQ(lost.moved[0].state, WriteState::Written) << lost.moved[0].problem;
  EXPECT_EQ(service.vouchers.at(original.voucher_id).state, "moved");
  EXPECT_EQ(service.vouchers.at(moved).state, "written");
  EXPECT_EQ(service.vouchers.at(moved).card, kSecondCard);
  EXPECT_TRUE(on_card(s2, moved, SlotState::Stored));

  // The lost card still holds the old voucher: its receipt is refused, and kept, marked.
  CardSession site1(*channel, *site_keys);
  SiteWorkflow w1(site1, service, *queue, site, clock);
  try {
    w1.redeem(w1.prepare(), Pin(ct::kPin), 84, 36);
    FAIL() << "a lost card's receipt was accepted";
  } catch (const ServiceRefusal& e) {
    EXPECT_EQ(e.code(), "CARD_REVOKED");
    EXPECT_EQ(e.http_status(), 403);
  }
  const auto kept = queue->pending(kNow);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_TRUE(kept[0].refused);
  EXPECT_EQ(kept[0].last_error, "CARD_REVOKED");

  CardSession site2(channel2, *site_keys);
  SiteWorkflow w2(site2, service, *queue, site, clock);
  const auto out = w2.redeem(w2.prepare(), Pin(ct::kPin), 84, 36);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  EXPECT_EQ(out.voucher_id, moved);
}

// A moved voucher is the holder's existing subsidy: a write that fails leaves it issued (a void
// would take it away; a new one is a new decision under this year's P1/P2/P16), and the next
// settle writes it — by voucher id or all at once.
TEST_F(Workflows, AMovedVoucherIsNeverVoidedForAFailedWriteAndSettleWritesIt) {
  CardSession s1(*channel, *counter_keys);
  CounterWorkflow counter1(s1, service, trust, clock);
  ASSERT_EQ(counter1.issue(issue_input()).state, WriteState::Written);
  ASSERT_EQ(counter1.issue(issue_input()).state, WriteState::Written);

  Replacement r(*this);
  auto& [replacement, channel2, s2, counter2] = r;
  channel2.absent_at = 0x30;  // the card is pulled just before the first STORE
  const auto lost = counter2.replace_lost_card(std::string(ct::kCardNumber), citizen_id());
  ASSERT_EQ(lost.moved.size(), 2u);
  EXPECT_EQ(lost.moved[0].state, WriteState::NotWritten);
  EXPECT_NE(lost.moved[0].problem.find("CARD_REMOVED"), std::string::npos) << lost.moved[0].problem;
  EXPECT_EQ(lost.moved[1].state, WriteState::Written) << lost.moved[1].problem;
  const auto first = lost.moved[0].voucher_id;
  EXPECT_EQ(service.vouchers.at(first).state, "issued") << "an existing subsidy was voided";
  EXPECT_FALSE(on_card(s2, first, SlotState::Stored));

  // Settled by its id: not on the card, so written now (not voided as a new voucher would be).
  channel2.absent_at = 0x30;
  EXPECT_EQ(counter2.settle(first), WriteState::NotWritten);
  EXPECT_EQ(service.vouchers.at(first).state, "issued");
  EXPECT_EQ(counter2.settle(first), WriteState::Written);
  EXPECT_EQ(service.vouchers.at(first).state, "written");
  EXPECT_TRUE(on_card(s2, first, SlotState::Stored));
}

// Between the loss report and the writes the lost card itself (the same holder's) is put back
// in the reader: it gets none of the moved vouchers, and they stay issued for the right card.
TEST_F(Workflows, MovedVouchersGoOnlyOntoTheReplacementProvenGenuine) {
  CardSession s1(*channel, *counter_keys);
  CounterWorkflow counter1(s1, service, trust, clock);
  ASSERT_EQ(counter1.issue(issue_input()).state, WriteState::Written);

  Replacement r(*this);
  auto& [replacement, channel2, s2, counter2] = r;
  service.after_report_lost = [&r, this] {  // named, not captured by binding: clang 14
    r.channel.swap_card(*card);
    r.session.select();  // the training applet of the card now in the reader
  };
  const auto lost = counter2.replace_lost_card(std::string(ct::kCardNumber), citizen_id());
  service.after_report_lost = nullptr;
  ASSERT_EQ(lost.moved.size(), 1u);
  const auto moved = lost.moved[0].voucher_id;
  EXPECT_EQ(lost.moved[0].state, WriteState::NotWritten);
  EXPECT_NE(lost.moved[0].problem.find("CARD_REMOVED"), std::string::npos) << lost.moved[0].problem;
  EXPECT_FALSE(on_card(s2, moved, SlotState::Stored)) << "the lost card took a moved voucher";
  EXPECT_EQ(service.vouchers.at(moved).state, "issued");
  channel2.swap_card(*replacement);
  const auto settled = counter2.settle_unwritten();
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_EQ(settled[0].state, WriteState::Written);
  EXPECT_TRUE(on_card(s2, moved, SlotState::Stored));
}

TEST_F(Workflows, AKioskCannotReadWithoutTheCardsPin) {
  CardSession ks(*channel, *kiosk_keys);
  KioskWorkflow kiosk(ks, service, trust, clock);
  EXPECT_THROW(kiosk.lookup(Pin("000000")), CardRefusal);
  // A proof made without VERIFY says so (PIN state signed by the card): the service refuses it.
  ks.select();
  const auto grant = service.create_nonce();
  const auto auth = ks.internal_authenticate(grant.nonce);
  const CardProof proof{std::string(ct::kCardNumber), grant.nonce, auth.counter, auth.pin_verified, auth.signature};
  try {
    service.holder_portfolio(ct::holder_ref(), proof);
    FAIL();
  } catch (const ServiceRefusal& e) {
    EXPECT_EQ(e.code(), "CARD_PROOF_INVALID");
    EXPECT_EQ(e.http_status(), 422);
  }
}

CertificateRequest certificate(std::string number) {
  CertificateRequest r;
  r.citizen_id = citizen_id();
  r.kind = 3;
  r.occupation = "4-04-05-05";
  r.level = 4;
  r.issuer = "湖北省职业技能鉴定指导中心";
  r.number = std::move(number);
  r.date = "2026-01-02";
  return r;
}

// The card went away before WRITE DIGEST (or the answer to the POST was lost): the service holds
// the certificate, the card an older digest. The clerk's retry is refused as a duplicate (P14) —
// and brings the card's digest up to date from that refusal.
TEST_F(Workflows, P14_ARetriedCertificateBringsTheCardsDigestUpToDate) {
  CardSession cs(*channel, *counter_keys);
  CounterWorkflow counter(cs, service, trust, clock);
  counter.record_certificate(certificate("S-0001"));
  channel->absent_at = apdu::kInsWriteDigest;
  EXPECT_THROW(counter.record_certificate(certificate("S-0002")), iso7816::CardRemovedError);
  const auto digest_version_on_card = [&] {
    cs.select();
    cs.open(CardRole::Counter);
    return schemas::decode_portfolio_digest(*cs.read_digest()).claims.digest_version;
  };
  ASSERT_EQ(digest_version_on_card(), 1u);
  ASSERT_EQ(service.digest_version, 2u);
  EXPECT_EQ(refusal_of([&] { counter.record_certificate(certificate("S-0002")); }), "P14_CERTIFICATE_DUPLICATE");
  EXPECT_EQ(digest_version_on_card(), 2u);
  EXPECT_EQ(service.digest_version, 2u) << "recorded once";
  // An older certificate again: refused, and the card's (current) digest is left as it is.
  const auto writes = channel->by_ins[apdu::kInsWriteDigest];
  EXPECT_EQ(refusal_of([&] { counter.record_certificate(certificate("S-0001")); }), "P14_CERTIFICATE_DUPLICATE");
  EXPECT_EQ(channel->by_ins[apdu::kInsWriteDigest], writes);
}

TEST_F(Workflows, KioskChecksEveryRecordAgainstTheCardsSignedDigest) {
  stored_voucher({kRegion}, {});
  CardSession cs(*channel, *counter_keys);
  CounterWorkflow counter(cs, service, trust, clock);
  counter.record_certificate(certificate("S-0001"));
  counter.record_certificate(certificate("S-0002"));
  // Recorded at the service but not yet written to the card.
  service.record_certificate([] {
    auto r = certificate("S-0003");
    r.card = std::string(ct::kCardNumber);
    return r;
  }());
  CardSession ks(*channel, *kiosk_keys);
  KioskWorkflow kiosk(ks, service, trust, clock);
  channel->by_ins.clear();
  channel->exchanges = 0;
  const auto view = kiosk.lookup(Pin(ct::kPin));
  // IU, EA, VERIFY, INTERNAL AUTHENTICATE, LIST, READ DIGEST (design.md, "Kiosk lookup").
  EXPECT_EQ(channel->exchanges - channel->by_ins[0xA4], 6u);
  EXPECT_EQ(view.holder, ct::holder_ref());
  ASSERT_TRUE(view.card_digest);
  EXPECT_EQ(view.card_digest->digest_version, 2u);
  EXPECT_TRUE(view.card_digest_out_of_date);
  ASSERT_EQ(view.records.size(), 3u);
  EXPECT_EQ(view.records[0].check, RecordCheck::OnCard);
  EXPECT_EQ(view.records[1].check, RecordCheck::OnCard);
  EXPECT_EQ(view.records[2].check, RecordCheck::NewerThanCard);
  EXPECT_EQ(view.records[0].record->number, "S-0001");
  ASSERT_EQ(view.vouchers.size(), 1u);
  EXPECT_TRUE(view.vouchers[0].token_verified) << view.vouchers[0].problem;
  EXPECT_EQ(view.vouchers[0].on_card, SlotState::Stored);
  EXPECT_EQ(channel->by_ins[apdu::kInsInternalAuthenticate], 1u);
  EXPECT_EQ(channel->by_ins[apdu::kInsReadDigest], 1u);
}

TEST_F(Workflows, KioskDetectsATamperedRecord) {
  CardSession cs(*channel, *counter_keys);
  CounterWorkflow counter(cs, service, trust, clock);
  counter.record_certificate(certificate("S-0001"));
  counter.record_certificate(certificate("S-0002"));
  // The service (or the network) alters the first record: a higher level.
  auto altered = schemas::decode_certificate_record(service.record_bytes[0]);
  altered.level = 1;
  service.record_bytes[0] = schemas::encode(altered);
  CardSession ks(*channel, *kiosk_keys);
  KioskWorkflow kiosk(ks, service, trust, clock);
  const auto view = kiosk.lookup(Pin(ct::kPin), false, true);
  ASSERT_EQ(view.records.size(), 2u);
  EXPECT_EQ(view.records[0].check, RecordCheck::Mismatch);
  EXPECT_EQ(view.records[1].check, RecordCheck::OnCard);
  EXPECT_FALSE(view.card_digest_out_of_date);
  EXPECT_TRUE(view.vouchers.empty());
}

TEST(KioskRecords, OlderRecordsBeyondElevenAreNotOnTheDigestOthersMismatch) {
  std::vector<PortfolioRecord> records;
  schemas::PortfolioDigestClaims digest;
  for (std::uint32_t v = 1; v <= 13; ++v) {
    records.push_back({Bytes{static_cast<std::uint8_t>(v)}, v, 0});
    if (v > 2) digest.digests.push_back(crypto::OpenSsl::sha256(records.back().record));
  }
  digest.digest_version = 13;
  const auto checked = check_records(records, digest);
  EXPECT_EQ(checked[0].check, RecordCheck::OlderThanCard);
  EXPECT_EQ(checked[1].check, RecordCheck::OlderThanCard);
  EXPECT_EQ(checked[2].check, RecordCheck::OnCard);
  records[5].record = Bytes{0xFF};
  EXPECT_EQ(check_records(records, digest)[5].check, RecordCheck::Mismatch);
  EXPECT_EQ(check_records(records, std::nullopt)[0].check, RecordCheck::NoCardDigest);
}

}  // namespace
}  // namespace skillcard::host
