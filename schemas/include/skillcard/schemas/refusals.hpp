// The one catalogue of refusal codes shared by card, host and service (docs/design.md,
// "Refusal catalogue"): which rule a refusal enforces, its HTTP status and card status word,
// and its message in Simplified Chinese and English. A test keeps this table and the design
// note's identical.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace skillcard::schemas {

struct Refusal {
  std::string_view code;                // stable, never renamed or reused
  std::vector<std::string_view> rules;  // policy rule ids, e.g. {"P1"}; empty for non-rule refusals
  int http_status;                      // 0: raised by the host or card only, never by the service
  std::string_view card_status;         // e.g. "6985 (REDEEM)"; empty when no status word maps
  std::string_view zh_cn;               // message templates with {placeholders}
  std::string_view en;
};

std::span<const Refusal> refusal_catalogue();
// The entry for `code`; throws std::out_of_range for a code not in the catalogue (a bug).
const Refusal& refusal(std::string_view code);

// Fills {name} placeholders; an unknown placeholder is left as it is, so a missing value shows
// up in the message instead of vanishing.
std::string render(std::string_view message, const std::map<std::string, std::string, std::less<>>& values);

}  // namespace skillcard::schemas
