// skillcard-report: the operator's reports from a ledger file, the registry of record and the
// targets — P18 monthly report, P19 progress, settlement, P17 reconciliation — as text tables,
// --json or --csv; and the registry import from CSV exports (docs/reports.md).
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/registry/sqlite_registry.hpp"
#include "skillcard/reports/load.hpp"
#include "skillcard/reports/render.hpp"
#include "skillcard/reports/targets.hpp"

using namespace skillcard;
using namespace skillcard::reports;

namespace {

enum class Format { Table, Json, Csv };

template <class Report>
void print(const Report& report, Format format) {
  switch (format) {
    case Format::Json:
      std::cout << to_json(report).dump(2) << "\n";
      break;
    case Format::Csv:
      std::cout << to_csv(report);
      break;
    case Format::Table:
      std::cout << to_table(report);
      break;
  }
}

std::unique_ptr<ledger::SqliteLedger> open_ledger(const std::filesystem::path& path) {
  ledger::SqliteOptions options;
  options.create = false;  // a report never creates a ledger
  return ledger::SqliteLedger::open(path, options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skillcard-report: statistics (P18), progress (P19), settlement and reconciliation (P17)"};
  app.require_subcommand(1);
  std::filesystem::path ledger_file, registry_file, targets_file, people_csv, subsidies_csv, keys_file;
  int year = 0;
  unsigned month = 0;
  bool json = false, csv = false;
  std::uint64_t now = 0;
  unsigned grace_days = 7;

  const auto add_common = [&](CLI::App* cmd, bool with_registry) {
    cmd->add_option("--ledger", ledger_file, "ledger file (SQLite)")->required()->check(CLI::ExistingFile);
    // P18 counts training paid outside this system (the other business system, departments,
    // job-stabilisation refunds) and places people in their regions from the registry: without
    // it a report would leave them out and still look complete (漏统), so it is required.
    if (with_registry) {
      cmd->add_option("--registry", registry_file, "registry of record (SQLite)")->required()->check(CLI::ExistingFile);
    }
    auto* j = cmd->add_flag("--json", json, "print JSON");
    cmd->add_flag("--csv", csv, "print CSV")->excludes(j);
  };
  const auto add_month = [&](CLI::App* cmd) {
    cmd->add_option("--year", year, "CST year")->required()->check(CLI::Range(2000, 2100));
    cmd->add_option("--month", month, "CST month")->required()->check(CLI::Range(1, 12));
  };
  auto* monthly = app.add_subcommand("monthly", "P18 monthly report per region (province, city, county)");
  add_common(monthly, true);
  add_month(monthly);
  auto* prog = app.add_subcommand("progress", "P19 progress against targets, January to --month");
  add_common(prog, true);
  add_month(prog);
  prog->add_option("--targets", targets_file, "targets TOML (default: POLICY.md's)")->check(CLI::ExistingFile);
  auto* settle = app.add_subcommand("settlement", "what is owed per training provider and fund for a CST month");
  add_common(settle, false);
  add_month(settle);
  auto* rec = app.add_subcommand("reconcile", "P17: ledger vs budgets vs card counters; exit 1 on differences");
  add_common(rec, false);
  rec->add_option("--now", now, "the reconciliation's time, UTC seconds (default: now)");
  rec->add_option("--grace-days", grace_days, "days a voucher may stay unwritten to its card")
      ->check(CLI::Range(0, 365));
  auto* imp = app.add_subcommand("import-registry", "load the registry of record from CSV exports (all or nothing)");
  imp->add_option("--registry", registry_file, "registry file (SQLite, created if missing)")->required();
  imp->add_option("--people", people_csv, "people CSV")->required()->check(CLI::ExistingFile);
  imp->add_option("--subsidies", subsidies_csv, "outside subsidies CSV")->required()->check(CLI::ExistingFile);
  imp->add_option("--master-keys", keys_file, "master-keys.toml (the holder-reference secret)")
      ->required()
      ->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; any other parse error is bad arguments, exit 2 (CLI11 prints why).
    return app.exit(e) == 0 ? 0 : 2;
  }
  const Format format = json ? Format::Json : csv ? Format::Csv : Format::Table;

  try {
    if (*imp) {
      const auto keys = crypto::FileMasterKeyStore::load_holder_secret(keys_file);
      // A new registry is imported beside its final name and renamed into place only when the
      // import succeeded: a refused import leaves no empty registry behind (the service would
      // run on it and refuse every voucher, P13).
      const bool fresh = !std::filesystem::exists(registry_file);
      const auto target = fresh ? std::filesystem::path(registry_file.string() + ".importing") : registry_file;
      if (fresh) std::filesystem::remove(target);
      registry::ImportCounts n;
      try {
        auto registry = registry::SqliteRegistry::open(target);
        n = registry->import_csv(people_csv, subsidies_csv, [&](std::string_view id) { return keys->holder_ref(id); });
      } catch (...) {
        if (fresh) std::filesystem::remove(target);
        throw;
      }
      if (fresh) std::filesystem::rename(target, registry_file);
      std::cout << "imported " << n.people << " people and " << n.subsidies << " outside subsidies into "
                << registry_file.string() << "\n";
      return 0;
    }
    std::unique_ptr<registry::SqliteRegistry> registry;
    if (!registry_file.empty()) registry = registry::SqliteRegistry::open_existing(registry_file);
    const auto ledger = open_ledger(ledger_file);
    if (*monthly) {
      print(monthly_report(load_input(*ledger, registry.get()), year, month), format);
    } else if (*prog) {
      const auto targets = targets_file.empty() ? Targets::defaults() : load_targets(targets_file);
      print(progress(load_input(*ledger, registry.get()), targets, year, month), format);
    } else if (*settle) {
      ReportInput input;
      load_ledger(*ledger, input);
      print(settlement(input.redemptions, cst_month_period(year, month)), format);
    } else if (*rec) {
      if (now == 0) {
        now = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count());
      }
      ReportInput input;
      load_ledger(*ledger, input);
      const auto r = reconcile(input, now, std::uint64_t{grace_days} * 86400);
      print(r, format);
      return r.agrees() ? 0 : 1;
    }
    return 0;
  } catch (const registry::CsvError& e) {
    std::cerr << "skillcard-report: " << e.what() << "\n";
    return 3;
  } catch (const TargetsError& e) {
    std::cerr << "skillcard-report: " << e.what() << "\n";
    return 3;
  } catch (const ledger::SchemaError& e) {
    std::cerr << "skillcard-report: " << e.what() << "\n";
    return 4;
  } catch (const ledger::StorageError& e) {
    std::cerr << "skillcard-report: " << e.what() << "\n";
    return 4;
  } catch (const registry::RegistryStorageError& e) {
    std::cerr << "skillcard-report: " << e.what() << "\n";
    return 4;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-report: " << e.what() << "\n";
    return 5;
  }
}
