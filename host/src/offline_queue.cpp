// OfflineQueue on SQLite: WAL + synchronous=FULL, every change in one transaction.
#include "skillcard/host/offline_queue.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "skillcard/iso7816/call_site.hpp"

#include "skillcard/host/encoding.hpp"
#include "skillcard/host/refusal.hpp"

namespace skillcard::host {

namespace {

struct StmtFree {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFree>;

}  // namespace

struct OfflineQueue::Db {
  sqlite3* handle = nullptr;
  ~Db() { sqlite3_close(handle); }

  // The one checked wrapper: any result other than the expected ones throws with the call site.
  void check(int rc, const char* what, CallSite where = CallSite::current()) const {
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
    throw std::runtime_error(std::string("offline queue: ") + what + ": " + sqlite3_errstr(rc) + " (" +
                             (handle ? sqlite3_errmsg(handle) : "") + ") at " + where.file + ":" +
                             std::to_string(where.line));
  }
  void exec(const char* sql) { check(sqlite3_exec(handle, sql, nullptr, nullptr, nullptr), sql); }
  // SQLite does not call the busy handler when this meets another process creating or switching
  // the same new file (waiting there could deadlock): it waits itself, as long as the handler would.
  void switch_to_wal(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto pause = std::chrono::milliseconds(1);; pause = std::min(2 * pause, std::chrono::milliseconds(50))) {
      const int rc = sqlite3_exec(handle, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
      if (rc != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline)
        return check(rc, "PRAGMA journal_mode=WAL");
      std::this_thread::sleep_for(pause);
    }
  }
  // A queue file made by an older host lacks a column added since: added, with its default.
  void add_column_if_missing(const char* table, const char* column, const char* definition) {
    const auto cols = prepare(
        ("SELECT count(*) FROM pragma_table_info('" + std::string(table) + "') WHERE name = '" + column + "'").c_str());
    check(sqlite3_step(cols.get()), "read the queue's columns");
    if (sqlite3_column_int(cols.get(), 0) == 0) {
      exec(("ALTER TABLE " + std::string(table) + " ADD COLUMN " + column + " " + definition).c_str());
    }
  }
  Stmt prepare(const char* sql) const {
    sqlite3_stmt* s = nullptr;
    check(sqlite3_prepare_v2(handle, sql, -1, &s, nullptr), sql);
    return Stmt(s);
  }
  void bind_blob(sqlite3_stmt* s, int i, ByteView b) const {
    check(sqlite3_bind_blob(s, i, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT), "bind");
  }
  void bind_text(sqlite3_stmt* s, int i, std::string_view t) const {
    check(sqlite3_bind_text(s, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT), "bind");
  }
  void bind_int(sqlite3_stmt* s, int i, std::int64_t v) const { check(sqlite3_bind_int64(s, i, v), "bind"); }
};

namespace {

Bytes column_blob(sqlite3_stmt* s, int i) {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, i));
  return Bytes(p, p + sqlite3_column_bytes(s, i));
}
std::string column_text(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

}  // namespace

namespace {
// PRAGMA application_id of a queue file: "SKQU".
constexpr std::int64_t kQueueApplicationId = 0x534B5155;
}  // namespace

OfflineQueue::OfflineQueue(const std::filesystem::path& path, std::uint64_t window_seconds)
    : db_(std::make_unique<Db>()), window_(window_seconds) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    // A new queue is made whole under a name of its own and then linked into place (never over
    // a file: another process may have made it meanwhile, and then that one is used). So a file
    // under the queue's name is a queue from its first byte on, and an empty one is a damaged one.
    static std::atomic<unsigned> made{0};
    const std::filesystem::path fresh =
        path.string() + ".new-" + std::to_string(::getpid()) + "-" + std::to_string(made++);
    {
      Db init;
      init.check(sqlite3_open_v2(fresh.c_str(), &init.handle,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr),
                 "create");
      init.exec("PRAGMA journal_mode=WAL");
      init.exec(("PRAGMA application_id = " + std::to_string(kQueueApplicationId)).c_str());
      init.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    const bool linked = ::link(fresh.c_str(), path.c_str()) == 0;
    const int err = errno;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(fresh.string() + suffix, ec);
    if (!linked && err != EEXIST) {
      throw std::runtime_error("offline queue: cannot create " + path.string() + ": " + std::strerror(err));
    }
  }
  if (std::filesystem::file_size(path, ec) == 0) {
    throw std::runtime_error("queue " + path.string() +
                             " is empty: not a queue (truncated?); move it aside, never delete receipts unread");
  }
  db_->check(sqlite3_open_v2(path.c_str(), &db_->handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr),
             "open");
  db_->check(sqlite3_busy_timeout(db_->handle, 5000), "busy timeout");
  {
    // Ours by its application id, or a queue made before it had one (it has a queue's tables).
    const auto id = db_->prepare("PRAGMA application_id");
    db_->check(sqlite3_step(id.get()), "read the application id");  // "file is not a database", …
    const auto app = sqlite3_column_int64(id.get(), 0);
    const auto tables = db_->prepare(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('receipts', 'in_doubt', 'contact')");
    db_->check(sqlite3_step(tables.get()), "read the queue's tables");
    if (app != kQueueApplicationId && !(app == 0 && sqlite3_column_int(tables.get(), 0) > 0)) {
      throw std::runtime_error("queue " + path.string() + " is not a queue file (another database?); nothing changed");
    }
  }
  constexpr std::chrono::milliseconds kBusyTimeout(5000);
  db_->check(sqlite3_busy_timeout(db_->handle, static_cast<int>(kBusyTimeout.count())), "busy timeout");
  db_->switch_to_wal(kBusyTimeout);
  db_->exec("PRAGMA synchronous=FULL");
  // The schema in one write transaction: two processes opening an old queue at once add its new
  // columns once.
  db_->exec("BEGIN IMMEDIATE");
  struct RollbackUnlessCommitted {
    sqlite3* handle;
    ~RollbackUnlessCommitted() {
      if (sqlite3_get_autocommit(handle) == 0) sqlite3_exec(handle, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  } rollback{db_->handle};
  db_->exec(
      "CREATE TABLE IF NOT EXISTS receipts ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " voucher_id TEXT NOT NULL,"
      " card TEXT NOT NULL,"
      " receipt BLOB NOT NULL UNIQUE,"
      " made_at INTEGER NOT NULL,"
      " attempts INTEGER NOT NULL DEFAULT 0,"
      " last_error TEXT,"
      " refused INTEGER NOT NULL DEFAULT 0,"
      " rules TEXT NOT NULL DEFAULT '',"
      " message_zh TEXT NOT NULL DEFAULT '',"
      " message_en TEXT NOT NULL DEFAULT '')");
  // A queue made before the service's own words were kept (they fill the catalogue's
  // placeholders, e.g. P12's hours): the two columns are added, empty for rows refused before.
  db_->add_column_if_missing("receipts", "message_zh", "TEXT NOT NULL DEFAULT ''");
  db_->add_column_if_missing("receipts", "message_en", "TEXT NOT NULL DEFAULT ''");
  db_->exec(
      "CREATE TABLE IF NOT EXISTS in_doubt ("
      " card TEXT PRIMARY KEY,"
      " voucher_id TEXT NOT NULL,"
      " counter_before INTEGER NOT NULL,"
      " since INTEGER NOT NULL DEFAULT 0)");
  // A queue made before the time of a doubt was kept: the column is added, 0 for older rows.
  db_->add_column_if_missing("in_doubt", "since", "INTEGER NOT NULL DEFAULT 0");
  db_->exec(
      "CREATE TABLE IF NOT EXISTS contact ("
      " id INTEGER PRIMARY KEY CHECK (id = 1),"
      " local_time INTEGER NOT NULL,"
      " service_time INTEGER NOT NULL,"
      " sync_window INTEGER NOT NULL DEFAULT 0)");
  // A queue from before the service stated its sync window: 0, the default window.
  db_->add_column_if_missing("contact", "sync_window", "INTEGER NOT NULL DEFAULT 0");
  db_->exec(("PRAGMA application_id = " + std::to_string(kQueueApplicationId)).c_str());
  db_->exec("COMMIT");
}

OfflineQueue::~OfflineQueue() = default;

bool OfflineQueue::enqueue(const VoucherId& voucher_id, std::string_view card, ByteView receipt,
                           std::uint64_t made_at) {
  const auto s = db_->prepare("INSERT OR IGNORE INTO receipts(voucher_id, card, receipt, made_at) VALUES (?,?,?,?)");
  db_->bind_text(s.get(), 1, lower_hex(voucher_id));
  db_->bind_text(s.get(), 2, card);
  db_->bind_blob(s.get(), 3, receipt);
  db_->bind_int(s.get(), 4, static_cast<std::int64_t>(made_at));
  db_->check(sqlite3_step(s.get()), "enqueue");
  return sqlite3_changes(db_->handle) == 1;
}

std::vector<QueuedReceipt> OfflineQueue::pending(std::uint64_t now) const {
  const auto s = db_->prepare(
      "SELECT id, voucher_id, card, receipt, made_at, attempts, last_error, refused, rules, message_zh, message_en "
      "FROM receipts ORDER BY id");
  std::vector<QueuedReceipt> out;
  const auto window = this->window();
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    QueuedReceipt q;
    q.id = sqlite3_column_int64(s.get(), 0);
    q.voucher_id = fixed_from_hex<8>(column_text(s.get(), 1), "voucher_id");
    q.card = column_text(s.get(), 2);
    q.receipt = column_blob(s.get(), 3);
    q.made_at = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 4));
    q.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(s.get(), 5));
    if (sqlite3_column_type(s.get(), 6) != SQLITE_NULL) q.last_error = column_text(s.get(), 6);
    q.refused = sqlite3_column_int64(s.get(), 7) != 0;
    q.message = {column_text(s.get(), 9), column_text(s.get(), 10)};
    const auto rules = column_text(s.get(), 8);
    for (std::size_t at = 0; at < rules.size();) {
      const auto comma = rules.find(',', at);
      q.rules.push_back(rules.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
      at = comma == std::string::npos ? rules.size() : comma + 1;
    }
    const auto deadline = q.made_at + window;
    q.seconds_left = now < deadline ? deadline - now : 0;
    out.push_back(std::move(q));
  }
  db_->check(rc, "pending");
  return out;
}

std::size_t OfflineQueue::size() const {
  const auto s = db_->prepare("SELECT count(*) FROM receipts");
  db_->check(sqlite3_step(s.get()), "size");
  return static_cast<std::size_t>(sqlite3_column_int64(s.get(), 0));
}

namespace {
std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& r : v) out += (out.empty() ? "" : ",") + r;
  return out;
}
}  // namespace

void OfflineQueue::remember_in_doubt(const InDoubt& pending) {
  const auto s =
      db_->prepare("INSERT OR REPLACE INTO in_doubt(card, voucher_id, counter_before, since) VALUES (?,?,?,?)");
  db_->bind_text(s.get(), 1, pending.card);
  db_->bind_text(s.get(), 2, lower_hex(pending.voucher));
  db_->bind_int(s.get(), 3, pending.counter_before);
  db_->bind_int(s.get(), 4, static_cast<std::int64_t>(pending.since));
  db_->check(sqlite3_step(s.get()), "remember in doubt");
}

std::vector<InDoubt> OfflineQueue::all_in_doubt() const {
  const auto s = db_->prepare("SELECT card, voucher_id, counter_before, since FROM in_doubt ORDER BY card");
  std::vector<InDoubt> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    out.push_back({column_text(s.get(), 0), fixed_from_hex<8>(column_text(s.get(), 1), "voucher_id"),
                   static_cast<std::uint32_t>(sqlite3_column_int64(s.get(), 2)),
                   static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 3))});
  }
  db_->check(rc, "in doubt");
  return out;
}

std::optional<InDoubt> OfflineQueue::in_doubt(std::string_view card) const {
  for (auto& d : all_in_doubt())
    if (d.card == card) return d;
  return std::nullopt;
}

void OfflineQueue::forget_in_doubt(std::string_view card) {
  const auto s = db_->prepare("DELETE FROM in_doubt WHERE card = ?");
  db_->bind_text(s.get(), 1, card);
  db_->check(sqlite3_step(s.get()), "forget in doubt");
}

void OfflineQueue::record_contact(const Contact& contact) {
  const auto s =
      db_->prepare("INSERT OR REPLACE INTO contact(id, local_time, service_time, sync_window) VALUES (1,?,?,?)");
  db_->bind_int(s.get(), 1, static_cast<std::int64_t>(contact.local_time));
  db_->bind_int(s.get(), 2, static_cast<std::int64_t>(contact.service_time));
  db_->bind_int(s.get(), 3, static_cast<std::int64_t>(contact.sync_window_seconds));
  db_->check(sqlite3_step(s.get()), "record contact");
}

std::optional<OfflineQueue::Contact> OfflineQueue::last_contact() const {
  const auto s = db_->prepare("SELECT local_time, service_time, sync_window FROM contact WHERE id = 1");
  const int rc = sqlite3_step(s.get());
  db_->check(rc, "last contact");
  if (rc != SQLITE_ROW) return std::nullopt;
  return Contact{static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0)),
                 static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 1)),
                 static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 2))};
}

std::uint64_t OfflineQueue::window() const {
  const auto contact = last_contact();
  return contact && contact->sync_window_seconds != 0 ? contact->sync_window_seconds : window_;
}

void OfflineQueue::remove(ByteView receipt) {
  const auto s = db_->prepare("DELETE FROM receipts WHERE receipt = ?");
  db_->bind_blob(s.get(), 1, receipt);
  db_->check(sqlite3_step(s.get()), "remove");
}

void OfflineQueue::mark_refused(ByteView receipt, const std::string& code, const std::vector<std::string>& rules,
                                const Message& message) {
  const auto s = db_->prepare(
      "UPDATE receipts SET refused = 1, last_error = ?, rules = ?, message_zh = ?, message_en = ? WHERE receipt = ?");
  db_->bind_text(s.get(), 1, code);
  db_->bind_text(s.get(), 2, join(rules));
  db_->bind_text(s.get(), 3, message.zh_cn);
  db_->bind_text(s.get(), 4, message.en);
  db_->bind_blob(s.get(), 5, receipt);
  db_->check(sqlite3_step(s.get()), "mark refused");
}

SyncReport OfflineQueue::sync(ServiceClient& service, std::size_t limit) {
  SyncReport report;
  std::vector<QueuedReceipt> waiting;
  for (auto& q : pending(0))
    if (!q.refused && waiting.size() < limit) waiting.push_back(std::move(q));
  for (std::size_t at = 0; at < waiting.size(); at += kSyncBatch) {
    const auto n = std::min<std::size_t>(kSyncBatch, waiting.size() - at);
    std::vector<ReceiptSubmission> batch;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& q = waiting[at + i];
      batch.push_back({q.voucher_id, q.receipt, q.card});
    }
    std::vector<SyncItemResult> results;
    try {
      results = service.sync_redemptions(batch);
    } catch (const ServiceUnavailable& e) {
      report.service_unavailable = true;
      db_->exec("BEGIN IMMEDIATE");
      try {
        const auto s = db_->prepare("UPDATE receipts SET attempts = attempts + 1, last_error = ? WHERE id = ?");
        for (std::size_t i = at; i < waiting.size(); ++i) {
          sqlite3_reset(s.get());
          db_->bind_text(s.get(), 1, e.what());
          db_->bind_int(s.get(), 2, waiting[i].id);
          db_->check(sqlite3_step(s.get()), "record attempt");
        }
        db_->exec("COMMIT");
      } catch (...) {
        // Only the bookkeeping of an attempt: no transaction is left open to hold the file.
        sqlite3_exec(db_->handle, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
      break;
    }
    // Results name their voucher; match each to the batch item (one receipt per voucher).
    db_->exec("BEGIN IMMEDIATE");
    try {
      const auto del = db_->prepare("DELETE FROM receipts WHERE id = ?");
      const auto mark = db_->prepare(
          "UPDATE receipts SET attempts = attempts + 1, refused = 1, last_error = ?, rules = ?, message_zh = ?, "
          "message_en = ? WHERE id = ?");
      const auto tried = db_->prepare("UPDATE receipts SET attempts = attempts + 1 WHERE id = ?");
      std::vector<bool> answered(n, false);
      for (const auto& r : results) {
        for (std::size_t i = 0; i < n; ++i) {
          if (answered[i] || batch[i].voucher_id != r.voucher_id) continue;
          answered[i] = true;
          const auto id = waiting[at + i].id;
          if (r.accepted()) {
            sqlite3_reset(del.get());
            db_->bind_int(del.get(), 1, id);
            db_->check(sqlite3_step(del.get()), "remove acknowledged");
            ++report.acknowledged;
          } else if (r.status >= 500 || refusal_may_pass_later(r.error)) {
            // The service could not decide this item now (5xx, or not set up to): it stays waiting
            // for the next sync.
            sqlite3_reset(tried.get());
            db_->bind_int(tried.get(), 1, id);
            db_->check(sqlite3_step(tried.get()), "record attempt");
            ++report.undecided;
          } else {
            sqlite3_reset(mark.get());
            db_->bind_text(mark.get(), 1, r.error);
            db_->bind_text(mark.get(), 2, join(r.rules));
            db_->bind_text(mark.get(), 3, r.message.zh_cn);
            db_->bind_text(mark.get(), 4, r.message.en);
            db_->bind_int(mark.get(), 5, id);
            db_->check(sqlite3_step(mark.get()), "mark refused");
            ++report.refused;
          }
          break;
        }
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (answered[i]) continue;  // no answer for it: stays waiting
        sqlite3_reset(tried.get());
        db_->bind_int(tried.get(), 1, waiting[at + i].id);
        db_->check(sqlite3_step(tried.get()), "record attempt");
        ++report.undecided;
      }
      db_->exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_->handle, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
  report.remaining = size();
  return report;
}

}  // namespace skillcard::host
