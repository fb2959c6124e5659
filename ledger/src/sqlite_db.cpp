#include "sqlite_db.hpp"

#include <limits>

namespace skillcard::ledger::sqlite {

StorageErrorKind kind_of(int result_code) noexcept {
  switch (result_code & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StorageErrorKind::Busy;
    case SQLITE_CONSTRAINT:
      return StorageErrorKind::Constraint;
    case SQLITE_CORRUPT:
      return StorageErrorKind::Corrupt;
    case SQLITE_NOTADB:
      return StorageErrorKind::NotADatabase;
    case SQLITE_IOERR:
      return StorageErrorKind::IoError;
    case SQLITE_FULL:
      return StorageErrorKind::Full;
    case SQLITE_READONLY:
      return StorageErrorKind::ReadOnly;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return StorageErrorKind::CantOpen;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
      return StorageErrorKind::Misuse;
    default:
      return StorageErrorKind::Other;
  }
}

void fail(int rc, sqlite3* db, const char* call, CallSite where) {
  std::string message = std::string(call) + " failed: ";
  // The connection's message is only about this call if its last error is this one.
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    message += sqlite3_errmsg(db);
  } else {
    message += sqlite3_errstr(rc);
  }
  message += " (SQLite " + std::to_string(rc) + ")";
  throw StorageError(kind_of(rc), rc, message, where);
}

Query& Query::bind(int index, std::int64_t value) {
  check(sqlite3_bind_int64(stmt_, index, value), db_, "sqlite3_bind_int64", where_);
  return *this;
}

Query& Query::bind(int index, std::uint64_t value) {
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw StorageError(StorageErrorKind::Misuse, SQLITE_RANGE,
                       "value " + std::to_string(value) + " does not fit a signed 64-bit column", where_);
  }
  return bind(index, static_cast<std::int64_t>(value));
}

Query& Query::bind(int index, std::string_view text) {
  check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8), db_,
        "sqlite3_bind_text64", where_);
  return *this;
}

Query& Query::bind(int index, ByteView blob) {
  // A zero-length blob must still be a blob, not NULL: give SQLite a non-null pointer.
  static const std::uint8_t empty = 0;
  check(sqlite3_bind_blob64(stmt_, index, blob.empty() ? &empty : blob.data(), blob.size(), SQLITE_TRANSIENT), db_,
        "sqlite3_bind_blob64", where_);
  return *this;
}

Query& Query::bind(int index, std::nullopt_t) {
  check(sqlite3_bind_null(stmt_, index), db_, "sqlite3_bind_null", where_);
  return *this;
}

bool Query::step() { return check(sqlite3_step(stmt_), db_, "sqlite3_step", where_) == SQLITE_ROW; }

void Query::run() {
  while (step()) {
  }
}

void Query::corrupt(int col, const char* what) const {
  throw StorageError(StorageErrorKind::Corrupt, SQLITE_CORRUPT,
                     std::string("column ") + sqlite3_column_name(stmt_, col) + " holds " + what, where_);
}

std::uint64_t Query::u64(int col) const {
  const auto v = i64(col);
  if (v < 0) corrupt(col, "a negative value");
  return static_cast<std::uint64_t>(v);
}

std::uint32_t Query::u32(int col) const {
  const auto v = u64(col);
  if (v > std::numeric_limits<std::uint32_t>::max()) corrupt(col, "a value above 2^32");
  return static_cast<std::uint32_t>(v);
}

Bytes Query::blob(int col) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
  const auto n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr || n <= 0) return {};
  return Bytes(p, p + n);
}

std::string Query::text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  const auto n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr || n <= 0) return {};
  return std::string(p, static_cast<std::size_t>(n));
}

Db Db::open(const std::string& path, int flags, const char* vfs, CallSite where) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, vfs);
  Db db;
  db.db_.reset(raw);  // closed even when the open failed
  if (rc != SQLITE_OK) {
    std::string message = "sqlite3_open_v2(" + path + ") failed: ";
    message += raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    throw StorageError(kind_of(rc), rc, message, where);
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

void Db::exec(const char* sql, CallSite where) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string message = std::string("sqlite3_exec failed: ") + (err != nullptr ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    throw StorageError(kind_of(rc), sqlite3_extended_errcode(db_.get()), message, where);
  }
}

Query Db::query(const char* sql, CallSite where) {
  auto it = cache_.find(std::string_view(sql));
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    check(sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr), db_.get(),
          "sqlite3_prepare_v3", where);
    auto entry = std::make_unique<Cached>(Cached{sql, StmtHandle(stmt)});
    const std::string_view key = entry->sql;
    it = cache_.emplace(key, std::move(entry)).first;
  }
  return Query(db_.get(), it->second->stmt.get(), where);
}

std::int64_t Db::scalar(const char* sql, CallSite where) {
  auto q = query(sql, where);
  if (!q.step()) {
    throw StorageError(StorageErrorKind::Other, SQLITE_DONE, std::string("no row from: ") + sql, where);
  }
  return q.i64(0);
}

void Db::close() noexcept {
  cache_.clear();
  db_.reset();
}

Savepoint::Savepoint(Db& db, const char* name) : db_(db), name_(name) {
  db_.query(("SAVEPOINT " + name_).c_str()).run();
}

Savepoint::~Savepoint() {
  if (!open_) return;
  try {
    rollback();
  } catch (...) {
    // The connection is failing already; the enclosing transaction is rolled back by its owner.
  }
}

void Savepoint::release() {
  open_ = false;
  db_.query(("RELEASE " + name_).c_str()).run();
}

void Savepoint::rollback() {
  open_ = false;
  db_.audit_tip.reset();  // the rows since the savepoint are gone
  db_.query(("ROLLBACK TO " + name_).c_str()).run();
  db_.query(("RELEASE " + name_).c_str()).run();
}

}  // namespace skillcard::ledger::sqlite
