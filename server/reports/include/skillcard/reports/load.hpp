// Fills the reports' input rows from a ledger (every voucher, redemption and certificate record,
// the budgets) and the SQLite registry of record (each holder's region, the outside subsidies).
// The one place the reports touch storage; the report functions themselves stay pure.
#pragma once

#include "skillcard/ledger/ledger.hpp"
#include "skillcard/registry/sqlite_registry.hpp"
#include "skillcard/reports/reports.hpp"

namespace skillcard::reports {

// `registry` may be null: then every person-time counts in its issuing bureau's region and no
// outside subsidy is known. Throws what the ledger or registry throw (StorageError, …).
ReportInput load_input(ledger::Ledger& ledger, const registry::SqliteRegistry* registry);

// The parts separately (a service may keep the registry's rows and reload only the ledger's).
void load_ledger(ledger::Ledger& ledger, ReportInput& input);
void load_registry(const registry::SqliteRegistry& registry, ReportInput& input);

}  // namespace skillcard::reports
