// PostgreSQL schema versions 1-3 of the ledger and its migration runner hooks (pg_migrations.hpp).
#include "pg_migrations.hpp"

#include "skillcard/ledger/pg_ledger.hpp"

namespace skillcard::ledger::pg {

namespace {

// Version 1: the tables, keys and append-only rules of SQLite's version 1 in PostgreSQL types
// (bigint, bytea, text), plus writer_lock: the one row every write transaction locks first, so
// that writers from every process are serialised as they are by SQLite's write lock (see
// docs/ledger.md, "PostgreSQL"). Later tables (courses, attendance) come as migration 4.
constexpr const char* kV1 = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value BYTEA NOT NULL
);
INSERT INTO meta (key, value) VALUES ('ledger_id', uuid_send(gen_random_uuid()));

CREATE TABLE writer_lock (
  id INTEGER PRIMARY KEY CHECK (id = 1)
);
INSERT INTO writer_lock (id) VALUES (1);

CREATE TABLE cards (
  number TEXT PRIMARY KEY CHECK (number ~ '^[0-9]{10}$'),
  holder BYTEA NOT NULL CHECK (octet_length(holder) = 16),
  region BIGINT NOT NULL,
  certificate BYTEA NOT NULL,
  state BIGINT NOT NULL CHECK (state IN (1, 2, 3)),
  replaced_by TEXT REFERENCES cards (number),
  registered_at BIGINT NOT NULL,
  state_changed_at BIGINT NOT NULL
);
CREATE INDEX cards_by_holder ON cards (holder);

-- Serials and seqs are max + 1, allocated under the writer lock: rows are never deleted
-- (triggers below), so a key is never reused and there are no gaps (no sequence).
CREATE TABLE vouchers (
  serial BIGINT PRIMARY KEY CHECK (serial > 0),
  signer_kid BYTEA NOT NULL CHECK (octet_length(signer_kid) = 8),
  token BYTEA NOT NULL,
  holder BYTEA NOT NULL CHECK (octet_length(holder) = 16),
  card TEXT REFERENCES cards (number),
  issuer BIGINT NOT NULL,
  programme BIGINT NOT NULL,
  occupation BIGINT NOT NULL,
  level BIGINT NOT NULL CHECK (level BETWEEN 1 AND 5),
  fund BIGINT NOT NULL CHECK (fund BETWEEN 1 AND 4),
  face_value_fen BIGINT NOT NULL CHECK (face_value_fen >= 0),
  planned_hours BIGINT NOT NULL,
  planned_online_hours BIGINT NOT NULL,
  eligible_regions TEXT NOT NULL,
  eligible_providers TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  not_before BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  cst_year BIGINT NOT NULL,
  state BIGINT NOT NULL CHECK (state BETWEEN 1 AND 6),
  state_changed_at BIGINT NOT NULL,
  moved_from BIGINT REFERENCES vouchers (serial),
  moved_to BIGINT REFERENCES vouchers (serial),
  void_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX vouchers_by_holder_year ON vouchers (holder, cst_year);
CREATE INDEX vouchers_by_holder_occupation ON vouchers (holder, occupation, level);
CREATE INDEX vouchers_by_card ON vouchers (card);
CREATE INDEX vouchers_live_by_expiry ON vouchers (expires_at) WHERE state IN (1, 2);

CREATE TABLE redemptions (
  seq BIGINT PRIMARY KEY CHECK (seq > 0),
  voucher BIGINT NOT NULL UNIQUE REFERENCES vouchers (serial),
  card TEXT NOT NULL REFERENCES cards (number),
  counter BIGINT NOT NULL CHECK (counter >= 0),
  receipt BYTEA NOT NULL,
  site BIGINT NOT NULL,
  nonce BYTEA NOT NULL UNIQUE CHECK (octet_length(nonce) = 17),
  terminal_time BIGINT NOT NULL,
  server_time BIGINT NOT NULL,
  classroom_hours BIGINT NOT NULL,
  online_hours BIGINT NOT NULL,
  terminal TEXT NOT NULL,
  clerk TEXT NOT NULL,
  reversed_at BIGINT,
  reversal_reason TEXT NOT NULL DEFAULT '',
  UNIQUE (card, counter)
);
CREATE INDEX redemptions_by_site ON redemptions (site, server_time);

CREATE TABLE nonces (
  nonce BYTEA PRIMARY KEY CHECK (octet_length(nonce) = 17),
  terminal TEXT NOT NULL,
  issued_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  used_by TEXT
);

CREATE TABLE budgets (
  fund BIGINT PRIMARY KEY CHECK (fund BETWEEN 1 AND 4),
  allocated_fen BIGINT NOT NULL CHECK (allocated_fen >= 0),
  committed_fen BIGINT NOT NULL DEFAULT 0 CHECK (committed_fen >= 0),
  spent_fen BIGINT NOT NULL DEFAULT 0 CHECK (spent_fen >= 0),
  CHECK (committed_fen + spent_fen <= allocated_fen)
);

CREATE TABLE holders (
  holder BYTEA PRIMARY KEY CHECK (octet_length(holder) = 16),
  digest_version BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE certificates (
  seq BIGINT PRIMARY KEY CHECK (seq > 0),
  holder BYTEA NOT NULL REFERENCES holders (holder),
  kind BIGINT NOT NULL,
  occupation BIGINT NOT NULL,
  level BIGINT NOT NULL,
  issuer TEXT NOT NULL,
  number TEXT NOT NULL,
  date_days BIGINT NOT NULL,
  salt BYTEA NOT NULL,
  record BYTEA NOT NULL,
  digest_version BIGINT NOT NULL,
  recorded_at BIGINT NOT NULL,
  terminal TEXT NOT NULL,
  clerk TEXT NOT NULL,
  UNIQUE (kind, issuer, number)
);
CREATE INDEX certificates_by_holder ON certificates (holder);

CREATE TABLE audit_log (
  seq BIGINT PRIMARY KEY,
  at BIGINT NOT NULL,
  terminal TEXT NOT NULL,
  clerk TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  outcome TEXT NOT NULL,
  prev_hash BYTEA NOT NULL CHECK (octet_length(prev_hash) = 32),
  hash BYTEA NOT NULL CHECK (octet_length(hash) = 32)
);

-- Defence in depth (the hash chain and the signed checkpoints are what detect an insider):
CREATE FUNCTION skillcard_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%', TG_ARGV[0];
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('audit_log is append-only');
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('audit_log is append-only');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION skillcard_refuse('audit_log is append-only');
CREATE TRIGGER redemptions_no_delete BEFORE DELETE ON redemptions
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('redemptions are reversed, never deleted');
CREATE TRIGGER redemptions_receipt_fixed BEFORE UPDATE OF voucher, card, counter, receipt, nonce ON redemptions
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('a recorded receipt never changes');
CREATE TRIGGER vouchers_no_delete BEFORE DELETE ON vouchers
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('vouchers are voided, never deleted');
CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('certificates are recorded for life (P14), never deleted');
)sql";

// Version 2 (SQLite's version 2 too): no index names vouchers.state, in a key or a predicate.
// PostgreSQL updates a row in place (HOT: no index entry written) only when no indexed column —
// predicate columns included — changes and the page has room; with vouchers_live_by_expiry's
// `WHERE state IN (1, 2)` every state change rewrote all five of the voucher's index entries.
// The fill factor leaves that room on pages filled from now on (a voucher row is ≈ 0.4 KiB: about
// one new version per page between prunes; mark_written and the redemption are each a committed
// transaction apart, so the dead version is pruned before the next). Rows already stored keep
// their pages; their updates become HOT as pruning frees room.
constexpr const char* kV2 = R"sql(
DROP INDEX vouchers_live_by_expiry;
CREATE INDEX vouchers_by_expiry ON vouchers (expires_at);
ALTER TABLE vouchers SET (fillfactor = 90);
)sql";

// Version 3 (PostgreSQL only; SQLite has no such cost): the column CHECK constraints of the
// tables every redemption, issue and nonce writes become domains. PostgreSQL 15 rebuilds a
// table's CHECK expressions from their stored text (stringToNode) at every statement that writes
// the table, and evaluates all of them on every UPDATE: 18 expressions for one redemption, 13 % of
// the writer backend's time (perf, docs/ledger.md "Fourth look"). A domain's check is cached
// once per backend and runs only for the columns a statement assigns; the values allowed are the
// same. What stays a table CHECK: the keys' `> 0` (serial, seq: referenced or primary) and the
// budget's `committed + spent <= allocated` (a row rule). The trigger naming redemptions' columns
// is dropped and created again around the type change (a column in a trigger's UPDATE OF list
// cannot change type). The tables are rewritten once, at this migration.
constexpr const char* kV3 = R"sql(
CREATE DOMAIN skillcard_bytes8 AS BYTEA CHECK (octet_length(VALUE) = 8);
CREATE DOMAIN skillcard_bytes16 AS BYTEA CHECK (octet_length(VALUE) = 16);
CREATE DOMAIN skillcard_bytes17 AS BYTEA CHECK (octet_length(VALUE) = 17);
CREATE DOMAIN skillcard_bytes32 AS BYTEA CHECK (octet_length(VALUE) = 32);
CREATE DOMAIN skillcard_level AS BIGINT CHECK (VALUE BETWEEN 1 AND 5);
CREATE DOMAIN skillcard_fund AS BIGINT CHECK (VALUE BETWEEN 1 AND 4);
CREATE DOMAIN skillcard_nonnegative AS BIGINT CHECK (VALUE >= 0);
CREATE DOMAIN skillcard_voucher_state AS BIGINT CHECK (VALUE BETWEEN 1 AND 6);
ALTER TABLE vouchers
  DROP CONSTRAINT vouchers_signer_kid_check, DROP CONSTRAINT vouchers_holder_check,
  DROP CONSTRAINT vouchers_level_check, DROP CONSTRAINT vouchers_fund_check,
  DROP CONSTRAINT vouchers_face_value_fen_check, DROP CONSTRAINT vouchers_state_check,
  ALTER COLUMN signer_kid TYPE skillcard_bytes8, ALTER COLUMN holder TYPE skillcard_bytes16,
  ALTER COLUMN level TYPE skillcard_level, ALTER COLUMN fund TYPE skillcard_fund,
  ALTER COLUMN face_value_fen TYPE skillcard_nonnegative, ALTER COLUMN state TYPE skillcard_voucher_state;
DROP TRIGGER redemptions_receipt_fixed ON redemptions;
ALTER TABLE redemptions
  DROP CONSTRAINT redemptions_counter_check, DROP CONSTRAINT redemptions_nonce_check,
  ALTER COLUMN counter TYPE skillcard_nonnegative, ALTER COLUMN nonce TYPE skillcard_bytes17;
CREATE TRIGGER redemptions_receipt_fixed BEFORE UPDATE OF voucher, card, counter, receipt, nonce ON redemptions
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('a recorded receipt never changes');
ALTER TABLE budgets
  DROP CONSTRAINT budgets_fund_check, DROP CONSTRAINT budgets_allocated_fen_check,
  DROP CONSTRAINT budgets_committed_fen_check, DROP CONSTRAINT budgets_spent_fen_check,
  ALTER COLUMN fund TYPE skillcard_fund, ALTER COLUMN allocated_fen TYPE skillcard_nonnegative,
  ALTER COLUMN committed_fen TYPE skillcard_nonnegative, ALTER COLUMN spent_fen TYPE skillcard_nonnegative;
ALTER TABLE audit_log
  DROP CONSTRAINT audit_log_prev_hash_check, DROP CONSTRAINT audit_log_hash_check,
  ALTER COLUMN prev_hash TYPE skillcard_bytes32, ALTER COLUMN hash TYPE skillcard_bytes32;
ALTER TABLE nonces DROP CONSTRAINT nonces_nonce_check, ALTER COLUMN nonce TYPE skillcard_bytes17;
)sql";

// Version 4 (SQLite's 3): a recorded redemption is fixed whole — its site, times, hours and who
// recorded it decide what is paid to whom and in which month, and the audit chain does not hash
// them — and a reversal, once recorded, is final.
constexpr const char* kV4 = R"sql(
DROP TRIGGER redemptions_receipt_fixed ON redemptions;
CREATE TRIGGER redemptions_receipt_fixed BEFORE UPDATE OF seq, voucher, card, counter, receipt, site, nonce,
  terminal_time, server_time, classroom_hours, online_hours, terminal, clerk ON redemptions
  FOR EACH ROW EXECUTE FUNCTION skillcard_refuse('a recorded redemption never changes; only its reversal is recorded');
CREATE TRIGGER redemptions_reversal_final BEFORE UPDATE OF reversed_at, reversal_reason ON redemptions
  FOR EACH ROW WHEN (OLD.reversed_at IS NOT NULL) EXECUTE FUNCTION skillcard_refuse('a reversal is final');
)sql";

// Version 5 (SQLite's 4): the issuing counter's region, whose policy settings a voucher is
// issued and redeemed under. A domain, not a table CHECK (version 3: a redemption's voucher update
// would evaluate it); NULL for vouchers issued before (their issuer's settings apply).
constexpr const char* kV5 = R"sql(
CREATE DOMAIN skillcard_region AS BIGINT CHECK (VALUE BETWEEN 100000 AND 999999);
ALTER TABLE vouchers ADD COLUMN issuing_region skillcard_region;
)sql";

constexpr Migration kMigrations[] = {
    {1, "ledger: cards, vouchers, redemptions, nonces, budgets, certificates, audit log", kV1},
    {2, "vouchers: expiry index without the state predicate (a state change touches no index)", kV2},
    {3, "column checks of the written tables as domains (checked per assigned column, not rebuilt per statement)", kV3},
    {4, "redemptions: every recorded column fixed, a reversal final", kV4},
    {5, "vouchers: the issuing counter's region (its policy settings)", kV5},
};
static_assert(std::size(kMigrations) == static_cast<std::size_t>(kPgSchemaVersion));

constexpr const char* kSchemaVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, "
    "description TEXT NOT NULL)";

// Serialises migrations of one database between processes ("SKLG").
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(1397442631)";

void rollback_quietly(Db& db) noexcept {
  if (!db.in_transaction()) return;
  try {
    db.exec("ROLLBACK");
  } catch (...) {
  }
}

}  // namespace

std::span<const Migration> ledger_migrations() { return kMigrations; }

int schema_version_of(Db& db) {
  const auto tables = db.scalar("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()");
  if (tables == 0) return 0;
  if (db.scalar("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename IN "
                "('schema_version', 'meta')") != 2) {
    throw SchemaError(SchemaError::Reason::NotALedger, "not a skillcard ledger: the schema holds " +
                                                           std::to_string(tables) +
                                                           " tables but no schema_version and meta");
  }
  return static_cast<int>(db.scalar("SELECT coalesce(max(version), 0) FROM schema_version"));
}

void migrate(Db& db, std::span<const Migration> migrations, UtcSeconds now) {
  run_migrations(
      db, migrations, now, kSchemaVersionTable,
      [](Db& d) {
        d.exec("BEGIN");
        try {
          // A second instance started while the first migrates waits for it, however long a
          // migration takes (one rewrites five tables): not the sessions' lock and statement
          // timeouts, which are for the ledger's own short transactions.
          d.exec("SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0");
          d.exec(kMigrationLock);
        } catch (...) {
          rollback_quietly(d);
          throw;
        }
      },
      [](Db& d) { return schema_version_of(d); }, [](Db&) {}, [](Db& d) { rollback_quietly(d); });
}

}  // namespace skillcard::ledger::pg
