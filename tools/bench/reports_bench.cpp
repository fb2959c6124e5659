// Reports (#9): the P18 monthly report and the P17 reconciliation at 1×, 2× and 4× a generated
// province year; time per row should stay flat (linear or better). The 1× data is a ledger
// written by the province-year generator; 2× and 4× repeat its rows under new holders, serials
// and cards. The baseline of each larger run is the 1× time scaled by the factor, measured in
// the same run, so the ratio is (time per row at 1×) / (time per row at N×): goal ≥ 0.83 (at
// most 1.2 times the 1× time per row).
//
// SKILLCARD_REPORTS_BENCH_SCALE (default 0.05; 1 = 300 000 people, about 600 000 vouchers), or
// SKILLCARD_REPORTS_BENCH_DATA = a folder skillcard-datagen province wrote (ledger.db, registry.db).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "bench_json.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/ledger/cst.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/registry/province_year.hpp"
#include "skillcard/reports/load.hpp"
#include "skillcard/reports/reports.hpp"

using namespace skillcard;
using namespace skillcard::reports;
using Clock = std::chrono::steady_clock;

namespace {

crypto::HolderRef bench_ref(std::string_view id) {
  const auto mac = crypto::OpenSsl::hmac_sha256(as_bytes("reports bench"), as_bytes(id));
  crypto::HolderRef ref{};
  std::copy_n(mac.begin(), ref.size(), ref.begin());
  return ref;
}

HolderRef copy_of(HolderRef h, unsigned copy) {
  h[8] = static_cast<std::uint8_t>(h[8] ^ copy);
  h[9] = static_cast<std::uint8_t>(h[9] ^ (copy * 77));
  return h;
}

ReportInput replicate(const ReportInput& base, unsigned times) {
  ReportInput out;
  std::uint64_t span = 0;
  for (const auto& v : base.vouchers) span = std::max(span, v.serial);
  for (unsigned c = 0; c < times; ++c) {
    const auto tag = c == 0 ? std::string() : "#" + std::to_string(c);
    for (auto v : base.vouchers) {
      v.holder = copy_of(v.holder, c);
      v.serial += c * (span + 1);
      if (!v.card.empty()) v.card += tag;
      out.vouchers.push_back(std::move(v));
    }
    for (auto r : base.redemptions) {
      r.voucher += c * (span + 1);
      r.card += tag;
      out.redemptions.push_back(std::move(r));
    }
    for (auto x : base.certificates) {
      x.holder = copy_of(x.holder, c);
      out.certificates.push_back(x);
    }
    for (auto h : base.holders) {
      h.holder = copy_of(h.holder, c);
      out.holders.push_back(h);
    }
    for (auto e : base.external) {
      e.holder = copy_of(e.holder, c);
      out.external.push_back(e);
    }
  }
  out.budgets = base.budgets;
  for (auto& b : out.budgets) {
    b.committed_fen *= times;
    b.spent_fen *= times;
  }
  return out;
}

template <class F>
double median_seconds(F&& f, int rounds) {
  std::vector<double> t;
  for (int i = 0; i < rounds; ++i) {
    const auto start = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::size_t rows(const ReportInput& in) {
  return in.vouchers.size() + in.redemptions.size() + in.certificates.size() + in.holders.size() + in.external.size();
}

}  // namespace

int main(int argc, char** argv) {
  // --quick is accepted (CI passes it to every benchmark) and changes nothing: the size of the
  // run is SKILLCARD_REPORTS_BENCH_SCALE's.
  bench::quick_only(argc, argv,
                    "reports_bench [--quick]   (--quick changes nothing; size: SKILLCARD_REPORTS_BENCH_SCALE "
                    "or SKILLCARD_REPORTS_BENCH_DATA)");
  double scale = 0.05;
  if (const char* s = std::getenv("SKILLCARD_REPORTS_BENCH_SCALE")) scale = std::atof(s);
  const auto dir = std::filesystem::temp_directory_path() / ("skillcard-reports-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  registry::ProvinceYearOptions options;
  options.scale = scale;
  std::unique_ptr<ledger::SqliteLedger> ledger;
  std::unique_ptr<registry::SqliteRegistry> registry;
  if (const char* existing = std::getenv("SKILLCARD_REPORTS_BENCH_DATA")) {
    // A year skillcard-datagen province wrote before (ledger.db, registry.db): no generation.
    ledger::SqliteOptions open_options;
    open_options.create = false;
    ledger = ledger::SqliteLedger::open(std::filesystem::path(existing) / "ledger.db", open_options);
    registry = registry::SqliteRegistry::open(std::filesystem::path(existing) / "registry.db");
    std::cerr << "data from " << existing << "\n";
  } else {
    const auto gen_start = Clock::now();
    registry::ProvinceYearStats stats;
    ledger = ledger::SqliteLedger::open(dir / "ledger.db");
    const auto data = registry::generate_province_year(*ledger, options, bench_ref, &stats);
    const auto gen_seconds = std::chrono::duration<double>(Clock::now() - gen_start).count();
    registry = registry::SqliteRegistry::open(dir / "registry.db");
    registry->import_rows(data.people, data.subsidies, bench_ref);
    std::cerr << "scale " << scale << ": " << stats.people << " people, " << stats.vouchers << " vouchers, "
              << stats.redeemed << " redemptions generated in " << gen_seconds << " s\n";
  }

  ReportInput base;
  const auto load_seconds = median_seconds([&] { base = load_input(*ledger, registry.get()); }, 1);
  bench::report("reports.load_time", load_seconds, "s", std::nullopt, std::nullopt,
                std::to_string(rows(base)) + " rows from the ledger and registry files");

  bool met = true;
  const auto now = ledger::cst_year_start(options.year + 1);
  double monthly_1x = 0, reconcile_1x = 0;
  for (const unsigned factor : {1u, 2u, 4u}) {
    const auto input = replicate(base, factor);
    std::uint64_t sink = 0;
    const auto monthly = median_seconds([&] { sink += monthly_report(input, options.year, 12).lines.size(); }, 5);
    const auto rec = median_seconds([&] { sink += reconcile(input, now, 7 * 86400).differences.size(); }, 5);
    if (factor == 1) {
      monthly_1x = monthly;
      reconcile_1x = rec;
    }
    std::cerr << factor << "x: checksum " << sink << "\n";  // keeps the results observable
    const auto note = std::to_string(factor) + "x: " + std::to_string(rows(input)) + " rows";
    const std::optional<double> goal = factor == 1 ? std::nullopt : std::optional<double>(1.0 / 1.2);
    met = bench::report("reports.monthly_report_" + std::to_string(factor) + "x_time", monthly, "s",
                        monthly_1x * factor, goal, note) &&
          met;
    met = bench::report("reports.reconciliation_" + std::to_string(factor) + "x_time", rec, "s", reconcile_1x * factor,
                        goal, note) &&
          met;
  }
  ledger.reset();
  registry.reset();
  std::filesystem::remove_all(dir);
  return met ? 0 : 1;
}
