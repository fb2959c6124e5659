// Realistic registry data for tests, demos and benchmarks: valid 18-character citizen IDs (ISO
// 7064 MOD 11-2), Chinese names, GB/T 2260 region codes of Hubei's 17 cities, birth dates,
// insurance, employment, key groups and outside subsidies. Deterministic for a given seed.
#pragma once

#include <cstdint>
#include <vector>

#include "skillcard/registry/registry.hpp"

namespace skillcard::registry {

struct GeneratedData {
  std::vector<Person> people;
  std::vector<ExternalSubsidy> subsidies;
};

// Hubei's 17 city-level divisions (GB/T 2260).
const std::vector<std::uint32_t>& hubei_cities();

// `year`: the year the data describes (ages, subsidy dates in CST).
GeneratedData generate(std::size_t people, std::uint64_t seed, int year);

}  // namespace skillcard::registry
