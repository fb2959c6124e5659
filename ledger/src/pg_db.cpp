// libpq behind the ledger: the SQLSTATE → StorageErrorKind mapping, the checked wrapper, prepared
// statements, text-format results, and the pipelined writer (pg_db.hpp says how).
#include "pg_db.hpp"

#include <charconv>
#include <limits>
#include <thread>

namespace skillcard::ledger::pg {

namespace {

constexpr unsigned kByteaOid = 17;
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kTextOid = 25;

// libpq prints server NOTICEs (e.g. "relation already exists, skipping") to stderr by default.
void ignore_notice(void*, const char*) {}

// "?12" → "$12": the engine's SQL uses SQLite's numbered parameters.
std::string to_pg_placeholders(const char* sql) {
  std::string out(sql);
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '?' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '$';
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

StorageErrorKind kind_of(std::string_view s) noexcept {
  if (s.size() != 5) return StorageErrorKind::Other;
  const auto cls = s.substr(0, 2);
  if (s == "40001" || s == "40P01" || s == "55P03" || s == "57014" || s == "53300") return StorageErrorKind::Busy;
  if (cls == "23" || s == "P0001") return StorageErrorKind::Constraint;  // P0001: our append-only triggers
  if (s == "XX001" || s == "XX002") return StorageErrorKind::Corrupt;
  if (cls == "08" || cls == "58" || s == "57P01" || s == "57P02" || s == "57P03") return StorageErrorKind::IoError;
  if (s == "53100") return StorageErrorKind::Full;
  if (s == "25006") return StorageErrorKind::ReadOnly;
  if (cls == "28" || s == "3D000" || s == "3F000" || s == "42501") return StorageErrorKind::CantOpen;
  if (cls == "42" || cls == "22" || cls == "25" || cls == "26" || cls == "34" || cls == "0A" || cls == "2B") {
    return StorageErrorKind::Misuse;
  }
  return StorageErrorKind::Other;
}

int sqlstate_code(std::string_view s) noexcept {
  int code = 0;
  for (std::size_t i = 0; i < s.size() && i < 5; ++i) code |= ((s[i] - '0') & 0x3F) << (6 * i);
  return code;
}

void fail(StorageErrorKind kind, const std::string& sqlstate, const std::string& message, const char* call,
          CallSite where) {
  throw StorageError(kind, sqlstate_code(sqlstate),
                     std::string(call) + " failed: " + message + " (SQLSTATE " + sqlstate + ")", where);
}

Result check(PGresult* raw, PGconn* conn, const char* call, CallSite where) {
  Result r(raw);
  const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  std::string sqlstate;
  std::string message;
  if (r) {
    if (const char* s = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE)) sqlstate = s;
    message = PQresultErrorMessage(r.get());
  }
  if (message.empty() && conn != nullptr) message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (sqlstate.empty()) {
    // No answer from the server at all: the connection is gone (08006, connection_failure).
    sqlstate = conn != nullptr && PQstatus(conn) == CONNECTION_BAD ? "08006" : "XX000";
  }
  fail(kind_of(sqlstate), sqlstate, message, call, where);
}

// ---------------------------------------------------------------------------------------------
// Query.

Query::Param& Query::param(int index) {
  const auto i = static_cast<std::size_t>(index - 1);
  if (params_.size() <= i) params_.resize(i + 1);
  params_[i] = {};
  return params_[i];
}

Query& Query::bind(int index, std::int64_t value) {
  auto& p = param(index);
  p.type = kInt8Oid;
  p.value = std::to_string(value);
  return *this;
}

Query& Query::bind(int index, std::uint64_t value) {
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    fail(StorageErrorKind::Misuse, "22003", "value " + std::to_string(value) + " does not fit a bigint column", "bind",
         where_);
  }
  return bind(index, static_cast<std::int64_t>(value));
}

Query& Query::bind(int index, std::string_view text) {
  // libpq sends a text parameter up to its first NUL: refused rather than stored cut short.
  if (text.find('\0') != std::string_view::npos) {
    fail(StorageErrorKind::Misuse, "22021", "a text value holds a NUL byte", "bind", where_);
  }
  auto& p = param(index);
  p.type = kTextOid;
  p.value.assign(text.data(), text.size());
  return *this;
}

Query& Query::bind(int index, ByteView blob) {
  auto& p = param(index);
  p.type = kByteaOid;
  p.binary = true;
  p.value.assign(reinterpret_cast<const char*>(blob.data()), blob.size());
  return *this;
}

Query::Wire Query::wire() const {
  Wire w;
  for (const auto& p : params_) {
    w.types.push_back(p.type);
    w.values.push_back(p.null ? nullptr : p.value.data());
    w.lengths.push_back(static_cast<int>(p.value.size()));
    w.formats.push_back(p.binary ? 1 : 0);
  }
  return w;
}

void Query::execute() {
  const auto wire = this->wire();
  if (db_.pipelined()) {
    // Sent behind whatever is in flight; one round trip collects it all, ours last.
    db_.send(sql_, wire.types, wire.values, wire.lengths, wire.formats, where_);
    result_ = db_.sync(where_);
  } else {
    result_ = db_.execute(sql_, wire.types, wire.values, wire.lengths, wire.formats, where_);
  }
  rows_ = PQntuples(result_.get());
  row_ = -1;
}

void Query::send() {
  const auto wire = this->wire();
  db_.send(sql_, wire.types, wire.values, wire.lengths, wire.formats, where_);
  sent_ = true;
}

bool Query::step() {
  if (!result_) execute();
  if (row_ + 1 >= rows_) return false;
  ++row_;
  return true;
}

void Query::run() {
  if (result_ || sent_) return;
  if (db_.pipelined()) {
    send();
  } else {
    execute();
  }
}

const char* Query::cell(int col) const {
  if (row_ < 0 || row_ >= rows_ || col < 0 || col >= PQnfields(result_.get())) {
    fail(StorageErrorKind::Misuse, "XX000", "column " + std::to_string(col) + " read outside a row", "PQgetvalue",
         where_);
  }
  return PQgetvalue(result_.get(), row_, col);
}

bool Query::is_null(int col) const {
  cell(col);
  return PQgetisnull(result_.get(), row_, col) != 0;
}

std::int64_t Query::i64(int col) const {
  if (is_null(col)) return 0;  // as sqlite3_column_int64
  const std::string_view s = cell(col);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || (end != s.data() + s.size() && *end != '.')) corrupt(col, "not an integer");
  return v;
}

std::uint64_t Query::u64(int col) const {
  const auto v = i64(col);
  if (v < 0) corrupt(col, "a negative value");
  return static_cast<std::uint64_t>(v);
}

std::uint32_t Query::u32(int col) const {
  const auto v = u64(col);
  if (v > std::numeric_limits<std::uint32_t>::max()) corrupt(col, "a value above 2^32 - 1");
  return static_cast<std::uint32_t>(v);
}

Bytes Query::blob(int col) const {
  if (is_null(col)) return {};
  const std::string_view s = cell(col);
  // bytea output in hex format: "\x" then two digits per byte.
  if (s.size() < 2 || s[0] != '\\' || s[1] != 'x' || s.size() % 2 != 0) corrupt(col, "not a hex bytea");
  Bytes out;
  out.reserve((s.size() - 2) / 2);
  for (std::size_t i = 2; i < s.size(); i += 2) {
    const int hi = hex_value(s[i]);
    const int lo = hex_value(s[i + 1]);
    if (hi < 0 || lo < 0) corrupt(col, "not a hex bytea");
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return out;
}

std::string Query::text(int col) const {
  if (is_null(col)) return {};
  return std::string(cell(col), static_cast<std::size_t>(PQgetlength(result_.get(), row_, col)));
}

void Query::corrupt(int col, const char* what) const {
  fail(StorageErrorKind::Corrupt, "XX001", std::string("column ") + std::to_string(col) + " holds " + what,
       "PQgetvalue", where_);
}

// ---------------------------------------------------------------------------------------------
// Db.

Db Db::connect(const std::string& conninfo, CallSite where) {
  Db db;
  // Defaults that the connection string may override (a later keyword wins): a server that
  // stops answering — a partition, a paused host, a failover that moved the address — is noticed
  // within seconds, not after the kernel's retransmissions (≈ 15 min), so the committer's callers
  // are answered and the service can still stop. Reconnects (PQreset) keep them.
  static constexpr const char* kKeywords[] = {
      "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
      "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
  const char* values[] = {"10", "1", "10", "5", "3", "30000", conninfo.c_str(), nullptr};
  db.conn_.reset(PQconnectdbParams(kKeywords, values, /*expand_dbname=*/1));
  if (!db.conn_) fail(StorageErrorKind::Other, "53200", "out of memory", "PQconnectdb", where);
  if (PQstatus(db.conn_.get()) != CONNECTION_OK) {
    std::string message = PQerrorMessage(db.conn_.get());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    fail(StorageErrorKind::CantOpen, "08001", message, "PQconnectdb", where);
  }
  PQsetNoticeProcessor(db.conn_.get(), ignore_notice, nullptr);
  return db;
}

void Db::exec(const char* sql, CallSite where) {
  sync(where);
  auto r = check(PQexec(conn_.get(), sql), conn_.get(), "PQexec", where);
  note_changes(r.get());
}

void Db::note_changes(const PGresult* r) noexcept {
  const std::string_view status = PQcmdStatus(const_cast<PGresult*>(r));
  if (status.starts_with("INSERT") || status.starts_with("UPDATE") || status.starts_with("DELETE")) {
    const char* n = PQcmdTuples(const_cast<PGresult*>(r));
    changes_ = n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
  }
}

const std::string& Db::statement(const char* sql, const std::vector<unsigned>& types, CallSite where, bool pipelined) {
  std::string key = sql;
  for (auto t : types) key += "\x01" + std::to_string(t);
  auto it = prepared_.find(key);
  if (it != prepared_.end()) return it->second;
  const std::string name = "s" + std::to_string(++statements_);
  const std::string text = to_pg_placeholders(sql);
  std::vector<Oid> oids(types.begin(), types.end());
  if (pipelined) {
    if (PQsendPrepare(conn_.get(), name.c_str(), text.c_str(), static_cast<int>(oids.size()), oids.data()) == 0) {
      fail(StorageErrorKind::IoError, "08006", PQerrorMessage(conn_.get()), "PQsendPrepare", where);
    }
    in_flight_.push_back({key, owner_});
  } else {
    check(PQprepare(conn_.get(), name.c_str(), text.c_str(), static_cast<int>(oids.size()), oids.data()), conn_.get(),
          "PQprepare", where);
  }
  return prepared_.emplace(std::move(key), name).first->second;
}

Result Db::execute(const char* sql, const std::vector<unsigned>& types, const std::vector<const char*>& values,
                   const std::vector<int>& lengths, const std::vector<int>& formats, CallSite where) {
  const auto& name = statement(sql, types, where, false);
  auto r = check(PQexecPrepared(conn_.get(), name.c_str(), static_cast<int>(values.size()), values.data(),
                                lengths.data(), formats.data(), 0),
                 conn_.get(), "PQexecPrepared", where);
  note_changes(r.get());
  return r;
}

void Db::enter_pipeline(CallSite where) {
  if (PQpipelineStatus(conn_.get()) != PQ_PIPELINE_OFF) return;
  if (PQenterPipelineMode(conn_.get()) == 0) {
    fail(StorageErrorKind::Misuse, "XX000", PQerrorMessage(conn_.get()), "PQenterPipelineMode", where);
  }
}

void Db::send(const char* sql, const std::vector<unsigned>& types, const std::vector<const char*>& values,
              const std::vector<int>& lengths, const std::vector<int>& formats, CallSite where) {
  enter_pipeline(where);
  const auto& name = statement(sql, types, where, true);
  if (PQsendQueryPrepared(conn_.get(), name.c_str(), static_cast<int>(values.size()), values.data(), lengths.data(),
                          formats.data(), 0) == 0) {
    fail(StorageErrorKind::IoError, "08006", PQerrorMessage(conn_.get()), "PQsendQueryPrepared", where);
  }
  in_flight_.push_back({{}, owner_});
}

void Db::send_simple(const char* sql, CallSite where) {
  if (!pipelined_) {
    exec(sql, where);
    return;
  }
  enter_pipeline(where);
  if (PQsendQueryParams(conn_.get(), sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 0) {
    fail(StorageErrorKind::IoError, "08006", PQerrorMessage(conn_.get()), "PQsendQueryParams", where);
  }
  in_flight_.push_back({{}, owner_});
}

Result Db::sync(CallSite where) {
  if (!conn_ || PQpipelineStatus(conn_.get()) == PQ_PIPELINE_OFF) return nullptr;
  std::string sqlstate;
  std::string message;
  Result last;
  const auto broken = [&] {
    const std::string m = PQerrorMessage(conn_.get());
    PQreset(conn_.get());  // the session is gone, or its state unknown
    after_reset(m, where);
  };
  if (PQpipelineSync(conn_.get()) == 0) broken();
  // Each statement's results end with a NULL; the Sync's result ends the pipeline.
  std::size_t index = 0;
  std::size_t failed_owner = 0;
  for (;;) {
    PGresult* raw = PQgetResult(conn_.get());
    if (raw == nullptr) {
      if (PQstatus(conn_.get()) == CONNECTION_BAD || index > in_flight_.size()) broken();
      ++index;
      continue;
    }
    Result r(raw);
    const auto status = PQresultStatus(r.get());
    if (status == PGRES_PIPELINE_SYNC) break;
    const bool failed = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
    if (failed && index < in_flight_.size() && !in_flight_[index].prepared_key.empty()) {
      prepared_.erase(in_flight_[index].prepared_key);  // never created on the server
    }
    if (status == PGRES_FATAL_ERROR && sqlstate.empty()) {
      failed_owner = index < in_flight_.size() ? in_flight_[index].owner : owner_;
      const char* s = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
      sqlstate = s != nullptr ? s : "XX000";
      message = PQresultErrorMessage(r.get());
      while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    }
    if (!failed) {
      note_changes(r.get());
      last = std::move(r);
    }
  }
  in_flight_.clear();
  if (PQexitPipelineMode(conn_.get()) == 0) broken();
  if (!sqlstate.empty()) {
    try {
      fail(kind_of(sqlstate), sqlstate, message, "PQpipelineSync", where);
    } catch (...) {
      if (!failure_) failure_ = Failure{failed_owner, std::current_exception()};
      throw;
    }
  }
  return last;
}

void Db::sync_quietly() noexcept {
  try {
    sync();
  } catch (...) {
    // What failed is being rolled back.
  }
}

std::int64_t Db::scalar(const char* sql, CallSite where) {
  auto q = query(sql, where);
  if (!q.step()) fail(StorageErrorKind::Other, "02000", std::string("no row from: ") + sql, "scalar", where);
  return q.i64(0);
}

bool Db::in_transaction() const noexcept {
  return conn_ && PQtransactionStatus(conn_.get()) != PQTRANS_IDLE &&
         PQtransactionStatus(conn_.get()) != PQTRANS_UNKNOWN;
}

void Db::reset_if_broken() {
  if (!conn_ || PQstatus(conn_.get()) == CONNECTION_OK) return;
  PQreset(conn_.get());
  after_reset("", CallSite::current());
}

void Db::setup(const std::string& sql, CallSite where) {
  exec(sql.c_str(), where);
  setup_.push_back(sql);
}

void Db::after_reset(const std::string& reason, CallSite where) {
  in_flight_.clear();
  prepared_.clear();  // the server forgot them with the old session
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    fail(StorageErrorKind::IoError, "08006", reason + PQerrorMessage(conn_.get()), "PQreset", where);
  }
  const bool was_pipelined = pipelined_;
  pipelined_ = false;
  for (const auto& sql : setup_) exec(sql.c_str(), where);
  pipelined_ = was_pipelined;
  if (!reason.empty()) fail(StorageErrorKind::IoError, "08006", reason, "PQgetResult", where);
}

CommitOutcome commit_outcome(Db& db, std::int64_t txid) noexcept {
  for (int attempt = 0; attempt < 20; ++attempt) {
    try {
      db.reset_if_broken();
      auto q = db.query("SELECT txid_status(?1)");
      q.bind(1, txid);
      if (!q.step() || q.is_null(0)) return CommitOutcome::Unknown;  // too old to know
      const auto status = q.text(0);
      if (status == "committed") return CommitOutcome::Committed;
      if (status == "aborted") return CommitOutcome::Aborted;
      // "in progress": the old session's backend has not finished the commit yet.
    } catch (...) {
      if (attempt >= 2) return CommitOutcome::Unknown;  // unreachable: say so, do not guess
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return CommitOutcome::Unknown;
}

void Db::close() noexcept {
  in_flight_.clear();
  prepared_.clear();
  conn_.reset();
}

// ---------------------------------------------------------------------------------------------
// Savepoint.

Savepoint::Savepoint(Db& db, const char* name) : db_(db), name_(name) {
  db_.send_simple(("SAVEPOINT " + name_).c_str());
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
  db_.send_simple(("RELEASE " + name_).c_str());
}

void Savepoint::rollback() {
  open_ = false;
  db_.audit_tip.reset();  // the rows since the savepoint are gone
  // A failure in flight would abort the pipeline, ROLLBACK TO with it: collect first.
  db_.sync_quietly();
  db_.exec(("ROLLBACK TO " + name_ + "; RELEASE " + name_).c_str());
}

}  // namespace skillcard::ledger::pg
