// PgLedger: the ledger on PostgreSQL (docs/ledger.md, "PostgreSQL"). Writes run on the group
// committer's thread over the writer connection, each inside its own savepoint, in transactions
// that lock writer_lock first; reads go to a separate reader connection (autocommit, READ
// COMMITTED: they see only committed data; snapshots use REPEATABLE READ).
#include "skillcard/ledger/pg_ledger.hpp"

#include <chrono>
#include <mutex>

#include <libpq-fe.h>

#include <string_view>

#include "group_commit.hpp"
#include "ledger_engine.hpp"
#include "pg_db.hpp"
#include "pg_migrations.hpp"
#include "sql_store.hpp"

namespace skillcard::ledger {

namespace {

UtcSeconds wall_clock() {
  return static_cast<UtcSeconds>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void configure(pg::Db& db, const PgOptions& options) {
  // Durable when COMMIT returns, whatever the server's default (the ledger's rule); redone by
  // the connection after a reset.
  db.setup("SET synchronous_commit = on");
  db.setup("SET lock_timeout = " + std::to_string(options.lock_timeout.count()));
  // No statement, and no transaction left open by a client that stopped, holds the ledger
  // (and the writer lock every instance waits for) for good.
  db.setup("SET statement_timeout = " + std::to_string(options.statement_timeout.count()));
  db.setup("SET idle_in_transaction_session_timeout = " + std::to_string(options.statement_timeout.count()));
  db.setup("SET client_encoding = 'UTF8'");
  db.setup("SET default_transaction_isolation = 'read committed'");
}

}  // namespace

// The engine's Store (ledger_engine.hpp) over the two connections.
struct PgLedger::Impl final : SqlStore<PgLedger::Impl, pg::Db> {
  static constexpr const char* kSnapshotBegin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
  PgOptions options;

  ~Impl() override { committer.reset(); }  // finish queued writes while the verbs below exist

  void begin() override {
    for (int attempt = 0;; ++attempt) {
      writer.reset_if_broken();
      writer.take_failure();
      writer.set_owner(0);
      writer.audit_tip.reset();  // another process may have appended since
      txid.reset();
      try {
        writer.send_simple("BEGIN ISOLATION LEVEL READ COMMITTED");
        // The writer lock: every write transaction of every process takes it first, so they run
        // one after the other (one lock, one order: no deadlocks) and every statement after it
        // sees what the previous writer committed — the audit chain's head included. The
        // transaction's id comes with it (no round trip of its own): if COMMIT's answer is lost
        // with the connection, a new session asks the server what became of it.
        auto q = writer.query("SELECT txid_current() FROM writer_lock WHERE id = 1 FOR UPDATE");
        if (q.step()) txid = q.i64(0);
        return;
      } catch (const StorageError& e) {
        rollback();  // e.g. lock_timeout: leave no aborted transaction behind for the next batch
        // A connection the server dropped while it was idle (a restart, an idle timeout) is found
        // only now; nothing of the batch was sent, so it begins once more on a new one.
        if (e.kind() == StorageErrorKind::IoError && attempt == 0) continue;
        throw;
      }
    }
  }
  void commit() override {
    try {
      // COMMIT of a transaction that failed answers ROLLBACK, not an error: refuse that.
      writer.exec("COMMIT");  // collects what is in flight first
    } catch (const StorageError& e) {
      if (e.kind() != StorageErrorKind::IoError || !txid) throw;
      // The connection went while COMMIT was on its way: the batch is durable or it is not, and
      // its callers must hear which, not "nothing was changed" for a voucher that exists.
      switch (pg::commit_outcome(writer, *txid)) {
        case pg::CommitOutcome::Committed:
          return;
        case pg::CommitOutcome::Aborted:
          throw;
        case pg::CommitOutcome::Unknown:
          throw StorageError(StorageErrorKind::OutcomeUnknown, e.backend_code(),
                             std::string(e.what()) + "; whether the transaction committed could not be found out",
                             CallSite::current());
      }
    }
    if (writer.in_transaction()) {
      throw StorageError(StorageErrorKind::Other, pg::sqlstate_code("25P02"), "COMMIT left the transaction open",
                         CallSite::current());
    }
  }
  std::optional<std::int64_t> txid;  // of the open write transaction
  void rollback() noexcept override {
    writer.audit_tip.reset();
    writer.sync_quietly();
    if (!writer.in_transaction()) return;
    try {
      writer.exec("ROLLBACK");
    } catch (...) {
    }
  }
  // The writer is pipelined: SAVEPOINT travels with the operation's first read, and so do the
  // previous operation's last statements and its RELEASE (no round trip of its own). A failure
  // among them is that operation's: the writer knows each statement's operation, and the
  // committer fails that one and runs the ones after it again (group_commit.hpp).
  void operation(std::size_t index) noexcept override { writer.set_owner(index); }
  std::optional<OperationFailure> failed_operation() noexcept override {
    auto f = writer.take_failure();
    if (!f) return std::nullopt;
    return OperationFailure{f->owner, f->error};
  }
  void settle() override { writer.sync(); }
  void savepoint() override { writer.send_simple("SAVEPOINT op"); }
  void release() override { writer.send_simple("RELEASE op"); }
  void rollback_to() override {
    writer.audit_tip.reset();
    writer.sync_quietly();  // a failure in flight would abort the pipeline, ROLLBACK TO with it
    writer.exec("ROLLBACK TO op; RELEASE op");
  }

  void reader_ready() { reader.reset_if_broken(); }

  int schema_version() {
    return read([](Db& db) { return pg::schema_version_of(db); });
  }
};

PgLedger::PgLedger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PgLedger::~PgLedger() = default;

std::unique_ptr<PgLedger> PgLedger::open(const std::string& conninfo, const PgOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->writer = pg::Db::connect(conninfo);
  configure(impl->writer, options);
  const int found = pg::schema_version_of(impl->writer);  // NotALedger before anything is written
  if (found == 0 && !options.create) {
    throw SchemaError(SchemaError::Reason::NotALedger, "the database schema holds no ledger (create is off)");
  }
  pg::migrate(impl->writer, pg::ledger_migrations(), wall_clock());  // NewerVersion, MigrationFailed
  impl->reader = pg::Db::connect(conninfo);
  configure(impl->reader, options);
  impl->id = impl->read([](pg::Db& db) {
    auto q = db.query("SELECT value FROM meta WHERE key = 'ledger_id'");
    if (!q.step()) throw SchemaError(SchemaError::Reason::Damaged, "the ledger has no ledger_id");
    return q.fixed<16>(0);
  });
  impl->writer.set_pipelined(true);
  impl->committer =
      std::make_unique<GroupCommitter>(*impl, options.max_batch, options.batch_window, options.adaptive_window);
  auto engine = std::make_unique<engine::Engine<Impl>>(*impl);
  auto ledger = std::unique_ptr<PgLedger>(new PgLedger(std::move(impl)));
  ledger->set_engine(std::move(engine));
  return ledger;
}

CommitStats PgLedger::commit_stats() const { return impl_->committer->stats(); }

bool conninfo_has_password(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    PQfreemem(error);
    return false;
  }
  bool has = false;
  for (const auto* o = options; o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val != nullptr && *o->val != '\0') has = true;
  }
  PQconninfoFree(options);
  return has;
}

}  // namespace skillcard::ledger
