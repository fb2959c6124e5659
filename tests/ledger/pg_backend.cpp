// The backend of ledger_pg_test: the shared ledger tests (fixtures.hpp) on PgLedger, against the
// throwaway cluster of pg_fixture.sh (connection string in SKILLCARD_PG_CONNINFO, set by ctest).
// Each test's ledger is a schema of its own in the test database, named after its path.
#include "pg_backend.hpp"

#include <libpq-fe.h>

#include <cctype>

#include "fixtures.hpp"
#include "skillcard/ledger/pg_ledger.hpp"

namespace skillcard::ledger::test {

namespace {

struct Conn {
  explicit Conn(const std::string& conninfo) : c(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c) != CONNECTION_OK) {
      const std::string m = PQerrorMessage(c);
      PQfinish(c);
      throw std::runtime_error("cannot connect to the test PostgreSQL (" + conninfo + "): " + m);
    }
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
  }
  ~Conn() { PQfinish(c); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  // Runs `sql`; returns the first column of the first row as text ("" if none).
  std::string run(const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const std::string m = PQresultErrorMessage(r);
      PQclear(r);
      throw std::runtime_error(m + " in: " + sql);
    }
    std::string out;
    if (status == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0)) {
      out = PQgetvalue(r, 0, 0);
    }
    PQclear(r);
    return out;
  }
  PGconn* c;
};

// The test suite's SQL is written for SQLite; these are the two spellings PostgreSQL differs in:
// x'00ff' blobs become '\x00ff'::bytea, and DROP TRIGGER names its table.
std::string to_pg(const std::string& sql) {
  std::string out;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const bool word_start = i == 0 || !(std::isalnum(static_cast<unsigned char>(sql[i - 1])) || sql[i - 1] == '_');
    if (word_start && (sql[i] == 'x' || sql[i] == 'X') && i + 1 < sql.size() && sql[i + 1] == '\'') {
      const auto end = sql.find('\'', i + 2);
      if (end == std::string::npos) {  // unterminated: PostgreSQL reports the syntax error
        out += sql.substr(i);
        break;
      }
      out += "'\\x" + sql.substr(i + 2, end - (i + 2)) + "'::bytea";
      i = end;
      continue;
    }
    out += sql[i];
  }
  static const std::string drop = "DROP TRIGGER IF EXISTS ";
  for (auto pos = out.find(drop); pos != std::string::npos; pos = out.find(drop, pos + 1)) {
    const auto name_at = pos + drop.size();
    const auto name_end = out.find_first_of("; \n", name_at);
    const auto name = out.substr(name_at, name_end == std::string::npos ? std::string::npos : name_end - name_at);
    for (const char* table : {"audit_log", "redemptions", "vouchers", "certificates"}) {
      if (name.rfind(std::string(table) + "_", 0) == 0) {
        out.insert(name_at + name.size(), std::string(" ON ") + table);
        break;
      }
    }
  }
  return out;
}

}  // namespace

std::string pg_base_conninfo() {
  const char* env = std::getenv("SKILLCARD_PG_CONNINFO");
  if (env == nullptr || *env == '\0') {
    throw std::runtime_error("SKILLCARD_PG_CONNINFO is not set: run ledger_pg_test through ctest (pg fixture)");
  }
  return env;
}

std::string pg_schema_for(const fs::path& where) {
  std::string name = "t";
  for (char ch : where.string()) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    name += std::isalnum(static_cast<unsigned char>(lower)) ? lower : '_';
  }
  if (name.size() > 40) {
    name = name.substr(name.size() - 40);
    name = "t" + std::to_string(std::hash<std::string>{}(where.string()) % 1000000007u) + name;
  }
  return name;
}

std::string pg_conninfo_for(const fs::path& where) {
  const auto schema = pg_schema_for(where);
  Conn admin(pg_base_conninfo());
  // Serialised: several processes may open the same new ledger at once.
  admin.run("SELECT pg_advisory_lock(42); CREATE SCHEMA IF NOT EXISTS " + schema + "; SELECT pg_advisory_unlock(42)");
  return pg_base_conninfo() + " options='-c search_path=" + schema + "'";
}

std::unique_ptr<SqlLedger> open_ledger(const fs::path& where) { return PgLedger::open(pg_conninfo_for(where)); }
std::string backend_name() { return "postgresql"; }

struct Raw::Impl {
  explicit Impl(const fs::path& where) : conn(pg_conninfo_for(where)) {}
  Conn conn;
};
Raw::Raw(const fs::path& where) : impl_(std::make_unique<Impl>(where)) {}
Raw::~Raw() = default;
void Raw::exec(const std::string& sql) { impl_->conn.run(to_pg(sql)); }
std::int64_t Raw::number(const std::string& sql) {
  const auto text = impl_->conn.run(to_pg(sql));
  return text.empty() ? -1 : std::stoll(text);
}

}  // namespace skillcard::ledger::test
