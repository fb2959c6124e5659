// skillcard-datagen: writes registry CSV files (people.csv, subsidies.csv) with realistic,
// valid data for a province year, checks a pair of files by importing them, and builds a whole
// province year (registry, ledger, targets) for reports and benchmarks.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <map>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/registry/generator.hpp"
#include "skillcard/registry/province_year.hpp"
#include "skillcard/registry/sqlite_registry.hpp"

using namespace skillcard;
using namespace skillcard::registry;

namespace {

// P19 targets for the generated year: the province's 550 000 (14 000 apprenticeships) × scale,
// split to the cities by their people; each city's base (provider n = 0) with the 2 000 floor.
void write_targets(const std::filesystem::path& path, const std::vector<Person>& people, double scale) {
  std::map<std::uint32_t, std::size_t> per_city;
  for (const auto& p : people) ++per_city[p.region >= 429000 ? p.region : p.region / 100 * 100];
  const auto province = static_cast<std::uint64_t>(550000.0 * scale + 0.5);
  const auto apprentices = static_cast<std::uint64_t>(14000.0 * scale + 0.5);
  std::ofstream out(path);
  out << "# P19 targets for a generated province year (skillcard-datagen province --scale " << scale << ")\n"
      << "[targets.420000]\nperson_times = " << province << "\napprenticeships = " << apprentices << "\n";
  for (const auto& [city, n] : per_city) {
    out << "\n[targets." << city << "]\nperson_times = " << province * n / people.size()
        << "\napprenticeships = " << apprentices * n / people.size() << "\n";
  }
  out << "\n[high_skill_bases]\nfloor = " << static_cast<std::uint64_t>(2000.0 * std::min(1.0, scale) + 0.5) << "\n";
  for (std::size_t i = 0; i < hubei_cities().size(); ++i) {
    out << "\n[[high_skill_bases.bases]]\nprovider = " << generated_provider(i, 0) << "\nname = \"" << hubei_cities()[i]
        << " 高技能人才培训基地\"\n";
  }
  if (!out) throw std::runtime_error(path.string() + ": write failed");
}

}  // namespace

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
  ProvinceYearOptions py;
  std::filesystem::path keys_file;
  auto* province = app.add_subcommand(
      "province",
      "a province year: people.csv, subsidies.csv, registry.db, ledger.db, targets.toml (and master-keys.toml)");
  province->add_option("--scale", py.scale, "1 = 300 000 people, about 600 000 vouchers (CI: 0.01)")
      ->check(CLI::Range(0.00001, 20.0));
  province->add_option("--seed", py.seed, "random seed");
  province->add_option("--year", py.year, "the CST year")->check(CLI::Range(2000, 2100));
  province->add_option("--threads", py.threads, "concurrent ledger writers")->check(CLI::Range(1, 256));
  province
      ->add_option("--master-keys", keys_file, "master-keys.toml for holder references (default: a new one in --out)")
      ->check(CLI::ExistingFile);
  province->add_option("--out", out, "empty folder to write into (must exist)")
      ->required()
      ->check(CLI::ExistingDirectory);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; any other parse error is bad arguments, exit 2 (CLI11 says why).
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*gen) {
      const auto data = generate(people, seed, year);
      write_people_csv(out / "people.csv", data.people);
      write_subsidies_csv(out / "subsidies.csv", data.subsidies);
      std::cout << "wrote " << data.people.size() << " people and " << data.subsidies.size() << " outside subsidies to "
                << out.string() << "\n";
    } else if (*check) {
      const auto p = read_people_csv(people_csv);
      const auto s = read_subsidies_csv(subsidies_csv);
      require_known_people(p, s, people_csv, subsidies_csv);  // what import-registry refuses too
      std::cout << p.size() << " people and " << s.size() << " outside subsidies, all valid\n";
    } else {
      // Nothing it writes may be there already: a folder of one year's files is never half
      // replaced by another's (master-keys.toml is used, never replaced; below).
      for (const char* name : {"ledger.db", "registry.db", "people.csv", "subsidies.csv", "targets.toml"}) {
        if (std::filesystem::exists(out / name)) {
          std::cerr << "skillcard-datagen: " << (out / name).string()
                    << " already exists: province writes into an empty folder\n";
          return 2;
        }
      }
      if (keys_file.empty()) {
        keys_file = out / "master-keys.toml";
        if (std::filesystem::exists(keys_file)) {
          // A province's keys (keytool init) are never replaced: its cards need them. They are
          // used as they are, so the holder references match that province.
          std::cerr << "skillcard-datagen: using the existing " << keys_file.string() << "\n";
        } else {
          // Created exclusively, 0600 from the first byte, and the text wiped afterwards.
          crypto::write_new_secret_file(keys_file, crypto::FileMasterKeyStore::generate_toml());
        }
      }
      const auto keys = crypto::FileMasterKeyStore::load(keys_file);
      const auto ref = [&](std::string_view id) { return keys->holder_ref(id); };
      ProvinceYearStats stats;
      GeneratedData data;
      {
        auto ledger = ledger::SqliteLedger::open(out / "ledger.db");
        data = generate_province_year(*ledger, py, ref, &stats);
      }
      write_people_csv(out / "people.csv", data.people);
      write_subsidies_csv(out / "subsidies.csv", data.subsidies);
      SqliteRegistry::open(out / "registry.db")->import_csv(out / "people.csv", out / "subsidies.csv", ref);
      write_targets(out / "targets.toml", data.people, py.scale);
      std::cout << "province year " << py.year << " in " << out.string() << ": " << stats.people << " people ("
                << stats.outside_subsidies << " outside subsidies), " << stats.cards << " cards, " << stats.vouchers
                << " vouchers (" << stats.written << " written, " << stats.voided << " voided), " << stats.redeemed
                << " redemptions (" << stats.reversed << " reversed), " << stats.certificates << " certificates\n";
    }
    return 0;
  } catch (const CsvError& e) {
    std::cerr << "skillcard-datagen: " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-datagen: " << e.what() << "\n";
    return 4;
  }
}
