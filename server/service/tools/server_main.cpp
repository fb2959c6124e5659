// skillcard-server: the verification service (#8; its options and operation: docs/server.md).
// TLS with client certificates from the terminal CA in the key folder; plain HTTP only on
// loopback with --insecure-loopback.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/signer.hpp"
#include "skillcard/ledger/pg_ledger.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/policy/config.hpp"
#include "skillcard/registry/registry.hpp"
#include "skillcard/registry/sqlite_registry.hpp"
#include "skillcard/reports/targets.hpp"
#include "skillcard/service/expiry_sweeper.hpp"
#include "skillcard/service/server.hpp"

namespace fs = std::filesystem;
using namespace skillcard;

int main(int argc, char** argv) {
  CLI::App app{"skillcard verification service"};
  fs::path keys;
  fs::path tls_cert;
  fs::path tls_key;
  fs::path ledger_file;
  std::string pg_conninfo;
  fs::path policy_file;
  fs::path revocations;
  fs::path people_csv;
  fs::path registry_db;
  fs::path targets_file;
  fs::path subsidies_csv;
  std::string listen = "127.0.0.1:8443";
  bool insecure = false;
  unsigned threads = 16;
  app.add_option("--keys", keys, "key folder made by skillcard-keytool init")->required();
  app.add_option("--tls-cert", tls_cert, "service certificate chain (PEM)");
  app.add_option("--tls-key", tls_key, "service private key (PEM)");
  app.add_option("--listen", listen, "address:port (default 127.0.0.1:8443; port 0: any free port)");
  auto* sqlite_opt = app.add_option("--ledger", ledger_file, "ledger file (SQLite, the embedded default)");
  auto* pg_opt =
      app.add_option("--pg", pg_conninfo, "PostgreSQL connection string (several instances may share one ledger)");
  sqlite_opt->excludes(pg_opt);
  pg_opt->excludes(sqlite_opt);
  app.add_option("--policy", policy_file,
                 "policy configuration (TOML, docs/policy.md); without it, or without a registry, issues and "
                 "redemptions are refused (POLICY_NOT_CONFIGURED)");
  app.add_option("--registry", people_csv,
                 "registry of record: people CSV, held in memory (docs/registry.md); needs KEYS/master-keys.toml");
  app.add_option("--registry-db", registry_db,
                 "registry of record on SQLite (skillcard-report import-registry): facts and operator reports");
  app.add_option("--targets", targets_file, "P19 targets (TOML; default: POLICY.md's)");
  app.add_option("--external-subsidies", subsidies_csv,
                 "with --registry: subsidies paid by other systems (CSV, docs/registry.md)");
  app.add_option("--revocations", revocations, "terminal revocation list (default KEYS/terminal-revocations.txt)");
  app.add_flag("--insecure-loopback", insecure,
               "plain HTTP on a loopback address, identity from headers (development)");
  app.add_option("--threads", threads,
                 "threads serving requests; writes wait on them for the ledger's group commit (default 16)")
      ->check(CLI::Range(1U, 64U));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; any other parse error is bad arguments, exit 2 (CLI11 prints why).
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (!insecure && (tls_cert.empty() || tls_key.empty())) {
      std::cerr << "skillcard-server: --tls-cert and --tls-key are required (or --insecure-loopback)\n";
      return 2;
    }
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      std::cerr << "skillcard-server: --listen must be address:port\n";
      return 2;
    }
    service::ServerOptions options;
    options.address = listen.substr(0, colon);
    if (options.address.size() > 2 && options.address.front() == '[') {
      options.address = options.address.substr(1, options.address.size() - 2);
    }
    const char* port_end = listen.data() + listen.size();
    const auto [port_at, port_error] = std::from_chars(listen.data() + colon + 1, port_end, options.port);
    if (port_error != std::errc() || port_at != port_end || colon + 1 == listen.size()) {
      std::cerr << "skillcard-server: --listen must be address:port (port 0-65535), got '" << listen << "'\n";
      return 2;
    }
    options.tls_cert = tls_cert;
    options.tls_key = tls_key;
    options.client_ca = keys / "terminal-ca.cert.pem";
    options.revocations = revocations.empty() ? keys / "terminal-revocations.txt" : revocations;
    options.insecure_loopback = insecure;
    options.threads = threads;
    // Structured logs: one JSON object per line on stderr. Events and the access log carry no
    // token, PIN, body or citizen ID (docs/api.yaml, "Logs").
    auto logger = spdlog::stderr_logger_mt("skillcard-server");
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})", spdlog::pattern_time_type::utc);
    logger->flush_on(spdlog::level::info);
    const auto dump = [](const nlohmann::ordered_json& j) {
      const auto text = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      return text.substr(1, text.size() - 2);  // the members, inside the pattern's braces
    };
    options.log = [logger, dump](std::string_view line) {
      logger->info(dump({{"event", "service"}, {"msg", std::string(line)}}));
    };
    options.access_log = [logger, dump](const service::AccessRecord& r) {
      nlohmann::ordered_json j{{"event", "request"}, {"terminal", r.terminal}, {"role", r.role}, {"method", r.method},
                               {"path", r.path},     {"status", r.status},     {"ms", r.millis}};
      if (!r.error.empty()) j["error"] = r.error;
      (r.status >= 500 ? logger->error(dump(j)) : logger->info(dump(j)));
    };

    // Refuse a bad file at start; without a policy or a registry every decision is refused.
    std::optional<policy::PolicyConfig> policy_config;
    if (!policy_file.empty()) policy_config = policy::PolicyConfig::load(policy_file);
    // Test-only (the mutation job, docs/policy.md): SKILLCARD_POLICY_DISABLE=P1,P3 switches
    // those rules off — the comma-separated list policy_test reads; spaces around an id ignored.
    if (const char* off = std::getenv("SKILLCARD_POLICY_DISABLE"); off && policy_config) {
      std::string_view rest = off;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        auto rule = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        while (!rule.empty() && (rule.front() == ' ' || rule.front() == '\t')) rule.remove_prefix(1);
        while (!rule.empty() && (rule.back() == ' ' || rule.back() == '\t')) rule.remove_suffix(1);
        if (!rule.empty()) policy_config->disabled_rules.insert(std::string(rule));
      }
    }
    std::unique_ptr<crypto::FileMasterKeyStore> master;
    // The holder-reference secret only: the service holds no SCP03 master (design.md, "Where keys
    // live"); a province file works too, its masters are not read.
    if (fs::exists(keys / "master-keys.toml"))
      master = crypto::FileMasterKeyStore::load_holder_secret(keys / "master-keys.toml");
    std::unique_ptr<registry::SqliteRegistry> registry_sqlite;
    if (!registry_db.empty()) registry_sqlite = registry::SqliteRegistry::open_existing(registry_db);
    std::optional<reports::Targets> targets;
    if (!targets_file.empty()) targets = reports::load_targets(targets_file);  // refuse a bad file at start
    std::unique_ptr<registry::MemoryRegistry> people;
    if (!people_csv.empty()) {
      if (!master) throw std::runtime_error("--registry needs KEYS/master-keys.toml for holder references");
      std::vector<registry::ExternalSubsidy> subsidies;
      if (!subsidies_csv.empty()) subsidies = registry::read_subsidies_csv(subsidies_csv);
      auto persons = registry::read_people_csv(people_csv);
      registry::require_known_people(persons, subsidies, people_csv, subsidies_csv);
      people = std::make_unique<registry::MemoryRegistry>(
          std::move(persons), subsidies, [&m = *master](std::string_view id) { return m.holder_ref(id); });
    }
    const auto now = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    const auto trust = service::TrustStore::load(keys, now);
    {
      // A ceremony's list past its next update still serves online terminals, but offline ones
      // refuse it 7 days later (TRUST_LIST_STALE): say so at every start until it is re-signed.
      const auto& c = trust->claims();
      logger->info(dump({{"event", "trust_list"},
                         {"sequence", c.sequence},
                         {"issued_at", c.issued_at},
                         {"next_update", c.next_update},
                         {"keys", c.entries.size()}}));
      if (now > c.next_update) {
        logger->warn(dump({{"event", "trust_list_overdue"},
                           {"msg",
                            "the trust list's next update has passed: re-sign it (skillcard-keytool trust-list); "
                            "terminals working offline refuse it 7 days after next update"}}));
      }
    }
    if (ledger_file.empty() && pg_conninfo.empty()) {
      std::cerr << "skillcard-server: --ledger FILE or --pg CONNINFO is required\n";
      return 2;
    }
    if (ledger::conninfo_has_password(pg_conninfo)) {
      std::cerr << "skillcard-server: --pg carries a password, which every local user can read on a command line; "
                   "put it in PGPASSFILE (~/.pgpass, mode 0600) or PGPASSWORD instead\n";
      return 2;
    }
    std::unique_ptr<ledger::Ledger> ledger;
    if (!pg_conninfo.empty()) {
      ledger = ledger::PgLedger::open(pg_conninfo);
    } else {
      ledger = ledger::SqliteLedger::open(ledger_file);
    }
    service::Metrics metrics;
    service::ServiceContext ctx;
    ctx.ledger = ledger.get();
    ctx.trust = trust.get();
    ctx.metrics = &metrics;
    ctx.policy = policy_config ? &*policy_config : nullptr;
    ctx.registry = people ? static_cast<const registry::Registry*>(people.get())
                          : static_cast<const registry::Registry*>(registry_sqlite.get());
    ctx.registry_db = registry_sqlite.get();
    ctx.targets = targets ? &*targets : nullptr;
    if (master) ctx.holder_ref = [&m = *master](std::string_view id) { return m.holder_ref(id); };
    for (const auto& entry : fs::directory_iterator(keys)) {
      const auto name = entry.path().filename().string();
      constexpr std::string_view prefix = "voucher-signer-";
      if (name.starts_with(prefix) && name.ends_with(".key.pem")) {
        // voucher-signer-<6-digit bureau>.key.pem exactly: "…-420100.old.key.pem" is not the
        // bureau's signer (a key not on the trust list would sign), and is refused at start.
        const auto bureau = name.substr(prefix.size(), name.size() - prefix.size() - 8);
        if (bureau.size() != 6 || bureau[0] == '0' ||
            !std::all_of(bureau.begin(), bureau.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          throw std::runtime_error(entry.path().string() +
                                   ": a voucher signer's file is voucher-signer-<6-digit bureau code>.key.pem; move "
                                   "other keys out of the key folder");
        }
        ctx.voucher_signers[static_cast<std::uint32_t>(std::stoul(bureau))] = crypto::KeyFileSigner::load(entry.path());
      }
    }
    if (fs::exists(keys / "portfolio-signer.key.pem")) {
      ctx.portfolio_signer = crypto::KeyFileSigner::load(keys / "portfolio-signer.key.pem");
    }
    service::TerminalRevocations listed(options.revocations);
    ctx.terminal_revocations = &listed;
    ctx.log = [logger, dump](const std::string& line) { logger->error(dump({{"event", "storage"}, {"msg", line}})); };
    const service::Handler handler(ctx);
    service::Server server(handler, options);
    std::string switched_off;  // the mutation job's: never silent in a service's log
    if (policy_config) {
      for (const auto& rule : policy_config->disabled_rules) switched_off += (switched_off.empty() ? "" : ",") + rule;
    }
    options.log("started: ledger " + (pg_conninfo.empty() ? ledger_file.string() : std::string("PostgreSQL")) +
                (policy_config ? ", policy configured" : ", NO policy") +
                (switched_off.empty() ? "" : " WITH RULES SWITCHED OFF (SKILLCARD_POLICY_DISABLE): " + switched_off) +
                (ctx.registry ? ", registry loaded" : ", NO registry") + ", " +
                std::to_string(ctx.voucher_signers.size()) + " voucher signer(s)");
    std::cout << "listening on " << options.address << ":" << server.port() << (insecure ? " (plain HTTP)" : " (TLS)")
              << std::endl;
    {
      // Vouchers that expired unredeemed stop counting (P1, P2, P3) and return their face value
      // to the budget (P16): swept at start and every 10 minutes, the P12 window after expiry.
      const service::ExpirySweeper sweeper(
          *ledger, service::ExpirySweeper::grace_of(ctx.policy), std::chrono::minutes(10),
          [] {
            return static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count());
          },
          options.log);
      server.run();
    }
    ledger.reset();  // close storage after the last request finished and the sweep stopped
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-server: " << e.what() << "\n";
    return 1;
  }
}
