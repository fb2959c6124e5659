// The PostgreSQL implementation of the ledger (docs/ledger.md, "PostgreSQL"): the same engine
// and the same SQL as SqliteLedger over libpq, in the connection's current schema. Schema
// migrations at open; one writer connection with a group committer (one durable transaction per
// batch, synchronous_commit = on, a savepoint per operation); every write transaction first locks
// the writer_lock row, so writers in every process are serialised and each decision re-reads what
// the previous writer committed; a reader connection for queries. libpq stays private.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "skillcard/ledger/sql_ledger.hpp"

namespace skillcard::ledger {

// The newest schema this build knows (migrations 1..kPgSchemaVersion).
inline constexpr int kPgSchemaVersion = 5;

struct PgOptions {
  // Operations per transaction; 1 = one transaction per operation (the naive baseline).
  std::size_t max_batch = 512;
  // Fixed delay after a batch's first operation for it to fill (0: off). As SqliteOptions.
  std::chrono::microseconds batch_window{0};
  // Adaptive group commit, as SqliteOptions::adaptive_window.
  std::chrono::microseconds adaptive_window{1000};
  // How long a writer waits for another process's writer lock (lock_timeout; then Busy).
  std::chrono::milliseconds lock_timeout{60000};
  // The longest a statement may run, and a transaction stay idle, on either connection
  // (statement_timeout, idle_in_transaction_session_timeout; then the batch fails, nothing of it
  // written). Long enough for a year's report over the reader.
  std::chrono::milliseconds statement_timeout{300000};
  // Create the ledger's tables when the schema is empty; false: refuse (NotALedger).
  bool create = true;
};

// Whether a libpq connection string (key=value or URI form) carries a password. A command line
// is readable by every local user, so the service refuses one there: libpq reads the password
// from PGPASSFILE (~/.pgpass) or PGPASSWORD instead. A string libpq cannot parse: false (open
// says what is wrong with it).
bool conninfo_has_password(const std::string& conninfo);

class PgLedger final : public SqlLedger {
 public:
  // Connects (libpq connection string, e.g. "host=127.0.0.1 port=5432 dbname=skillcard
  // user=skillcard"; add "options='-c search_path=NAME'" to use a schema other than public) and
  // migrates. Throws SchemaError for a newer schema or another application's tables,
  // StorageError(CantOpen) when the server cannot be reached.
  static std::unique_ptr<PgLedger> open(const std::string& conninfo, const PgOptions& options = {});
  ~PgLedger() override;

  CommitStats commit_stats() const override;

  struct Impl;

 private:
  explicit PgLedger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skillcard::ledger
