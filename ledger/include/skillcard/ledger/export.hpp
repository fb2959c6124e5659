// Export of redemptions and settlement per training provider and fund for the provincial
// systems (docs/ledger.md, "Export"): CSV (RFC 4180, UTF-8, header row) and JSON.
#pragma once

#include <ostream>
#include <span>
#include <string>
#include <string_view>

#include "skillcard/ledger/types.hpp"

namespace skillcard::ledger {

// One row per redemption, reversed ones included with reversed_at and the reason.
// One CSV field (RFC 4180 quoting) of free text, defused for spreadsheets: text that a
// spreadsheet would run as a formula (first character = + - @, or a TAB or CR before one) gets a
// leading apostrophe (OWASP "CSV injection"). Every CSV the bureau's staff open goes through it.
std::string csv_text(std::string_view s);

void write_redemptions_csv(std::ostream& out, std::span<const RedemptionExportRow> rows);
// {"format": "skillcard-ledger-redemptions/1", "generated_at": …, "groups": [{"provider", "fund",
//  "count", "total_fen", "redemptions": [...]}]}; count and total exclude reversed redemptions.
void write_redemptions_json(std::ostream& out, std::span<const RedemptionExportRow> rows, UtcSeconds generated_at);
void write_settlement_csv(std::ostream& out, std::span<const SettlementLine> lines);
void write_settlement_json(std::ostream& out, std::span<const SettlementLine> lines, UtcSeconds generated_at);

}  // namespace skillcard::ledger
