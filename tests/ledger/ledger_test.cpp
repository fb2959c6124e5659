// Cards, vouchers, budgets, nonces and certificates: states, idempotent repeats, refusals, and
// the audit row every write leaves.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fixtures.hpp"
#include "skillcard/ledger/audit.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/refusals.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;

TEST(Ledger, RegisterCardIsIdempotentAndRefusesAnotherCardUnderTheSameNumber) {
  TempDir dir;
  auto ledger = open_ledger(dir / "ledger.db");
  const auto card = make_card(1, holder(1));
  EXPECT_EQ(ledger->register_card(card, clerk(), kNow), CardStatus::Registered);
  EXPECT_EQ(ledger->register_card(card, clerk(), kNow + 1), CardStatus::AlreadyRegisteredSame);
  auto other = make_card(1, holder(2));  // same number, another holder
  EXPECT_EQ(ledger->register_card(other, clerk(), kNow + 2), CardStatus::NumberTaken);
  const auto stored = ledger->card(card.number);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->holder, holder(1));
  EXPECT_EQ(stored->certificate, card.certificate);
  EXPECT_EQ(stored->state, CardState::Active);
  EXPECT_EQ(stored->registered_at, kNow);
}

TEST(Ledger, CardCertificateMustNameTheCard) {
  TempDir dir;
  auto ledger = open_ledger(dir / "ledger.db");
  auto card = make_card(1, holder(1));
  card.number = card_number(2);
  EXPECT_THROW(ledger->register_card(card, clerk(), kNow), std::invalid_argument);
  card = make_card(1, holder(1));
  card.region = 420500;
  EXPECT_THROW(ledger->register_card(card, clerk(), kNow), std::invalid_argument);
  EXPECT_FALSE(ledger->card(card_number(1)));
}

TEST(Ledger, IssuedVouchersGetSequentialIdsAndCommitTheirFaceValue) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 2, 1'000'000);
  const auto a = issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 180000), s.cards[0].number);
  const auto b = issue_ok(*s.ledger, claims_for(holder(2), FundSource::SpecialAccount, 120000), s.cards[1].number);
  EXPECT_EQ(serial_of(a.id()), 1u);
  EXPECT_EQ(serial_of(b.id()), 2u);
  EXPECT_EQ(a.state, VoucherState::Issued);
  EXPECT_EQ(a.signer, kVoucherKid);
  EXPECT_EQ(a.card, s.cards[0].number);
  // The stored token carries exactly the recorded claims, id included.
  const auto token = schemas::decode_voucher_token(a.token);
  EXPECT_EQ(token.claims, a.claims);
  EXPECT_EQ(token.claims.id, voucher_id(1));
  const auto budget = s.ledger->budget(FundSource::SpecialAccount);
  ASSERT_TRUE(budget);
  EXPECT_EQ(budget->committed_fen, 300000);
  EXPECT_EQ(budget->spent_fen, 0);
  EXPECT_EQ(budget->remaining_fen(), 700000);
  EXPECT_EQ(s.ledger->voucher(a.id()), a);
}

TEST(Ledger, IssueForAnotherHoldersCardOrARevokedCardIsRefused) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 2);
  const auto c = claims_for(holder(1));
  auto out = s.ledger->issue_voucher({c, s.cards[1].number}, generous(*s.ledger, c), fake_minter(), clerk(), kNow);
  EXPECT_EQ(out.status, IssueStatus::CardOfAnotherHolder);
  out = s.ledger->issue_voucher({c, card_number(99)}, generous(*s.ledger, c), fake_minter(), clerk(), kNow);
  EXPECT_EQ(out.status, IssueStatus::CardUnknown);
  s.ledger->mark_card_lost(s.cards[0].number, clerk(), kNow);
  out = s.ledger->issue_voucher({c, s.cards[0].number}, generous(*s.ledger, c), fake_minter(), clerk(), kNow);
  EXPECT_EQ(out.status, IssueStatus::CardNotActive);
  EXPECT_TRUE(s.ledger->holder_vouchers(holder(1)).empty());
}

TEST(Ledger, MinterFailureIssuesNothing) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 1, 1'000'000);
  const auto c = claims_for(holder(1));
  const auto head = s.ledger->audit_head();
  const TokenMinter failing = [](const schemas::VoucherClaims&) -> Bytes { throw std::runtime_error("HSM offline"); };
  EXPECT_THROW(s.ledger->issue_voucher({c, ""}, generous(*s.ledger, c), failing, clerk(), kNow), std::runtime_error);
  EXPECT_TRUE(s.ledger->holder_vouchers(holder(1)).empty());
  EXPECT_EQ(s.ledger->budget(FundSource::SpecialAccount)->committed_fen, 0);
  EXPECT_EQ(s.ledger->audit_head(), head) << "the audit row went with the rolled-back operation";
  // The serial was not consumed: ledger keys stay sequential.
  EXPECT_EQ(serial_of(issue_ok(*s.ledger, c).id()), 1u);
}

TEST(Ledger, MintedTokenMustCarryTheRequestedClaims) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 1);
  const auto c = claims_for(holder(1));
  const TokenMinter cheating = [](const schemas::VoucherClaims& claims) {
    auto other = claims;
    other.face_value_fen += 1;
    return schemas::sign_voucher(other, kVoucherKid, fake_sign);
  };
  EXPECT_THROW(s.ledger->issue_voucher({c, ""}, generous(*s.ledger, c), cheating, clerk(), kNow),
               std::invalid_argument);
  EXPECT_TRUE(s.ledger->holder_vouchers(holder(1)).empty());
}

TEST(Ledger, VoucherLifecycleWrittenVoidedExpired) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 1, 1'000'000);
  const auto a = issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 100000, kNow, 1000001));
  const auto b = issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 100000, kNow, 1000002));
  EXPECT_EQ(s.ledger->mark_written(a.id(), clerk(), kNow).status, VoucherStatus::Changed);
  EXPECT_EQ(s.ledger->mark_written(a.id(), clerk(), kNow).status, VoucherStatus::AlreadyInState);
  EXPECT_EQ(s.ledger->mark_written(voucher_id(99), clerk(), kNow).status, VoucherStatus::VoucherUnknown);
  EXPECT_THROW(s.ledger->void_voucher(a.id(), "", clerk(), kNow), std::invalid_argument);
  const auto voided = s.ledger->void_voucher(a.id(), "card write failed", clerk(), kNow + 5);
  EXPECT_EQ(voided.status, VoucherStatus::Changed);
  ASSERT_TRUE(voided.voucher);
  EXPECT_EQ(voided.voucher->state, VoucherState::Voided);
  EXPECT_EQ(voided.voucher->void_reason, "card write failed");
  EXPECT_EQ(s.ledger->void_voucher(a.id(), "again", clerk(), kNow).status, VoucherStatus::AlreadyInState);
  EXPECT_EQ(s.ledger->mark_written(a.id(), clerk(), kNow).status, VoucherStatus::WrongState);
  EXPECT_EQ(s.ledger->budget(FundSource::SpecialAccount)->committed_fen, 100000);
  // Expiry: only vouchers whose exp is before the cutoff.
  EXPECT_EQ(s.ledger->expire_vouchers(b.claims.expires_at, clerk(), kNow), 0u);
  EXPECT_EQ(s.ledger->expire_vouchers(b.claims.expires_at + 1, clerk(), kNow), 1u);
  EXPECT_EQ(s.ledger->voucher(b.id())->state, VoucherState::Expired);
  // The standing (what verify reads) follows the record: state and the token as issued.
  for (const auto* v : {&a, &b}) {
    const auto standing = s.ledger->voucher_standing(v->id());
    ASSERT_TRUE(standing);
    EXPECT_EQ(standing->state, s.ledger->voucher(v->id())->state);
    EXPECT_EQ(standing->token, v->token);
  }
  EXPECT_EQ(s.ledger->voucher_standing(a.id())->state, VoucherState::Voided);
  EXPECT_FALSE(s.ledger->voucher_standing(voucher_id(99)));
  EXPECT_EQ(s.ledger->budget(FundSource::SpecialAccount)->committed_fen, 0);
  EXPECT_EQ(s.ledger->void_voucher(b.id(), "late", clerk(), kNow).status, VoucherStatus::WrongState);
}

TEST(Ledger, BudgetCannotBeSetBelowWhatIsCommitted) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 1, 500000);
  issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 300000));
  EXPECT_EQ(s.ledger->set_budget(FundSource::SpecialAccount, 299999, clerk(), kNow), BudgetStatus::BelowCommitted);
  EXPECT_EQ(s.ledger->budget(FundSource::SpecialAccount)->allocated_fen, 500000);
  EXPECT_EQ(s.ledger->set_budget(FundSource::SpecialAccount, 300000, clerk(), kNow), BudgetStatus::Set);
  EXPECT_EQ(s.ledger->budget(FundSource::SpecialAccount)->remaining_fen(), 0);
  EXPECT_THROW(s.ledger->set_budget(FundSource::SpecialAccount, -1, clerk(), kNow), std::invalid_argument);
  EXPECT_FALSE(open_ledger(dir / "other.db")->budget(FundSource::OtherDepartment));
}

TEST(Ledger, BudgetInvariantIsAlsoADatabaseConstraint) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  seeded_ledger(file, 1, 1000).ledger.reset();
  Raw raw(file);
  EXPECT_THROW(raw.exec("UPDATE budgets SET committed_fen = 1001 WHERE fund = 1"), std::runtime_error);
  EXPECT_THROW(raw.exec("UPDATE budgets SET spent_fen = -1 WHERE fund = 1"), std::runtime_error);
}

TEST(Ledger, NonceIsSingleUse) {
  TempDir dir;
  auto ledger = open_ledger(dir / "ledger.db");
  const auto n = nonce(schemas::NonceKind::Server, 1);
  EXPECT_EQ(ledger->issue_nonce(n, "S0001", kNow, kNow + 300, clerk("S0001")), NonceStatus::Ok);
  EXPECT_EQ(ledger->issue_nonce(n, "S0002", kNow, kNow + 300, clerk("S0002")), NonceStatus::Duplicate);
  EXPECT_EQ(ledger->check_nonce(n, "S0001", kNow + 10), NonceStatus::Ok);
  EXPECT_EQ(ledger->check_nonce(n, "S0002", kNow + 10), NonceStatus::Unknown);
  EXPECT_EQ(ledger->check_nonce(n, "S0001", kNow + 300), NonceStatus::Expired);
  EXPECT_EQ(ledger->consume_nonce(n, "S0002", "test", clerk("S0002"), kNow + 10), NonceStatus::Unknown);
  EXPECT_EQ(ledger->consume_nonce(n, "S0001", "test", clerk("S0001"), kNow + 300), NonceStatus::Expired);
  EXPECT_EQ(ledger->consume_nonce(n, "S0001", "test", clerk("S0001"), kNow + 10), NonceStatus::Ok);
  EXPECT_EQ(ledger->consume_nonce(n, "S0001", "test", clerk("S0001"), kNow + 11), NonceStatus::Used);
  EXPECT_EQ(ledger->check_nonce(n, "S0001", kNow + 12), NonceStatus::Used);
  EXPECT_EQ(ledger->check_nonce(nonce(schemas::NonceKind::Server, 2), "S0001", kNow), NonceStatus::Unknown);
}

TEST(Ledger, NonceIsConsumedOnceUnderRace) {
  TempDir dir;
  auto ledger = open_ledger(dir / "ledger.db");
  constexpr int kNonces = 20;
  for (int i = 0; i < kNonces; ++i) {
    ledger->issue_nonce(nonce(schemas::NonceKind::Server, static_cast<unsigned>(i)), "S0001", kNow, kNow + 300,
                        clerk());
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kNonces; ++i) {
        if (ledger->consume_nonce(nonce(schemas::NonceKind::Server, static_cast<unsigned>(i)), "S0001", "race", clerk(),
                                  kNow + 1) == NonceStatus::Ok) {
          ++ok;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kNonces);
}

TEST(Ledger, CertificateIsRecordedOnceAndRaisesTheDigestVersion) {
  TempDir dir;
  auto ledger = open_ledger(dir / "ledger.db");
  schemas::CertificateRecord r;
  r.kind = schemas::CertificateKind::SkillLevel;
  r.occupation = 4040505;
  r.level = 4;
  r.issuer = "武汉市职业技能鉴定中心";
  r.number = "S2026-0001";
  r.date_days = 20000;
  r.salt = Bytes(16, 0x42);
  const auto encoded = schemas::encode(r);
  const auto first = ledger->record_certificate(holder(1), encoded, clerk(), kNow);
  ASSERT_EQ(first.status, CertificateStatus::Recorded);
  ASSERT_TRUE(first.entry);
  EXPECT_EQ(first.entry->record, r);
  EXPECT_EQ(first.entry->encoded, encoded);
  EXPECT_EQ(first.entry->digest_version, 1u);
  // P14: the same certificate again (even for another holder) is a duplicate, never recorded twice.
  const auto again = ledger->record_certificate(holder(2), encoded, clerk(), kNow + 1);
  EXPECT_EQ(again.status, CertificateStatus::Duplicate);
  EXPECT_EQ(again.entry->seq, first.entry->seq);
  r.number = "S2026-0002";
  const auto second = ledger->record_certificate(holder(1), schemas::encode(r), clerk(), kNow + 2);
  EXPECT_EQ(second.entry->digest_version, 2u);
  EXPECT_EQ(ledger->digest_version(holder(1)), 2u);
  EXPECT_EQ(ledger->digest_version(holder(2)), 0u);
  EXPECT_EQ(ledger->certificates(holder(1)).size(), 2u);
  EXPECT_THROW(ledger->record_certificate(holder(1), Bytes{0x01, 0x02}, clerk(), kNow), std::invalid_argument);
}

TEST(Ledger, LostCardVouchersMoveToTheReplacementAsTheSameSubsidy) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 1, 1'000'000);
  const auto& old_card = s.cards[0].number;
  const auto redeemed =
      issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 100000, kNow, 1000001), old_card);
  // Issued at a county's counter under its city's signer: the county's settings go with it.
  const auto open =
      issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 150000, kNow, 1000002), old_card, 420102);
  EXPECT_EQ(open.issuing_region, 420102u);
  EXPECT_EQ(s.ledger->voucher(open.id())->issuing_region, 420102u);
  EXPECT_EQ(s.ledger->voucher(redeemed.id())->issuing_region, 0u);  // none recorded
  ASSERT_EQ(s.ledger
                ->record_redemption(
                    redeem_request(receipt(redeemed.id(), 1, nonce(schemas::NonceKind::Terminal, 1)), old_card))
                .status,
            RecordStatus::Recorded);
  const auto counts_before = s.ledger->read_issue_counts({holder(1), 2026, FundSource::SpecialAccount, 1000002, 4});
  const auto budget_before = *s.ledger->budget(FundSource::SpecialAccount);

  const auto replacement = make_card(2, holder(1));
  ASSERT_EQ(s.ledger->register_card(replacement, clerk(), kNow), CardStatus::Registered);
  EXPECT_EQ(s.ledger->mark_card_lost(old_card, clerk(), kNow + 10), CardStatus::Changed);
  EXPECT_EQ(s.ledger->mark_card_lost(old_card, clerk(), kNow + 11), CardStatus::AlreadyInState);
  const auto moved = s.ledger->replace_card(old_card, replacement.number, fake_minter(), clerk(), kNow + 20);
  ASSERT_EQ(moved.status, CardStatus::Changed);
  ASSERT_EQ(moved.moved.size(), 1u);
  const auto& successor = moved.moved[0].to;
  EXPECT_EQ(moved.moved[0].from, open.id());
  EXPECT_EQ(successor.moved_from, open.id());
  EXPECT_EQ(successor.card, replacement.number);
  EXPECT_EQ(successor.state, VoucherState::Issued);
  EXPECT_EQ(successor.cst_year, open.cst_year);
  EXPECT_EQ(successor.issuing_region, 420102u);
  EXPECT_EQ(schemas::decode_voucher_token(successor.token).claims.id, successor.id());
  auto expected_claims = open.claims;
  expected_claims.id = successor.id();
  EXPECT_EQ(successor.claims, expected_claims);
  const auto old_voucher = s.ledger->voucher(open.id());
  EXPECT_EQ(old_voucher->state, VoucherState::Moved);
  EXPECT_EQ(old_voucher->moved_to, successor.id());
  EXPECT_EQ(s.ledger->voucher(redeemed.id())->state, VoucherState::Redeemed) << "redeemed vouchers stay";
  // The same subsidy: counts and budget unchanged.
  EXPECT_EQ(s.ledger->read_issue_counts({holder(1), 2026, FundSource::SpecialAccount, 1000002, 4}), counts_before);
  EXPECT_EQ(*s.ledger->budget(FundSource::SpecialAccount), budget_before);
  EXPECT_EQ(s.ledger->card(old_card)->state, CardState::Lost);
  EXPECT_EQ(s.ledger->card(old_card)->replaced_by, replacement.number);
  // The lost card's receipts are refused; the old id is no longer redeemable; the successor is.
  EXPECT_EQ(
      s.ledger
          ->record_redemption(redeem_request(receipt(open.id(), 2, nonce(schemas::NonceKind::Terminal, 2)), old_card))
          .status,
      RecordStatus::VoucherMoved);
  EXPECT_EQ(s.ledger
                ->record_redemption(
                    redeem_request(receipt(successor.id(), 3, nonce(schemas::NonceKind::Terminal, 3)), old_card))
                .status,
            RecordStatus::CardRevoked);
  EXPECT_EQ(s.ledger
                ->record_redemption(redeem_request(receipt(successor.id(), 1, nonce(schemas::NonceKind::Terminal, 4)),
                                                   replacement.number))
                .status,
            RecordStatus::Recorded);
  // Replacing again is idempotent.
  EXPECT_EQ(s.ledger->replace_card(old_card, replacement.number, fake_minter(), clerk(), kNow).status,
            CardStatus::AlreadyInState);
}

TEST(Ledger, ReplacementMustBeARegisteredActiveCardOfTheSameHolder) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 2);
  EXPECT_EQ(s.ledger->replace_card(s.cards[0].number, s.cards[1].number, fake_minter(), clerk(), kNow).status,
            CardStatus::ReplacementOfAnotherHolder);
  EXPECT_EQ(s.ledger->replace_card(s.cards[0].number, card_number(9), fake_minter(), clerk(), kNow).status,
            CardStatus::ReplacementUnknown);
  EXPECT_EQ(s.ledger->replace_card(card_number(9), s.cards[0].number, fake_minter(), clerk(), kNow).status,
            CardStatus::CardUnknown);
  EXPECT_EQ(s.ledger->card(s.cards[0].number)->state, CardState::Active);
}

TEST(Ledger, MoveIsAllOrNothing) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 1);
  for (unsigned i = 0; i < 3; ++i) {
    issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000001 + i), s.cards[0].number);
  }
  const auto replacement = make_card(2, holder(1));
  s.ledger->register_card(replacement, clerk(), kNow);
  int calls = 0;
  const TokenMinter flaky = [&](const schemas::VoucherClaims& c) {
    if (++calls == 3) throw std::runtime_error("signer failed on the third token");
    return schemas::sign_voucher(c, kVoucherKid, fake_sign);
  };
  EXPECT_THROW(s.ledger->replace_card(s.cards[0].number, replacement.number, flaky, clerk(), kNow), std::runtime_error);
  EXPECT_EQ(s.ledger->card(s.cards[0].number)->state, CardState::Active);
  const auto vouchers = s.ledger->holder_vouchers(holder(1));
  ASSERT_EQ(vouchers.size(), 3u);
  for (const auto& v : vouchers) EXPECT_EQ(v.state, VoucherState::Issued);
}

TEST(Ledger, RefusalCodesAreInTheCatalogue) {
  for (int s = 0; s <= static_cast<int>(RecordStatus::ReceiptMalformed); ++s) {
    const auto code = refusal_code(static_cast<RecordStatus>(s));
    if (!code.empty()) {
      EXPECT_NO_THROW(schemas::refusal(code)) << code;
    }
  }
  for (int s = 0; s <= static_cast<int>(NonceStatus::Used); ++s) {
    const auto code = refusal_code(static_cast<NonceStatus>(s));
    if (!code.empty()) {
      EXPECT_NO_THROW(schemas::refusal(code)) << code;
    }
  }
  for (int s = 0; s <= static_cast<int>(CardStatus::ReplacementOfAnotherHolder); ++s) {
    const auto code = refusal_code(static_cast<CardStatus>(s));
    if (!code.empty()) {
      EXPECT_NO_THROW(schemas::refusal(code)) << code;
    }
  }
  for (const char* code : {"P1_ANNUAL_LIMIT", "P2_EMPLOYMENT_FUND_LIMIT", "P3_SAME_OCCUPATION_LEVEL",
                           "P16_BUDGET_EXHAUSTED", "P14_CERTIFICATE_DUPLICATE"}) {
    EXPECT_NO_THROW(schemas::refusal(code)) << code;
  }
  EXPECT_EQ(refusal_code(RecordStatus::VoucherAlreadyRedeemed), "P15_ALREADY_REDEEMED");
  EXPECT_EQ(refusal_code(RecordStatus::CounterReused), "COUNTER_REUSED");
  // Every refusal a lost report or a replacement can meet has a code (the service answers with it).
  for (const auto s : {CardStatus::CardUnknown, CardStatus::CardNotActive, CardStatus::ReplacementUnknown,
                       CardStatus::ReplacementNotActive, CardStatus::ReplacementOfAnotherHolder}) {
    EXPECT_FALSE(refusal_code(s).empty()) << to_string(s);
  }
  EXPECT_EQ(refusal_code(CardStatus::ReplacementOfAnotherHolder), "P13_REGISTRY_MISMATCH");
}

// The issuing region's migration (SQLite 4, PostgreSQL 5) undone exactly.
constexpr const char* kUndoSqliteMigration4 = R"sql(
ALTER TABLE vouchers DROP COLUMN issuing_region;
DELETE FROM schema_version WHERE version = 4;
)sql";
constexpr const char* kUndoPgMigration5 = R"sql(
ALTER TABLE vouchers DROP COLUMN issuing_region;
DROP DOMAIN skillcard_region;
DELETE FROM schema_version WHERE version = 5;
)sql";

// The redemption triggers' migration (SQLite 3, PostgreSQL 4) undone exactly.
constexpr const char* kUndoSqliteMigration3 = R"sql(
DROP TRIGGER redemptions_reversal_final;
DROP TRIGGER redemptions_receipt_fixed;
CREATE TRIGGER redemptions_receipt_fixed BEFORE UPDATE OF voucher, card, counter, receipt, nonce ON redemptions
BEGIN SELECT RAISE(ABORT, 'a recorded receipt never changes'); END;
DELETE FROM schema_version WHERE version = 3;
)sql";
constexpr const char* kUndoPgMigration4 = R"sql(
DROP TRIGGER redemptions_reversal_final ON redemptions;
DROP TRIGGER redemptions_receipt_fixed ON redemptions;
CREATE TRIGGER redemptions_receipt_fixed BEFORE UPDATE OF voucher, card, counter, receipt, nonce ON redemptions
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('a recorded receipt never changes');
DELETE FROM schema_version WHERE version = 4;
)sql";

// PostgreSQL's migration 3 undone exactly: the domains back to the base types and the column
// CHECK constraints of version 1, under their default names.
constexpr const char* kUndoPgMigration3 = R"sql(
DROP TRIGGER redemptions_receipt_fixed ON redemptions;
ALTER TABLE vouchers
  ALTER COLUMN signer_kid TYPE BYTEA, ALTER COLUMN holder TYPE BYTEA, ALTER COLUMN level TYPE BIGINT,
  ALTER COLUMN fund TYPE BIGINT, ALTER COLUMN face_value_fen TYPE BIGINT, ALTER COLUMN state TYPE BIGINT,
  ADD CONSTRAINT vouchers_signer_kid_check CHECK (octet_length(signer_kid) = 8),
  ADD CONSTRAINT vouchers_holder_check CHECK (octet_length(holder) = 16),
  ADD CONSTRAINT vouchers_level_check CHECK (level BETWEEN 1 AND 5),
  ADD CONSTRAINT vouchers_fund_check CHECK (fund BETWEEN 1 AND 4),
  ADD CONSTRAINT vouchers_face_value_fen_check CHECK (face_value_fen >= 0),
  ADD CONSTRAINT vouchers_state_check CHECK (state BETWEEN 1 AND 6);
ALTER TABLE redemptions ALTER COLUMN counter TYPE BIGINT, ALTER COLUMN nonce TYPE BYTEA,
  ADD CONSTRAINT redemptions_counter_check CHECK (counter >= 0),
  ADD CONSTRAINT redemptions_nonce_check CHECK (octet_length(nonce) = 17);
CREATE TRIGGER redemptions_receipt_fixed BEFORE UPDATE OF voucher, card, counter, receipt, nonce ON redemptions
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('a recorded receipt never changes');
ALTER TABLE budgets ALTER COLUMN fund TYPE BIGINT, ALTER COLUMN allocated_fen TYPE BIGINT,
  ALTER COLUMN committed_fen TYPE BIGINT, ALTER COLUMN spent_fen TYPE BIGINT,
  ADD CONSTRAINT budgets_fund_check CHECK (fund BETWEEN 1 AND 4),
  ADD CONSTRAINT budgets_allocated_fen_check CHECK (allocated_fen >= 0),
  ADD CONSTRAINT budgets_committed_fen_check CHECK (committed_fen >= 0),
  ADD CONSTRAINT budgets_spent_fen_check CHECK (spent_fen >= 0);
ALTER TABLE audit_log ALTER COLUMN prev_hash TYPE BYTEA, ALTER COLUMN hash TYPE BYTEA,
  ADD CONSTRAINT audit_log_prev_hash_check CHECK (octet_length(prev_hash) = 32),
  ADD CONSTRAINT audit_log_hash_check CHECK (octet_length(hash) = 32);
ALTER TABLE nonces ALTER COLUMN nonce TYPE BYTEA, ADD CONSTRAINT nonces_nonce_check CHECK (octet_length(nonce) = 17);
DROP DOMAIN skillcard_bytes8, skillcard_bytes16, skillcard_bytes17, skillcard_bytes32, skillcard_level,
  skillcard_fund, skillcard_nonnegative, skillcard_voucher_state;
DELETE FROM schema_version WHERE version = 3;
)sql";

// Schema version 2 (both backends; PostgreSQL's version 3 on top): a version 1 ledger — rebuilt
// here from a current one by undoing the later migrations exactly — is migrated at open; its
// records, budgets and audit chain are untouched, the expiry index no longer names the state, and
// the sweep still finds what expires.
TEST(Ledger, SchemaVersion1LedgerIsMigratedAtOpenWithItsDataIntact) {
  TempDir dir;
  const auto where = dir / "ledger.db";
  const bool pg = backend_name() == "postgresql";
  const int current = pg ? 5 : 4;
  std::vector<VoucherRecord> before;
  AuditHead head;
  std::optional<RedemptionRecord> redeemed;
  {
    auto s = seeded_ledger(where, 2, 1'000'000);
    const auto a = issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000001));
    const auto b =
        issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 2000, kNow, 1000002), s.cards[0].number);
    issue_ok(*s.ledger, claims_for(holder(2), FundSource::SpecialAccount, 4000, kNow + 10, 1000003));
    s.ledger->mark_written(a.id(), clerk(), kNow);
    ASSERT_EQ(s.ledger
                  ->record_redemption(
                      redeem_request(receipt(b.id(), 1, nonce(schemas::NonceKind::Terminal, 1)), s.cards[0].number))
                  .status,
              RecordStatus::Recorded);
    for (unsigned h : {1u, 2u}) {
      for (auto& v : s.ledger->holder_vouchers(holder(h))) before.push_back(v);
    }
    head = s.ledger->audit_head();
    redeemed = s.ledger->redemption(b.id());
  }
  {
    Raw raw(where);
    raw.exec(pg ? kUndoPgMigration5 : kUndoSqliteMigration4);
    raw.exec(pg ? kUndoPgMigration4 : kUndoSqliteMigration3);
    if (pg) raw.exec(kUndoPgMigration3);
    raw.exec("DROP INDEX vouchers_by_expiry");
    raw.exec("CREATE INDEX vouchers_live_by_expiry ON vouchers (expires_at) WHERE state IN (1, 2)");
    if (pg) raw.exec("ALTER TABLE vouchers RESET (fillfactor)");
    raw.exec("DELETE FROM schema_version WHERE version = 2");
    ASSERT_EQ(raw.number("SELECT max(version) FROM schema_version"), 1);
  }
  auto ledger = open_ledger(where);
  EXPECT_EQ(ledger->schema_version(), current);
  std::vector<VoucherRecord> after;
  for (unsigned h : {1u, 2u}) {
    for (auto& v : ledger->holder_vouchers(holder(h))) after.push_back(v);
  }
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after, before);
  EXPECT_EQ(ledger->audit_head(), head);
  EXPECT_EQ(ledger->redemption(before[1].id()), redeemed);
  EXPECT_EQ(ledger->budget(FundSource::SpecialAccount)->committed_fen, 5000);
  EXPECT_EQ(ledger->budget(FundSource::SpecialAccount)->spent_fen, 2000);
  {
    Raw raw(where);
    EXPECT_EQ(raw.number("SELECT count(*) FROM schema_version"), current);
    const std::string index_named = pg ? "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND "
                                         "indexname = '"
                                       : "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = '";
    EXPECT_EQ(raw.number(index_named + "vouchers_by_expiry'"), 1);
    EXPECT_EQ(raw.number(index_named + "vouchers_live_by_expiry'"), 0);
    if (pg) {
      EXPECT_EQ(raw.number("SELECT count(*) FROM pg_class WHERE oid = 'vouchers'::regclass AND "
                           "reloptions @> ARRAY['fillfactor=90']"),
                1);
    }
  }
  // The live ones (a written, the third issued) expire; the redeemed one does not.
  EXPECT_EQ(ledger->expire_vouchers(kNow + 10 + 92 * 86400 + 1, clerk(), kNow), 2u);
  EXPECT_EQ(ledger->voucher(before[0].id())->state, VoucherState::Expired);
  EXPECT_EQ(ledger->voucher(before[1].id())->state, VoucherState::Redeemed);
  EXPECT_EQ(ledger->voucher(before[2].id())->state, VoucherState::Expired);
}

// The sweep reads from the last sweep's cutoff on, plus the vouchers added since: a voucher issued
// after a sweep with an expiry before that sweep's cutoff, and a sweep with a lower cutoff than the
// last, still expire exactly the live vouchers whose expiry is before the cutoff — and no others.
TEST(Ledger, ExpirySweepsFindEveryLiveVoucherWhateverTheOrderOfCutoffs) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 1, 1'000'000);
  const auto at = [&](UtcSeconds expires, std::uint32_t occupation) {
    auto c = claims_for(holder(1), FundSource::SpecialAccount, 100, kNow, occupation);
    c.expires_at = expires;
    return issue_ok(*s.ledger, c, s.cards[0].number);
  };
  const auto early = at(kNow + 1000, 1000001);
  const auto late = at(kNow + 5000, 1000002);
  EXPECT_EQ(s.ledger->expire_vouchers(kNow + 3000, clerk(), kNow), 1u);  // early
  EXPECT_EQ(s.ledger->voucher(early.id())->state, VoucherState::Expired);
  EXPECT_EQ(s.ledger->voucher(late.id())->state, VoucherState::Issued);
  const auto after_sweep = at(kNow + 2000, 1000003);  // below the last cutoff, issued later
  const auto lower = at(kNow + 500, 1000004);
  EXPECT_EQ(s.ledger->expire_vouchers(kNow + 1000, clerk(), kNow), 1u);  // a lower cutoff: `lower` only
  EXPECT_EQ(s.ledger->voucher(lower.id())->state, VoucherState::Expired);
  EXPECT_EQ(s.ledger->voucher(after_sweep.id())->state, VoucherState::Issued);
  EXPECT_EQ(s.ledger->expire_vouchers(kNow + 3000, clerk(), kNow), 1u);  // the same cutoff again
  EXPECT_EQ(s.ledger->voucher(after_sweep.id())->state, VoucherState::Expired);
  EXPECT_EQ(s.ledger->expire_vouchers(kNow + 3000, clerk(), kNow), 0u);
  EXPECT_EQ(s.ledger->voucher(late.id())->state, VoucherState::Issued);
  const auto redeemed_late = at(kNow + 4000, 1000005);
  ASSERT_EQ(s.ledger
                ->record_redemption(redeem_request(
                    receipt(redeemed_late.id(), 1, nonce(schemas::NonceKind::Terminal, 1)), s.cards[0].number))
                .status,
            RecordStatus::Recorded);
  EXPECT_EQ(s.ledger->expire_vouchers(kNow + 6000, clerk(), kNow), 1u);  // late; not the redeemed one
  EXPECT_EQ(s.ledger->voucher(late.id())->state, VoucherState::Expired);
  EXPECT_EQ(s.ledger->voucher(redeemed_late.id())->state, VoucherState::Redeemed);
  EXPECT_EQ(s.ledger->budget(FundSource::SpecialAccount)->committed_fen, 0);
  EXPECT_EQ(s.ledger->budget(FundSource::SpecialAccount)->spent_fen, 100);
}

// A voucher id at or above 2^63 (any 8 bytes a terminal sends) names no voucher: it is
// VOUCHER_UNKNOWN and audited like any other refusal, never a storage error (a 503 "retry").
TEST(Ledger, AVoucherIdAboveTheSerialRangeIsUnknownAndAudited) {
  TempDir dir;
  auto ledger = open_ledger(dir / "ledger.db");
  VoucherId id;
  id.fill(0xFF);
  EXPECT_FALSE(ledger->voucher(id));
  EXPECT_FALSE(ledger->voucher_standing(id));
  EXPECT_FALSE(ledger->redemption(id));
  EXPECT_EQ(ledger->mark_written(id, clerk(), kNow).status, VoucherStatus::VoucherUnknown);
  const auto after_written = ledger->audit_entries(1, 100);
  ASSERT_FALSE(after_written.empty());
  EXPECT_EQ(after_written.back().action, "voucher.written");
  EXPECT_EQ(after_written.back().outcome, std::string(to_string(VoucherStatus::VoucherUnknown)));
  EXPECT_EQ(after_written.back().subject, "voucher:ffffffffffffffff");
  EXPECT_EQ(ledger->void_voucher(id, "test", clerk(), kNow).status, VoucherStatus::VoucherUnknown);
  EXPECT_EQ(ledger->reverse_redemption(id, "test", clerk(), kNow).status, ReversalStatus::NotRedeemed);
}
