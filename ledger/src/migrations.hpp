// Private to the ledger: versioned schema migrations, applied at open. Each migration runs in
// its own write transaction and records itself in schema_version; a database written by a newer
// release is refused, never touched.
#pragma once

#include <span>

#include "migration_runner.hpp"
#include "sqlite_db.hpp"

namespace skillcard::ledger::sqlite {

// PRAGMA application_id of a ledger file: "SKLG".
inline constexpr std::int64_t kApplicationId = 0x534B4C47;

using Migration = ledger::Migration;

// The ledger's migrations, 1 .. kSqliteSchemaVersion.
std::span<const Migration> ledger_migrations();

// 0 for an empty database; throws SchemaError(NotALedger) for another application's file.
int schema_version_of(Db& db);

// Brings `db` up to the last of `migrations` (tests pass their own lists). Throws SchemaError:
// NewerVersion when the file is ahead of `migrations`, MigrationFailed (rolled back) when a step
// fails. Safe when several processes open the same new file at once.
void migrate(Db& db, std::span<const Migration> migrations, UtcSeconds now);

}  // namespace skillcard::ledger::sqlite
