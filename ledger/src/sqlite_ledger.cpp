// SqliteLedger: the ledger on one SQLite file (docs/ledger.md). Writes run on the group
// committer's thread over the writer connection, each inside its own savepoint; reads go to a
// separate reader connection (WAL: readers never block the writer, and see only committed data).
#include "skillcard/ledger/sqlite_ledger.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "group_commit.hpp"
#include "ledger_engine.hpp"
#include "migrations.hpp"
#include "sql_store.hpp"
#include "sqlite_db.hpp"

namespace skillcard::ledger {

using sqlite::Db;

namespace {

UtcSeconds wall_clock() {
  return static_cast<UtcSeconds>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// fsync a file or a folder; throws StorageError(IoError).
void sync_path(const std::filesystem::path& p, CallSite where = CallSite::current()) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw StorageError(StorageErrorKind::IoError, err, "fsync(" + p.string() + "): " + std::strerror(err), where);
  }
  ::close(fd);
}

struct BackupFinisher {
  void operator()(sqlite3_backup* b) const noexcept { sqlite3_backup_finish(b); }
};

// Copies all of `from` into `to` with the online backup API; retries while either is busy, for at
// most a minute (a restore target in use by a running service must fail, not hang).
void copy_database(sqlite3* to, sqlite3* from, CallSite where = CallSite::current()) {
  std::unique_ptr<sqlite3_backup, BackupFinisher> backup(sqlite3_backup_init(to, "main", from, "main"));
  if (!backup) sqlite::fail(sqlite3_extended_errcode(to), to, "sqlite3_backup_init", where);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    const int rc = sqlite3_backup_step(backup.get(), -1);
    if (rc == SQLITE_DONE) break;
    if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    sqlite::fail(rc, to, "sqlite3_backup_step", where);
  }
  sqlite::check(sqlite3_backup_finish(backup.release()), to, "sqlite3_backup_finish", where);
}

void require_integrity(Db& db, const std::string& what) {
  auto q = db.query("PRAGMA integrity_check");
  std::string result;
  while (q.step()) {
    if (!result.empty()) result += "; ";
    result += q.text(0);
  }
  if (result != "ok") throw SchemaError(SchemaError::Reason::Damaged, what + " fails integrity_check: " + result);
}

}  // namespace

// -----------------------------------------------------------------------------------------------
// Impl: the two connections, the committer, and the transaction verbs the committer uses.

// The engine's Store (ledger_engine.hpp) over the two connections.
struct SqliteLedger::Impl final : SqlStore<SqliteLedger::Impl, sqlite::Db> {
  static constexpr const char* kSnapshotBegin = "BEGIN";
  std::filesystem::path path;
  SqliteOptions options;

  ~Impl() override { committer.reset(); }  // finish queued writes while the verbs below exist

  void begin() override {
    writer.audit_tip.reset();  // another process may have appended since
    writer.query("BEGIN IMMEDIATE").run();
  }
  void commit() override { writer.query("COMMIT").run(); }
  void rollback() noexcept override {
    writer.audit_tip.reset();
    if (sqlite3_get_autocommit(writer.get()) != 0) return;  // SQLite rolled back already
    try {
      writer.exec("ROLLBACK");
    } catch (...) {
    }
  }
  void savepoint() override { writer.query("SAVEPOINT op").run(); }
  void release() override { writer.query("RELEASE op").run(); }
  void rollback_to() override {
    writer.audit_tip.reset();
    writer.query("ROLLBACK TO op").run();
    writer.query("RELEASE op").run();
  }

  void reader_ready() noexcept {}

  int schema_version() {
    return read([](Db& db) { return sqlite::schema_version_of(db); });
  }
};

void switch_to_wal(sqlite3* db, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto pause = std::chrono::milliseconds(1);; pause = std::min(pause * 2, std::chrono::milliseconds(50))) {
    sqlite3_stmt* raw = nullptr;
    sqlite::check(sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &raw, nullptr), db, "sqlite3_prepare_v2");
    const sqlite::StmtHandle stmt(raw);
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_ROW) {
      const auto* mode = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
      if (mode == nullptr || std::string_view(mode) != "wal") {
        throw StorageError(
            StorageErrorKind::Other, SQLITE_ERROR,
            std::string("could not switch the database to WAL mode (it stays ") + (mode ? mode : "?") + ")",
            CallSite::current());
      }
      return;
    }
    if ((rc & 0xFF) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
      sqlite::check(rc == SQLITE_DONE ? SQLITE_ERROR : rc, db, "PRAGMA journal_mode = WAL");
    }
    std::this_thread::sleep_for(pause);
  }
}

namespace {

void configure(Db& db, const SqliteOptions& options, bool writer) {
  sqlite::check(sqlite3_busy_timeout(db.get(), static_cast<int>(options.busy_timeout.count())), db.get(),
                "sqlite3_busy_timeout");
  if (writer) {
    // WAL: readers never block the writer. synchronous=FULL: the WAL is synced at every commit,
    // so a commit that returned survives power loss.
    switch_to_wal(db.get(), options.busy_timeout);
  }
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA foreign_keys = ON");
  if (writer) db.exec(("PRAGMA wal_autocheckpoint = " + std::to_string(options.wal_autocheckpoint)).c_str());
  if (!writer) db.exec("PRAGMA query_only = ON");
}

}  // namespace

SqliteLedger::SqliteLedger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteLedger::~SqliteLedger() = default;

std::unique_ptr<SqliteLedger> SqliteLedger::open(const std::filesystem::path& path, const SqliteOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  const char* vfs = options.vfs.empty() ? nullptr : options.vfs.c_str();
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | (options.create ? SQLITE_OPEN_CREATE : 0);
  impl->writer = Db::open(path.string(), flags, vfs);
  sqlite::check(sqlite3_busy_timeout(impl->writer.get(), static_cast<int>(options.busy_timeout.count())),
                impl->writer.get(), "sqlite3_busy_timeout");
  // Refuse another application's file (or a newer schema) before changing anything in it.
  const int found = sqlite::schema_version_of(impl->writer);
  if (found == 0 && !options.create) {
    // An empty file named by mistake (the tool's read-only commands) must not become a ledger.
    throw SchemaError(SchemaError::Reason::NotALedger, path.string() + " holds no ledger");
  }
  if (found > kSqliteSchemaVersion) {
    sqlite::migrate(impl->writer, sqlite::ledger_migrations(), wall_clock());  // throws NewerVersion
  }
  configure(impl->writer, options, true);
  sqlite::migrate(impl->writer, sqlite::ledger_migrations(), wall_clock());
  impl->reader = Db::open(path.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, vfs);
  configure(impl->reader, options, false);
  impl->id = impl->read([](Db& db) {
    auto q = db.query("SELECT value FROM meta WHERE key = 'ledger_id'");
    if (!q.step()) throw SchemaError(SchemaError::Reason::Damaged, "the ledger has no ledger_id");
    return q.fixed<16>(0);
  });
  impl->committer =
      std::make_unique<GroupCommitter>(*impl, options.max_batch, options.batch_window, options.adaptive_window);
  auto engine = std::make_unique<engine::Engine<Impl>>(*impl);
  auto ledger = std::unique_ptr<SqliteLedger>(new SqliteLedger(std::move(impl)));
  ledger->set_engine(std::move(engine));
  return ledger;
}

CommitStats SqliteLedger::commit_stats() const { return impl_->committer->stats(); }
const std::filesystem::path& SqliteLedger::path() const noexcept { return impl_->path; }

// -----------------------------------------------------------------------------------------------
// Backup and restore.

void SqliteLedger::backup_to(const std::filesystem::path& destination) {
  if (std::filesystem::exists(destination)) {
    throw std::invalid_argument("backup destination " + destination.string() + " exists; refusing to overwrite");
  }
  auto partial = destination;
  partial += ".partial";
  std::filesystem::remove(partial);
  {
    Db out = Db::open(partial.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE, nullptr);
    impl_->read([&](Db& db) {
      copy_database(out.get(), db.get());
      return 0;
    });
    // A plain rollback-journal file: readable anywhere, even from read-only media.
    out.exec("PRAGMA journal_mode = DELETE");
    require_integrity(out, "the backup");
  }
  sync_path(partial);
  std::filesystem::rename(partial, destination);
  sync_path(destination.parent_path().empty() ? std::filesystem::path(".") : destination.parent_path());
}

namespace {

std::optional<LedgerId> ledger_id_of(Db& db) {
  if (sqlite::schema_version_of(db) == 0) return std::nullopt;
  auto q = db.query("SELECT value FROM meta WHERE key = 'ledger_id'");
  if (!q.step()) return std::nullopt;
  return q.fixed<16>(0);
}

}  // namespace

void SqliteLedger::restore(const std::filesystem::path& backup, const std::filesystem::path& target, bool overwrite,
                           bool other_ledger) {
  if (!std::filesystem::exists(backup)) throw std::invalid_argument("no backup at " + backup.string());
  if (std::filesystem::exists(target) && !overwrite) {
    throw std::invalid_argument("restore target " + target.string() + " exists; pass overwrite to replace it");
  }
  if (std::filesystem::exists(target) && std::filesystem::equivalent(backup, target)) {
    throw std::invalid_argument("the backup and the restore target are the same file: " + target.string());
  }
  Db source = Db::open(backup.string(), SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, nullptr);
  const int version = sqlite::schema_version_of(source);  // SchemaError(NotALedger)
  if (version == 0) throw SchemaError(SchemaError::Reason::NotALedger, backup.string() + " holds no ledger");
  if (version > kSqliteSchemaVersion) {
    throw SchemaError(SchemaError::Reason::NewerVersion,
                      "the backup's schema version " + std::to_string(version) + " is newer than this software (" +
                          std::to_string(kSqliteSchemaVersion) + ")",
                      version, kSqliteSchemaVersion);
  }
  require_integrity(source, "the backup " + backup.string());
  if (std::filesystem::exists(target) && !other_ledger) {
    // A backup restored over another ledger would replace that ledger's redemptions with
    // someone else's: the ids must agree unless the operator says otherwise.
    std::optional<LedgerId> present;
    try {
      Db current = Db::open(target.string(), SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, nullptr);
      present = ledger_id_of(current);
    } catch (const StorageError&) {
      // Not readable as a database: nothing of a ledger to protect.
    } catch (const SchemaError&) {
    }
    const auto from = ledger_id_of(source);
    if (present && from && *present != *from) {
      throw std::invalid_argument("restore target " + target.string() + " is ledger " + lower_hex(*present) +
                                  ", the backup is of ledger " + lower_hex(*from) +
                                  "; pass other_ledger to replace one ledger with another");
    }
  }
  Db target_db = Db::open(target.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE, nullptr);
  sqlite::check(sqlite3_busy_timeout(target_db.get(), 60000), target_db.get(), "sqlite3_busy_timeout");
  copy_database(target_db.get(), source.get());
  target_db.exec("PRAGMA journal_mode = WAL");
  target_db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  require_integrity(target_db, "the restored ledger");
}

}  // namespace skillcard::ledger
