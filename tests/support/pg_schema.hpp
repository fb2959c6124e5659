// A schema of its own in the test PostgreSQL (the ctest fixture's SKILLCARD_PG_CONNINFO) for a
// process-level test, created with psql; the returned connection string selects it. Test code.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace skillcard::testing {

// The connection string of the test PostgreSQL, or "" when the test runs on SQLite.
inline std::string pg_conninfo() {
  const char* base = std::getenv("SKILLCARD_PG_CONNINFO");
  return base ? base : "";
}

// Creates schema `<prefix>_<pid>` (dropping an old one of that name) and returns the connection
// string that uses it.
inline std::string pg_fresh_schema(const std::string& prefix) {
  const auto base = pg_conninfo();
  const auto schema = prefix + "_" + std::to_string(::getpid());
  const auto sql = "DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " + schema + ";";
  const auto cmd = "psql -q -v ON_ERROR_STOP=1 \"" + base + "\" -c \"" + sql + "\" >/dev/null";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("psql could not create schema " + schema);
  return base + " options='-c search_path=" + schema + "'";
}

}  // namespace skillcard::testing
