// Operator reports over HTTP (#9): the P18 monthly report, P19 progress, settlement and the P17
// reconciliation, from the ledger (and the SQLite registry of record when configured), as JSON
// or, with format=csv, as CSV — the same functions and renderings as skillcard-report.
#include "skillcard/reports/load.hpp"
#include "skillcard/reports/render.hpp"
#include "work.hpp"

namespace skillcard::service::detail {

namespace {

constexpr std::uint64_t kReconcileGraceSeconds = 7 * 86'400;  // as skillcard-report's default

Response csv_response(const std::string& text) {
  return Response{200, text, {{"Content-Type", "text/csv; charset=utf-8"}, {"Cache-Control", "no-store"}}};
}

}  // namespace

Response Work::report() {
  require_empty_body();
  const auto kind = std::string(segment(2));
  const bool monthly = kind == "monthly", progress = kind == "progress", settlement = kind == "settlement",
             reconciliation = kind == "reconciliation";
  if (!monthly && !progress && !settlement && !reconciliation) refuse("NOT_FOUND");
  std::vector<std::string_view> allowed{"format"};
  if (!reconciliation) {
    allowed.push_back("year");
    allowed.push_back("month");
  }
  const auto params = query(allowed);
  const auto it = params.find("format");
  const bool csv = it != params.end() && it->second == "csv";
  if (it != params.end() && it->second != "csv" && it->second != "json") bad_field("format", "json or csv");
  int year = 0;
  unsigned month = 0;
  if (!reconciliation) {
    year = static_cast<int>(query_number(params, "year", 2000, 2100));
    month = static_cast<unsigned>(query_number(params, "month", 1, 12));
  }

  const auto input = reports::load_input(*ctx_.ledger, ctx_.registry_db);
  if (monthly) {
    const auto r = reports::monthly_report(input, year, month);
    return csv ? csv_response(reports::to_csv(r)) : json_response(200, reports::to_json(r));
  }
  if (progress) {
    const auto targets = ctx_.targets ? *ctx_.targets : reports::Targets::defaults();
    const auto r = reports::progress(input, targets, year, month);
    return csv ? csv_response(reports::to_csv(r)) : json_response(200, reports::to_json(r));
  }
  if (settlement) {
    const auto r = reports::settlement(input.redemptions, reports::cst_month_period(year, month));
    return csv ? csv_response(reports::to_csv(r)) : json_response(200, reports::to_json(r));
  }
  const auto r = reports::reconcile(input, now(), kReconcileGraceSeconds);
  return csv ? csv_response(reports::to_csv(r)) : json_response(200, reports::to_json(r));
}

}  // namespace skillcard::service::detail
