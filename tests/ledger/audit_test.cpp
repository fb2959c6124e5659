// The audit chain and its signed checkpoints against an insider with SQL access: a removed,
// altered or reordered row, a truncated log, and a chain rewritten without the checkpoint key.
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "skillcard/crypto/signer.hpp"
#include "skillcard/ledger/audit.hpp"
#include "skillcard/schemas/cose.hpp"
#include "skillcard/schemas/errors.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;
using schemas::NonceKind;

namespace {

struct Audit : ::testing::Test {
  void SetUp() override {
    auto s = seeded_ledger(file, 2);
    for (unsigned v = 0; v < 3; ++v) {
      const auto voucher = issue_ok(
          *s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), s.cards[0].number);
      s.ledger->record_redemption(
          redeem_request(receipt(voucher.id(), v + 1, nonce(NonceKind::Terminal, v)), s.cards[0].number));
    }
    rows = s.ledger->audit_head().count;
    checkpoint = make_checkpoint(*s.ledger, signer, kNow + 5000);
  }
  void tamper(const std::string& sql) {
    Raw raw(file);
    raw.exec("DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;");
    raw.exec(sql);
  }
  AuditReport verify(const std::vector<Bytes>& checkpoints) {
    auto ledger = open_ledger(file);
    return verify_audit(*ledger, checkpoints, key);
  }
  AuditReport verify() { return verify({checkpoint}); }
  static bool has(const AuditReport& r, AuditProblemKind kind, std::uint64_t seq) {
    for (const auto& p : r.problems) {
      if (p.kind == kind && p.seq == seq) return true;
    }
    return false;
  }
  // What an insider without the audit key does after editing a row: recompute every hash.
  void rechain() {
    std::vector<AuditEntry> entries;
    {
      auto ledger = open_ledger(file);
      entries = ledger->audit_entries(1, 100000);
    }
    Raw raw(file);
    raw.exec("DROP TRIGGER IF EXISTS audit_log_no_update");
    AuditHash prev{};
    for (auto& e : entries) {
      e.prev_hash = prev;
      e.hash = audit_hash(prev, e);
      prev = e.hash;
      raw.exec("UPDATE audit_log SET prev_hash = x'" + lower_hex(e.prev_hash) + "', hash = x'" + lower_hex(e.hash) +
               "' WHERE seq = " + std::to_string(e.seq));
    }
  }

  TempDir dir;
  fs::path file = dir / "ledger.db";
  crypto::KeyFileSigner signer{crypto::OpenSsl::PrivateKey::generate()};
  crypto::OpenSsl::VerifyKey key = crypto::OpenSsl::VerifyKey::parse(signer.public_key());
  std::uint64_t rows = 0;
  Bytes checkpoint;
};

}  // namespace

TEST_F(Audit, IntactLogMatchesItsCheckpoint) {
  const auto report = verify();
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.rows, rows);
  EXPECT_EQ(report.checkpoints_matched, 1u);
  EXPECT_GE(rows, 12u);
  auto ledger = open_ledger(file);
  EXPECT_EQ(report.recomputed, ledger->audit_head());
}

TEST_F(Audit, TriggersRefuseUpdateAndDeleteOfAuditRows) {
  Raw raw(file);
  EXPECT_THROW(raw.exec("UPDATE audit_log SET outcome = 'ok' WHERE seq = 1"), std::runtime_error);
  EXPECT_THROW(raw.exec("DELETE FROM audit_log WHERE seq = 1"), std::runtime_error);
}

TEST_F(Audit, DeletedRowIsDetected) {
  tamper("DELETE FROM audit_log WHERE seq = 5");
  const auto report = verify();
  EXPECT_FALSE(report.ok());
  EXPECT_TRUE(has(report, AuditProblemKind::Gap, 5));
  EXPECT_TRUE(has(report, AuditProblemKind::CheckpointMismatch, rows));
}

TEST_F(Audit, DeletedLastRowsAreDetectedByTheCheckpoint) {
  tamper("DELETE FROM audit_log WHERE seq > " + std::to_string(rows - 2));
  // Without a checkpoint a cut tail looks like a shorter log — but for the redemption whose
  // record row it took, which the redemptions table still holds.
  const auto alone = verify({});
  ASSERT_FALSE(alone.problems.empty());
  for (const auto& p : alone.problems) EXPECT_EQ(p.kind, AuditProblemKind::Unaudited) << p.detail;
  const auto report = verify();
  EXPECT_TRUE(has(report, AuditProblemKind::Truncated, rows));
}

// An insider with SQL only takes a redemption out of the settlement by setting its reversal
// (allowed once by the trigger) without the ledger's code: the chain is intact, but the reversal
// has no audit row — and a redemption inserted by SQL has no record row.
TEST_F(Audit, ARedemptionOrReversalWrittenAroundTheLedgerIsFound) {
  EXPECT_TRUE(verify({}).ok());
  tamper("UPDATE redemptions SET reversed_at = 1, reversal_reason = 'x' WHERE seq = 2");
  const auto report = verify({});
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].kind, AuditProblemKind::Unaudited);
  EXPECT_NE(report.problems[0].detail.find("has no redemption.reverse row"), std::string::npos)
      << report.problems[0].detail;
  // A reversal made through the ledger is audited, and the check passes for it.
  auto ledger = open_ledger(file);
  std::optional<VoucherId> untouched;
  for (const auto& row : ledger->list_redemptions({})) {
    if (!row.redemption.reversed_at) untouched = row.redemption.voucher;
  }
  ASSERT_TRUE(untouched);
  ASSERT_EQ(ledger->reverse_redemption(*untouched, "disputed", clerk(), kNow).status, ReversalStatus::Reversed);
  ledger.reset();
  const auto after = verify({});
  EXPECT_EQ(after.problems.size(), 1u) << "only the unaudited one";
}

TEST_F(Audit, EditedRowIsDetected) {
  tamper("UPDATE audit_log SET outcome = 'P15_ALREADY_REDEEMED' WHERE seq = 4");
  const auto report = verify({});  // the chain alone finds it
  EXPECT_TRUE(has(report, AuditProblemKind::Altered, 4));
  EXPECT_EQ(report.problems.size(), 1u);
  tamper("UPDATE audit_log SET clerk = 'mallory' WHERE seq = 7");
  EXPECT_TRUE(has(verify({}), AuditProblemKind::Altered, 7));
}

// A forged row keyed at the top of the 64-bit range is reported as the gap it makes, not a
// storage error that hides every finding.
TEST_F(Audit, ARowWithTheLargestSeqIsReportedNotAStorageError) {
  tamper("UPDATE audit_log SET seq = 9223372036854775807 WHERE seq = " + std::to_string(rows));
  AuditReport report;
  ASSERT_NO_THROW(report = verify({}));
  EXPECT_FALSE(report.ok());
  EXPECT_TRUE(has(report, AuditProblemKind::Gap, rows));
  EXPECT_EQ(report.rows, rows);
}

TEST_F(Audit, ReorderedRowsAreDetected) {
  tamper(
      "UPDATE audit_log SET seq = -3 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4; "
      "UPDATE audit_log SET seq = 4 WHERE seq = -3;");
  const auto report = verify({});
  EXPECT_FALSE(report.ok());
  EXPECT_TRUE(has(report, AuditProblemKind::ChainBroken, 3));
  EXPECT_TRUE(has(report, AuditProblemKind::Altered, 3));
}

TEST_F(Audit, RewrittenChainNotMatchingCheckpointIsDetected) {
  tamper("UPDATE audit_log SET outcome = 'refused' WHERE seq = 6");
  rechain();
  EXPECT_TRUE(verify({}).ok()) << "a re-chained log is self-consistent";
  const auto report = verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].kind, AuditProblemKind::CheckpointMismatch);
  EXPECT_EQ(report.problems[0].seq, rows);
}

TEST_F(Audit, CheckpointForgedWithoutTheAuditKeyIsRefused) {
  tamper("UPDATE audit_log SET outcome = 'refused' WHERE seq = 6");
  rechain();
  // The insider signs the rewritten head with a key of their own…
  crypto::KeyFileSigner mallory{crypto::OpenSsl::PrivateKey::generate()};
  Bytes forged;
  Checkpoint payload;
  {
    auto ledger = open_ledger(file);
    forged = make_checkpoint(*ledger, mallory, kNow + 6000);
    payload = {ledger->ledger_id(), ledger->audit_head().count, ledger->audit_head().hash, kNow + 6000};
  }
  auto report = verify({forged});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.problems[0].kind, AuditProblemKind::CheckpointInvalid);
  EXPECT_EQ(verify_checkpoint(forged, key).verdict, CheckpointVerdict::WrongKey);
  // …or claims the audit signer's kid.
  const auto claimed = schemas::CoseSign1::sign(signer.kid(), std::nullopt, encode_payload(payload),
                                                [&](ByteView tbs) { return mallory.sign(tbs); });
  EXPECT_EQ(verify_checkpoint(claimed, key).verdict, CheckpointVerdict::BadSignature);
  report = verify({claimed, checkpoint});
  EXPECT_TRUE(has(report, AuditProblemKind::CheckpointInvalid, rows));
  EXPECT_TRUE(has(report, AuditProblemKind::CheckpointMismatch, rows));
}

TEST_F(Audit, CheckpointOfAnotherLedgerIsRefused) {
  TempDir other;
  auto ledger = open_ledger(other / "other.db");
  ledger->set_budget(FundSource::SpecialAccount, 1, clerk(), kNow);
  const auto foreign = make_checkpoint(*ledger, signer, kNow);
  const auto report = verify({foreign});
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].kind, AuditProblemKind::CheckpointOtherLedger);
}

TEST_F(Audit, EveryCheckpointAlongTheWayIsCompared) {
  std::vector<Bytes> checkpoints{checkpoint};
  {
    auto ledger = open_ledger(file);
    ledger->set_budget(FundSource::OtherDepartment, 5, clerk(), kNow);
    checkpoints.push_back(make_checkpoint(*ledger, signer, kNow + 7000));
    ledger->set_budget(FundSource::OtherDepartment, 6, clerk(), kNow);
  }
  EXPECT_EQ(verify(checkpoints).checkpoints_matched, 2u);
  tamper("UPDATE audit_log SET subject = 'fund:9' WHERE seq = " + std::to_string(rows + 1));
  rechain();  // only the row between the two checkpoints changed
  const auto report = verify(checkpoints);
  EXPECT_EQ(report.checkpoints_matched, 1u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].seq, rows + 1);
}

TEST_F(Audit, CheckpointPayloadIsDeterministicCbor) {
  Checkpoint c;
  c.ledger.fill(0x11);
  c.count = 5;
  c.head.fill(0x22);
  c.at = kNow;
  const auto payload = encode_payload(c);
  EXPECT_EQ(payload[0], 0xA5);
  EXPECT_EQ(payload[1], 0x06);
  EXPECT_EQ(decode_checkpoint_payload(payload), c);
  EXPECT_EQ(payload.size(), 1u + 1u + 5u + 1u + 1u + 2u + 1u + 2u + 34u + 2u + 17u);
  // The same value with a long-form head (0x19 0x00 0x05 for 5) is refused.
  Bytes long_form = payload;
  const auto count_at = std::size_t{1 + 1 + 5 + 1 + 1 + 2};
  ASSERT_EQ(long_form[count_at], 0x05);
  long_form[count_at] = 0x19;
  long_form.insert(long_form.begin() + static_cast<std::ptrdiff_t>(count_at) + 1, {0x00, 0x05});
  try {
    decode_checkpoint_payload(long_form);
    FAIL();
  } catch (const schemas::DecodeError& e) {
    EXPECT_EQ(e.kind(), schemas::DecodeErrorKind::NonCanonical);
  }
  Bytes newer = payload;
  newer[1 + 1 + 5 + 1] = 0x02;  // format version 2
  try {
    decode_checkpoint_payload(newer);
    FAIL();
  } catch (const schemas::DecodeError& e) {
    EXPECT_EQ(e.kind(), schemas::DecodeErrorKind::NewerFormat);
  }
  Bytes trailing = payload;
  trailing.push_back(0x00);
  EXPECT_THROW(decode_checkpoint_payload(trailing), schemas::DecodeError);
  EXPECT_THROW(decode_checkpoint_payload(Bytes(payload.begin(), payload.end() - 1)), schemas::DecodeError);
}

TEST_F(Audit, RowHashCoversEveryField) {
  AuditEntry e;
  e.seq = 1;
  e.at = kNow;
  e.terminal = "T1";
  e.clerk = "c";
  e.action = "a";
  e.subject = "s";
  e.outcome = "ok";
  const auto h = audit_hash({}, e);
  auto changed = [&](auto mutate) {
    auto copy = e;
    mutate(copy);
    return audit_hash({}, copy) != h;
  };
  EXPECT_TRUE(changed([](AuditEntry& x) { x.seq = 2; }));
  EXPECT_TRUE(changed([](AuditEntry& x) { x.at += 1; }));
  EXPECT_TRUE(changed([](AuditEntry& x) { x.terminal = "T2"; }));
  EXPECT_TRUE(changed([](AuditEntry& x) { x.clerk = "d"; }));
  EXPECT_TRUE(changed([](AuditEntry& x) { x.action = "b"; }));
  EXPECT_TRUE(changed([](AuditEntry& x) { x.subject = "t"; }));
  EXPECT_TRUE(changed([](AuditEntry& x) { x.outcome = "no"; }));
  // Length prefixes: moving a character between fields changes the hash.
  EXPECT_TRUE(changed([](AuditEntry& x) {
    x.terminal = "T";
    x.clerk = "1c";
  }));
  AuditHash other_prev{};
  other_prev[0] = 1;
  EXPECT_NE(audit_hash(other_prev, e), h);
}

TEST_F(Audit, EveryWriteNamesTerminalAndClerk) {
  auto ledger = open_ledger(dir / "every-write.db");
  EXPECT_THROW(ledger->set_budget(FundSource::SpecialAccount, 1000, Actor{"", "clerk"}, kNow), std::invalid_argument);
  EXPECT_THROW(ledger->set_budget(FundSource::SpecialAccount, 1000, Actor{"T1", ""}, kNow), std::invalid_argument);
  EXPECT_EQ(ledger->audit_head().count, 0u) << "refused before anything was written";

  ledger->set_budget(FundSource::SpecialAccount, 1'000'000, clerk("OP01", "alice"), kNow);
  const auto card = make_card(1, holder(1));
  ledger->register_card(card, clerk("C0001", "bob"), kNow);
  const auto c = claims_for(holder(1));
  const auto v =
      ledger->issue_voucher({c, card.number}, policy(*ledger, c), fake_minter(), clerk("C0001", "bob"), kNow);
  ASSERT_EQ(v.status, IssueStatus::Issued);
  ledger->mark_written(v.voucher->id(), clerk("C0001", "carol"), kNow);
  ledger->issue_nonce(nonce(schemas::NonceKind::Server, 1), "S0001", kNow, kNow + 4000, clerk("S0001", "dave"));
  ledger->record_redemption(redeem_request(receipt(v.voucher->id(), 1, nonce(schemas::NonceKind::Server, 1)),
                                           card.number, NonceRule::Live, clerk("S0001", "dave")));
  ledger->reverse_redemption(v.voucher->id(), "duplicate enrolment", clerk("OP01", "erin"), kNow);

  const auto entries = ledger->audit_entries(1, 100);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"budget.set", "alice"},        {"card.register", "bob"}, {"voucher.issue", "bob"},
      {"voucher.written", "carol"},   {"nonce.issue", "dave"},  {"redemption.record", "dave"},
      {"redemption.reverse", "erin"},
  };
  ASSERT_EQ(entries.size(), expected.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].seq, i + 1);
    EXPECT_EQ(entries[i].action, expected[i].first);
    EXPECT_EQ(entries[i].clerk, expected[i].second);
    EXPECT_FALSE(entries[i].terminal.empty());
    EXPECT_EQ(entries[i].outcome, "ok") << entries[i].action;
  }
  EXPECT_EQ(entries[5].terminal, "S0001");
  EXPECT_EQ(entries[5].subject, "voucher:" + lower_hex(v.voucher->id()));
}
