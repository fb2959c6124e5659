// Private to the ledger: PostgreSQL schema migrations, applied at open (the same rules as the
// SQLite ones: each in its own transaction, recorded in schema_version, a newer schema refused).
// The ledger lives in the connection's current schema (the first of search_path), so several
// ledgers — e.g. one per test — can share a database.
#pragma once

#include <span>

#include "migration_runner.hpp"
#include "pg_db.hpp"

namespace skillcard::ledger::pg {

using Migration = ledger::Migration;

// The ledger's migrations, 1 .. kPgSchemaVersion.
std::span<const Migration> ledger_migrations();

// 0 for an empty schema; throws SchemaError(NotALedger) when the schema holds other tables.
int schema_version_of(Db& db);

// Brings `db` up to the last of `migrations`. Throws SchemaError: NewerVersion when the schema is
// ahead, MigrationFailed (rolled back) when a step fails. Safe when several processes open the
// same new database at once (a transaction-scoped advisory lock serialises them).
void migrate(Db& db, std::span<const Migration> migrations, UtcSeconds now);

}  // namespace skillcard::ledger::pg
