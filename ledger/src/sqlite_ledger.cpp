// SqliteLedger: the ledger on one SQLite file (docs/ledger.md). Writes run on the group
// committer's thread over the writer connection, each inside its own savepoint; reads go to a
// separate reader connection (WAL: readers never block the writer, and see only committed data).
#include "skillcard/ledger/sqlite_ledger.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "group_commit.hpp"
#include "migrations.hpp"
#include "skillcard/ledger/audit.hpp"
#include "skillcard/ledger/cst.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "sqlite_db.hpp"

namespace skillcard::ledger {

using sqlite::Db;
using sqlite::Query;
using sqlite::Savepoint;

namespace {

// ---------------------------------------------------------------------------------------------
// Small helpers.

UtcSeconds wall_clock() {
  return static_cast<UtcSeconds>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void require_actor(const Actor& actor) {
  if (actor.terminal.empty() || actor.clerk.empty()) {
    throw std::invalid_argument("every ledger write names its terminal and clerk (both are empty or one is)");
  }
}

void require_card_number(std::string_view number) {
  if (number.size() != 10 || number.find_first_not_of("0123456789") != std::string_view::npos) {
    throw std::invalid_argument("a card number is 10 ASCII digits, got '" + std::string(number) + "'");
  }
}

std::string codes_text(const std::vector<std::uint32_t>& codes) {
  std::string out;
  for (auto c : codes) {
    if (!out.empty()) out += ',';
    out += std::to_string(c);
  }
  return out;
}

std::vector<std::uint32_t> codes_from_text(const std::string& text) {
  std::vector<std::uint32_t> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(static_cast<std::uint32_t>(std::stoul(text.substr(pos, comma - pos))));
    pos = comma + 1;
  }
  return out;
}

std::string voucher_subject(const VoucherId& id) { return "voucher:" + lower_hex(id); }

std::string join(const std::vector<std::string_view>& codes) {
  std::string out;
  for (auto c : codes) {
    if (!out.empty()) out += ',';
    out += c;
  }
  return out;
}

// Appends one audit row, chained to the last one, inside the caller's transaction.
void append_audit(Db& db, UtcSeconds at, const Actor& actor, std::string_view action, std::string_view subject,
                  std::string_view outcome) {
  AuditEntry e;
  {
    auto q = db.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
    if (q.step()) {
      e.seq = q.u64(0) + 1;
      e.prev_hash = q.fixed<32>(1);
    } else {
      e.seq = 1;
    }
  }
  e.at = at;
  e.terminal = actor.terminal;
  e.clerk = actor.clerk;
  e.action = action;
  e.subject = subject;
  e.outcome = outcome;
  e.hash = audit_hash(e.prev_hash, e);
  db.query(
        "INSERT INTO audit_log (seq, at, terminal, clerk, action, subject, outcome, prev_hash, hash) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
      .args(e.seq, e.at, e.terminal, e.clerk, e.action, e.subject, e.outcome, ByteView(e.prev_hash), ByteView(e.hash))
      .run();
}

// ---------------------------------------------------------------------------------------------
// Row readers. Each SELECT lists its columns in the order the reader expects.

CardRecord card_from(const Query& q) {
  CardRecord c;
  c.number = q.text(0);
  c.holder = q.fixed<16>(1);
  c.region = q.u32(2);
  c.certificate = q.blob(3);
  c.state = static_cast<CardState>(q.i64(4));
  if (!q.is_null(5)) c.replaced_by = q.text(5);
  c.registered_at = q.u64(6);
  c.state_changed_at = q.u64(7);
  return c;
}

#define SKILLCARD_VOUCHER_COLUMNS                                                                                  \
  "serial, signer_kid, token, holder, card, issuer, programme, occupation, level, fund, face_value_fen, "          \
  "planned_hours, planned_online_hours, eligible_regions, eligible_providers, issued_at, not_before, expires_at, " \
  "cst_year, state, state_changed_at, moved_from, moved_to, void_reason"

VoucherRecord voucher_from(const Query& q) {
  VoucherRecord v;
  auto& c = v.claims;
  c.id = voucher_id(q.u64(0));
  v.signer = q.fixed<8>(1);
  v.token = q.blob(2);
  c.holder = q.fixed<16>(3);
  v.card = q.text(4);
  c.issuer = q.u32(5);
  c.programme = static_cast<schemas::Programme>(q.i64(6));
  c.occupation = q.u32(7);
  c.level = static_cast<std::uint8_t>(q.i64(8));
  c.fund = static_cast<FundSource>(q.i64(9));
  c.face_value_fen = q.u32(10);
  c.planned_hours = static_cast<std::uint16_t>(q.i64(11));
  c.planned_online_hours = static_cast<std::uint16_t>(q.i64(12));
  c.eligible_regions = codes_from_text(q.text(13));
  c.eligible_providers = codes_from_text(q.text(14));
  c.issued_at = q.u64(15);
  c.not_before = q.u64(16);
  c.expires_at = q.u64(17);
  v.cst_year = static_cast<int>(q.i64(18));
  v.state = static_cast<VoucherState>(q.i64(19));
  v.state_changed_at = q.u64(20);
  if (!q.is_null(21)) v.moved_from = voucher_id(q.u64(21));
  if (!q.is_null(22)) v.moved_to = voucher_id(q.u64(22));
  v.void_reason = q.text(23);
  return v;
}

#define SKILLCARD_REDEMPTION_COLUMNS                                                                  \
  "r.seq, r.voucher, r.card, r.counter, r.receipt, r.site, r.nonce, r.terminal_time, r.server_time, " \
  "r.classroom_hours, r.online_hours, r.terminal, r.clerk, r.reversed_at, r.reversal_reason"

RedemptionRecord redemption_from(const Query& q) {
  RedemptionRecord r;
  r.seq = q.u64(0);
  r.voucher = voucher_id(q.u64(1));
  r.card = q.text(2);
  r.counter = q.u32(3);
  r.receipt = q.blob(4);
  r.site = q.u32(5);
  r.nonce = q.fixed<17>(6);
  r.terminal_time = q.u64(7);
  r.server_time = q.u64(8);
  r.classroom_hours = static_cast<std::uint16_t>(q.i64(9));
  r.online_hours = static_cast<std::uint16_t>(q.i64(10));
  r.actor.terminal = q.text(11);
  r.actor.clerk = q.text(12);
  if (!q.is_null(13)) r.reversed_at = q.u64(13);
  r.reversal_reason = q.text(14);
  return r;
}

#define SKILLCARD_CERTIFICATE_COLUMNS "seq, holder, record, digest_version, recorded_at, terminal, clerk"

CertificateEntry certificate_from(const Query& q) {
  CertificateEntry c;
  c.seq = q.u64(0);
  c.holder = q.fixed<16>(1);
  c.encoded = q.blob(2);
  c.record = schemas::decode_certificate_record(c.encoded);
  c.digest_version = q.u32(3);
  c.recorded_at = q.u64(4);
  c.actor.terminal = q.text(5);
  c.actor.clerk = q.text(6);
  return c;
}

std::optional<CardRecord> find_card(Db& db, std::string_view number) {
  auto q = db.query(
      "SELECT number, holder, region, certificate, state, replaced_by, registered_at, state_changed_at "
      "FROM cards WHERE number = ?1");
  q.args(number);
  if (!q.step()) return std::nullopt;
  return card_from(q);
}

std::optional<VoucherRecord> find_voucher(Db& db, std::uint64_t serial) {
  auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS " FROM vouchers WHERE serial = ?1");
  q.args(serial);
  if (!q.step()) return std::nullopt;
  return voucher_from(q);
}

std::optional<RedemptionRecord> find_redemption(Db& db, std::uint64_t serial) {
  auto q = db.query("SELECT " SKILLCARD_REDEMPTION_COLUMNS " FROM redemptions r WHERE r.voucher = ?1");
  q.args(serial);
  if (!q.step()) return std::nullopt;
  return redemption_from(q);
}

std::optional<RedemptionRecord> find_redemption_by_counter(Db& db, std::string_view card, std::uint32_t counter) {
  auto q = db.query("SELECT " SKILLCARD_REDEMPTION_COLUMNS " FROM redemptions r WHERE r.card = ?1 AND r.counter = ?2");
  q.args(card, counter);
  if (!q.step()) return std::nullopt;
  return redemption_from(q);
}

IssueCounts count_for_issue(Db& db, const IssueQuery& query) {
  IssueCounts c;
  {
    auto q = db.query(
        "SELECT count(*), coalesce(sum(fund = 2), 0) FROM vouchers "
        "WHERE holder = ?1 AND cst_year = ?2 AND state IN (1, 2, 3)");
    q.args(ByteView(query.holder), query.cst_year);
    q.step();
    c.holder_year = q.u32(0);
    c.holder_employment_fund_year = q.u32(1);
  }
  {
    auto q = db.query(
        "SELECT count(*) FROM vouchers WHERE holder = ?1 AND occupation = ?2 AND level = ?3 AND state IN (1, 2, 3)");
    q.args(ByteView(query.holder), query.occupation, static_cast<int>(query.level));
    q.step();
    c.same_occupation_level = q.u32(0);
  }
  {
    auto q = db.query("SELECT allocated_fen - committed_fen - spent_fen FROM budgets WHERE fund = ?1");
    q.args(static_cast<int>(query.fund));
    c.fund_remaining_fen = q.step() ? q.i64(0) : 0;  // no budget: nothing to spend (fail closed)
  }
  return c;
}

std::vector<std::string_view> violated_limits(const IssueDecision& d, const IssueCounts& fresh,
                                              const schemas::VoucherClaims& claims) {
  std::vector<std::string_view> out;
  if (std::uint64_t{fresh.holder_year} + d.external.holder_year + 1 > d.annual_limit) out.push_back("P1_ANNUAL_LIMIT");
  if (claims.fund == FundSource::EmploymentSubsidyFund &&
      std::uint64_t{fresh.holder_employment_fund_year} + d.external.holder_employment_fund_year + 1 >
          d.employment_fund_limit) {
    out.push_back("P2_EMPLOYMENT_FUND_LIMIT");
  }
  if (std::uint64_t{fresh.same_occupation_level} + d.external.same_occupation_level + 1 >
      d.same_occupation_level_limit) {
    out.push_back("P3_SAME_OCCUPATION_LEVEL");
  }
  if (fresh.fund_remaining_fen < static_cast<std::int64_t>(claims.face_value_fen))
    out.push_back("P16_BUDGET_EXHAUSTED");
  return out;
}

// Signs the claims with `minter` and checks that the token carries exactly them.
std::pair<Bytes, crypto::Kid> mint(const TokenMinter& minter, const schemas::VoucherClaims& claims) {
  Bytes token = minter(claims);
  const auto decoded = schemas::decode_voucher_token(token);
  if (decoded.claims != claims) {
    throw std::invalid_argument("the minted voucher token does not carry the claims it was asked to sign");
  }
  return {std::move(token), decoded.kid};
}

void insert_voucher(Db& db, const schemas::VoucherClaims& c, std::string_view card, int cst, UtcSeconds now,
                    std::optional<std::uint64_t> moved_from) {
  db.query(
        "INSERT INTO vouchers (signer_kid, token, holder, card, issuer, programme, occupation, level, fund, "
        "face_value_fen, planned_hours, planned_online_hours, eligible_regions, eligible_providers, issued_at, "
        "not_before, expires_at, cst_year, state, state_changed_at, moved_from) "
        "VALUES (zeroblob(8), x'', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 1, ?17, "
        "?18)")
      .args(ByteView(c.holder), card.empty() ? std::optional<std::string_view>{} : std::optional{card}, c.issuer,
            static_cast<int>(c.programme), c.occupation, static_cast<int>(c.level), static_cast<int>(c.fund),
            c.face_value_fen, static_cast<std::uint32_t>(c.planned_hours),
            static_cast<std::uint32_t>(c.planned_online_hours), codes_text(c.eligible_regions),
            codes_text(c.eligible_providers), c.issued_at, c.not_before, c.expires_at, cst, now, moved_from)
      .run();
}

void set_token(Db& db, std::uint64_t serial, const Bytes& token, const crypto::Kid& kid) {
  db.query("UPDATE vouchers SET token = ?1, signer_kid = ?2 WHERE serial = ?3")
      .args(ByteView(token), ByteView(kid), serial)
      .run();
}

void adjust_budget(Db& db, FundSource fund, std::int64_t committed_delta, std::int64_t spent_delta) {
  db.query("UPDATE budgets SET committed_fen = committed_fen + ?1, spent_fen = spent_fen + ?2 WHERE fund = ?3")
      .args(committed_delta, spent_delta, static_cast<int>(fund))
      .run();
}

NonceStatus classify_nonce(Db& db, const Nonce& nonce, std::string_view terminal, UtcSeconds now) {
  auto q = db.query("SELECT terminal, expires_at, used_at FROM nonces WHERE nonce = ?1");
  q.args(ByteView(nonce));
  if (!q.step() || q.text(0) != terminal) return NonceStatus::Unknown;
  if (!q.is_null(2)) return NonceStatus::Used;
  if (q.u64(1) <= now) return NonceStatus::Expired;
  return NonceStatus::Ok;
}

RecordStatus record_status_of(NonceStatus s) {
  switch (s) {
    case NonceStatus::Used:
      return RecordStatus::NonceReused;
    case NonceStatus::Expired:
      return RecordStatus::NonceExpired;
    default:
      return RecordStatus::NonceUnknown;
  }
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

// Copies all of `from` into `to` with the online backup API; retries while the source is busy.
void copy_database(sqlite3* to, sqlite3* from, CallSite where = CallSite::current()) {
  std::unique_ptr<sqlite3_backup, BackupFinisher> backup(sqlite3_backup_init(to, "main", from, "main"));
  if (!backup) sqlite::fail(sqlite3_extended_errcode(to), to, "sqlite3_backup_init", where);
  for (;;) {
    const int rc = sqlite3_backup_step(backup.get(), -1);
    if (rc == SQLITE_DONE) break;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
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

struct SqliteLedger::Impl final : TransactionControl {
  std::filesystem::path path;
  SqliteOptions options;
  Db writer;  // the committer thread's (and open()'s, before the committer starts)
  std::mutex reader_mutex;
  Db reader;
  LedgerId id{};
  std::unique_ptr<GroupCommitter> committer;

  ~Impl() override {
    committer.reset();  // finish queued writes before the connections close
    reader.close();
    writer.close();
  }

  void begin() override { writer.query("BEGIN IMMEDIATE").run(); }
  void commit() override { writer.query("COMMIT").run(); }
  void rollback() noexcept override {
    if (sqlite3_get_autocommit(writer.get()) != 0) return;  // SQLite rolled back already
    try {
      writer.exec("ROLLBACK");
    } catch (...) {
    }
  }
  void savepoint() override { writer.query("SAVEPOINT op").run(); }
  void release() override { writer.query("RELEASE op").run(); }
  void rollback_to() override {
    writer.query("ROLLBACK TO op").run();
    writer.query("RELEASE op").run();
  }

  // Runs `f(writer)` in the next batch; returns when that batch is durable.
  template <class F>
  void write(F&& f) {
    const std::function<void()> op = [&] { f(writer); };
    committer->run(op);
  }
  // Runs `f(reader)` under the reader lock.
  template <class F>
  auto read(F&& f) {
    std::lock_guard lock(reader_mutex);
    return f(reader);
  }
  // Runs `f(reader)` inside one read transaction (a consistent snapshot).
  template <class F>
  auto read_snapshot(F&& f) {
    std::lock_guard lock(reader_mutex);
    reader.query("BEGIN").run();
    try {
      auto result = f(reader);
      reader.query("COMMIT").run();
      return result;
    } catch (...) {
      try {
        reader.exec("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
  }
};

namespace {

void configure(Db& db, const SqliteOptions& options, bool writer) {
  sqlite::check(sqlite3_busy_timeout(db.get(), static_cast<int>(options.busy_timeout.count())), db.get(),
                "sqlite3_busy_timeout");
  if (writer) {
    // WAL: readers never block the writer. synchronous=FULL: the WAL is synced at every commit,
    // so a commit that returned survives power loss.
    auto q = db.query("PRAGMA journal_mode = WAL");
    if (!q.step() || q.text(0) != "wal") {
      throw StorageError(StorageErrorKind::Other, SQLITE_ERROR, "could not switch the ledger to WAL mode",
                         CallSite::current());
    }
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
  return std::unique_ptr<SqliteLedger>(new SqliteLedger(std::move(impl)));
}

CommitStats SqliteLedger::commit_stats() const { return impl_->committer->stats(); }
const std::filesystem::path& SqliteLedger::path() const noexcept { return impl_->path; }
LedgerId SqliteLedger::ledger_id() { return impl_->id; }
int SqliteLedger::schema_version() {
  return impl_->read([](Db& db) { return sqlite::schema_version_of(db); });
}

// -----------------------------------------------------------------------------------------------
// Cards.

CardStatus SqliteLedger::register_card(const NewCard& card, const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  require_card_number(card.number);
  const auto cert = schemas::decode_card_certificate(card.certificate);  // DecodeError if malformed
  if (cert.claims.card_number != card.number || cert.claims.region != card.region) {
    throw std::invalid_argument("the card certificate names card " + cert.claims.card_number + " in region " +
                                std::to_string(cert.claims.region) + ", not " + card.number + " in " +
                                std::to_string(card.region));
  }
  CardStatus status = CardStatus::Registered;
  impl_->write([&](Db& db) {
    if (const auto existing = find_card(db, card.number)) {
      status = existing->holder == card.holder && existing->region == card.region &&
                       existing->certificate == card.certificate
                   ? CardStatus::AlreadyRegisteredSame
                   : CardStatus::NumberTaken;
    } else {
      db.query(
            "INSERT INTO cards (number, holder, region, certificate, state, registered_at, state_changed_at) "
            "VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)")
          .args(card.number, ByteView(card.holder), card.region, ByteView(card.certificate), now)
          .run();
      status = CardStatus::Registered;
    }
    append_audit(db, now, actor, "card.register", "card:" + card.number,
                 status == CardStatus::Registered              ? "ok"
                 : status == CardStatus::AlreadyRegisteredSame ? "duplicate"
                                                               : to_string(status));
  });
  return status;
}

std::optional<CardRecord> SqliteLedger::card(std::string_view number) {
  return impl_->read([&](Db& db) { return find_card(db, number); });
}

CardStatus SqliteLedger::mark_card_lost(std::string_view number, const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  CardStatus status = CardStatus::CardUnknown;
  impl_->write([&](Db& db) {
    const auto existing = find_card(db, number);
    if (!existing) {
      status = CardStatus::CardUnknown;
    } else if (existing->state != CardState::Active) {
      status = CardStatus::AlreadyInState;
    } else {
      db.query("UPDATE cards SET state = 2, state_changed_at = ?1 WHERE number = ?2").args(now, number).run();
      status = CardStatus::Changed;
    }
    append_audit(db, now, actor, "card.lost", "card:" + std::string(number),
                 status == CardStatus::Changed ? "ok" : to_string(status));
  });
  return status;
}

ReplaceOutcome SqliteLedger::replace_card(std::string_view old_number, std::string_view new_number,
                                          const TokenMinter& minter, const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  ReplaceOutcome out;
  impl_->write([&](Db& db) {
    out = {};
    const auto old_card = find_card(db, old_number);
    const auto new_card = find_card(db, new_number);
    if (!old_card) {
      out.status = CardStatus::CardUnknown;
    } else if (!new_card) {
      out.status = CardStatus::ReplacementUnknown;
    } else if (old_card->replaced_by && *old_card->replaced_by == new_number) {
      out.status = CardStatus::AlreadyInState;
    } else if (old_card->replaced_by || old_card->state == CardState::Replaced || old_number == new_number) {
      out.status = CardStatus::CardNotActive;
    } else if (new_card->state != CardState::Active) {
      out.status = CardStatus::ReplacementNotActive;
    } else if (new_card->holder != old_card->holder) {
      out.status = CardStatus::ReplacementOfAnotherHolder;
    } else {
      out.status = CardStatus::Changed;
    }
    const std::string subject = "card:" + std::string(old_number) + " replaced-by:" + std::string(new_number);
    if (out.status != CardStatus::Changed) {
      append_audit(db, now, actor, "card.replace", subject, to_string(out.status));
      return;
    }
    // A lost card stays "lost" (the reason it was revoked); an active one becomes "replaced".
    db.query(
          "UPDATE cards SET replaced_by = ?1, state = CASE state WHEN 1 THEN 3 ELSE state END, "
          "state_changed_at = ?2 WHERE number = ?3")
        .args(new_number, now, old_number)
        .run();
    std::vector<VoucherRecord> to_move;
    {
      auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS
                        " FROM vouchers WHERE card = ?1 AND state IN (1, 2) ORDER BY serial");
      q.args(old_number);
      while (q.step()) to_move.push_back(voucher_from(q));
    }
    for (const auto& old_voucher : to_move) {
      const auto old_serial = serial_of(old_voucher.id());
      insert_voucher(db, old_voucher.claims, new_number, old_voucher.cst_year, now, old_serial);
      const auto serial = static_cast<std::uint64_t>(db.last_rowid());
      auto claims = old_voucher.claims;
      claims.id = voucher_id(serial);
      const auto [token, kid] = mint(minter, claims);
      set_token(db, serial, token, kid);
      db.query("UPDATE vouchers SET state = 6, state_changed_at = ?1, moved_to = ?2 WHERE serial = ?3")
          .args(now, serial, old_serial)
          .run();
      append_audit(db, now, actor, "voucher.move", voucher_subject(old_voucher.id()) + " to:" + lower_hex(claims.id),
                   "ok");
      out.moved.push_back({old_voucher.id(), *find_voucher(db, serial)});
    }
    append_audit(db, now, actor, "card.replace", subject, "ok");
  });
  return out;
}

// -----------------------------------------------------------------------------------------------
// Budgets.

BudgetStatus SqliteLedger::set_budget(FundSource fund, std::int64_t allocated_fen, const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  if (allocated_fen < 0) throw std::invalid_argument("a budget allocation is not negative");
  BudgetStatus status = BudgetStatus::Set;
  impl_->write([&](Db& db) {
    std::int64_t used = 0;
    {
      auto q = db.query("SELECT committed_fen + spent_fen FROM budgets WHERE fund = ?1");
      q.args(static_cast<int>(fund));
      if (q.step()) used = q.i64(0);
    }
    status = allocated_fen < used ? BudgetStatus::BelowCommitted : BudgetStatus::Set;
    if (status == BudgetStatus::Set) {
      db.query(
            "INSERT INTO budgets (fund, allocated_fen) VALUES (?1, ?2) "
            "ON CONFLICT (fund) DO UPDATE SET allocated_fen = excluded.allocated_fen")
          .args(static_cast<int>(fund), allocated_fen)
          .run();
    }
    append_audit(db, now, actor, "budget.set",
                 "fund:" + std::to_string(static_cast<int>(fund)) + " allocated_fen:" + std::to_string(allocated_fen),
                 status == BudgetStatus::Set ? "ok" : to_string(status));
  });
  return status;
}

std::optional<Budget> SqliteLedger::budget(FundSource fund) {
  return impl_->read([&](Db& db) -> std::optional<Budget> {
    auto q = db.query("SELECT allocated_fen, committed_fen, spent_fen FROM budgets WHERE fund = ?1");
    q.args(static_cast<int>(fund));
    if (!q.step()) return std::nullopt;
    return Budget{fund, q.i64(0), q.i64(1), q.i64(2)};
  });
}

// -----------------------------------------------------------------------------------------------
// Vouchers.

IssueCounts SqliteLedger::read_issue_counts(const IssueQuery& query) {
  return impl_->read_snapshot([&](Db& db) { return count_for_issue(db, query); });
}

IssueOutcome SqliteLedger::issue_voucher(const IssueRequest& request, const IssueDecision& decision,
                                         const TokenMinter& minter, const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  schemas::check(request.claims);  // std::invalid_argument naming the field
  if (!request.card.empty()) require_card_number(request.card);
  const IssueQuery query{request.claims.holder, cst_year(request.claims.issued_at), request.claims.fund,
                         request.claims.occupation, request.claims.level};
  IssueOutcome out;
  impl_->write([&](Db& db) {
    out = {};
    out.fresh = count_for_issue(db, query);
    if (!request.card.empty()) {
      const auto card = find_card(db, request.card);
      if (!card) {
        out.status = IssueStatus::CardUnknown;
      } else if (card->state != CardState::Active) {
        out.status = IssueStatus::CardNotActive;
      } else if (card->holder != request.claims.holder) {
        out.status = IssueStatus::CardOfAnotherHolder;
      } else {
        out.status = IssueStatus::Issued;
      }
      if (out.status != IssueStatus::Issued) {
        append_audit(db, now, actor, "voucher.issue", "card:" + request.card, to_string(out.status));
        return;
      }
    }
    out.violated = violated_limits(decision, out.fresh, request.claims);
    if (!out.violated.empty()) {
      out.status = out.fresh == decision.ledger_counts ? IssueStatus::Refused : IssueStatus::StaleDecision;
      append_audit(db, now, actor, "voucher.issue",
                   "holder:" + lower_hex(query.holder) + " year:" + std::to_string(query.cst_year),
                   std::string(to_string(out.status)) + ":" + join(out.violated));
      return;
    }
    insert_voucher(db, request.claims, request.card, query.cst_year, now, std::nullopt);
    const auto serial = static_cast<std::uint64_t>(db.last_rowid());
    auto claims = request.claims;
    claims.id = voucher_id(serial);
    const auto [token, kid] = mint(minter, claims);
    set_token(db, serial, token, kid);
    adjust_budget(db, claims.fund, claims.face_value_fen, 0);
    append_audit(db, now, actor, "voucher.issue", voucher_subject(claims.id), "ok");
    out.status = IssueStatus::Issued;
    out.voucher = find_voucher(db, serial);
  });
  return out;
}

VoucherOutcome SqliteLedger::mark_written(const VoucherId& id, const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  VoucherOutcome out;
  impl_->write([&](Db& db) {
    out = {};
    const auto serial = serial_of(id);
    const auto v = find_voucher(db, serial);
    if (!v) {
      out.status = VoucherStatus::VoucherUnknown;
    } else if (v->state == VoucherState::Written) {
      out.status = VoucherStatus::AlreadyInState;
    } else if (v->state != VoucherState::Issued) {
      out.status = VoucherStatus::WrongState;
    } else {
      db.query("UPDATE vouchers SET state = 2, state_changed_at = ?1 WHERE serial = ?2").args(now, serial).run();
      out.status = VoucherStatus::Changed;
    }
    append_audit(db, now, actor, "voucher.written", voucher_subject(id),
                 out.status == VoucherStatus::Changed ? "ok" : to_string(out.status));
    out.voucher = find_voucher(db, serial);
  });
  return out;
}

VoucherOutcome SqliteLedger::void_voucher(const VoucherId& id, std::string_view reason, const Actor& actor,
                                          UtcSeconds now) {
  require_actor(actor);
  if (reason.empty()) throw std::invalid_argument("voiding a voucher needs a reason");
  VoucherOutcome out;
  impl_->write([&](Db& db) {
    out = {};
    const auto serial = serial_of(id);
    const auto v = find_voucher(db, serial);
    if (!v) {
      out.status = VoucherStatus::VoucherUnknown;
    } else if (v->state == VoucherState::Voided) {
      out.status = VoucherStatus::AlreadyInState;
    } else if (v->state != VoucherState::Issued && v->state != VoucherState::Written) {
      out.status = VoucherStatus::WrongState;
    } else {
      db.query("UPDATE vouchers SET state = 4, state_changed_at = ?1, void_reason = ?2 WHERE serial = ?3")
          .args(now, reason, serial)
          .run();
      adjust_budget(db, v->claims.fund, -static_cast<std::int64_t>(v->claims.face_value_fen), 0);
      out.status = VoucherStatus::Changed;
    }
    append_audit(db, now, actor, "voucher.void", voucher_subject(id),
                 out.status == VoucherStatus::Changed ? "ok" : to_string(out.status));
    out.voucher = find_voucher(db, serial);
  });
  return out;
}

std::size_t SqliteLedger::expire_vouchers(UtcSeconds cutoff, const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  std::size_t count = 0;
  impl_->write([&](Db& db) {
    count = 0;
    struct Expiring {
      std::uint64_t serial;
      FundSource fund;
      std::int64_t face;
    };
    std::vector<Expiring> expiring;
    {
      auto q = db.query(
          "SELECT serial, fund, face_value_fen FROM vouchers WHERE state IN (1, 2) AND expires_at < ?1 "
          "ORDER BY serial");
      q.args(cutoff);
      while (q.step()) expiring.push_back({q.u64(0), static_cast<FundSource>(q.i64(1)), q.i64(2)});
    }
    for (const auto& e : expiring) {
      db.query("UPDATE vouchers SET state = 5, state_changed_at = ?1 WHERE serial = ?2").args(now, e.serial).run();
      adjust_budget(db, e.fund, -e.face, 0);
      append_audit(db, now, actor, "voucher.expire", voucher_subject(voucher_id(e.serial)), "ok");
    }
    count = expiring.size();
  });
  return count;
}

std::optional<VoucherRecord> SqliteLedger::voucher(const VoucherId& id) {
  return impl_->read([&](Db& db) { return find_voucher(db, serial_of(id)); });
}

std::vector<VoucherRecord> SqliteLedger::holder_vouchers(const HolderRef& holder) {
  return impl_->read([&](Db& db) {
    std::vector<VoucherRecord> out;
    auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS " FROM vouchers WHERE holder = ?1 ORDER BY serial");
    q.args(ByteView(holder));
    while (q.step()) out.push_back(voucher_from(q));
    return out;
  });
}

std::vector<VoucherRecord> SqliteLedger::holder_history(const HolderRef& holder, int year) {
  return impl_->read([&](Db& db) {
    std::vector<VoucherRecord> out;
    auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS
                      " FROM vouchers WHERE holder = ?1 AND cst_year = ?2 AND state IN (1, 2, 3) ORDER BY serial");
    q.args(ByteView(holder), year);
    while (q.step()) out.push_back(voucher_from(q));
    return out;
  });
}

// -----------------------------------------------------------------------------------------------
// Nonces.

NonceStatus SqliteLedger::issue_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds issued_at,
                                      UtcSeconds expires_at, const Actor& actor) {
  require_actor(actor);
  if (terminal.empty()) throw std::invalid_argument("a nonce is bound to a terminal");
  NonceStatus status = NonceStatus::Ok;
  impl_->write([&](Db& db) {
    db.query(
          "INSERT INTO nonces (nonce, terminal, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT (nonce) DO NOTHING")
        .args(ByteView(nonce), terminal, issued_at, expires_at)
        .run();
    status = db.changes() == 1 ? NonceStatus::Ok : NonceStatus::Duplicate;
    append_audit(db, issued_at, actor, "nonce.issue", "nonce:" + lower_hex(nonce),
                 status == NonceStatus::Ok ? "ok" : "duplicate");
  });
  return status;
}

NonceStatus SqliteLedger::check_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds now) {
  return impl_->read([&](Db& db) { return classify_nonce(db, nonce, terminal, now); });
}

NonceStatus SqliteLedger::consume_nonce(const Nonce& nonce, std::string_view terminal, std::string_view used_by,
                                        const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  NonceStatus status = NonceStatus::Ok;
  impl_->write([&](Db& db) {
    db.query(
          "UPDATE nonces SET used_at = ?1, used_by = ?2 "
          "WHERE nonce = ?3 AND terminal = ?4 AND used_at IS NULL AND expires_at > ?1")
        .args(now, used_by, ByteView(nonce), terminal)
        .run();
    status = db.changes() == 1 ? NonceStatus::Ok : classify_nonce(db, nonce, terminal, now);
    if (status == NonceStatus::Ok && db.changes() != 1) status = NonceStatus::Unknown;
    append_audit(db, now, actor, "nonce.consume", "nonce:" + lower_hex(nonce),
                 status == NonceStatus::Ok ? "ok" : refusal_code(status));
  });
  return status;
}

// -----------------------------------------------------------------------------------------------
// Redemptions.

RecordOutcome SqliteLedger::record_redemption(const RedemptionRequest& request) {
  require_actor(request.actor);
  require_card_number(request.card);
  std::optional<schemas::ReceiptClaims> claims;
  try {
    claims = schemas::decode_receipt(request.receipt).claims;
  } catch (const schemas::DecodeError&) {
    // Audited like every other refusal; nothing else is written.
  }
  RecordOutcome out;
  impl_->write([&](Db& db) {
    out = {};
    const UtcSeconds now = request.server_time;
    if (!claims) {
      out.status = RecordStatus::ReceiptMalformed;
      append_audit(db, now, request.actor, "redemption.record", "card:" + request.card, refusal_code(out.status));
      return;
    }
    const auto serial = serial_of(claims->voucher);
    const std::string subject = voucher_subject(claims->voucher);
    Savepoint work(db, "record");
    const auto refuse = [&](RecordStatus status, std::optional<RedemptionRecord> record = std::nullopt) {
      work.rollback();
      out.status = status;
      out.record = std::move(record);
      append_audit(db, now, request.actor, "redemption.record", subject,
                   status == RecordStatus::AlreadyRecordedSame ? "duplicate" : refusal_code(status));
    };
    // 1. One redemption per voucher; the identical receipt again is the same record.
    const auto classify_existing = [&]() -> bool {
      bool exists = false;
      bool same = false;
      {
        auto q = db.query("SELECT receipt FROM redemptions WHERE voucher = ?1");
        q.args(serial);
        if (q.step()) {
          exists = true;
          same = q.blob(0) == request.receipt;
        }
      }
      if (!exists) return false;
      refuse(same ? RecordStatus::AlreadyRecordedSame : RecordStatus::VoucherAlreadyRedeemed,
             find_redemption(db, serial));
      return true;
    };
    if (classify_existing()) return;
    // 2. The voucher, in a redeemable state.
    VoucherState state{};
    HolderRef voucher_holder{};
    FundSource fund{};
    std::int64_t face = 0;
    {
      auto q = db.query("SELECT state, holder, fund, face_value_fen FROM vouchers WHERE serial = ?1");
      q.args(serial);
      if (!q.step()) return refuse(RecordStatus::VoucherUnknown);
      state = static_cast<VoucherState>(q.i64(0));
      voucher_holder = q.fixed<16>(1);
      fund = static_cast<FundSource>(q.i64(2));
      face = q.i64(3);
    }
    switch (state) {
      case VoucherState::Issued:
      case VoucherState::Written:
        break;
      case VoucherState::Voided:
        return refuse(RecordStatus::VoucherVoided);
      case VoucherState::Expired:
        return refuse(RecordStatus::VoucherExpired);
      case VoucherState::Moved:
        return refuse(RecordStatus::VoucherMoved);
      case VoucherState::Redeemed:
        return refuse(RecordStatus::VoucherAlreadyRedeemed);
    }
    // 3. The card: registered, not revoked, the voucher holder's.
    {
      auto q = db.query("SELECT holder, state FROM cards WHERE number = ?1");
      q.args(request.card);
      if (!q.step()) return refuse(RecordStatus::CardUnknown);
      if (static_cast<CardState>(q.i64(1)) != CardState::Active) return refuse(RecordStatus::CardRevoked);
      if (q.fixed<16>(0) != voucher_holder) return refuse(RecordStatus::CardOfAnotherHolder);
    }
    // 4. (card, counter) never used.
    const auto counter_used = [&] {
      auto q = db.query("SELECT 1 FROM redemptions WHERE card = ?1 AND counter = ?2");
      q.args(request.card, claims->counter);
      return q.step();
    };
    if (counter_used()) return refuse(RecordStatus::CounterReused);
    // 5. The nonce.
    const auto used_by = [&] { return "redemption:" + lower_hex(claims->voucher); };
    if (request.nonce_rule == NonceRule::Live) {
      if (claims->nonce_kind() != schemas::NonceKind::Server) return refuse(RecordStatus::NonceUnknown);
      db.query(
            "UPDATE nonces SET used_at = ?1, used_by = ?2 "
            "WHERE nonce = ?3 AND terminal = ?4 AND used_at IS NULL AND expires_at > ?1")
          .args(now, used_by(), ByteView(claims->nonce), request.actor.terminal)
          .run();
      if (db.changes() != 1) {
        return refuse(record_status_of(classify_nonce(db, claims->nonce, request.actor.terminal, now)));
      }
    } else {
      {
        auto q = db.query("SELECT 1 FROM redemptions WHERE nonce = ?1");
        q.args(ByteView(claims->nonce));
        if (q.step()) return refuse(RecordStatus::NonceReused);
      }
      if (claims->nonce_kind() == schemas::NonceKind::Server) {
        // A server nonce is ours: it must exist and not have been used by anything else.
        bool known = false;
        bool used = false;
        {
          auto q = db.query("SELECT used_at FROM nonces WHERE nonce = ?1");
          q.args(ByteView(claims->nonce));
          known = q.step();
          used = known && !q.is_null(0);
        }
        if (!known) return refuse(RecordStatus::NonceUnknown);
        if (used) return refuse(RecordStatus::NonceReused);
        db.query("UPDATE nonces SET used_at = ?1, used_by = ?2 WHERE nonce = ?3 AND used_at IS NULL")
            .args(now, used_by(), ByteView(claims->nonce))
            .run();
      }
    }
    // 6. The row. The unique keys are the final word (another connection may have won a race).
    db.query(
          "INSERT INTO redemptions (voucher, card, counter, receipt, site, nonce, terminal_time, server_time, "
          "classroom_hours, online_hours, terminal, clerk) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING")
        .args(serial, request.card, claims->counter, ByteView(request.receipt), claims->site, ByteView(claims->nonce),
              claims->terminal_time, now, static_cast<std::uint32_t>(claims->classroom_hours),
              static_cast<std::uint32_t>(claims->online_hours), request.actor.terminal, request.actor.clerk)
        .run();
    if (db.changes() != 1) {
      if (classify_existing()) return;
      if (counter_used()) return refuse(RecordStatus::CounterReused);
      return refuse(RecordStatus::NonceReused);
    }
    RedemptionRecord record;
    record.seq = static_cast<std::uint64_t>(db.last_rowid());
    db.query("UPDATE vouchers SET state = 3, state_changed_at = ?1 WHERE serial = ?2").args(now, serial).run();
    adjust_budget(db, fund, -face, face);
    work.release();
    append_audit(db, now, request.actor, "redemption.record", subject, "ok");
    record.voucher = claims->voucher;
    record.card = request.card;
    record.counter = claims->counter;
    record.receipt = request.receipt;
    record.site = claims->site;
    record.nonce = claims->nonce;
    record.terminal_time = claims->terminal_time;
    record.server_time = now;
    record.classroom_hours = claims->classroom_hours;
    record.online_hours = claims->online_hours;
    record.actor = request.actor;
    out.status = RecordStatus::Recorded;
    out.record = std::move(record);
  });
  return out;
}

ReversalOutcome SqliteLedger::reverse_redemption(const VoucherId& id, std::string_view reason, const Actor& actor,
                                                 UtcSeconds now) {
  require_actor(actor);
  if (reason.empty()) throw std::invalid_argument("a reversal needs a reason");
  ReversalOutcome out;
  impl_->write([&](Db& db) {
    out = {};
    const auto serial = serial_of(id);
    auto existing = find_redemption(db, serial);
    if (!existing) {
      out.status = ReversalStatus::NotRedeemed;
    } else if (existing->reversed_at) {
      out.status = ReversalStatus::AlreadyReversed;
    } else {
      const auto voucher = find_voucher(db, serial);
      db.query("UPDATE redemptions SET reversed_at = ?1, reversal_reason = ?2 WHERE voucher = ?3")
          .args(now, reason, serial)
          .run();
      db.query("UPDATE vouchers SET state = 4, state_changed_at = ?1, void_reason = ?2 WHERE serial = ?3")
          .args(now, "redemption reversed: " + std::string(reason), serial)
          .run();
      adjust_budget(db, voucher->claims.fund, 0, -static_cast<std::int64_t>(voucher->claims.face_value_fen));
      out.status = ReversalStatus::Reversed;
    }
    append_audit(db, now, actor, "redemption.reverse", voucher_subject(id),
                 out.status == ReversalStatus::Reversed ? "ok" : to_string(out.status));
    out.record = find_redemption(db, serial);
  });
  return out;
}

std::optional<RedemptionRecord> SqliteLedger::redemption(const VoucherId& id) {
  return impl_->read([&](Db& db) { return find_redemption(db, serial_of(id)); });
}

std::optional<RedemptionRecord> SqliteLedger::redemption_by_counter(std::string_view card, std::uint32_t counter) {
  return impl_->read([&](Db& db) { return find_redemption_by_counter(db, card, counter); });
}

std::vector<RedemptionExportRow> SqliteLedger::list_redemptions(const RedemptionFilter& filter) {
  return impl_->read_snapshot([&](Db& db) {
    std::vector<RedemptionExportRow> out;
    auto q = db.query("SELECT " SKILLCARD_REDEMPTION_COLUMNS
                      ", v.fund, v.programme, v.occupation, v.level, v.face_value_fen, v.issuer "
                      "FROM redemptions r JOIN vouchers v ON v.serial = r.voucher "
                      "WHERE (?1 IS NULL OR r.site = ?1) AND (?2 IS NULL OR v.fund = ?2) "
                      "AND r.server_time >= ?3 AND r.server_time < ?4 ORDER BY r.site, v.fund, r.seq");
    std::optional<int> fund;
    if (filter.fund) fund = static_cast<int>(*filter.fund);
    q.args(filter.provider, fund, filter.from, filter.to);
    while (q.step()) {
      RedemptionExportRow row;
      row.redemption = redemption_from(q);
      row.fund = static_cast<FundSource>(q.i64(15));
      row.programme = static_cast<schemas::Programme>(q.i64(16));
      row.occupation = q.u32(17);
      row.level = static_cast<std::uint8_t>(q.i64(18));
      row.face_value_fen = q.u32(19);
      row.issuer = q.u32(20);
      out.push_back(std::move(row));
    }
    return out;
  });
}

std::vector<SettlementLine> SqliteLedger::settlement(const RedemptionFilter& filter) {
  return impl_->read_snapshot([&](Db& db) {
    std::vector<SettlementLine> out;
    auto q = db.query(
        "SELECT r.site, v.fund, count(*), sum(v.face_value_fen) "
        "FROM redemptions r JOIN vouchers v ON v.serial = r.voucher "
        "WHERE r.reversed_at IS NULL AND (?1 IS NULL OR r.site = ?1) AND (?2 IS NULL OR v.fund = ?2) "
        "AND r.server_time >= ?3 AND r.server_time < ?4 GROUP BY r.site, v.fund ORDER BY r.site, v.fund");
    std::optional<int> fund;
    if (filter.fund) fund = static_cast<int>(*filter.fund);
    q.args(filter.provider, fund, filter.from, filter.to);
    while (q.step()) out.push_back({q.u32(0), static_cast<FundSource>(q.i64(1)), q.u64(2), q.i64(3)});
    return out;
  });
}

// -----------------------------------------------------------------------------------------------
// Certificates (P14).

CertificateOutcome SqliteLedger::record_certificate(const HolderRef& holder, ByteView encoded_record,
                                                    const Actor& actor, UtcSeconds now) {
  require_actor(actor);
  schemas::CertificateRecord record;
  try {
    record = schemas::decode_certificate_record(encoded_record);
  } catch (const schemas::DecodeError& e) {
    throw std::invalid_argument(std::string("not a certificate record: ") + e.what());
  }
  CertificateOutcome out;
  impl_->write([&](Db& db) {
    out = {};
    const auto find = [&]() -> std::optional<CertificateEntry> {
      auto q = db.query("SELECT " SKILLCARD_CERTIFICATE_COLUMNS
                        " FROM certificates WHERE kind = ?1 AND issuer = ?2 AND number = ?3");
      q.args(static_cast<int>(record.kind), record.issuer, record.number);
      if (!q.step()) return std::nullopt;
      return certificate_from(q);
    };
    const std::string subject = "certificate:" + std::to_string(static_cast<int>(record.kind)) + "/" + record.number;
    if (auto existing = find()) {
      out.status = CertificateStatus::Duplicate;
      out.entry = std::move(existing);
      append_audit(db, now, actor, "certificate.record", subject, "P14_CERTIFICATE_DUPLICATE");
      return;
    }
    std::uint32_t version = 0;
    {
      auto q = db.query(
          "INSERT INTO holders (holder, digest_version) VALUES (?1, 1) "
          "ON CONFLICT (holder) DO UPDATE SET digest_version = digest_version + 1 RETURNING digest_version");
      q.args(ByteView(holder));
      q.step();
      version = q.u32(0);
    }
    db.query(
          "INSERT INTO certificates (holder, kind, occupation, level, issuer, number, date_days, salt, record, "
          "digest_version, recorded_at, terminal, clerk) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
          "?13)")
        .args(ByteView(holder), static_cast<int>(record.kind), record.occupation, static_cast<int>(record.level),
              record.issuer, record.number, record.date_days, ByteView(record.salt), encoded_record, version, now,
              actor.terminal, actor.clerk)
        .run();
    append_audit(db, now, actor, "certificate.record", subject, "ok");
    out.status = CertificateStatus::Recorded;
    out.entry = find();
  });
  return out;
}

std::vector<CertificateEntry> SqliteLedger::certificates(const HolderRef& holder) {
  return impl_->read([&](Db& db) {
    std::vector<CertificateEntry> out;
    auto q = db.query("SELECT " SKILLCARD_CERTIFICATE_COLUMNS " FROM certificates WHERE holder = ?1 ORDER BY seq");
    q.args(ByteView(holder));
    while (q.step()) out.push_back(certificate_from(q));
    return out;
  });
}

std::uint32_t SqliteLedger::digest_version(const HolderRef& holder) {
  return impl_->read([&](Db& db) -> std::uint32_t {
    auto q = db.query("SELECT digest_version FROM holders WHERE holder = ?1");
    q.args(ByteView(holder));
    return q.step() ? q.u32(0) : 0;
  });
}

// -----------------------------------------------------------------------------------------------
// Listings (#9).

void SqliteLedger::for_each_voucher(const VoucherFilter& filter,
                                    const std::function<void(const VoucherRecord&)>& visit) {
  impl_->read_snapshot([&](Db& db) {
    auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS
                      " FROM vouchers WHERE issued_at >= ?1 AND issued_at < ?2 AND (?3 IS NULL OR state = ?3) "
                      "AND (?4 IS NULL OR fund = ?4) ORDER BY serial");
    std::optional<int> state, fund;
    if (filter.state) state = static_cast<int>(*filter.state);
    if (filter.fund) fund = static_cast<int>(*filter.fund);
    q.args(filter.issued_from, filter.issued_to, state, fund);
    while (q.step()) visit(voucher_from(q));
    return 0;
  });
}

void SqliteLedger::for_each_certificate(const CertificateFilter& filter,
                                        const std::function<void(const CertificateEntry&)>& visit) {
  impl_->read_snapshot([&](Db& db) {
    auto q = db.query("SELECT " SKILLCARD_CERTIFICATE_COLUMNS
                      " FROM certificates WHERE date_days >= ?1 AND date_days < ?2 ORDER BY seq");
    q.args(filter.from_days, filter.to_days);
    while (q.step()) visit(certificate_from(q));
    return 0;
  });
}

// -----------------------------------------------------------------------------------------------
// Audit.

AuditHead SqliteLedger::audit_head() {
  return impl_->read([](Db& db) {
    AuditHead head;
    auto q = db.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
    if (q.step()) {
      head.count = q.u64(0);
      head.hash = q.fixed<32>(1);
    }
    return head;
  });
}

std::vector<AuditEntry> SqliteLedger::audit_entries(std::uint64_t from_seq, std::size_t limit) {
  return impl_->read([&](Db& db) {
    std::vector<AuditEntry> out;
    auto q = db.query(
        "SELECT seq, at, terminal, clerk, action, subject, outcome, prev_hash, hash FROM audit_log "
        "WHERE seq >= ?1 ORDER BY seq LIMIT ?2");
    q.args(from_seq, static_cast<std::uint64_t>(limit));
    while (q.step()) {
      AuditEntry e;
      e.seq = q.u64(0);
      e.at = q.u64(1);
      e.terminal = q.text(2);
      e.clerk = q.text(3);
      e.action = q.text(4);
      e.subject = q.text(5);
      e.outcome = q.text(6);
      const auto prev = q.blob(7);
      const auto hash = q.blob(8);
      // A tampered row may hold a hash of another size: keep what fits, verification flags it.
      std::copy_n(prev.begin(), std::min(prev.size(), e.prev_hash.size()), e.prev_hash.begin());
      std::copy_n(hash.begin(), std::min(hash.size(), e.hash.size()), e.hash.begin());
      out.push_back(std::move(e));
    }
    return out;
  });
}

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

void SqliteLedger::restore(const std::filesystem::path& backup, const std::filesystem::path& target, bool overwrite) {
  if (!std::filesystem::exists(backup)) throw std::invalid_argument("no backup at " + backup.string());
  if (std::filesystem::exists(target) && !overwrite) {
    throw std::invalid_argument("restore target " + target.string() + " exists; pass overwrite to replace it");
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
  Db target_db = Db::open(target.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE, nullptr);
  sqlite::check(sqlite3_busy_timeout(target_db.get(), 60000), target_db.get(), "sqlite3_busy_timeout");
  copy_database(target_db.get(), source.get());
  target_db.exec("PRAGMA journal_mode = WAL");
  target_db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  require_integrity(target_db, "the restored ledger");
}

}  // namespace skillcard::ledger
