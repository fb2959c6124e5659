// The SQLite implementation of the ledger (docs/ledger.md): one file in WAL mode with
// synchronous=FULL, schema migrations at open, a group committer for writes (one writer
// connection, one durable transaction per batch, a savepoint per operation), a reader
// connection for queries, and online backup and restore.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>

#include "skillcard/ledger/sql_ledger.hpp"

struct sqlite3;

namespace skillcard::ledger {

// Puts the database of the connection `db` in WAL mode. SQLite does not call the busy handler
// when the switch meets another connection creating or switching the same new file (waiting
// there could deadlock), so this waits itself, up to `timeout`. Throws StorageError. For every
// SQLite file of the service: the ledger, the registry.
void switch_to_wal(sqlite3* db, std::chrono::milliseconds timeout);

// The newest schema this build knows (migrations 1..kSqliteSchemaVersion).
inline constexpr int kSqliteSchemaVersion = 4;

struct SqliteOptions {
  // Operations per transaction; 1 = one transaction per operation (the naive baseline).
  std::size_t max_batch = 512;
  // After the first operation of a batch, wait this long for the batch to fill to max_batch
  // (a fixed delay for tests and tuning; 0: off).
  std::chrono::microseconds batch_window{0};
  // Adaptive group commit: before a batch, wait at most this long until as many operations are
  // queued as were in flight around the previous batch (the callers just answered come back at
  // once). Without it N closed-loop writers alternate in batches of N/2. A lone writer never
  // waits. 0: off (take whatever is queued).
  std::chrono::microseconds adaptive_window{1000};
  // How long a writer waits for another process's write transaction.
  std::chrono::milliseconds busy_timeout{60000};
  // SQLite VFS name ("" = the default); tests register a power-cut shim.
  std::string vfs;
  // WAL pages before an automatic checkpoint (SQLite's default 1000; tests lower it so that
  // power cuts also land inside checkpoints).
  int wal_autocheckpoint = 1000;
  // Create the file if it does not exist.
  bool create = true;
};

class SqliteLedger final : public SqlLedger {
 public:
  // Opens (creating if allowed) and migrates. Throws SchemaError for a newer schema or another
  // application's database, StorageError when the file cannot be opened.
  static std::unique_ptr<SqliteLedger> open(const std::filesystem::path& path, const SqliteOptions& options = {});
  ~SqliteLedger() override;

  // Online backup (sqlite3_backup_*) of a consistent snapshot while writers go on; written to a
  // temporary file, synced, then renamed to `destination` (which must not exist).
  void backup_to(const std::filesystem::path& destination);
  // Copies a backup into `target` (through the backup API, so the target's WAL and locks are
  // handled) after checking that it is a ledger of a known schema and passes integrity_check.
  // Refuses an existing target unless `overwrite`, and an existing target that is another
  // ledger (another ledger id: the wrong backup, or the wrong file) unless `other_ledger` too.
  // Stop the service before restoring.
  static void restore(const std::filesystem::path& backup, const std::filesystem::path& target, bool overwrite,
                      bool other_ledger = false);

  CommitStats commit_stats() const override;
  const std::filesystem::path& path() const noexcept;

  struct Impl;

 private:
  explicit SqliteLedger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skillcard::ledger
