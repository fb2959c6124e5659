// The benchmark output every skillcard benchmark prints (docs/design.md, "Benchmark output"):
// one JSON object per line with metric, value, unit, baseline, ratio and goal, the baseline
// measured in the same run, interleaved with the candidate so that machine noise hits both.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace skillcard::bench {

// The usage line, on stdout with exit 0 (--help) or on stderr with exit 2 (anything unknown).
[[noreturn]] inline void exit_with_usage(const char* usage, int code) {
  (code == 0 ? std::cout : std::cerr) << "usage: " << usage << std::endl;
  std::exit(code);
}

// The command line of a benchmark that takes only `--quick` (CI: fewer, shorter rounds): true
// with it. `--help` prints the usage and exits 0; any other argument exits 2 with the usage,
// rather than start the full run nobody asked for.
inline bool quick_only(int argc, char** argv, const char* usage) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--help" || arg == "-h") {
      exit_with_usage(usage, 0);
    } else {
      std::cerr << argv[0] << ": unknown argument '" << arg << "'\n";
      exit_with_usage(usage, 2);
    }
  }
  return quick;
}

// Operations per second of `op` over at least `min_time` (`op` returns how many operations it
// did, so batched work can be counted).
inline double rate(const std::function<std::size_t()>& op, std::chrono::duration<double> min_time) {
  using clock = std::chrono::steady_clock;
  std::size_t ops = 0;
  const auto start = clock::now();
  auto now = start;
  do {
    ops += op();
    now = clock::now();
  } while (now - start < min_time);
  return static_cast<double>(ops) / std::chrono::duration<double>(now - start).count();
}

struct Comparison {
  double value;
  double baseline;
};

// Alternates candidate and baseline `rounds` times and keeps the median rate of each.
inline Comparison compare(const std::function<std::size_t()>& candidate, const std::function<std::size_t()>& baseline,
                          int rounds = 7, std::chrono::duration<double> per_round = std::chrono::milliseconds(150)) {
  std::vector<double> c, b;
  candidate();  // warm up caches and lazy initialisation of both
  baseline();
  for (int i = 0; i < rounds; ++i) {
    c.push_back(rate(candidate, per_round));
    b.push_back(rate(baseline, per_round));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {median(c), median(b)};
}

// Prints one line; returns whether the goal (a minimum ratio) was met, or true without a goal.
// `limit_met`, for absolute limits (sizes, exchange counts), is printed as "met" instead.
inline bool report(const std::string& metric, double value, const std::string& unit, std::optional<double> baseline,
                   std::optional<double> goal, const std::string& note = {},
                   std::optional<bool> limit_met = std::nullopt) {
  nlohmann::ordered_json line;  // the field order of docs/design.md
  line["metric"] = metric;
  line["value"] = value;
  line["unit"] = unit;
  line["baseline"] = baseline ? nlohmann::ordered_json(*baseline) : nlohmann::ordered_json(nullptr);
  // Metrics named *_time are lower-is-better: their ratio is baseline / value, so that a ratio
  // above 1 always means "better than the baseline".
  const bool lower_is_better = metric.size() >= 5 && metric.compare(metric.size() - 5, 5, "_time") == 0;
  std::optional<double> ratio;
  if (baseline && *baseline > 0 && value > 0) ratio = lower_is_better ? *baseline / value : value / *baseline;
  line["ratio"] = ratio ? nlohmann::ordered_json(*ratio) : nlohmann::ordered_json(nullptr);
  line["goal"] = goal ? nlohmann::ordered_json(*goal) : nlohmann::ordered_json(nullptr);
  const bool met = limit_met ? *limit_met : (!goal || (ratio && *ratio >= *goal));
  if (goal || limit_met) line["met"] = met;
  if (!note.empty()) line["note"] = note;
  std::cout << line.dump() << std::endl;
  return met;
}

}  // namespace skillcard::bench
