// Private to the ledger: the migration runner both backends share (migrations.cpp for SQLite,
// pg_migrations.cpp for PostgreSQL). Each step runs in its own write transaction and records
// itself in schema_version; the version is read again inside that transaction (another process
// may have migrated meanwhile); a newer schema is refused untouched; a failing step is rolled
// back and reported as MigrationFailed.
#pragma once

#include <span>
#include <stdexcept>
#include <string>

#include "skillcard/ledger/types.hpp"

namespace skillcard::ledger {

struct Migration {
  int version;  // 1, 2, 3 … in order
  const char* description;
  const char* sql;  // one or more statements
};

inline SchemaError newer_schema(int found, int supported) {
  return SchemaError(SchemaError::Reason::NewerVersion,
                     "the ledger's schema version " + std::to_string(found) +
                         " is newer than this software supports (" + std::to_string(supported) +
                         "); it was written by a newer skillcard release: upgrade, never downgrade",
                     found, supported);
}

// The backend's verbs: begin_exclusive(db) opens a transaction no other migrating process can
// share; version_of(db) reads the version; first_step(db) prepares an empty database (before
// migration 1); rollback(db) rolls back quietly. version_table: its CREATE TABLE IF NOT EXISTS.
template <class Db, class Begin, class VersionOf, class FirstStep, class Rollback>
void run_migrations(Db& db, std::span<const Migration> migrations, UtcSeconds now, const char* version_table,
                    Begin begin_exclusive, VersionOf version_of, FirstStep first_step, Rollback rollback) {
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) throw std::logic_error("migrations must be numbered 1, 2, …");
  }
  const int supported = static_cast<int>(migrations.size());
  int version = version_of(db);
  if (version > supported) throw newer_schema(version, supported);
  for (const auto& m : migrations) {
    if (m.version <= version) continue;
    begin_exclusive(db);
    try {
      version = version_of(db);  // another process may have got here first
      if (version > supported) {
        rollback(db);
        throw newer_schema(version, supported);
      }
      if (m.version <= version) {
        db.exec("COMMIT");
        continue;
      }
      if (version == 0) first_step(db);
      db.exec(version_table);
      db.exec(m.sql);
      db.query("INSERT INTO schema_version (version, applied_at, description) VALUES (?1, ?2, ?3)")
          .args(m.version, now, m.description)
          .run();
      db.exec("COMMIT");
      version = m.version;
    } catch (const SchemaError&) {
      throw;
    } catch (const std::exception& e) {
      rollback(db);
      throw SchemaError(SchemaError::Reason::MigrationFailed,
                        "schema migration " + std::to_string(m.version) + " (" + m.description +
                            ") failed and was rolled back: " + e.what(),
                        version, supported);
    }
  }
}

}  // namespace skillcard::ledger
