// P19's targets from TOML (docs/reports.md, "Targets"): the province's, its cities' and
// counties', and the provincial high-skill training bases with their floor. A bad file is refused
// naming the line and the reason.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

#include "skillcard/reports/reports.hpp"

namespace skillcard::reports {

class TargetsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// [targets.<code>] person_times, apprenticeships; [high_skill_bases] floor, [[bases]] provider,
// name. Regions not named keep Targets::defaults() (Hubei's 550 000 / 14 000, floor 2 000).
Targets targets_from_toml(std::string_view text, const std::string& source_name);  // TargetsError
Targets load_targets(const std::filesystem::path& path);                           // TargetsError

}  // namespace skillcard::reports
