// Shared helpers for the ledger tests: a temporary folder per test, cards, vouchers and receipts
// built with the real codecs (signed with a fake, fast signature where the ledger does not
// verify signatures — the service does that before calling it), decisions and actors.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "skillcard/ledger/cst.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::ledger::test {

namespace fs = std::filesystem;

inline constexpr UtcSeconds kNow = 1795910400;  // 2026-11-29 00:00:00 UTC
inline constexpr std::uint32_t kSite = 10001;
inline constexpr std::uint32_t kRegion = 420100;

// A temporary folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("skillcard-ledger-" + std::to_string(::getpid()) + "-" +
                                         (info ? std::string(info->test_suite_name()) + "-" + info->name() : "x"));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline Actor clerk(const std::string& terminal = "T0001", const std::string& name = "clerk-01") {
  return {terminal, name};
}

inline crypto::EcSignature fake_sign(ByteView) {
  crypto::EcSignature s{};
  s.fill(0x5A);
  return s;
}

inline const crypto::Kid kVoucherKid{0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8};
inline const crypto::Kid kCardKid{0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8};

inline HolderRef holder(unsigned i) {
  HolderRef h{};
  h[0] = 0x48;
  h[12] = static_cast<std::uint8_t>(i >> 24);
  h[13] = static_cast<std::uint8_t>(i >> 16);
  h[14] = static_cast<std::uint8_t>(i >> 8);
  h[15] = static_cast<std::uint8_t>(i);
  return h;
}

inline std::string card_number(unsigned i) {
  std::string s = std::to_string(4201000000ull + i);
  return s;
}

inline NewCard make_card(unsigned i, const HolderRef& h) {
  schemas::CardCertificateClaims c;
  c.card_number = card_number(i);
  c.region = kRegion;
  c.receipt_key.fill(0x02);
  c.auth_key.fill(0x03);
  c.not_before = kNow - 86400;
  c.not_after = kNow + 10 * 365 * 86400ull;
  return {c.card_number, h, kRegion, schemas::sign_card_certificate(c, kCardKid, fake_sign)};
}

inline schemas::VoucherClaims claims_for(const HolderRef& h, FundSource fund = FundSource::SpecialAccount,
                                         std::uint32_t face = 180000, UtcSeconds iat = kNow,
                                         std::uint32_t occupation = 4040505, std::uint8_t level = 4) {
  schemas::VoucherClaims c;
  c.issuer = kRegion;
  c.holder = h;
  c.programme = schemas::Programme::KeyGroupEmploymentSkills;
  c.occupation = occupation;
  c.level = level;
  c.fund = fund;
  c.face_value_fen = face;
  c.planned_hours = 120;
  c.planned_online_hours = 36;
  c.eligible_regions = {kRegion};
  c.eligible_providers = {kSite};
  c.issued_at = iat;
  c.not_before = iat;
  c.expires_at = iat + 92 * 86400;
  return c;
}

inline TokenMinter fake_minter() {
  return [](const schemas::VoucherClaims& c) { return schemas::sign_voucher(c, kVoucherKid, fake_sign); };
}

inline Nonce nonce(schemas::NonceKind kind, std::uint64_t i) {
  Nonce n{};
  n[0] = static_cast<std::uint8_t>(kind);
  for (int b = 0; b < 8; ++b) n[static_cast<std::size_t>(16 - b)] = static_cast<std::uint8_t>(i >> (8 * b));
  n[1] = 0x77;
  return n;
}

inline Bytes receipt(const VoucherId& voucher, std::uint32_t counter, const Nonce& n, std::uint32_t site = kSite,
                     UtcSeconds time = kNow + 3600) {
  schemas::ReceiptClaims c;
  c.voucher = voucher;
  c.site = site;
  c.nonce = n;
  c.counter = counter;
  c.terminal_time = time;
  c.classroom_hours = 84;
  c.online_hours = 36;
  return schemas::sign_receipt(c, kCardKid, fake_sign);
}

// A decision that allows the issue with the ledger's current counts and generous limits (the
// race and throughput tests are not about P1-P3).
inline IssueDecision generous(Ledger& ledger, const schemas::VoucherClaims& c) {
  IssueDecision d;
  d.ledger_counts = ledger.read_issue_counts({c.holder, cst_year(c.issued_at), c.fund, c.occupation, c.level});
  d.annual_limit = 1000000;
  d.employment_fund_limit = 1000000;
  d.same_occupation_level_limit = 1000000;
  return d;
}

// The policy's own limits (P1 3/year, P2 1/year, P3 once) with the counts read now.
inline IssueDecision policy(Ledger& ledger, const schemas::VoucherClaims& c) {
  IssueDecision d;
  d.ledger_counts = ledger.read_issue_counts({c.holder, cst_year(c.issued_at), c.fund, c.occupation, c.level});
  return d;
}

inline VoucherRecord issue_ok(Ledger& ledger, const schemas::VoucherClaims& c, const std::string& card = "",
                              std::uint32_t issuing_region = 0) {
  const auto out = ledger.issue_voucher({c, card, issuing_region}, generous(ledger, c), fake_minter(), clerk(), kNow);
  if (out.status != IssueStatus::Issued || !out.voucher) {
    throw std::runtime_error("issue failed: " + std::string(to_string(out.status)));
  }
  return *out.voucher;
}

// The backend under test. Each test executable links one definition: ledger_test the SQLite one
// (sqlite_backend.cpp), ledger_pg_test the PostgreSQL one (pg_backend.cpp), so the same
// behavioural tests run against both. `where` names the ledger: a file for SQLite; for
// PostgreSQL the path is mapped to a schema of its own in the test database (the same path, in
// any process, is the same ledger).
std::unique_ptr<SqlLedger> open_ledger(const fs::path& where);
std::string backend_name();  // "sqlite" or "postgresql"

// Raw SQL on the backend's ledger at `where`, for tampering and inspection. Statements are
// written in the SQLite spelling; the PostgreSQL backend translates the two that differ
// (x'..' blobs, DROP TRIGGER without ON table). Failures throw std::runtime_error.
class Raw {
 public:
  explicit Raw(const fs::path& where);
  ~Raw();
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;
  void exec(const std::string& sql);
  std::int64_t number(const std::string& sql);  // the first column of the first row; -1 if none

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A ledger with one card per holder and a budget, ready for vouchers.
template <class L>
struct BasicSeeded {
  std::unique_ptr<L> ledger;
  std::vector<NewCard> cards;
};
template <class L>
void seed(BasicSeeded<L>& s, unsigned holders, std::int64_t budget_fen) {
  for (auto fund : {FundSource::SpecialAccount, FundSource::EmploymentSubsidyFund,
                    FundSource::UnemploymentInsuranceFund, FundSource::OtherDepartment}) {
    s.ledger->set_budget(fund, budget_fen, clerk(), kNow);
  }
  for (unsigned i = 1; i <= holders; ++i) {
    s.cards.push_back(make_card(i, holder(i)));
    s.ledger->register_card(s.cards.back(), clerk(), kNow);
  }
}

// On SQLite, with options (the SQLite-only tests).
using Seeded = BasicSeeded<SqliteLedger>;
inline Seeded seeded(const fs::path& file, unsigned holders = 3, std::int64_t budget_fen = 1'000'000'000,
                     const SqliteOptions& options = {}) {
  Seeded s;
  s.ledger = SqliteLedger::open(file, options);
  seed(s, holders, budget_fen);
  return s;
}

// On the backend under test (the shared tests).
using SeededLedger = BasicSeeded<SqlLedger>;
inline SeededLedger seeded_ledger(const fs::path& where, unsigned holders = 3,
                                  std::int64_t budget_fen = 1'000'000'000) {
  SeededLedger s;
  s.ledger = open_ledger(where);
  seed(s, holders, budget_fen);
  return s;
}

inline RedemptionRequest redeem_request(const Bytes& receipt_bytes, const std::string& card,
                                        NonceRule rule = NonceRule::Unseen,
                                        const Actor& actor = clerk("S0001", "site-clerk")) {
  RedemptionRequest r;
  r.receipt = receipt_bytes;
  r.card = card;
  r.server_time = kNow + 3700;
  r.actor = actor;
  r.nonce_rule = rule;
  return r;
}

// Raw SQLite access for tampering and inspection.
struct RawDb {
  explicit RawDb(const fs::path& p) {
    if (sqlite3_open(p.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open failed");
    sqlite3_busy_timeout(db, 10000);
  }
  ~RawDb() { sqlite3_close_v2(db); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(m + " in: " + sql);
    }
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error(sqlite3_errmsg(db));
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }
  std::int64_t number(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error(sqlite3_errmsg(db));
    std::int64_t out = -1;
    if (sqlite3_step(st) == SQLITE_ROW) out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return out;
  }
  sqlite3* db = nullptr;
};

#ifdef SKILLCARD_LEDGER_TOOL
// Runs skillcard-ledger with `args` (shell words); its exit code and its stdout and stderr.
struct ToolRun {
  int exit_code;
  std::string output;
};
inline ToolRun run_ledger_tool(const std::string& args) {
  const std::string cmd = std::string(SKILLCARD_LEDGER_TOOL) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
#endif

}  // namespace skillcard::ledger::test
