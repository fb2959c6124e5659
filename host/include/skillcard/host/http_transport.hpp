// HTTP for the service client: a one-method seam (so the JSON client is tested against canned
// answers without sockets) and its Boost.Beast implementation over TLS with the terminal's
// client certificate, keep-alive and timeouts. Plain HTTP only to 127.0.0.1, and only when
// asked (tests, the demo's local service).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace skillcard::host {

struct HttpRequest {
  std::string method;  // GET | POST
  std::string target;  // e.g. /v1/nonces
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // JSON text or empty
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Throws ServiceUnavailable when no complete answer arrives.
  virtual HttpResponse send(const HttpRequest& request) = 0;
};

struct HttpsOptions {
  std::string host;  // name or address of the service
  std::uint16_t port = 443;
  // Name the server certificate must carry (default: host).
  std::string server_name;
  std::filesystem::path ca_file;           // terminal CA (verifies the service)
  std::filesystem::path certificate_file;  // this terminal's certificate (PEM)
  std::filesystem::path key_file;          // its key (PEM, 0600)
  std::chrono::milliseconds timeout{10'000};
  // No TLS: refused unless host is 127.0.0.1.
  bool plain_http_loopback = false;
};

class BeastHttpTransport final : public HttpTransport {
 public:
  // Throws std::invalid_argument for bad options, ServiceUnavailable for unreadable key files.
  explicit BeastHttpTransport(HttpsOptions options);
  ~BeastHttpTransport() override;
  BeastHttpTransport(const BeastHttpTransport&) = delete;
  BeastHttpTransport& operator=(const BeastHttpTransport&) = delete;
  HttpResponse send(const HttpRequest& request) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skillcard::host
