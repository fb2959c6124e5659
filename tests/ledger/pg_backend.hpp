// The PostgreSQL test backend's helpers for the PostgreSQL-only tests: the fixture cluster's
// connection string and the per-ledger schema.
#pragma once

#include <filesystem>
#include <string>

namespace skillcard::ledger::test {

std::string pg_base_conninfo();  // SKILLCARD_PG_CONNINFO (throws if unset)
std::string pg_schema_for(const std::filesystem::path& where);
// Creates the schema if needed; the connection string whose search_path is that schema.
std::string pg_conninfo_for(const std::filesystem::path& where);

}  // namespace skillcard::ledger::test
