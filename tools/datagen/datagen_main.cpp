// skillcard-datagen: writes registry CSV files (people.csv, subsidies.csv) with realistic,
// valid data for a province year, and checks a pair of files by importing them.
#include <CLI/CLI.hpp>
#include <iostream>

#include "skillcard/registry/generator.hpp"

using namespace skillcard::registry;

int main(int argc, char** argv) {
  CLI::App app{"skillcard-datagen: registry CSV data for tests, demos and benchmarks (docs/policy.md)"};
  app.require_subcommand(1);
  std::size_t people = 1000;
  std::uint64_t seed = 1;
  int year = 2026;
  std::filesystem::path out;
  auto* gen = app.add_subcommand("generate", "write people.csv and subsidies.csv");
  gen->add_option("--people", people, "how many people")->check(CLI::Range(1, 10'000'000));
  gen->add_option("--seed", seed, "random seed (same seed, same data)");
  gen->add_option("--year", year, "the year described")->check(CLI::Range(2000, 2100));
  gen->add_option("--out", out, "folder to write into (must exist)")->required()->check(CLI::ExistingDirectory);
  std::filesystem::path people_csv, subsidies_csv;
  auto* check = app.add_subcommand("check", "import CSV files and report what is wrong, by line");
  check->add_option("people", people_csv, "people CSV")->required();
  check->add_option("subsidies", subsidies_csv, "subsidies CSV")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    if (*gen) {
      const auto data = generate(people, seed, year);
      write_people_csv(out / "people.csv", data.people);
      write_subsidies_csv(out / "subsidies.csv", data.subsidies);
      std::cout << "wrote " << data.people.size() << " people and " << data.subsidies.size() << " outside subsidies to "
                << out.string() << "\n";
    } else {
      const auto p = read_people_csv(people_csv);
      const auto s = read_subsidies_csv(subsidies_csv);
      std::cout << p.size() << " people and " << s.size() << " outside subsidies, all valid\n";
    }
    return 0;
  } catch (const CsvError& e) {
    std::cerr << "skillcard-datagen: " << e.what() << "\n";
    return 3;
  }
}
