// The network layer (docs/architecture.md, rule 7): HTTP/1.1 keep-alive over TLS 1.2+ with
// client certificates REQUIRED and verified against the terminal CA; the terminal's identity
// from the verified certificate's subject; the terminal revocation list re-read (by mtime) on
// every new connection. No Boost type in this header: Asio and Beast live in server.cpp and in
// one separately compiled translation unit (asio_impl.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "skillcard/service/handler.hpp"

namespace skillcard::service {

// One answered request, for the access log: never a body, a token, a PIN or a citizen ID (paths
// carry only ids: voucher ids, card numbers, pseudonymous holder references).
struct AccessRecord {
  std::string terminal;  // certificate CN, or "" before identification
  std::string role;
  std::string method;
  std::string path;  // loggable_path of the target
  int status = 0;
  std::string error;  // the refusal code, if any
  double millis = 0;
};

// A request target as the access log writes it: without the query, and with every path segment
// that could be a citizen ID (15 or 18 characters, digits but for a last X) replaced by
// "{citizen-id}" — a client that puts one where a holder reference belongs must not get it
// into the logs.
std::string loggable_path(std::string_view target);

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8443;          // 0: any free port (see Server::port)
  std::filesystem::path tls_cert;     // the service's certificate chain (PEM)
  std::filesystem::path tls_key;      // its private key (PEM)
  std::filesystem::path client_ca;    // terminal-ca.cert.pem: the only issuer of client certificates
  std::filesystem::path revocations;  // terminal revocation list (may not exist yet)
  // Plain HTTP, terminal identity from Skillcard-Dev-Terminal-{Id,Role,Region,Site} headers.
  // Development only; refused unless `address` is a loopback address.
  bool insecure_loopback = false;
  std::size_t max_body = kMaxBody;
  std::chrono::milliseconds timeout{30'000};  // per request read/write, and the TLS handshake
  // Threads serving requests. A request's handler runs on its thread until the ledger has made
  // its write durable, so writes are batched into one commit (the ledger's group commit) only
  // as far as there are threads waiting together: one per write expected at the same moment.
  unsigned threads = 16;
  std::function<void(std::string_view)> log;  // one line per event; never a token or a body
  std::function<void(const AccessRecord&)> access_log;
};

class ServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Server {
 public:
  // Binds and listens (throws ServerError: bad address, insecure mode off loopback, TLS files).
  Server(const Handler& handler, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const;
  // Serves until stop() or SIGTERM/SIGINT (when `handle_signals`): then it stops accepting,
  // lets every request in flight finish, closes idle connections, and returns.
  void run(bool handle_signals = true);
  void stop();  // thread-safe

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skillcard::service
