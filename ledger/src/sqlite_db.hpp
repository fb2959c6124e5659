// Private to the ledger: RAII for sqlite3* and sqlite3_stmt*, and the one checked wrapper that
// turns a SQLite result code into a typed StorageError naming the call and where it was made.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "query_binding.hpp"
#include "skillcard/iso7816/call_site.hpp"
#include "skillcard/ledger/types.hpp"

namespace skillcard::ledger::sqlite {

StorageErrorKind kind_of(int result_code) noexcept;

[[noreturn]] void fail(int rc, sqlite3* db, const char* call, CallSite where);

// SQLITE_OK, SQLITE_ROW and SQLITE_DONE pass through; anything else throws StorageError.
inline int check(int rc, sqlite3* db, const char* call, CallSite where = CallSite::current()) {
  if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) fail(rc, db, call, where);
  return rc;
}

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;
using StmtHandle = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// A prepared statement borrowed from a connection's cache: bind, step, read columns; reset and
// cleared when the Query goes out of scope, so a cached statement never keeps a read open.
class Query : public QueryBinding<Query> {
 public:
  using QueryBinding<Query>::bind;
  Query(sqlite3* db, sqlite3_stmt* stmt, CallSite where) : db_(db), stmt_(stmt), where_(where) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Query& bind(int index, std::int64_t value);
  Query& bind(int index, std::uint64_t value);  // refuses values above INT64_MAX
  Query& bind(int index, std::string_view text);
  Query& bind(int index, ByteView blob);
  Query& bind(int index, std::nullopt_t);
  template <class T>
  Query& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind(index, std::nullopt);
  }

  bool step();  // true: a row is ready; false: done
  void run();   // steps to the end (a statement without rows)

  bool is_null(int col) const noexcept { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t i64(int col) const noexcept { return sqlite3_column_int64(stmt_, col); }
  std::uint64_t u64(int col) const;  // throws StorageError(Corrupt) for a negative value
  std::uint32_t u32(int col) const;  // … or one above UINT32_MAX
  Bytes blob(int col) const;
  std::string text(int col) const;

 private:
  friend class QueryBinding<Query>;
  [[noreturn]] void corrupt(int col, const char* what) const;
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  CallSite where_;
};

class Savepoint;

// One connection with its statement cache. Used by one thread at a time.
class Db {
 public:
  using Savepoint = sqlite::Savepoint;  // what the shared engine opens inside an operation
  Db() = default;
  // flags: SQLITE_OPEN_* ; vfs: nullptr for the default.
  static Db open(const std::string& path, int flags, const char* vfs, CallSite where = CallSite::current());
  sqlite3* get() const noexcept { return db_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(db_); }

  void exec(const char* sql, CallSite where = CallSite::current());
  // A cached prepared statement for `sql` (prepared on first use).
  Query query(const char* sql, CallSite where = CallSite::current());
  std::int64_t changes() const noexcept { return sqlite3_changes64(db_.get()); }
  std::int64_t last_rowid() const noexcept { return sqlite3_last_insert_rowid(db_.get()); }
  // The single value of a one-row, one-column query (e.g. PRAGMA user_version).
  std::int64_t scalar(const char* sql, CallSite where = CallSite::current());
  void close() noexcept;

  // The audit chain's tip as this connection last appended it inside the current write
  // transaction (ledger_engine.hpp's append_audit keeps it, saving a read per row: the writer
  // holds SQLite's write lock for the whole transaction, so nobody else appends meanwhile).
  // Whoever begins or rolls back a transaction or a savepoint on this connection resets it.
  std::optional<AuditHead> audit_tip;

 private:
  struct Cached {
    std::string sql;  // the key views this string (node-based map: its address is stable)
    StmtHandle stmt;
  };
  DbHandle db_;
  // Looked up by the SQL text without allocating; destroyed before db_ (declared after).
  std::unordered_map<std::string_view, std::unique_ptr<Cached>> cache_;
};

// SAVEPOINT … RELEASE, rolled back unless released; names nest.
class Savepoint {
 public:
  Savepoint(Db& db, const char* name);
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  ~Savepoint();
  void release();
  void rollback();  // ROLLBACK TO + RELEASE: the changes since the savepoint are undone

 private:
  Db& db_;
  std::string name_;
  bool open_ = true;
};

}  // namespace skillcard::ledger::sqlite
