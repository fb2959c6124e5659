// The reports as JSON (for the operator endpoints), CSV (RFC 4180, one header row) and text
// tables (skillcard-report). Money stays integer fen in JSON and CSV; tables also show yuan.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "skillcard/reports/reports.hpp"

namespace skillcard::reports {

std::string_view fund_name(FundSource fund) noexcept;  // "special_account", …
std::string region_label(std::uint32_t region);        // "420100", or "unknown" for 0
std::string yuan(std::int64_t fen);                    // "1234.50"

nlohmann::ordered_json to_json(const MonthlyReport& report);
nlohmann::ordered_json to_json(const Progress& progress);
nlohmann::ordered_json to_json(const Settlement& settlement);
nlohmann::ordered_json to_json(const Reconciliation& reconciliation);

std::string to_csv(const MonthlyReport& report);
std::string to_csv(const Progress& progress);
std::string to_csv(const Settlement& settlement);
std::string to_csv(const Reconciliation& reconciliation);  // the differences

std::string to_table(const MonthlyReport& report);
std::string to_table(const Progress& progress);
std::string to_table(const Settlement& settlement);
std::string to_table(const Reconciliation& reconciliation);

}  // namespace skillcard::reports
