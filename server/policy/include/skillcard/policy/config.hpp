// The policy's configuration (POLICY.md rules marked *config*): defaults as POLICY.md gives
// them, per-region overrides and the subsidy standard table, read from TOML. A bad file is
// refused at start, naming the line and the reason; a rule that needs a value nobody gave
// fails closed (POLICY_NOT_CONFIGURED), never open.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "skillcard/schemas/common.hpp"

namespace skillcard::policy {

struct RegionRules {
  int annual_limit = 3;                        // P1
  int employment_fund_limit = 1;               // P2
  int key_group_uplift_percent = 20;           // P5
  int min_age = 16;                            // P6
  int max_age = 60;                            // P6 (statutory retirement age)
  std::optional<int> fisherman_max_age;        // P6, relaxed per region for retired fishermen (退捕渔民)
  int online_max_percent = 30;                 // P8
  bool entrepreneurship_fully_online = false;  // P9 (epidemic-control switch)
  int sync_window_hours = 72;                  // P12
  int voucher_validity_months = 3;             // P15
};

// P7: "the region's current standard table". A row is a base subsidy for a programme,
// occupation (0 = any occupation) and level, in a region's table (region 0 = the table every
// region without its own row uses), in force for vouchers issued from a CST day on (0 = always).
struct StandardKey {
  std::uint32_t region = 0;
  schemas::Programme programme{};
  std::uint32_t occupation = 0;
  std::uint8_t level = 0;
  std::int32_t from_day = 0;  // days since 1970-01-01 of the CST date the row takes effect
  auto operator<=>(const StandardKey&) const = default;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PolicyConfig {
  RegionRules defaults;
  std::map<std::uint32_t, RegionRules> regions;  // by region code; cities inherit their province's
  std::map<StandardKey, std::uint32_t> standards_fen;
  // Test-only: rules switched off, so that CI can show each rule's tests fail without it.
  std::set<std::string> disabled_rules;

  // The rules for a region: its own entry, else its city's (xxxx00), else its province's
  // (xx0000), else the defaults.
  const RegionRules& rules_for(std::uint32_t region) const;
  // The base amount for a voucher issued in `region` at `when` (UTC seconds), or nothing when no
  // table has a row for it (fail closed). The region's own table first, then its city's, its
  // province's and the table without a region; in each, the occupation's row before the
  // any-occupation row; of a row's revisions, the latest in force on the CST day of `when`.
  std::optional<std::uint32_t> standard(std::uint32_t region, schemas::Programme programme, std::uint32_t occupation,
                                        std::uint8_t level, std::uint64_t when) const;
  bool enabled(std::string_view rule) const { return disabled_rules.count(std::string(rule)) == 0; }

  static PolicyConfig from_toml(std::string_view text, const std::string& source_name);  // ConfigError
  static PolicyConfig load(const std::filesystem::path& path);                           // ConfigError
};

}  // namespace skillcard::policy
