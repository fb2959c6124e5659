// PolicyConfig from TOML (toml++), with line numbers in every refusal.
#include "skillcard/policy/config.hpp"

#include <toml++/toml.h>

#include <chrono>

#include "skillcard/schemas/cst.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace skillcard::policy {

namespace {

std::string at(const toml::node& node, const std::string& source) {
  return source + ":" + std::to_string(node.source().begin.line);
}

int read_int(const toml::table& table, std::string_view key, int current, int min, int max, const std::string& source) {
  const auto* node = table.get(key);
  if (node == nullptr) return current;
  const auto value = node->value<std::int64_t>();
  if (!value || node->type() != toml::node_type::integer) {
    throw ConfigError(at(*node, source) + ": '" + std::string(key) + "' must be an integer");
  }
  if (*value < min || *value > max) {
    throw ConfigError(at(*node, source) + ": '" + std::string(key) + "' = " + std::to_string(*value) + " is outside " +
                      std::to_string(min) + ".." + std::to_string(max));
  }
  return static_cast<int>(*value);
}

void read_rules(const toml::table& table, RegionRules& rules, const std::string& source) {
  static const std::set<std::string_view> known = {
      "annual_limit",      "employment_fund_limit",  "key_group_uplift_percent", "min_age",
      "max_age",           "fisherman_max_age",      "online_max_percent",       "entrepreneurship_fully_online",
      "sync_window_hours", "voucher_validity_months"};
  for (const auto& [key, node] : table) {
    if (!known.count(key.str()))
      throw ConfigError(at(node, source) + ": unknown setting '" + std::string(key.str()) + "'");
  }
  rules.annual_limit = read_int(table, "annual_limit", rules.annual_limit, 0, 100, source);
  rules.employment_fund_limit = read_int(table, "employment_fund_limit", rules.employment_fund_limit, 0, 100, source);
  rules.key_group_uplift_percent =
      read_int(table, "key_group_uplift_percent", rules.key_group_uplift_percent, 0, 100, source);
  rules.min_age = read_int(table, "min_age", rules.min_age, 0, 120, source);
  rules.max_age = read_int(table, "max_age", rules.max_age, 0, 120, source);
  if (table.contains("fisherman_max_age")) {
    rules.fisherman_max_age = read_int(table, "fisherman_max_age", 0, 0, 120, source);
  }
  rules.online_max_percent = read_int(table, "online_max_percent", rules.online_max_percent, 0, 100, source);
  if (const auto* node = table.get("entrepreneurship_fully_online")) {
    const auto* b = node->as_boolean();
    if (b == nullptr) throw ConfigError(at(*node, source) + ": 'entrepreneurship_fully_online' must be true or false");
    rules.entrepreneurship_fully_online = b->get();
  }
  rules.sync_window_hours = read_int(table, "sync_window_hours", rules.sync_window_hours, 1, 24 * 30, source);
  rules.voucher_validity_months =
      read_int(table, "voucher_validity_months", rules.voucher_validity_months, 1, 36, source);
  if (rules.min_age > rules.max_age) throw ConfigError(source + ": min_age is above max_age");
  // P6 relaxes the upper limit for retired fishermen; a value below max_age would tighten it.
  if (const auto* node = table.get("fisherman_max_age"); node && *rules.fisherman_max_age < rules.max_age) {
    throw ConfigError(at(*node, source) + ": fisherman_max_age " + std::to_string(*rules.fisherman_max_age) +
                      " is below max_age " + std::to_string(rules.max_age) +
                      " (P6 relaxes the limit for retired fishermen, never tightens it)");
  }
}

std::uint32_t region_code(std::string_view text, const toml::node& node, const std::string& source) {
  const bool digits = text.size() == 6 && text[0] != '0' &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits)
    throw ConfigError(at(node, source) + ": '" + std::string(text) + "' is not a 6-digit region code (GB/T 2260)");
  return static_cast<std::uint32_t>(std::stoul(std::string(text)));
}

}  // namespace

const RegionRules& PolicyConfig::rules_for(std::uint32_t region) const {
  for (const auto code : {region, region / 100 * 100, region / 10000 * 10000}) {
    if (const auto it = regions.find(code); it != regions.end()) return it->second;
  }
  return defaults;
}

std::optional<std::uint32_t> PolicyConfig::standard(std::uint32_t region, schemas::Programme programme,
                                                    std::uint32_t occupation, std::uint8_t level,
                                                    std::uint64_t when) const {
  const auto day = static_cast<std::int32_t>(std::chrono::sys_days{schemas::cst_date(when)}.time_since_epoch().count());
  std::uint32_t previous = 0xFFFFFFFF;
  for (const auto code : {region, region / 100 * 100, region / 10000 * 10000, 0u}) {
    if (code == previous) continue;  // a city is its own city; a province its own province
    previous = code;
    for (const auto occ : {occupation, 0u}) {
      // The row with the latest from_day <= day among this (region, programme, occupation, level).
      auto it = standards_fen.upper_bound({code, programme, occ, level, day});
      if (it == standards_fen.begin()) continue;
      --it;
      const auto& k = it->first;
      if (k.region == code && k.programme == programme && k.occupation == occ && k.level == level) return it->second;
    }
  }
  return std::nullopt;
}

PolicyConfig PolicyConfig::from_toml(std::string_view text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  PolicyConfig config;
  for (const auto& [key, node] : doc) {
    const auto k = key.str();
    if (k != "defaults" && k != "regions" && k != "standards") {
      throw ConfigError(at(node, source) + ": unknown section '" + std::string(k) + "'");
    }
  }
  if (const auto* defaults = doc["defaults"].as_table()) read_rules(*defaults, config.defaults, source);
  if (const auto* regions = doc["regions"].as_table()) {
    // A region overrides only what it names, over what its province (xx0000) and then its city
    // (xxxx00) set: so provinces first, then cities, then counties, each from its parent.
    std::map<std::uint32_t, const toml::table*> entries;
    for (const auto& [key, node] : *regions) {
      const auto* table = node.as_table();
      if (table == nullptr)
        throw ConfigError(at(node, source) + ": regions." + std::string(key.str()) + " must be a table");
      entries[region_code(key.str(), node, source)] = table;
    }
    const auto level = [](std::uint32_t code) { return code % 10000 == 0 ? 0 : code % 100 == 0 ? 1 : 2; };
    for (int pass = 0; pass < 3; ++pass) {
      for (const auto& [code, table] : entries) {
        if (level(code) != pass) continue;
        RegionRules rules =
            pass == 0 ? config.defaults : config.rules_for(pass == 1 ? code / 10000 * 10000 : code / 100 * 100);
        read_rules(*table, rules, source);
        config.regions[code] = rules;
      }
    }
  }
  if (const auto* standards = doc["standards"].as_array()) {
    for (const auto& node : *standards) {
      const auto* t = node.as_table();
      if (t == nullptr) throw ConfigError(at(node, source) + ": each [[standards]] entry must be a table");
      // A misspelt key must not turn a county's row into everybody's (region) or a revision into
      // the row in force today (from).
      static const std::set<std::string_view> known = {"region", "programme",  "occupation",
                                                       "level",  "amount_fen", "from"};
      for (const auto& [key, value] : *t) {
        if (!known.count(key.str()))
          throw ConfigError(at(value, source) + ": unknown key '" + std::string(key.str()) + "' in a standard");
      }
      const auto programme = read_int(*t, "programme", -1, 1, 99, source);
      const auto level = read_int(*t, "level", -1, 1, 5, source);
      const auto amount = read_int(*t, "amount_fen", -1, 1, 100'000'000, source);
      if (programme < 0 || level < 0 || amount < 0) {
        throw ConfigError(at(node, source) + ": a standard needs programme, level and amount_fen");
      }
      if (!schemas::is_known(static_cast<schemas::Programme>(programme))) {
        throw ConfigError(at(node, source) + ": programme " + std::to_string(programme) + " is not a programme type");
      }
      std::uint32_t occupation = 0;
      if (const auto* occ = t->get("occupation")) {
        const auto code = occ->value<std::string>();
        if (!code) throw ConfigError(at(*occ, source) + ": occupation must be a string like \"4-04-05-05\" or \"*\"");
        if (*code != "*") {
          try {
            occupation = schemas::parse_occupation(*code);
          } catch (const std::invalid_argument& e) {
            throw ConfigError(at(*occ, source) + ": " + e.what());
          }
        }
      }
      StandardKey key{0, static_cast<schemas::Programme>(programme), occupation, static_cast<std::uint8_t>(level), 0};
      if (const auto* r = t->get("region")) {
        const auto code = r->value<std::string>();
        if (!code || !r->is_string()) {
          throw ConfigError(at(*r, source) + ": region must be a string like \"420100\"");
        }
        key.region = region_code(*code, *r, source);
      }
      if (const auto* f = t->get("from")) {
        const auto* date = f->as_date();
        if (date == nullptr) throw ConfigError(at(*f, source) + ": from must be a date like 2026-07-01 (CST)");
        const std::chrono::year_month_day ymd{std::chrono::year{date->get().year},
                                              std::chrono::month{date->get().month}, std::chrono::day{date->get().day}};
        if (!ymd.ok()) throw ConfigError(at(*f, source) + ": from is not a calendar date");
        key.from_day = static_cast<std::int32_t>(std::chrono::sys_days{ymd}.time_since_epoch().count());
      }
      if (!config.standards_fen.emplace(key, static_cast<std::uint32_t>(amount)).second) {
        throw ConfigError(at(node, source) +
                          ": this region's table already has a standard for this programme, occupation and level"
                          " from that date");
      }
    }
  }
  return config;
}

PolicyConfig PolicyConfig::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path.string() + ": cannot read the policy configuration");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_toml(ss.str(), path.string());
}

}  // namespace skillcard::policy
