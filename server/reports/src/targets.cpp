// Targets from TOML (toml++), with the line of every refusal, in the style of policy/config.cpp.
#include "skillcard/reports/targets.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace skillcard::reports {

namespace {

std::string at(const toml::node& node, const std::string& source) {
  return source + ":" + std::to_string(node.source().begin.line);
}

std::int64_t read_int(const toml::table& table, std::string_view key, std::int64_t min, std::int64_t max,
                      const std::string& source, const toml::node& owner) {
  const auto* node = table.get(key);
  if (node == nullptr) throw TargetsError(at(owner, source) + ": '" + std::string(key) + "' is missing");
  if (node->type() != toml::node_type::integer) {
    throw TargetsError(at(*node, source) + ": '" + std::string(key) + "' must be an integer");
  }
  const auto value = *node->value<std::int64_t>();
  if (value < min || value > max) {
    throw TargetsError(at(*node, source) + ": '" + std::string(key) + "' = " + std::to_string(value) + " is outside " +
                       std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

void only_keys(const toml::table& table, const std::set<std::string_view>& known, const std::string& source) {
  for (const auto& [key, node] : table) {
    if (!known.count(key.str())) {
      throw TargetsError(at(node, source) + ": unknown setting '" + std::string(key.str()) + "'");
    }
  }
}

std::uint32_t region_code(std::string_view text, const toml::node& node, const std::string& source) {
  const bool digits = text.size() == 6 && text[0] != '0' &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    throw TargetsError(at(node, source) + ": '" + std::string(text) + "' is not a 6-digit region code (GB/T 2260)");
  }
  return static_cast<std::uint32_t>(std::stoul(std::string(text)));
}

}  // namespace

Targets targets_from_toml(std::string_view text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw TargetsError(source + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  only_keys(doc, {"targets", "high_skill_bases"}, source);
  Targets out = Targets::defaults();
  if (const auto* node = doc.get("targets")) {
    const auto* targets = node->as_table();
    if (targets == nullptr) throw TargetsError(at(*node, source) + ": 'targets' must be a table");
    for (const auto& [key, entry] : *targets) {
      const auto* t = entry.as_table();
      if (t == nullptr)
        throw TargetsError(at(entry, source) + ": targets." + std::string(key.str()) + " must be a table");
      only_keys(*t, {"person_times", "apprenticeships"}, source);
      const auto code = region_code(key.str(), entry, source);
      RegionTarget target;
      target.person_times = static_cast<std::uint64_t>(read_int(*t, "person_times", 0, 100'000'000, source, entry));
      target.apprenticeships =
          t->contains("apprenticeships")
              ? static_cast<std::uint64_t>(read_int(*t, "apprenticeships", 0, 100'000'000, source, entry))
              : 0;
      if (target.apprenticeships > target.person_times) {
        throw TargetsError(at(entry, source) + ": targets." + std::string(key.str()) +
                           ": apprenticeships are part of person_times and cannot exceed them");
      }
      out.regions[code] = target;
    }
  }
  if (const auto* node = doc.get("high_skill_bases")) {
    const auto* bases = node->as_table();
    if (bases == nullptr) throw TargetsError(at(*node, source) + ": 'high_skill_bases' must be a table");
    only_keys(*bases, {"floor", "bases"}, source);
    if (bases->contains("floor")) {
      out.base_floor = static_cast<std::uint64_t>(read_int(*bases, "floor", 0, 10'000'000, source, *node));
    }
    if (const auto* list_node = bases->get("bases")) {
      const auto* list = list_node->as_array();
      if (list == nullptr) throw TargetsError(at(*list_node, source) + ": 'bases' must be an array of tables");
      for (const auto& item : *list) {
        const auto* b = item.as_table();
        if (b == nullptr) throw TargetsError(at(item, source) + ": each [[high_skill_bases.bases]] must be a table");
        only_keys(*b, {"provider", "name"}, source);
        const auto provider = static_cast<std::uint32_t>(read_int(*b, "provider", 1, 0xFFFFFFFF, source, item));
        const auto* name = b->get("name");
        if (name == nullptr || !name->is_string() || name->value<std::string>()->empty()) {
          throw TargetsError(at(item, source) + ": a base needs a non-empty 'name'");
        }
        if (!out.bases.emplace(provider, *name->value<std::string>()).second) {
          throw TargetsError(at(item, source) + ": base " + std::to_string(provider) + " is listed twice");
        }
      }
    }
  }
  return out;
}

Targets load_targets(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TargetsError(path.string() + ": cannot read");
  std::stringstream text;
  text << in.rdbuf();
  return targets_from_toml(text.str(), path.string());
}

}  // namespace skillcard::reports
