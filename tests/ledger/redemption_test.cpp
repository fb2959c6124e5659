// Redemptions: exactly once per voucher and per (card, counter), idempotent repeats of the same
// receipt, live and offline nonces, refusals by voucher and card state, reversals.
#include <gtest/gtest.h>

#include "fixtures.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;
using schemas::NonceKind;

namespace {

// Two holders with a card each; three vouchers of holder 1 (employment fund) on its card.
struct RedemptionSetup {
  RedemptionSetup() {
    s = seeded_ledger(dir / "ledger.db", 2, 10'000'000);
    card = s.cards[0].number;
    for (unsigned i = 0; i < 3; ++i) {
      vouchers.push_back(issue_ok(
          *s.ledger, claims_for(holder(1), FundSource::EmploymentSubsidyFund, 180000, kNow, 1000001 + i), card));
    }
  }
  RecordOutcome redeem(std::size_t v, std::uint32_t counter, std::uint64_t nonce_index,
                       NonceKind kind = NonceKind::Terminal, NonceRule rule = NonceRule::Unseen) {
    return s.ledger->record_redemption(
        redeem_request(receipt(vouchers[v].id(), counter, nonce(kind, nonce_index)), card, rule));
  }
  TempDir dir;
  SeededLedger s;
  std::string card;
  std::vector<VoucherRecord> vouchers;
};

struct LedgerRedemption : ::testing::Test, RedemptionSetup {};

}  // namespace

TEST_F(LedgerRedemption, RedemptionIsRecordedFromItsReceipt) {
  const auto bytes = receipt(vouchers[0].id(), 7, nonce(NonceKind::Terminal, 1));
  const auto out = s.ledger->record_redemption(redeem_request(bytes, card));
  ASSERT_EQ(out.status, RecordStatus::Recorded);
  ASSERT_TRUE(out.record);
  const auto& r = *out.record;
  EXPECT_EQ(r.seq, 1u);
  EXPECT_EQ(r.voucher, vouchers[0].id());
  EXPECT_EQ(r.card, card);
  EXPECT_EQ(r.counter, 7u);
  EXPECT_EQ(r.receipt, bytes);
  EXPECT_EQ(r.site, kSite);
  EXPECT_EQ(r.nonce, nonce(NonceKind::Terminal, 1));
  EXPECT_EQ(r.terminal_time, kNow + 3600);
  EXPECT_EQ(r.server_time, kNow + 3700);
  EXPECT_EQ(r.classroom_hours, 84);
  EXPECT_EQ(r.online_hours, 36);
  EXPECT_EQ(r.actor.terminal, "S0001");
  EXPECT_FALSE(r.reversed_at);
  EXPECT_EQ(s.ledger->voucher(vouchers[0].id())->state, VoucherState::Redeemed);
  EXPECT_EQ(s.ledger->redemption(vouchers[0].id()), r);
  EXPECT_EQ(s.ledger->redemption_by_counter(card, 7), r);
  const auto budget = *s.ledger->budget(FundSource::EmploymentSubsidyFund);
  EXPECT_EQ(budget.committed_fen, 2 * 180000);
  EXPECT_EQ(budget.spent_fen, 180000);
}

// P12's order check reads the card's receipts around a counter, not only its neighbour: gaps (a
// receipt never uploaded) and receipts synced out of order are still compared.
TEST_F(LedgerRedemption, ReceiptTimesAroundACounterSpanGapsInBothDirections) {
  EXPECT_EQ(s.ledger->receipt_times_around(card, 5), ReceiptTimesAround{});
  const auto at = [&](std::size_t v, std::uint32_t counter, UtcSeconds time) {
    return s.ledger
        ->record_redemption(
            redeem_request(receipt(vouchers[v].id(), counter, nonce(NonceKind::Terminal, counter), kSite, time), card))
        .status;
  };
  ASSERT_EQ(at(0, 2, kNow + 100), RecordStatus::Recorded);
  ASSERT_EQ(at(1, 3, kNow + 50), RecordStatus::Recorded);
  ASSERT_EQ(at(2, 9, kNow + 900), RecordStatus::Recorded);
  EXPECT_EQ(s.ledger->receipt_times_around(card, 5), (ReceiptTimesAround{kNow + 100, kNow + 900}));
  EXPECT_EQ(s.ledger->receipt_times_around(card, 1), (ReceiptTimesAround{std::nullopt, kNow + 50}));
  EXPECT_EQ(s.ledger->receipt_times_around(card, 10), (ReceiptTimesAround{kNow + 900, std::nullopt}));
  EXPECT_EQ(s.ledger->receipt_times_around(s.cards[1].number, 5), ReceiptTimesAround{});  // another card's
}

TEST_F(LedgerRedemption, SameReceiptTwiceReturnsTheSameRecord) {
  const auto bytes = receipt(vouchers[0].id(), 1, nonce(NonceKind::Terminal, 1));
  const auto first = s.ledger->record_redemption(redeem_request(bytes, card));
  ASSERT_EQ(first.status, RecordStatus::Recorded);
  auto again_request = redeem_request(bytes, card);
  again_request.server_time += 100;  // a retry after a lost answer
  const auto again = s.ledger->record_redemption(again_request);
  EXPECT_EQ(again.status, RecordStatus::AlreadyRecordedSame);
  EXPECT_EQ(again.record, first.record);
  EXPECT_EQ(s.ledger->budget(FundSource::EmploymentSubsidyFund)->spent_fen, 180000) << "paid once";
  EXPECT_EQ(s.ledger->list_redemptions({}).size(), 1u);
}

TEST_F(LedgerRedemption, SecondReceiptForRedeemedVoucherIsRefused) {
  const auto first = redeem(0, 1, 1);
  ASSERT_EQ(first.status, RecordStatus::Recorded);
  const auto second = redeem(0, 2, 2);  // another, valid-looking receipt for the same voucher
  EXPECT_EQ(second.status, RecordStatus::VoucherAlreadyRedeemed);
  EXPECT_EQ(second.record, first.record) << "names the redemption that stands";
  EXPECT_EQ(refusal_code(second.status), "P15_ALREADY_REDEEMED");
  EXPECT_FALSE(s.ledger->redemption_by_counter(card, 2));
}

TEST(Ledger, CardCounterPairIsNeverReused) {
  RedemptionSetup t;
  auto& s = t.s;
  auto& vouchers = t.vouchers;
  const auto redeem = [&](std::size_t v, std::uint32_t counter, std::uint64_t n) { return t.redeem(v, counter, n); };
  ASSERT_EQ(redeem(0, 5, 1).status, RecordStatus::Recorded);
  const auto reused = redeem(1, 5, 2);
  EXPECT_EQ(reused.status, RecordStatus::CounterReused);
  EXPECT_EQ(s.ledger->voucher(vouchers[1].id())->state, VoucherState::Issued);
  EXPECT_EQ(redeem(1, 6, 3).status, RecordStatus::Recorded);
}

TEST_F(LedgerRedemption, LiveNonceMustBeIssuedToTheTerminalUnexpiredAndUnused) {
  const auto live = [&](std::size_t v, std::uint32_t counter, std::uint64_t n) {
    return redeem(v, counter, n, NonceKind::Server, NonceRule::Live);
  };
  EXPECT_EQ(live(0, 1, 1).status, RecordStatus::NonceUnknown);  // never issued
  s.ledger->issue_nonce(nonce(NonceKind::Server, 1), "S0002", kNow, kNow + 300, clerk("S0002"));
  EXPECT_EQ(live(0, 1, 1).status, RecordStatus::NonceUnknown);  // issued to another terminal
  s.ledger->issue_nonce(nonce(NonceKind::Server, 2), "S0001", kNow, kNow + 300, clerk("S0001"));
  EXPECT_EQ(live(0, 1, 2).status, RecordStatus::NonceExpired);  // server time is kNow + 3700
  s.ledger->issue_nonce(nonce(NonceKind::Server, 3), "S0001", kNow + 3600, kNow + 3900, clerk("S0001"));
  EXPECT_EQ(redeem(0, 1, 3, NonceKind::Terminal, NonceRule::Live).status, RecordStatus::NonceUnknown)
      << "the online path needs a server nonce";
  ASSERT_EQ(live(0, 1, 3).status, RecordStatus::Recorded);
  EXPECT_EQ(s.ledger->check_nonce(nonce(NonceKind::Server, 3), "S0001", kNow + 3701), NonceStatus::Used);
  EXPECT_EQ(live(1, 2, 3).status, RecordStatus::NonceReused);
}

TEST_F(LedgerRedemption, RefusedRedemptionLeavesTheNonceUnused) {
  s.ledger->issue_nonce(nonce(NonceKind::Server, 1), "S0001", kNow + 3600, kNow + 3900, clerk("S0001"));
  ASSERT_EQ(s.ledger->void_voucher(vouchers[0].id(), "test", clerk(), kNow).status, VoucherStatus::Changed);
  EXPECT_EQ(redeem(0, 1, 1, NonceKind::Server, NonceRule::Live).status, RecordStatus::VoucherVoided);
  EXPECT_EQ(s.ledger->check_nonce(nonce(NonceKind::Server, 1), "S0001", kNow + 3700), NonceStatus::Ok);
  EXPECT_EQ(redeem(1, 1, 1, NonceKind::Server, NonceRule::Live).status, RecordStatus::Recorded);
}

TEST_F(LedgerRedemption, SyncAcceptsEachNonceOnce) {
  ASSERT_EQ(redeem(0, 1, 42).status, RecordStatus::Recorded);  // offline, terminal nonce
  EXPECT_EQ(redeem(1, 2, 42).status, RecordStatus::NonceReused);
  // A server nonce on the sync path (its answer was lost): ours, used once.
  EXPECT_EQ(redeem(1, 2, 43, NonceKind::Server).status, RecordStatus::NonceUnknown);
  s.ledger->issue_nonce(nonce(NonceKind::Server, 43), "S0001", kNow, kNow + 300, clerk("S0001"));
  EXPECT_EQ(redeem(1, 2, 43, NonceKind::Server).status, RecordStatus::Recorded) << "expired is fine on sync (P12)";
  EXPECT_EQ(redeem(2, 3, 43, NonceKind::Server).status, RecordStatus::NonceReused);
}

TEST_F(LedgerRedemption, RedemptionOfUnknownVoidedOrExpiredVoucherIsRefused) {
  auto unknown = receipt(voucher_id(999), 1, nonce(NonceKind::Terminal, 1));
  EXPECT_EQ(s.ledger->record_redemption(redeem_request(unknown, card)).status, RecordStatus::VoucherUnknown);
  s.ledger->void_voucher(vouchers[0].id(), "test", clerk(), kNow);
  EXPECT_EQ(redeem(0, 1, 1).status, RecordStatus::VoucherVoided);
  s.ledger->expire_vouchers(vouchers[1].claims.expires_at + 1, clerk(), kNow);
  EXPECT_EQ(redeem(1, 2, 2).status, RecordStatus::VoucherExpired);
  EXPECT_TRUE(s.ledger->list_redemptions({}).empty());
}

TEST_F(LedgerRedemption, ReceiptFromAnotherHoldersOrAnUnknownCardIsRefused) {
  auto request = redeem_request(receipt(vouchers[0].id(), 1, nonce(NonceKind::Terminal, 1)), s.cards[1].number);
  EXPECT_EQ(s.ledger->record_redemption(request).status, RecordStatus::CardOfAnotherHolder);
  request.card = card_number(77);
  EXPECT_EQ(s.ledger->record_redemption(request).status, RecordStatus::CardUnknown);
  request.card = "12";
  EXPECT_THROW(s.ledger->record_redemption(request), std::invalid_argument);
}

TEST_F(LedgerRedemption, MalformedReceiptIsRefusedAndAudited) {
  const auto before = s.ledger->audit_head().count;
  const auto out = s.ledger->record_redemption(redeem_request(Bytes{0xD2, 0x84, 0x00}, card));
  EXPECT_EQ(out.status, RecordStatus::ReceiptMalformed);
  const auto rows = s.ledger->audit_entries(before + 1, 10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].action, "redemption.record");
  EXPECT_EQ(rows[0].outcome, "TOKEN_MALFORMED");
}

TEST_F(LedgerRedemption, RefusalsAreAuditedWithTheirCode) {
  ASSERT_EQ(redeem(0, 1, 1).status, RecordStatus::Recorded);
  ASSERT_EQ(redeem(0, 2, 2).status, RecordStatus::VoucherAlreadyRedeemed);
  const auto head = s.ledger->audit_head();
  const auto last = s.ledger->audit_entries(head.count, 1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].outcome, "P15_ALREADY_REDEEMED");
  EXPECT_EQ(last[0].subject, "voucher:" + lower_hex(vouchers[0].id()));
}

TEST(Ledger, ReversalIsAuditedNeverDeleted) {
  RedemptionSetup t;
  auto& s = t.s;
  auto& vouchers = t.vouchers;
  auto& dir = t.dir;
  const auto redeem = [&](std::size_t v, std::uint32_t counter, std::uint64_t n) { return t.redeem(v, counter, n); };
  ASSERT_EQ(redeem(0, 1, 1).status, RecordStatus::Recorded);
  EXPECT_THROW(s.ledger->reverse_redemption(vouchers[0].id(), "", clerk(), kNow), std::invalid_argument);
  const auto out = s.ledger->reverse_redemption(vouchers[0].id(), "trainee absent, receipt disputed",
                                                clerk("OP01", "auditor"), kNow + 4000);
  ASSERT_EQ(out.status, ReversalStatus::Reversed);
  ASSERT_TRUE(out.record);
  EXPECT_EQ(out.record->reversed_at, kNow + 4000);
  EXPECT_EQ(out.record->reversal_reason, "trainee absent, receipt disputed");
  EXPECT_EQ(s.ledger->redemption(vouchers[0].id()), out.record) << "the redemption row stays";
  EXPECT_EQ(s.ledger->voucher(vouchers[0].id())->state, VoucherState::Voided);
  EXPECT_EQ(s.ledger->budget(FundSource::EmploymentSubsidyFund)->spent_fen, 0);
  EXPECT_EQ(s.ledger->reverse_redemption(vouchers[0].id(), "again", clerk(), kNow).status,
            ReversalStatus::AlreadyReversed);
  EXPECT_EQ(s.ledger->reverse_redemption(vouchers[1].id(), "never", clerk(), kNow).status, ReversalStatus::NotRedeemed);
  EXPECT_EQ(redeem(0, 2, 2).status, RecordStatus::VoucherAlreadyRedeemed) << "never redeemable again";
  const auto head = s.ledger->audit_head();
  bool audited = false;
  for (const auto& e : s.ledger->audit_entries(1, 1000)) {
    audited |= e.action == "redemption.reverse" && e.outcome == "ok" && e.clerk == "auditor" &&
               e.subject == "voucher:" + lower_hex(vouchers[0].id()) + " reason:trainee absent, receipt disputed";
  }
  EXPECT_TRUE(audited);
  // Even with SQL access, a DELETE or a change of the receipt is refused by the schema.
  s.ledger.reset();
  Raw raw(dir / "ledger.db");
  EXPECT_THROW(raw.exec("DELETE FROM redemptions"), std::runtime_error);
  EXPECT_THROW(raw.exec("UPDATE redemptions SET receipt = x'00'"), std::runtime_error);
  // Nor what decides who is paid and in which month, nor the reversal once recorded.
  EXPECT_THROW(raw.exec("UPDATE redemptions SET site = 99999"), std::runtime_error);
  EXPECT_THROW(raw.exec("UPDATE redemptions SET server_time = 0"), std::runtime_error);
  EXPECT_THROW(raw.exec("UPDATE redemptions SET classroom_hours = classroom_hours + 1"), std::runtime_error);
  EXPECT_THROW(raw.exec("UPDATE redemptions SET terminal = 'someone else'"), std::runtime_error);
  EXPECT_THROW(raw.exec("UPDATE redemptions SET reversed_at = NULL"), std::runtime_error);
  EXPECT_THROW(raw.exec("UPDATE redemptions SET reversal_reason = 'rewritten'"), std::runtime_error);
  EXPECT_THROW(raw.exec("DELETE FROM vouchers"), std::runtime_error);
  EXPECT_EQ(raw.number("SELECT count(*) FROM redemptions"), 1);
  EXPECT_GT(head.count, 0u);
}
