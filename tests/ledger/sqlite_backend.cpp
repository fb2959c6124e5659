// The backend of ledger_test: the shared ledger tests (fixtures.hpp) on SqliteLedger files.
#include <sqlite3.h>

#include "fixtures.hpp"

namespace skillcard::ledger::test {

std::unique_ptr<SqlLedger> open_ledger(const fs::path& where) { return SqliteLedger::open(where); }
std::string backend_name() { return "sqlite"; }

struct Raw::Impl {
  explicit Impl(const fs::path& p) : db(p) {}
  RawDb db;
};
Raw::Raw(const fs::path& where) : impl_(std::make_unique<Impl>(where)) {}
Raw::~Raw() = default;
void Raw::exec(const std::string& sql) { impl_->db.exec(sql); }
std::int64_t Raw::number(const std::string& sql) { return impl_->db.number(sql); }

}  // namespace skillcard::ledger::test
