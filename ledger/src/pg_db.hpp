// Private to the ledger: RAII for PGconn and PGresult, and the one checked wrapper that turns a
// failed libpq call into a typed StorageError (kind from the SQLSTATE) naming the call and where
// it was made. Db/Query/Savepoint offer the same verbs as sqlite::Db, so the shared engine
// (ledger_engine.hpp) runs the same SQL on both: "?N" placeholders become "$N", parameters are
// typed from their C++ types (bigint, text, bytea), statements are prepared once per connection.
// A pipelined connection (the writer) sends statements whose results nobody reads without
// waiting for them (libpq pipeline mode) and collects them with the next one that is read: a
// round trip per read instead of one per statement.
#pragma once

#include <libpq-fe.h>

#include <array>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "query_binding.hpp"
#include "skillcard/iso7816/call_site.hpp"
#include "skillcard/ledger/types.hpp"

namespace skillcard::ledger::pg {

// The StorageErrorKind of a SQLSTATE (class 23 → Constraint, 40001/40P01/55P03 → Busy, …).
StorageErrorKind kind_of(std::string_view sqlstate) noexcept;
// StorageError::backend_code for PostgreSQL: the SQLSTATE's five characters packed six bits
// each, as PostgreSQL's own MAKE_SQLSTATE does (the text SQLSTATE is in what()).
int sqlstate_code(std::string_view sqlstate) noexcept;

struct ConnCloser {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultClearer {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ConnHandle = std::unique_ptr<PGconn, ConnCloser>;
using Result = std::unique_ptr<PGresult, ResultClearer>;

// The checked wrapper: takes ownership of `r`; returns it when the call succeeded
// (PGRES_COMMAND_OK / PGRES_TUPLES_OK), throws StorageError otherwise.
Result check(PGresult* r, PGconn* conn, const char* call, CallSite where);
[[noreturn]] void fail(StorageErrorKind kind, const std::string& sqlstate, const std::string& message, const char* call,
                       CallSite where);

class Db;
class Savepoint;

// One statement: bind, step through its rows (the result is fetched whole on the first step),
// read columns (text format: integers parsed, bytea decoded from hex).
class Query : public QueryBinding<Query> {
 public:
  using QueryBinding<Query>::bind;
  Query(Db& db, const char* sql, CallSite where) : db_(db), sql_(sql), where_(where) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query(Query&&) = default;

  Query& bind(int index, std::int64_t value);
  Query& bind(int index, std::uint64_t value);  // refuses values above INT64_MAX
  Query& bind(int index, std::string_view text);
  Query& bind(int index, ByteView blob);
  template <class T>
  Query& bind(int index, const std::optional<T>& value) {
    if (value) return bind(index, *value);
    bind(index, T{});  // a NULL still has the parameter's type ($1 IS NULL OR col = $1)
    params_[static_cast<std::size_t>(index - 1)].null = true;
    return *this;
  }

  bool step();  // true: a row is ready; false: done
  void run();   // executes (a statement without rows)

  bool is_null(int col) const;
  std::int64_t i64(int col) const;
  std::uint64_t u64(int col) const;  // throws StorageError(Corrupt) for a negative value
  std::uint32_t u32(int col) const;  // … or one above UINT32_MAX
  Bytes blob(int col) const;
  std::string text(int col) const;

 private:
  struct Param {
    unsigned type = 0;  // Oid
    std::string value;
    bool binary = false;
    bool null = false;
  };
  struct Wire {  // the parameters as PQexecPrepared takes them (pointers into params_)
    std::vector<unsigned> types;
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
  };
  Param& param(int index);
  Wire wire() const;
  void execute();
  void send();
  const char* cell(int col) const;
  friend class QueryBinding<Query>;
  [[noreturn]] void corrupt(int col, const char* what) const;

  Db& db_;
  const char* sql_;
  CallSite where_;
  std::vector<Param> params_;
  Result result_;
  bool sent_ = false;  // run() on a pipelined connection: sent, its result collected later
  int rows_ = 0;
  int row_ = -1;
};

// One connection with its prepared statements. Used by one thread at a time.
class Db {
 public:
  using Savepoint = pg::Savepoint;  // what the shared engine opens inside an operation
  Db() = default;
  // Connects with a libpq connection string; StorageError(CantOpen) when it cannot.
  static Db connect(const std::string& conninfo, CallSite where = CallSite::current());
  PGconn* get() const noexcept { return conn_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(conn_); }

  // One or more statements without parameters (simple query protocol).
  void exec(const char* sql, CallSite where = CallSite::current());
  Query query(const char* sql, CallSite where = CallSite::current()) { return Query(*this, sql, where); }
  // Rows changed by the last INSERT/UPDATE/DELETE (SELECTs leave it alone, as in SQLite).
  // Collects what is in flight first.
  std::int64_t changes(CallSite where = CallSite::current()) {
    sync(where);
    return changes_;
  }

  // Pipelining: while on, Query::run() and send_simple() only send; sync() — called by every
  // statement whose result is read, by exec(), changes() and the transaction verbs — collects
  // their results in one round trip and throws the first failure. Errors therefore surface at
  // the next sync point: callers sync before leaving the scope a failure belongs to.
  void set_pipelined(bool on) noexcept { pipelined_ = on; }

  // The audit chain's tip as this connection last appended it inside the current transaction
  // (ledger_engine.hpp's append_audit keeps it, saving a round trip per row). Whoever begins or
  // rolls back a transaction or a savepoint on this connection resets it.
  std::optional<AuditHead> audit_tip;
  bool pipelined() const noexcept { return pipelined_; }
  // One statement without parameters (SAVEPOINT, RELEASE, BEGIN): sent when pipelined,
  // executed at once otherwise.
  void send_simple(const char* sql, CallSite where = CallSite::current());
  // Collects the results in flight; returns the last one (null when nothing was in flight).
  Result sync(CallSite where = CallSite::current());
  // The same, for rollback paths: failures of what is being rolled back are dropped.
  void sync_quietly() noexcept;
  std::int64_t scalar(const char* sql, CallSite where = CallSite::current());
  bool in_transaction() const noexcept;
  // Executes a session setting (SET …) now and again after every reset of the connection.
  void setup(const std::string& sql, CallSite where = CallSite::current());
  // Tags what is sent from now on as the group committer's operation `owner` (its index in the
  // batch), so that a failure collected later is known to be that operation's.
  void set_owner(std::size_t owner) noexcept { owner_ = owner; }
  // The first statement failure a sync found (thrown, or dropped by sync_quietly) since it was
  // last taken, with the owner of the statement that failed. Taking it clears it.
  struct Failure {
    std::size_t owner = 0;
    std::exception_ptr error;
  };
  std::optional<Failure> take_failure() noexcept { return std::exchange(failure_, std::nullopt); }
  // Re-establishes a connection that broke (server restart); prepared statements are redone.
  void reset_if_broken();
  void close() noexcept;

 private:
  friend class Query;
  Result execute(const char* sql, const std::vector<unsigned>& types, const std::vector<const char*>& values,
                 const std::vector<int>& lengths, const std::vector<int>& formats, CallSite where);
  void send(const char* sql, const std::vector<unsigned>& types, const std::vector<const char*>& values,
            const std::vector<int>& lengths, const std::vector<int>& formats, CallSite where);
  const std::string& statement(const char* sql, const std::vector<unsigned>& types, CallSite where, bool pipelined);
  void enter_pipeline(CallSite where);
  void after_reset(const std::string& reason, CallSite where);  // throws IoError(reason)
  void note_changes(const PGresult* r) noexcept;

  struct InFlight {
    std::string prepared_key;  // a PQsendPrepare: forgotten again if it failed
    std::size_t owner = 0;
  };
  ConnHandle conn_;
  bool pipelined_ = false;
  std::size_t statements_ = 0;  // names s1, s2, … (never reused, even when one is forgotten)
  std::vector<InFlight> in_flight_;
  std::vector<std::string> setup_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL + parameter types → statement name
  std::int64_t changes_ = 0;
  std::size_t owner_ = 0;
  std::optional<Failure> failure_;
};

// What became of transaction `txid` whose COMMIT answer was lost with the connection: asked
// (txid_status) over `db` re-established, a few times while the server still reports it in
// progress. Unknown when the server cannot be reached or no longer knows the id.
enum class CommitOutcome { Committed, Aborted, Unknown };
CommitOutcome commit_outcome(Db& db, std::int64_t txid) noexcept;

// SAVEPOINT … RELEASE, rolled back unless released.
class Savepoint {
 public:
  Savepoint(Db& db, const char* name);
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  ~Savepoint();
  void release();
  void rollback();  // ROLLBACK TO + RELEASE

 private:
  Db& db_;
  std::string name_;
  bool open_ = true;
};

}  // namespace skillcard::ledger::pg
