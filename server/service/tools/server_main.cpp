// skillcard-server: the verification service (#8). TLS with client certificates from the
// terminal CA in the key folder; plain HTTP only on loopback with --insecure-loopback.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/policy/config.hpp"
#include "skillcard/service/server.hpp"

namespace fs = std::filesystem;
using namespace skillcard;

int main(int argc, char** argv) {
  CLI::App app{"skillcard verification service"};
  fs::path keys;
  fs::path tls_cert;
  fs::path tls_key;
  fs::path ledger_file;
  fs::path policy_file;
  fs::path revocations;
  std::string listen = "127.0.0.1:8443";
  bool insecure = false;
  unsigned threads = 1;
  app.add_option("--keys", keys, "key folder made by skillcard-keytool init")->required();
  app.add_option("--tls-cert", tls_cert, "service certificate chain (PEM)");
  app.add_option("--tls-key", tls_key, "service private key (PEM)");
  app.add_option("--listen", listen, "address:port (port 0: any free port)");
  app.add_option("--ledger", ledger_file, "ledger file (SQLite)")->required();
  app.add_option("--policy", policy_file, "policy configuration (TOML)");
  app.add_option("--revocations", revocations, "terminal revocation list (default KEYS/terminal-revocations.txt)");
  app.add_flag("--insecure-loopback", insecure,
               "plain HTTP on a loopback address, identity from headers (development)");
  app.add_option("--threads", threads, "I/O threads")->check(CLI::Range(1U, 64U));
  CLI11_PARSE(app, argc, argv);

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
    options.port = static_cast<std::uint16_t>(std::stoul(listen.substr(colon + 1)));
    options.tls_cert = tls_cert;
    options.tls_key = tls_key;
    options.client_ca = keys / "terminal-ca.cert.pem";
    options.revocations = revocations.empty() ? keys / "terminal-revocations.txt" : revocations;
    options.insecure_loopback = insecure;
    options.threads = threads;
    options.log = [](std::string_view line) { std::cerr << "skillcard-server: " << line << std::endl; };

    if (!policy_file.empty()) (void)policy::PolicyConfig::load(policy_file);  // refuse a bad file at start
    const auto now = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    const auto trust = service::TrustStore::from_key_folder(keys, now);
    auto ledger = ledger::SqliteLedger::open(ledger_file);
    service::Metrics metrics;
    service::ServiceContext ctx;
    ctx.ledger = ledger.get();
    ctx.trust = trust.get();
    ctx.metrics = &metrics;
    const service::Handler handler(ctx);
    service::Server server(handler, options);
    std::cout << "listening on " << options.address << ":" << server.port() << (insecure ? " (plain HTTP)" : " (TLS)")
              << std::endl;
    server.run();
    ledger.reset();  // close storage after the last request finished
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-server: " << e.what() << "\n";
    return 1;
  }
}
