#include "migrations.hpp"

#include <stdexcept>

#include "skillcard/ledger/sqlite_ledger.hpp"

namespace skillcard::ledger::sqlite {

namespace {

// Version 1: the ledger of issue #7. Courses and attendance (a later issue) come as migration 3
// with their own tables (courses, course_sessions, attendance taps keyed by card and the card's
// attendance counter), referencing vouchers(serial) and cards(number).
constexpr const char* kV1 = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('ledger_id', randomblob(16));

CREATE TABLE cards (
  number TEXT PRIMARY KEY CHECK (length(number) = 10 AND number NOT GLOB '*[^0-9]*'),
  holder BLOB NOT NULL CHECK (length(holder) = 16),
  region INTEGER NOT NULL,
  certificate BLOB NOT NULL,
  state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),
  replaced_by TEXT REFERENCES cards (number),
  registered_at INTEGER NOT NULL,
  state_changed_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX cards_by_holder ON cards (holder);

-- Serials and seqs are INTEGER PRIMARY KEY (max + 1), not AUTOINCREMENT: rows are never deleted
-- (triggers below), so a key is never reused, and no sqlite_sequence page is written per insert.
CREATE TABLE vouchers (
  serial INTEGER PRIMARY KEY,
  signer_kid BLOB NOT NULL CHECK (length(signer_kid) = 8),
  token BLOB NOT NULL,
  holder BLOB NOT NULL CHECK (length(holder) = 16),
  card TEXT REFERENCES cards (number),
  issuer INTEGER NOT NULL,
  programme INTEGER NOT NULL,
  occupation INTEGER NOT NULL,
  level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
  fund INTEGER NOT NULL CHECK (fund BETWEEN 1 AND 4),
  face_value_fen INTEGER NOT NULL CHECK (face_value_fen >= 0),
  planned_hours INTEGER NOT NULL,
  planned_online_hours INTEGER NOT NULL,
  eligible_regions TEXT NOT NULL,
  eligible_providers TEXT NOT NULL,
  issued_at INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  cst_year INTEGER NOT NULL,
  state INTEGER NOT NULL CHECK (state BETWEEN 1 AND 6),
  state_changed_at INTEGER NOT NULL,
  moved_from INTEGER REFERENCES vouchers (serial),
  moved_to INTEGER REFERENCES vouchers (serial),
  void_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX vouchers_by_holder_year ON vouchers (holder, cst_year);
CREATE INDEX vouchers_by_holder_occupation ON vouchers (holder, occupation, level);
CREATE INDEX vouchers_by_card ON vouchers (card);
-- Only live vouchers (what expire_vouchers scans): a redemption removes an entry, adds none.
CREATE INDEX vouchers_live_by_expiry ON vouchers (expires_at) WHERE state IN (1, 2);

CREATE TABLE redemptions (
  seq INTEGER PRIMARY KEY,
  voucher INTEGER NOT NULL UNIQUE REFERENCES vouchers (serial),
  card TEXT NOT NULL REFERENCES cards (number),
  counter INTEGER NOT NULL CHECK (counter >= 0),
  receipt BLOB NOT NULL,
  site INTEGER NOT NULL,
  nonce BLOB NOT NULL UNIQUE CHECK (length(nonce) = 17),
  terminal_time INTEGER NOT NULL,
  server_time INTEGER NOT NULL,
  classroom_hours INTEGER NOT NULL,
  online_hours INTEGER NOT NULL,
  terminal TEXT NOT NULL,
  clerk TEXT NOT NULL,
  reversed_at INTEGER,
  reversal_reason TEXT NOT NULL DEFAULT '',
  UNIQUE (card, counter)
);
CREATE INDEX redemptions_by_site ON redemptions (site, server_time);

CREATE TABLE nonces (
  nonce BLOB PRIMARY KEY CHECK (length(nonce) = 17),
  terminal TEXT NOT NULL,
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  used_by TEXT
) WITHOUT ROWID;

CREATE TABLE budgets (
  fund INTEGER PRIMARY KEY CHECK (fund BETWEEN 1 AND 4),
  allocated_fen INTEGER NOT NULL CHECK (allocated_fen >= 0),
  committed_fen INTEGER NOT NULL DEFAULT 0 CHECK (committed_fen >= 0),
  spent_fen INTEGER NOT NULL DEFAULT 0 CHECK (spent_fen >= 0),
  CHECK (committed_fen + spent_fen <= allocated_fen)
);

CREATE TABLE holders (
  holder BLOB PRIMARY KEY CHECK (length(holder) = 16),
  digest_version INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE certificates (
  seq INTEGER PRIMARY KEY,
  holder BLOB NOT NULL REFERENCES holders (holder),
  kind INTEGER NOT NULL,
  occupation INTEGER NOT NULL,
  level INTEGER NOT NULL,
  issuer TEXT NOT NULL,
  number TEXT NOT NULL,
  date_days INTEGER NOT NULL,
  salt BLOB NOT NULL,
  record BLOB NOT NULL,
  digest_version INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL,
  terminal TEXT NOT NULL,
  clerk TEXT NOT NULL,
  UNIQUE (kind, issuer, number)
);
CREATE INDEX certificates_by_holder ON certificates (holder);

CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  terminal TEXT NOT NULL,
  clerk TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  outcome TEXT NOT NULL,
  prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
  hash BLOB NOT NULL CHECK (length(hash) = 32)
);

-- Defence in depth (the hash chain and the signed checkpoints are what detect an insider):
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER redemptions_no_delete BEFORE DELETE ON redemptions
BEGIN SELECT RAISE(ABORT, 'redemptions are reversed, never deleted'); END;
CREATE TRIGGER redemptions_receipt_fixed BEFORE UPDATE OF voucher, card, counter, receipt, nonce ON redemptions
BEGIN SELECT RAISE(ABORT, 'a recorded receipt never changes'); END;
CREATE TRIGGER vouchers_no_delete BEFORE DELETE ON vouchers
BEGIN SELECT RAISE(ABORT, 'vouchers are voided, never deleted'); END;
CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates
BEGIN SELECT RAISE(ABORT, 'certificates are recorded for life (P14), never deleted'); END;
)sql";

// Version 2: no index names vouchers.state, in a key or a predicate, so that a redemption's
// voucher update (state and state_changed_at only) leaves every index alone — on PostgreSQL that
// makes it a HOT update (pg_migrations.cpp); here it spares the partial index's delete. The
// expiry sweep reads vouchers_by_expiry from the last sweep's cutoff on (docs/ledger.md, "Schema").
constexpr const char* kV2 = R"sql(
DROP INDEX vouchers_live_by_expiry;
CREATE INDEX vouchers_by_expiry ON vouchers (expires_at);
)sql";

// Version 3: a recorded redemption is fixed whole — its site, times, hours and who recorded it
// decide what is paid to whom and in which month, and the audit chain does not hash them — and a
// reversal, once recorded, is final. Only reversed_at and reversal_reason may be set, once.
constexpr const char* kV3 = R"sql(
DROP TRIGGER redemptions_receipt_fixed;
CREATE TRIGGER redemptions_receipt_fixed BEFORE UPDATE OF seq, voucher, card, counter, receipt, site, nonce,
  terminal_time, server_time, classroom_hours, online_hours, terminal, clerk ON redemptions
BEGIN SELECT RAISE(ABORT, 'a recorded redemption never changes; only its reversal is recorded'); END;
CREATE TRIGGER redemptions_reversal_final BEFORE UPDATE OF reversed_at, reversal_reason ON redemptions
WHEN OLD.reversed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a reversal is final'); END;
)sql";

// Version 4: the issuing counter's region, whose policy settings a voucher is issued and
// redeemed under (a county's counter may issue under its city's signer, so `issuer` is not it).
// NULL for vouchers issued before: their issuer's settings apply, as they did.
constexpr const char* kV4 = R"sql(
ALTER TABLE vouchers ADD COLUMN issuing_region INTEGER
  CHECK (issuing_region IS NULL OR issuing_region BETWEEN 100000 AND 999999);
)sql";

constexpr Migration kMigrations[] = {
    {1, "ledger: cards, vouchers, redemptions, nonces, budgets, certificates, audit log", kV1},
    {2, "vouchers: expiry index without the state predicate (a state change touches no index)", kV2},
    {3, "redemptions: every recorded column fixed, a reversal final", kV3},
    {4, "vouchers: the issuing counter's region (its policy settings)", kV4},
};
static_assert(std::size(kMigrations) == static_cast<std::size_t>(kSqliteSchemaVersion));

constexpr const char* kSchemaVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL, "
    "description TEXT NOT NULL)";

void rollback_quietly(Db& db) noexcept {
  if (sqlite3_get_autocommit(db.get()) != 0) return;
  try {
    db.exec("ROLLBACK");
  } catch (...) {
  }
}

}  // namespace

std::span<const Migration> ledger_migrations() { return kMigrations; }

int schema_version_of(Db& db) {
  // One read transaction, so that another process's migration commits either before or after
  // all of these reads, never between them.
  struct ReadTransaction {
    explicit ReadTransaction(Db& d) : db(d), own(sqlite3_get_autocommit(d.get()) != 0) {
      if (own) db.exec("BEGIN");
    }
    ~ReadTransaction() {
      if (own) rollback_quietly(db);
    }
    Db& db;
    bool own;
  } read(db);
  const auto app = db.scalar("PRAGMA application_id");
  const auto objects = db.scalar("SELECT count(*) FROM sqlite_schema");
  if (app == 0 && objects == 0) return 0;
  if (app != kApplicationId) {
    throw SchemaError(SchemaError::Reason::NotALedger, "not a skillcard ledger: application_id is " +
                                                           std::to_string(app) + ", expected " +
                                                           std::to_string(kApplicationId) + " (\"SKLG\")");
  }
  if (db.scalar("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'") == 0) {
    return 0;
  }
  return static_cast<int>(db.scalar("SELECT coalesce(max(version), 0) FROM schema_version"));
}

void migrate(Db& db, std::span<const Migration> migrations, UtcSeconds now) {
  run_migrations(
      db, migrations, now, kSchemaVersionTable, [](Db& d) { d.exec("BEGIN IMMEDIATE"); },
      [](Db& d) { return schema_version_of(d); },
      [](Db& d) { d.exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str()); },
      [](Db& d) { rollback_quietly(d); });
}

}  // namespace skillcard::ledger::sqlite
