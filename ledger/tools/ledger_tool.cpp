// skillcard-ledger: operators' tool for a ledger (docs/ledger.md, "The tool"), a SQLite file
// (--db FILE) or a PostgreSQL database (--pg "host=… dbname=…"; checkpoint, verify-audit, export):
//   backup        online backup to a new file (the service may keep running; SQLite — PostgreSQL
//                 is backed up with pg_dump)
//   restore       copy a backup into a ledger file (stop the service first; SQLite)
//   checkpoint    sign the audit log's head with the audit signer key and write it to a file; with
//                 --every, a process of its own that writes one into a folder whenever the head
//                 moved (the service never holds the audit key), until SIGTERM
//   verify-audit  walk the hash chain and compare it with signed checkpoints
//   export        redemptions or settlement per training provider and fund, CSV or JSON
//   reverse       reverse a redemption (with a reason, by a named operator; audited, never a delete)
// Exit codes: 0 ok, 1 other error, 2 usage, 3 key file, 4 audit verification found a problem,
// 5 nothing to reverse (the voucher has no redemption).
#include <signal.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/signer.hpp"
#include "skillcard/ledger/audit.hpp"
#include "skillcard/ledger/export.hpp"
#include "skillcard/ledger/pg_ledger.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"

namespace fs = std::filesystem;
using namespace skillcard;
using namespace skillcard::ledger;

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

UtcSeconds now_utc() {
  return static_cast<UtcSeconds>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::unique_ptr<SqliteLedger> open_existing(const std::string& db) {
  if (!fs::exists(db)) throw UsageError("no ledger at " + db);
  SqliteOptions options;
  options.create = false;
  return SqliteLedger::open(db, options);
}

// The ledger named by --db (a SQLite file) or --pg (a PostgreSQL connection string): one of them.
std::unique_ptr<SqlLedger> open_either(const std::string& db, const std::string& pg) {
  if (db.empty() == pg.empty()) throw UsageError("name the ledger with either --db FILE or --pg CONNINFO");
  if (!db.empty()) return open_existing(db);
  PgOptions options;
  options.create = false;  // never creates tables in a database named by mistake
  return PgLedger::open(pg, options);
}

Bytes read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw UsageError("cannot read " + p.string());
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_new(const fs::path& p, ByteView bytes) {
  if (fs::exists(p)) throw UsageError(p.string() + " exists; refusing to overwrite");
  crypto::write_new_file(p, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), 0644);
}

// Signs the ledger's current head. The head printed is the head signed (the service may append
// rows meanwhile).
Checkpoint signed_head(Ledger& ledger, const crypto::Signer& signer, Bytes& out) {
  const AuditHead head = ledger.audit_head();
  Checkpoint c;
  c.ledger = ledger.ledger_id();
  c.count = head.count;
  c.head = head.hash;
  c.at = now_utc();
  out = sign_checkpoint(c, signer);
  return c;
}

// checkpoint-<count>-<UTC time>.cose: sorted by name is sorted by count, so the newest is last.
fs::path checkpoint_name(const fs::path& folder, const Checkpoint& c) {
  char count[24];
  std::snprintf(count, sizeof count, "%012llu", static_cast<unsigned long long>(c.count));
  const auto t = static_cast<std::time_t>(c.at);
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &utc);
  return folder / (std::string("checkpoint-") + count + "-" + when + ".cose");
}

// Writes a checkpoint into `folder` now and then every `every` seconds when the head has moved,
// until SIGTERM or SIGINT (exit 0). A checkpoint per period at most, none while nothing happens.
int checkpoint_loop(Ledger& ledger, const crypto::Signer& signer, const fs::path& folder, unsigned every) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // taken by sigtimedwait below, never by a handler
  std::optional<std::uint64_t> last;
  for (;;) {
    if (ledger.audit_head().count != last) {
      Bytes bytes;
      const auto c = signed_head(ledger, signer, bytes);
      if (c.count != last) {
        const auto file = checkpoint_name(folder, c);
        write_new(file, bytes);
        std::cout << "checkpoint: " << c.count << " rows, head " << lower_hex(c.head) << " -> " << file.string()
                  << std::endl;
        last = c.count;
      }
    }
    const timespec wait{static_cast<std::time_t>(every), 0};
    if (sigtimedwait(&stop, nullptr, &wait) > 0) return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skillcard-ledger: backup, restore, audit checkpoints and exports of a ledger (SQLite or PostgreSQL)"};
  app.require_subcommand(1);

  std::string db, pg, out, from, key;
  const char* pg_help = "PostgreSQL connection string instead of --db, e.g. \"host=db1 dbname=skillcard user=ledger\"";
  bool force = false;
  auto* backup = app.add_subcommand("backup", "online backup to a new file (the service may keep running)");
  backup->add_option("--db", db, "ledger file")->required();
  backup->add_option("--out", out, "backup file to create (must not exist)")->required();

  auto* restore = app.add_subcommand("restore", "copy a backup into a ledger file (stop the service first)");
  restore->add_option("--from", from, "backup file")->required();
  restore->add_option("--db", db, "ledger file to write")->required();
  restore->add_flag("--force", force, "replace an existing ledger file (of the same ledger)");
  bool other_ledger = false;
  restore->add_flag("--other-ledger", other_ledger,
                    "with --force: replace it even though it is another ledger (another ledger id)");

  auto* checkpoint = app.add_subcommand("checkpoint", "sign the audit head; keep the file outside the database");
  checkpoint->add_option("--db", db, "ledger file");
  checkpoint->add_option("--pg", pg, pg_help);
  checkpoint->add_option("--key", key, "audit signer private key (audit-signer.key.pem)")->required();
  std::string out_dir;
  unsigned every = 0;
  auto* cp_out = checkpoint->add_option("--out", out, "checkpoint file to create (COSE_Sign1)");
  auto* cp_dir = checkpoint->add_option("--out-dir", out_dir,
                                        "folder outside the database to write checkpoint-<count>-<time>.cose into");
  cp_out->excludes(cp_dir);
  checkpoint
      ->add_option("--every", every,
                   "keep running: a checkpoint every SECONDS when the audit head has moved, until SIGTERM "
                   "(with --out-dir)")
      ->check(CLI::Range(1u, 7u * 86400u))
      ->needs(cp_dir);

  std::vector<std::string> checkpoint_files;
  std::string checkpoint_dir;
  auto* verify = app.add_subcommand("verify-audit", "verify the hash chain against signed checkpoints");
  verify->add_option("--db", db, "ledger file");
  verify->add_option("--pg", pg, pg_help);
  verify->add_option("--key", key, "audit signer public key (audit-signer.pub.pem)")->required();
  verify->add_option("--checkpoint", checkpoint_files, "checkpoint file (repeatable)");
  verify->add_option("--checkpoint-dir", checkpoint_dir, "folder of checkpoint files (*.cose)");

  std::string what = "redemptions", format = "csv";
  std::optional<std::uint32_t> provider;
  std::optional<unsigned> fund;
  UtcSeconds t_from = 0, t_to = static_cast<UtcSeconds>(std::numeric_limits<std::int64_t>::max());
  auto* exp = app.add_subcommand("export", "redemptions or settlement per training provider and fund");
  exp->add_option("--db", db, "ledger file");
  exp->add_option("--pg", pg, pg_help);
  exp->add_option("--what", what, "redemptions | settlement")->check(CLI::IsMember({"redemptions", "settlement"}));
  exp->add_option("--format", format, "csv | json")->check(CLI::IsMember({"csv", "json"}));
  exp->add_option("--provider", provider, "only this training provider (site id)");
  exp->add_option("--fund", fund, "only this fund source (1-4)")->check(CLI::Range(1u, 4u));
  exp->add_option("--from", t_from, "server time >= this (UTC seconds)");
  exp->add_option("--to", t_to, "server time < this (UTC seconds)");
  exp->add_option("--out", out, "file to create (default: standard output)");

  std::string voucher_hex, reason, operator_name;
  auto* rev = app.add_subcommand("reverse",
                                 "reverse a redemption: marked reversed with the reason, its voucher voided, its face "
                                 "value back in the fund's budget (audited; never a delete)");
  rev->add_option("--db", db, "ledger file");
  rev->add_option("--pg", pg, pg_help);
  rev->add_option("--voucher", voucher_hex, "voucher id (16 hex digits)")->required();
  rev->add_option("--reason", reason, "why (kept with the redemption and in the audit log)")->required();
  rev->add_option("--operator", operator_name, "who reverses it (recorded as the clerk)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (*backup) {
      open_existing(db)->backup_to(out);
      std::cerr << "backup written to " << out << "\n";
    } else if (*restore) {
      if (other_ledger && !force) throw UsageError("--other-ledger needs --force");
      SqliteLedger::restore(from, db, force, other_ledger);
      std::cerr << "restored " << from << " into " << db << "\n";
    } else if (*checkpoint) {
      if (out.empty() == out_dir.empty()) throw UsageError("checkpoint: give --out FILE or --out-dir FOLDER");
      if (!out_dir.empty() && !fs::is_directory(out_dir)) throw UsageError("--out-dir " + out_dir + ": no such folder");
      const auto signer = crypto::KeyFileSigner::load(key);
      auto ledger = open_either(db, pg);
      if (every != 0) return checkpoint_loop(*ledger, *signer, out_dir, every);
      Bytes bytes;
      const auto c = signed_head(*ledger, *signer, bytes);
      const fs::path file = out.empty() ? checkpoint_name(out_dir, c) : fs::path(out);
      write_new(file, bytes);
      std::cout << "checkpoint: " << c.count << " rows, head " << lower_hex(c.head) << " -> " << file.string() << "\n";
    } else if (*verify) {
      const auto audit_key = crypto::load_public_key(key);
      std::vector<Bytes> checkpoints;
      for (const auto& f : checkpoint_files) checkpoints.push_back(read_file(f));
      if (!checkpoint_dir.empty()) {
        std::vector<fs::path> files;
        if (!fs::is_directory(checkpoint_dir))
          throw UsageError("--checkpoint-dir " + checkpoint_dir + ": no such folder");
        for (const auto& entry : fs::directory_iterator(checkpoint_dir)) {
          if (entry.path().extension() == ".cose") files.push_back(entry.path());
        }
        std::sort(files.begin(), files.end());
        // An empty folder (say, a backup disk not mounted) must not pass for a verified log.
        if (files.empty()) throw UsageError("--checkpoint-dir " + checkpoint_dir + ": no checkpoint (*.cose) in it");
        for (const auto& f : files) checkpoints.push_back(read_file(f));
      }
      auto ledger = open_either(db, pg);
      const auto report = verify_audit(*ledger, checkpoints, audit_key);
      for (const auto& p : report.problems) {
        std::cout << "PROBLEM " << to_string(p.kind) << " at " << p.seq << ": " << p.detail << "\n";
      }
      std::cout << "audit log: " << report.rows << " rows, recomputed head " << lower_hex(report.recomputed.hash)
                << ", " << report.checkpoints_matched << " of " << checkpoints.size()
                << " checkpoints matched: " << (report.ok() ? "OK" : "FAILED") << "\n";
      if (checkpoints.empty()) {
        std::cout << "note: without checkpoints a rewritten chain cannot be detected\n";
      } else if (report.rows > report.newest_checkpoint) {
        // Consistent with the rest, but a rewrite of these rows alone would not show.
        std::cout << "note: rows " << report.newest_checkpoint + 1 << ".." << report.rows
                  << " are not covered by any checkpoint yet\n";
      }
      return report.ok() ? 0 : 4;
    } else if (*rev) {
      if (voucher_hex.size() != 16 || voucher_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
        throw UsageError("--voucher must be 16 hex digits, got '" + voucher_hex + "'");
      }
      if (reason.empty() || reason.size() > 200 || !well_formed_utf8(reason)) {
        throw UsageError("--reason must be 1 to 200 bytes of UTF-8 text");
      }
      if (operator_name.empty() || operator_name.size() > 64 || !well_formed_utf8(operator_name)) {
        throw UsageError("--operator must be 1 to 64 bytes of UTF-8 text");
      }
      VoucherId id{};
      const auto bytes = from_hex(voucher_hex);
      std::copy(bytes.begin(), bytes.end(), id.begin());
      auto ledger = open_either(db, pg);
      const auto outcome = ledger->reverse_redemption(id, reason, Actor{"skillcard-ledger", operator_name}, now_utc());
      if (outcome.status == ReversalStatus::NotRedeemed) {
        std::cerr << "skillcard-ledger: voucher " << lower_hex(id) << " has no redemption: nothing to reverse\n";
        return 5;
      }
      const auto& r = *outcome.record;
      std::cout << (outcome.status == ReversalStatus::Reversed ? "reversed" : "already reversed") << ": voucher "
                << lower_hex(id) << ", redeemed at site " << r.site << " (card " << r.card << ", counter " << r.counter
                << "); reason: " << r.reversal_reason << "\n";
    } else if (*exp) {
      const auto max_time = static_cast<UtcSeconds>(std::numeric_limits<std::int64_t>::max());
      if (t_from > max_time || t_to > max_time) throw UsageError("--from and --to are UTC seconds up to 2^63-1");
      if (!out.empty() && fs::exists(out)) throw UsageError(out + " exists; refusing to overwrite");
      auto ledger = open_either(db, pg);
      RedemptionFilter filter;
      filter.provider = provider;
      if (fund) filter.fund = static_cast<FundSource>(*fund);
      filter.from = t_from;
      filter.to = t_to;
      // Read and rendered whole before the file is created: a query that fails leaves no file (an
      // empty or cut settlement file would be read as a complete one), and the file is written
      // exclusively and synced in one go.
      std::ostringstream text;
      if (what == "redemptions") {
        const auto rows = ledger->list_redemptions(filter);
        format == "csv" ? write_redemptions_csv(text, rows) : write_redemptions_json(text, rows, now_utc());
      } else {
        const auto lines = ledger->settlement(filter);
        format == "csv" ? write_settlement_csv(text, lines) : write_settlement_json(text, lines, now_utc());
      }
      if (out.empty()) {
        std::cout << text.str() << std::flush;
        if (!std::cout) throw std::runtime_error("writing the export failed");
      } else {
        crypto::write_new_file(out, text.str(), 0644);
      }
    }
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "skillcard-ledger: " << e.what() << "\n";
    return 2;
  } catch (const crypto::KeyFileError& e) {
    std::cerr << "skillcard-ledger: " << e.what() << "\n";
    return 3;
  } catch (const std::invalid_argument& e) {
    std::cerr << "skillcard-ledger: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-ledger: " << e.what() << "\n";
    return 1;
  }
}
