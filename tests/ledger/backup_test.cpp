// Online backup (sqlite3_backup_*) and restore: a round trip gives back the ledger as it was at
// the backup, checkpoints taken before still verify, and restore refuses what it must.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fixtures.hpp"
#include "skillcard/crypto/signer.hpp"
#include "skillcard/ledger/audit.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;
using schemas::NonceKind;

namespace {

std::vector<VoucherId> populate(SqliteLedger& ledger, const std::string& card, unsigned from, unsigned n) {
  std::vector<VoucherId> ids;
  for (unsigned v = from; v < from + n; ++v) {
    const auto voucher =
        issue_ok(ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), card);
    ledger.record_redemption(redeem_request(receipt(voucher.id(), v + 1, nonce(NonceKind::Terminal, v)), card));
    ids.push_back(voucher.id());
  }
  return ids;
}

// A ledger with `redemptions` redemptions, backed up to `backup`, and its audit head then.
struct BackedUp {
  BasicSeeded<SqliteLedger> s;
  AuditHead head;
};
BackedUp backed_up(const fs::path& file, const fs::path& backup, unsigned redemptions) {
  auto s = seeded(file, 1);
  populate(*s.ledger, s.cards[0].number, 0, redemptions);
  s.ledger->backup_to(backup);
  const auto head = s.ledger->audit_head();
  return {std::move(s), head};
}

}  // namespace

TEST(Backup, RoundTripRestoresTheLedgerAsItWasAtTheBackup) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  const auto backup = dir / "backup.db";
  const auto restored = dir / "restored.db";
  crypto::KeyFileSigner signer{crypto::OpenSsl::PrivateKey::generate()};
  const auto key = crypto::OpenSsl::VerifyKey::parse(signer.public_key());
  auto s = seeded(file, 1);
  const auto card = s.cards[0].number;
  const auto before = populate(*s.ledger, card, 0, 10);
  const auto checkpoint = make_checkpoint(*s.ledger, signer, kNow);
  const auto head = s.ledger->audit_head();
  const auto budget = *s.ledger->budget(FundSource::SpecialAccount);
  const auto redemptions = s.ledger->list_redemptions({});
  s.ledger->backup_to(backup);
  const auto after = populate(*s.ledger, card, 10, 5);  // after the backup: not in it

  SqliteLedger::restore(backup, restored, false);
  auto r = SqliteLedger::open(restored);
  EXPECT_EQ(r->ledger_id(), s.ledger->ledger_id());
  EXPECT_EQ(r->audit_head(), head);
  EXPECT_EQ(*r->budget(FundSource::SpecialAccount), budget);
  EXPECT_EQ(r->list_redemptions({}), redemptions);
  for (const auto& id : before) EXPECT_EQ(r->voucher(id), s.ledger->voucher(id));
  for (const auto& id : after) EXPECT_FALSE(r->voucher(id));
  EXPECT_EQ(r->card(card), s.ledger->card(card));
  const auto report = verify_audit(*r, std::vector<Bytes>{checkpoint}, key);
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.checkpoints_matched, 1u);
  // The restored ledger works: it takes new writes where the backup ended.
  const auto next = issue_ok(*r, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 3000000), card);
  EXPECT_EQ(serial_of(next.id()), before.size() + 1);
}

TEST(Backup, BackupTakenWhileWritersRunIsConsistent) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  auto s = seeded(file, 1);
  const auto card = s.cards[0].number;
  populate(*s.ledger, card, 0, 20);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    unsigned v = 100;
    while (!stop) populate(*s.ledger, card, v++, 1);
  });
  for (int i = 0; i < 3; ++i) s.ledger->backup_to(dir / ("backup-" + std::to_string(i) + ".db"));
  stop = true;
  writer.join();
  const auto key = crypto::OpenSsl::VerifyKey::parse(crypto::OpenSsl::PrivateKey::generate().public_key());
  for (int i = 0; i < 3; ++i) {
    const auto copy = dir / ("copy-" + std::to_string(i) + ".db");
    SqliteLedger::restore(dir / ("backup-" + std::to_string(i) + ".db"), copy, false);
    auto r = SqliteLedger::open(copy);
    EXPECT_TRUE(verify_audit(*r, {}, key).ok()) << i;
    // Each redemption and its budget update were copied together.
    const auto spent = r->budget(FundSource::SpecialAccount)->spent_fen;
    EXPECT_EQ(spent, static_cast<std::int64_t>(r->list_redemptions({}).size()) * 1000) << i;
  }
}

TEST(Backup, BackupRefusesAnExistingDestination) {
  TempDir dir;
  auto ledger = SqliteLedger::open(dir / "ledger.db");
  ledger->backup_to(dir / "b.db");
  EXPECT_THROW(ledger->backup_to(dir / "b.db"), std::invalid_argument);
  EXPECT_FALSE(fs::exists(dir / "b.db.partial"));
}

TEST(Backup, RestoreOverwritesOnlyWhenAsked) {
  TempDir dir;
  auto [s, head] = backed_up(dir / "ledger.db", dir / "b.db", 3);
  populate(*s.ledger, s.cards[0].number, 3, 3);
  s.ledger.reset();
  EXPECT_THROW(SqliteLedger::restore(dir / "b.db", dir / "ledger.db", false), std::invalid_argument);
  SqliteLedger::restore(dir / "b.db", dir / "ledger.db", true);  // the service is stopped
  auto r = SqliteLedger::open(dir / "ledger.db");
  EXPECT_EQ(r->audit_head(), head);
  EXPECT_EQ(r->list_redemptions({}).size(), 3u);
  RawDb raw(dir / "ledger.db");
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
}

// The wrong backup (or the wrong target) must not silently replace another ledger's redemptions:
// --force replaces the same ledger (its id); another one needs to be asked for by name.
TEST(Backup, RestoreOverAnotherLedgerNeedsToBeAskedFor) {
  TempDir dir;
  const auto a_head = backed_up(dir / "a.db", dir / "a-backup.db", 2).head;
  auto [b, b_head] = backed_up(dir / "b.db", dir / "b-backup.db", 3);
  const auto b_id = b.ledger->ledger_id();
  b.ledger.reset();
  try {
    SqliteLedger::restore(dir / "a-backup.db", dir / "b.db", true);
    ADD_FAILURE() << "a backup of ledger a replaced ledger b";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("is ledger " + lower_hex(b_id)), std::string::npos) << e.what();
  }
  {
    auto untouched = SqliteLedger::open(dir / "b.db");
    EXPECT_EQ(untouched->audit_head(), b_head);
    EXPECT_EQ(untouched->list_redemptions({}).size(), 3u);
  }
  SqliteLedger::restore(dir / "a-backup.db", dir / "b.db", true, /*other_ledger=*/true);
  EXPECT_EQ(SqliteLedger::open(dir / "b.db")->audit_head(), a_head);
  // Over its own ledger, --force alone does.
  SqliteLedger::restore(dir / "a-backup.db", dir / "a.db", true);
  EXPECT_EQ(SqliteLedger::open(dir / "a.db")->audit_head(), a_head);
}

TEST(Backup, RestoreRefusesWhatIsNotALedgerOfAKnownSchema) {
  TempDir dir;
  {
    RawDb raw(dir / "other.db");
    raw.exec("CREATE TABLE t (x)");
  }
  EXPECT_THROW(SqliteLedger::restore(dir / "other.db", dir / "target.db", false), SchemaError);
  EXPECT_THROW(SqliteLedger::restore(dir / "missing.db", dir / "target.db", false), std::invalid_argument);
  SqliteLedger::open(dir / "ledger.db")->backup_to(dir / "b.db");
  {
    RawDb raw(dir / "b.db");
    raw.exec("INSERT INTO schema_version VALUES (99, 0, 'future')");
  }
  try {
    SqliteLedger::restore(dir / "b.db", dir / "target.db", false);
    FAIL();
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.reason(), SchemaError::Reason::NewerVersion);
  }
  EXPECT_FALSE(fs::exists(dir / "target.db"));
}
