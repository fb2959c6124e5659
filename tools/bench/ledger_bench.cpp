// Ledger benchmark (JSON lines): acknowledged, durable redemptions per second with 8 concurrent
// writer threads through the group committer, against the naive path — one transaction (one
// sync) per redemption — with the same 8 threads, interleaved in the same run (goal ≥ 4×):
// on SQLite (WAL, synchronous=FULL, a file in a temporary folder on disk) and, when
// SKILLCARD_PG_CONNINFO names a PostgreSQL server (e.g. the test cluster of
// tests/ledger/pg_fixture.sh), on PostgreSQL (synchronous_commit=on), each in a schema of its
// own that is dropped afterwards. Without it the PostgreSQL lines are skipped (said on stderr).
//
// The 8-thread lines are unchanged (same workload, same baseline, same goal). A batch can only
// hold the callers waiting at the same time, so 8 closed-loop callers cap it at 8 and the ratio
// below 8 × (sync of one) / (sync of eight); a service with more requests in flight batches
// more. Hence one more pair of lines, `…_32_callers` (informational: no goal), measured the same
// way with 32 threads on both paths — the naive path is serialised by its one transaction per
// redemption and gains nothing from them, which that line's own baseline shows.
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "bench_json.hpp"
#include "skillcard/ledger/cst.hpp"
#include "skillcard/ledger/pg_ledger.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/receipt.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
namespace fs = std::filesystem;

namespace {

constexpr UtcSeconds kNow = 1795910400;
constexpr unsigned kThreads = 8;
constexpr unsigned kManyThreads = 32;
const Actor kClerk{"S0001", "bench"};

crypto::EcSignature fake_sign(ByteView) {
  crypto::EcSignature s{};
  s.fill(0x5A);  // the ledger decodes tokens and receipts; the service verifies signatures
  return s;
}

constexpr unsigned kHolders = 256;  // vouchers spread over holders keep each holder's counts short

struct Workload {
  std::vector<std::string> cards;   // one per holder
  std::vector<Bytes> receipts;      // one per voucher, in order
  std::vector<unsigned> holder_of;  // voucher → holder index
  std::size_t next = 0;
};

// Creates a ledger file with `n` vouchers (issued through the group committer) and one receipt
// for each.
HolderRef holder_ref(unsigned h) {
  HolderRef holder{};
  holder.fill(0x48);
  holder[15] = static_cast<std::uint8_t>(h);
  holder[14] = static_cast<std::uint8_t>(h >> 8);
  return holder;
}

Workload prepare(SqlLedger& ledger_ref, std::size_t n) {
  Workload w;
  auto* ledger = &ledger_ref;
  ledger->set_budget(FundSource::SpecialAccount, 1'000'000'000'000, kClerk, kNow);
  for (unsigned h = 0; h < kHolders; ++h) {
    schemas::CardCertificateClaims cert;
    cert.card_number = std::to_string(4201000000u + h);
    cert.region = 420100;
    cert.receipt_key.fill(2);
    cert.auth_key.fill(3);
    cert.not_before = kNow;
    cert.not_after = kNow + 86400;
    ledger->register_card(
        {cert.card_number, holder_ref(h), 420100, schemas::sign_card_certificate(cert, {}, fake_sign)}, kClerk, kNow);
    w.cards.push_back(cert.card_number);
  }
  std::vector<VoucherId> ids(n);
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (std::size_t i; (i = next++) < n;) {
        schemas::VoucherClaims c;
        c.issuer = 420100;
        c.holder = holder_ref(static_cast<unsigned>(i % kHolders));
        c.occupation = static_cast<std::uint32_t>(1000000 + i);
        c.level = 4;
        c.face_value_fen = 100;
        c.planned_hours = 120;
        c.planned_online_hours = 36;
        c.eligible_regions = {420100};
        c.issued_at = c.not_before = kNow;
        c.expires_at = kNow + 86400 * 90;
        IssueDecision d;
        d.annual_limit = d.employment_fund_limit = d.same_occupation_level_limit = 0xFFFFFFFF;
        const auto out = ledger->issue_voucher(
            {c, w.cards[i % kHolders]}, d,
            [](const schemas::VoucherClaims& claims) { return schemas::sign_voucher(claims, {}, fake_sign); }, kClerk,
            kNow);
        if (!out.voucher) std::abort();
        ids[i] = out.voucher->id();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < n; ++i) {
    schemas::ReceiptClaims r;
    r.voucher = ids[i];
    r.site = 10001;
    r.nonce[0] = 0x02;
    for (int b = 0; b < 8; ++b) r.nonce[static_cast<std::size_t>(9 + b)] = static_cast<std::uint8_t>(i >> (8 * b));
    r.counter = static_cast<std::uint32_t>(i + 1);
    r.terminal_time = kNow + 60;
    r.classroom_hours = 84;
    r.online_hours = 36;
    w.receipts.push_back(schemas::sign_receipt(r, {}, fake_sign));
  }
  return w;
}

// `n_threads` threads record `per_thread` redemptions each; returns acknowledged redemptions per
// second and collects each call's latency.
double run_round(SqlLedger& ledger, Workload& w, std::size_t per_thread, std::vector<double>& latencies_ms,
                 unsigned n_threads = kThreads) {
  const std::size_t start = w.next;
  w.next += per_thread * n_threads;
  if (w.next > w.receipts.size()) std::abort();
  std::vector<std::vector<double>> lat(n_threads);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n_threads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t k = 0; k < per_thread; ++k) {
        RedemptionRequest req;
        req.receipt = w.receipts[start + t * per_thread + k];
        req.card = w.cards[(start + t * per_thread + k) % kHolders];
        req.server_time = kNow + 120;
        req.actor = kClerk;
        req.nonce_rule = NonceRule::Unseen;
        const auto a = std::chrono::steady_clock::now();
        if (ledger.record_redemption(req).status != RecordStatus::Recorded) std::abort();
        lat[t].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& l : lat) latencies_ms.insert(latencies_ms.end(), l.begin(), l.end());
  return static_cast<double>(per_thread * n_threads) / seconds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// Opens the ledger called `which` ("group" or "naive"), with one transaction per operation when
// `naive`.
using Opener = std::function<std::unique_ptr<SqlLedger>(const std::string& which, bool naive)>;

// Prepares both ledgers, then alternates group-commit and naive rounds; prints two lines.
bool measure(const std::string& prefix, const std::string& setting, const Opener& open, bool quick) {
  const int rounds = quick ? 3 : 7;
  const std::size_t group_per_thread = quick ? 150 : 400;
  const std::size_t naive_per_thread = quick ? 25 : 60;
  // The 32-caller lines: fewer rounds, as many redemptions per round as above.
  const int many_rounds = quick ? 2 : 4;
  const std::size_t group_many_per_thread = group_per_thread * kThreads / kManyThreads;
  const std::size_t naive_many_per_thread = naive_per_thread * kThreads / kManyThreads;
  Workload group_work;
  Workload naive_work;
  {
    auto l = open("group", false);
    group_work = prepare(*l, group_per_thread * kThreads * static_cast<std::size_t>(rounds + 1) +
                                 group_many_per_thread * kManyThreads * static_cast<std::size_t>(many_rounds + 1));
  }
  {
    auto l = open("naive", false);  // prepared with group commit: faster, the same rows
    naive_work = prepare(*l, naive_per_thread * kThreads * static_cast<std::size_t>(rounds + 1) +
                                 naive_many_per_thread * kManyThreads * static_cast<std::size_t>(many_rounds + 1));
  }
  std::cerr << "ledger_bench: " << prefix << ": prepared " << group_work.receipts.size() + naive_work.receipts.size()
            << " vouchers\n";
  auto group = open("group", false);
  auto naive = open("naive", true);

  std::vector<double> group_rates, naive_rates, group_lat, naive_lat;
  // Warm-up round of each, then interleaved rounds.
  run_round(*group, group_work, group_per_thread, group_lat);
  run_round(*naive, naive_work, naive_per_thread, naive_lat);
  group_lat.clear();
  naive_lat.clear();
  const auto stats_before = group->commit_stats();
  for (int r = 0; r < rounds; ++r) {
    group_rates.push_back(run_round(*group, group_work, group_per_thread, group_lat));
    naive_rates.push_back(run_round(*naive, naive_work, naive_per_thread, naive_lat));
  }
  const auto stats = group->commit_stats();
  const double per_batch = static_cast<double>(stats.operations - stats_before.operations) /
                           static_cast<double>(std::max<std::uint64_t>(1, stats.batches - stats_before.batches));
  char note[320];
  std::snprintf(note, sizeof note,
                "8 writer threads, %s; baseline one transaction per redemption; "
                "%.1f redemptions per commit; p50 %.2f ms p99 %.2f ms",
                setting.c_str(), per_batch, percentile(group_lat, 0.5), percentile(group_lat, 0.99));
  const bool ok =
      bench::report(prefix + "redemptions_group_commit", median(group_rates), "ops/s", median(naive_rates), 4.0, note);
  std::snprintf(note, sizeof note, "the baseline alone: 8 threads, one commit each, %s; p50 %.2f ms p99 %.2f ms",
                setting.c_str(), percentile(naive_lat, 0.5), percentile(naive_lat, 0.99));
  bench::report(prefix + "redemptions_naive", median(naive_rates), "ops/s", std::nullopt, std::nullopt, note);

  // The same with 32 callers on both paths (informational, see the header).
  std::vector<double> group_many, naive_many, group_many_lat, naive_many_lat;
  run_round(*group, group_work, group_many_per_thread, group_many_lat, kManyThreads);
  run_round(*naive, naive_work, naive_many_per_thread, naive_many_lat, kManyThreads);
  group_many_lat.clear();
  naive_many_lat.clear();
  const auto many_before = group->commit_stats();
  for (int r = 0; r < many_rounds; ++r) {
    group_many.push_back(run_round(*group, group_work, group_many_per_thread, group_many_lat, kManyThreads));
    naive_many.push_back(run_round(*naive, naive_work, naive_many_per_thread, naive_many_lat, kManyThreads));
  }
  const auto many_after = group->commit_stats();
  const double many_per_batch =
      static_cast<double>(many_after.operations - many_before.operations) /
      static_cast<double>(std::max<std::uint64_t>(1, many_after.batches - many_before.batches));
  std::snprintf(note, sizeof note,
                "32 writer threads on both paths (informational), %s; baseline one transaction per redemption; "
                "%.1f redemptions per commit; p50 %.2f ms p99 %.2f ms",
                setting.c_str(), many_per_batch, percentile(group_many_lat, 0.5), percentile(group_many_lat, 0.99));
  bench::report(prefix + "redemptions_group_commit_32_callers", median(group_many), "ops/s", median(naive_many),
                std::nullopt, note);
  std::snprintf(note, sizeof note, "the baseline alone: 32 threads, one commit each, %s; p50 %.2f ms p99 %.2f ms",
                setting.c_str(), percentile(naive_many_lat, 0.5), percentile(naive_many_lat, 0.99));
  bench::report(prefix + "redemptions_naive_32_callers", median(naive_many), "ops/s", std::nullopt, std::nullopt, note);
  return ok;
}

// Raw SQL on the PostgreSQL server (creating and dropping the bench's schemas).
void pg_exec(const std::string& conninfo, const std::string& sql) {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(conninfo.c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn.get()));
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(conn.get(), sql.c_str()), PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) throw std::runtime_error(PQresultErrorMessage(r.get()));
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = bench::quick_only(argc, argv,
                                       "ledger_bench [--quick]   (--quick: fewer and shorter rounds, as CI runs it; "
                                       "PostgreSQL lines with SKILLCARD_PG_CONNINFO)");
  bool ok = true;

  const fs::path dir = fs::temp_directory_path() / ("skillcard-ledger-bench-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  try {
    ok &= measure(
        "ledger.", "SQLite WAL + synchronous=FULL on disk",
        [&](const std::string& which, bool naive) {
          SqliteOptions options;  // group commit (the default)
          if (naive) options.max_batch = 1;
          return std::unique_ptr<SqlLedger>(SqliteLedger::open(dir / (which + ".db"), options));
        },
        quick);
  } catch (const std::exception& e) {
    std::cerr << "ledger_bench: " << e.what() << "\n";
    ok = false;
  }
  fs::remove_all(dir);

  const char* conninfo = std::getenv("SKILLCARD_PG_CONNINFO");
  if (conninfo == nullptr || *conninfo == '\0') {
    std::cerr << "ledger_bench: SKILLCARD_PG_CONNINFO is not set: skipping the PostgreSQL lines "
                 "(start a server with tests/ledger/pg_fixture.sh start DIR PORT and set it to "
                 "\"host=127.0.0.1 port=PORT dbname=skillcard user=postgres\")\n";
    return ok ? 0 : 1;
  }
  const std::string base = conninfo;
  const std::string prefix = "bench_" + std::to_string(::getpid()) + "_";
  try {
    for (const char* which : {"group", "naive"}) pg_exec(base, "CREATE SCHEMA " + prefix + which);
    ok &= measure(
        "ledger.pg_", "PostgreSQL synchronous_commit=on, one writer connection per ledger",
        [&](const std::string& which, bool naive) {
          PgOptions options;
          if (naive) options.max_batch = 1;
          return std::unique_ptr<SqlLedger>(
              PgLedger::open(base + " options='-c search_path=" + prefix + which + "'", options));
        },
        quick);
  } catch (const std::exception& e) {
    std::cerr << "ledger_bench: PostgreSQL: " << e.what() << "\n";
    ok = false;
  }
  try {
    for (const char* which : {"group", "naive"}) pg_exec(base, "DROP SCHEMA IF EXISTS " + prefix + which + " CASCADE");
  } catch (const std::exception& e) {
    std::cerr << "ledger_bench: dropping the bench schemas: " << e.what() << "\n";
  }
  return ok ? 0 : 1;
}
