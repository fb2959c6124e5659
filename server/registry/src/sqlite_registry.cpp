// SqliteRegistry: two tables, prepared statements behind one mutex (the registry is read by
// many service threads, written only by imports).
#include "skillcard/registry/sqlite_registry.hpp"

#include <sqlite3.h>

#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"

namespace skillcard::registry {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS people (
  citizen_id TEXT PRIMARY KEY CHECK (length(citizen_id) = 18),
  holder BLOB NOT NULL UNIQUE CHECK (length(holder) = 16),
  name TEXT NOT NULL,
  region INTEGER NOT NULL,
  birth_days INTEGER NOT NULL,
  insured INTEGER NOT NULL,
  employed INTEGER NOT NULL,
  retired_fisherman INTEGER NOT NULL,
  key_groups INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subsidies (
  id INTEGER PRIMARY KEY,
  citizen_id TEXT NOT NULL REFERENCES people (citizen_id),
  holder BLOB NOT NULL CHECK (length(holder) = 16),
  source INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  fund INTEGER NOT NULL,
  occupation INTEGER NOT NULL,
  level INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS subsidies_by_holder ON subsidies (holder);
)sql";

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
  throw RegistryStorageError("registry: " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

struct Statement {
  sqlite3_stmt* st = nullptr;
  sqlite3* db = nullptr;
  Statement(sqlite3* d, const char* sql) : db(d) {
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) fail(db, std::string("prepare ") + sql);
  }
  ~Statement() { sqlite3_finalize(st); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  void reset() {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
  void bind(int i, std::int64_t v) { check(sqlite3_bind_int64(st, i, v)); }
  void bind(int i, std::string_view v) {
    check(sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void bind(int i, const crypto::HolderRef& v) {
    check(sqlite3_bind_blob(st, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  bool step() {
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db, "step");
  }
  std::int64_t i64(int c) const { return sqlite3_column_int64(st, c); }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(st, c);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(st, c)))
             : std::string();
  }
  crypto::HolderRef ref(int c) const {
    crypto::HolderRef r{};
    if (sqlite3_column_bytes(st, c) == static_cast<int>(r.size())) {
      std::memcpy(r.data(), sqlite3_column_blob(st, c), r.size());
    }
    return r;
  }
  void check(int rc) {
    if (rc != SQLITE_OK) fail(db, "bind");
  }
};

std::int64_t groups_bits(const std::set<policy::KeyGroup>& groups) {
  std::int64_t bits = 0;
  for (const auto g : groups) bits |= std::int64_t{1} << static_cast<int>(g);
  return bits;
}

std::set<policy::KeyGroup> groups_of(std::int64_t bits) {
  std::set<policy::KeyGroup> out;
  for (int i = 0; i < 4; ++i) {
    if (bits & (std::int64_t{1} << i)) out.insert(static_cast<policy::KeyGroup>(i));
  }
  return out;
}

std::int64_t days_of(std::chrono::year_month_day d) { return std::chrono::sys_days{d}.time_since_epoch().count(); }
std::chrono::year_month_day date_of(std::int64_t days) {
  return std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{days}}};
}

constexpr const char* kPersonColumns =
    "citizen_id, name, region, birth_days, insured, employed, retired_fisherman, key_groups, holder";

Person person_from(const Statement& q) {
  Person p;
  p.citizen_id = q.text(0);
  p.name = q.text(1);
  p.region = static_cast<std::uint32_t>(q.i64(2));
  p.facts.known = true;
  p.facts.date_of_birth = date_of(q.i64(3));
  p.facts.insured = q.i64(4) != 0;
  p.facts.employed = q.i64(5) != 0;
  p.facts.retired_fisherman = q.i64(6) != 0;
  p.facts.key_groups = groups_of(q.i64(7));
  return p;
}

policy::SubsidyRecord subsidy_from(const Statement& q, int first) {
  policy::SubsidyRecord r;
  r.source = static_cast<policy::SubsidyRecord::Source>(q.i64(first));
  r.issued_at = static_cast<std::uint64_t>(q.i64(first + 1));
  r.fund = static_cast<schemas::FundSource>(q.i64(first + 2));
  r.occupation = static_cast<std::uint32_t>(q.i64(first + 3));
  r.level = static_cast<std::uint8_t>(q.i64(first + 4));
  return r;
}

}  // namespace

struct SqliteRegistry::Impl {
  sqlite3* db = nullptr;
  mutable std::mutex mutex;
  ~Impl() { sqlite3_close_v2(db); }
  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string message = err ? err : "?";
      sqlite3_free(err);
      throw RegistryStorageError(std::string("registry: ") + message);
    }
  }
};

SqliteRegistry::SqliteRegistry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteRegistry::~SqliteRegistry() = default;

std::unique_ptr<SqliteRegistry> SqliteRegistry::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  if (sqlite3_open_v2(path.c_str(), &impl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    fail(impl->db, "open " + path.string());
  }
  sqlite3_busy_timeout(impl->db, 60000);
  ledger::switch_to_wal(impl->db, std::chrono::milliseconds(60000));
  impl->exec("PRAGMA foreign_keys = ON");
  impl->exec(kSchema);
  return std::unique_ptr<SqliteRegistry>(new SqliteRegistry(std::move(impl)));
}

std::unique_ptr<SqliteRegistry> SqliteRegistry::open_existing(const std::filesystem::path& path) {
  const auto named = [&](const std::string& what) {
    return RegistryStorageError("registry " + path.string() + ": " + what);
  };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw named("no such file");
  auto impl = std::make_unique<Impl>();
  if (sqlite3_open_v2(path.c_str(), &impl->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
    fail(impl->db, "open " + path.string());
  }
  sqlite3_busy_timeout(impl->db, 60000);
  const auto count = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    const int rc = sqlite3_prepare_v2(impl->db, sql, -1, &st, nullptr) == SQLITE_OK ? sqlite3_step(st) : SQLITE_ERROR;
    const auto n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    const std::string problem = rc == SQLITE_ROW ? "" : sqlite3_errmsg(impl->db);  // "file is not a database", …
    sqlite3_finalize(st);
    if (!problem.empty()) throw named(problem);
    return n;
  };
  if (count("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('people', 'subsidies')") != 2) {
    throw named("not a registry (no people and subsidies tables); make one with skillcard-report import-registry");
  }
  if (count("SELECT EXISTS (SELECT 1 FROM people)") == 0) {
    throw named("holds nobody; import the registry's people.csv with skillcard-report import-registry");
  }
  return std::unique_ptr<SqliteRegistry>(new SqliteRegistry(std::move(impl)));
}

ImportCounts SqliteRegistry::import_csv(const std::filesystem::path& people_csv,
                                        const std::filesystem::path& subsidies_csv, const HolderRefOf& holder_ref) {
  const auto people = read_people_csv(people_csv);  // CsvError: file, line, field; a citizen twice
  const auto subsidies = read_subsidies_csv(subsidies_csv);
  require_known_people(people, subsidies, people_csv, subsidies_csv);
  return import_rows(people, subsidies, holder_ref);
}

ImportCounts SqliteRegistry::import_rows(const std::vector<Person>& people,
                                         const std::vector<ExternalSubsidy>& subsidies, const HolderRefOf& holder_ref) {
  for (std::size_t i = 0; i < people.size(); ++i) {
    if (const auto problem = crypto::citizen_id_problem(people[i].citizen_id); !problem.empty()) {
      throw CsvError("people[" + std::to_string(i) + "]: citizen_id: " + problem);
    }
  }
  for (std::size_t i = 0; i < subsidies.size(); ++i) {
    if (const auto problem = crypto::citizen_id_problem(subsidies[i].citizen_id); !problem.empty()) {
      throw CsvError("subsidies[" + std::to_string(i) + "]: citizen_id: " + problem);
    }
  }
  std::lock_guard lock(impl_->mutex);
  impl_->exec("BEGIN IMMEDIATE");
  try {
    impl_->exec("DELETE FROM subsidies; DELETE FROM people;");
    std::unordered_map<std::string, crypto::HolderRef> refs;
    refs.reserve(people.size());
    {
      Statement ins(impl_->db,
                    "INSERT INTO people (citizen_id, holder, name, region, birth_days, insured, employed, "
                    "retired_fisherman, key_groups) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
      for (std::size_t i = 0; i < people.size(); ++i) {
        const auto& p = people[i];
        const auto id = crypto::canonical_citizen_id(p.citizen_id);
        const auto ref = holder_ref(id);
        if (!refs.emplace(id, ref).second) {
          throw CsvError("people[" + std::to_string(i) + "]: citizen_id: " + p.citizen_id.substr(0, 6) +
                         "... appears twice in the registry");
        }
        ins.reset();
        ins.bind(1, id);
        ins.bind(2, ref);
        ins.bind(3, p.name);
        ins.bind(4, std::int64_t{p.region});
        ins.bind(5, days_of(p.facts.date_of_birth));
        ins.bind(6, std::int64_t{p.facts.insured});
        ins.bind(7, std::int64_t{p.facts.employed});
        ins.bind(8, std::int64_t{p.facts.retired_fisherman});
        ins.bind(9, groups_bits(p.facts.key_groups));
        ins.step();
      }
    }
    {
      Statement ins(impl_->db,
                    "INSERT INTO subsidies (citizen_id, holder, source, issued_at, fund, occupation, level) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
      for (std::size_t i = 0; i < subsidies.size(); ++i) {
        const auto& s = subsidies[i];
        const auto id = crypto::canonical_citizen_id(s.citizen_id);
        const auto it = refs.find(id);
        if (it == refs.end()) {
          throw CsvError("subsidies[" + std::to_string(i) + "]: citizen_id: " + s.citizen_id.substr(0, 6) +
                         "... is not a person of the registry");
        }
        ins.reset();
        ins.bind(1, id);
        ins.bind(2, it->second);
        ins.bind(3, static_cast<std::int64_t>(s.record.source));
        ins.bind(4, static_cast<std::int64_t>(s.record.issued_at));
        ins.bind(5, static_cast<std::int64_t>(s.record.fund));
        ins.bind(6, std::int64_t{s.record.occupation});
        ins.bind(7, std::int64_t{s.record.level});
        ins.step();
      }
    }
    impl_->exec("COMMIT");
  } catch (...) {
    sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return {people.size(), subsidies.size()};
}

policy::RegistryFacts SqliteRegistry::facts(std::string_view citizen_id) const {
  std::lock_guard lock(impl_->mutex);
  Statement q(impl_->db, (std::string("SELECT ") + kPersonColumns + " FROM people WHERE citizen_id = ?1").c_str());
  q.bind(1, crypto::canonical_citizen_id(citizen_id));
  return q.step() ? person_from(q).facts : policy::RegistryFacts{};
}

policy::RegistryFacts SqliteRegistry::facts_by_holder(const crypto::HolderRef& holder) const {
  std::lock_guard lock(impl_->mutex);
  Statement q(impl_->db, (std::string("SELECT ") + kPersonColumns + " FROM people WHERE holder = ?1").c_str());
  q.bind(1, holder);
  return q.step() ? person_from(q).facts : policy::RegistryFacts{};
}

std::vector<policy::SubsidyRecord> SqliteRegistry::external_subsidies(const crypto::HolderRef& holder) const {
  std::lock_guard lock(impl_->mutex);
  Statement q(impl_->db,
              "SELECT source, issued_at, fund, occupation, level FROM subsidies WHERE holder = ?1 ORDER BY id");
  q.bind(1, holder);
  std::vector<policy::SubsidyRecord> out;
  while (q.step()) out.push_back(subsidy_from(q, 0));
  return out;
}

void SqliteRegistry::for_each_person(const std::function<void(const Person&, const crypto::HolderRef&)>& visit) const {
  std::lock_guard lock(impl_->mutex);
  Statement q(impl_->db, (std::string("SELECT ") + kPersonColumns + " FROM people ORDER BY citizen_id").c_str());
  while (q.step()) visit(person_from(q), q.ref(8));
}

void SqliteRegistry::for_each_subsidy(
    const std::function<void(const ExternalSubsidy&, const crypto::HolderRef&, std::uint32_t)>& visit) const {
  std::lock_guard lock(impl_->mutex);
  Statement q(impl_->db,
              "SELECT s.citizen_id, s.holder, p.region, s.source, s.issued_at, s.fund, s.occupation, s.level "
              "FROM subsidies s JOIN people p ON p.citizen_id = s.citizen_id ORDER BY s.id");
  while (q.step()) {
    ExternalSubsidy s;
    s.citizen_id = q.text(0);
    s.record = subsidy_from(q, 3);
    visit(s, q.ref(1), static_cast<std::uint32_t>(q.i64(2)));
  }
}

std::size_t SqliteRegistry::size() const {
  std::lock_guard lock(impl_->mutex);
  Statement q(impl_->db, "SELECT count(*) FROM people");
  q.step();
  return static_cast<std::size_t>(q.i64(0));
}

}  // namespace skillcard::registry
