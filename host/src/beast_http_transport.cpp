// BeastHttpTransport: one keep-alive connection (TLS 1.2+ with the terminal's client
// certificate, the service verified against the terminal CA), every step under a deadline.
// Asynchronous operations on a private io_context, run to completion per call, because
// beast::tcp_stream's timeouts apply only to asynchronous operations.
#include <utility>  // Boost 1.74's Asio uses std::exchange without including it (g++ 12)

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <variant>

#include <poll.h>

#include "skillcard/host/http_transport.hpp"
#include "skillcard/host/json_service_client.hpp"
#include "skillcard/host/service_client.hpp"

namespace skillcard::host {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct BeastHttpTransport::Impl {
  HttpsOptions options;
  asio::io_context io;
  std::optional<ssl::context> tls;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool connected = false;
  // The last failure was the peer closing a kept-alive connection (not a timeout): the request
  // never reached a handler, so resending it on a fresh connection is safe.
  bool peer_closed = false;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // Runs the started asynchronous operation to completion; throws ServiceUnavailable on error.
  template <class Start>
  void await(const char* step, Start start) {
    beast::error_code result = asio::error::would_block;
    lowest().expires_after(options.timeout);
    start([&](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    if (result) {
      peer_closed = result == http::error::end_of_stream || result == asio::error::eof ||
                    result == asio::error::connection_reset || result == asio::error::broken_pipe ||
                    result == ssl::error::stream_truncated;
      disconnect();
      throw ServiceUnavailable(std::string(step) + " " + options.host + ":" + std::to_string(options.port) + ": " +
                               result.message());
    }
  }

  void disconnect() noexcept {
    beast::error_code ignored;
    if (secure) beast::get_lowest_layer(*secure).socket().close(ignored);
    if (plain) plain->socket().close(ignored);
    secure.reset();
    plain.reset();
    connected = false;
  }

  // A kept-alive connection is usable if nothing is waiting to be read on it: an idle one the
  // service closed shows its FIN (or, over TLS, its close_notify) as readable. Checked before a
  // request is sent, so that a closed connection is replaced without resending anything.
  bool still_open() {
    if (!connected) return false;
    pollfd p{};
    p.fd = lowest().socket().native_handle();
    p.events = POLLIN;
    return ::poll(&p, 1, 0) == 0;
  }

  void connect() {
    tcp::resolver resolver(io);
    beast::error_code ec;
    const auto endpoints = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (ec) throw ServiceUnavailable("resolve " + options.host + ": " + ec.message());
    if (tls) {
      secure.emplace(io, *tls);
      const auto& name = options.server_name.empty() ? options.host : options.server_name;
      if (!SSL_set_tlsext_host_name(secure->native_handle(), name.c_str()))
        throw ServiceUnavailable("TLS: cannot set the server name");
      secure->set_verify_callback(ssl::host_name_verification(name));
    } else {
      plain.emplace(io);
    }
    await("connect", [&](auto handler) { lowest().async_connect(endpoints, handler); });
    if (secure)
      await("TLS handshake", [&](auto handler) { secure->async_handshake(ssl::stream_base::client, handler); });
    connected = true;
  }

  HttpResponse exchange(const HttpRequest& request) {
    http::request<http::string_body> req;
    req.method(request.method == "GET" ? http::verb::get : http::verb::post);
    req.target(request.target);
    req.version(11);
    req.set(http::field::host, options.host);
    req.set(http::field::user_agent, "skillcard-host/1");
    req.keep_alive(true);
    for (const auto& [name, value] : request.headers) req.set(name, value);
    req.body() = request.body;
    req.prepare_payload();
    http::response<http::string_body> res;
    if (secure) {
      await("send", [&](auto handler) { http::async_write(*secure, req, handler); });
      await("receive", [&](auto handler) { http::async_read(*secure, buffer, res, handler); });
    } else {
      await("send", [&](auto handler) { http::async_write(*plain, req, handler); });
      await("receive", [&](auto handler) { http::async_read(*plain, buffer, res, handler); });
    }
    if (!res.keep_alive()) disconnect();
    return {static_cast<int>(res.result_int()), std::move(res.body())};
  }
};

BeastHttpTransport::BeastHttpTransport(HttpsOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  auto& o = impl_->options;
  if (o.host.empty()) throw std::invalid_argument("service host is empty");
  if (o.plain_http_loopback) {
    if (o.host != "127.0.0.1") throw std::invalid_argument("plain HTTP is allowed only to 127.0.0.1");
    return;
  }
  impl_->tls.emplace(ssl::context::tls_client);
  auto& ctx = *impl_->tls;
  ctx.set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  beast::error_code ec;
  ctx.load_verify_file(o.ca_file.string(), ec);
  if (ec) throw ServiceUnavailable("CA file " + o.ca_file.string() + ": " + ec.message());
  ctx.use_certificate_chain_file(o.certificate_file.string(), ec);
  if (ec) throw ServiceUnavailable("terminal certificate " + o.certificate_file.string() + ": " + ec.message());
  ctx.use_private_key_file(o.key_file.string(), ssl::context::pem, ec);
  if (ec) throw ServiceUnavailable("terminal key " + o.key_file.string() + ": " + ec.message());
}

BeastHttpTransport::~BeastHttpTransport() { impl_->disconnect(); }

HttpResponse BeastHttpTransport::send(const HttpRequest& request) {
  // A kept-alive connection the service closed while idle is replaced before the request goes
  // out (still_open). If one fails anyway, a GET is sent again once on a new connection; nothing
  // else is: the service may have read and carried out the request before the connection
  // dropped, and POST /v1/vouchers or /v1/certificates is not idempotent (the caller sees
  // ServiceUnavailable: nothing known to be decided, the CLI's exit 4). A timeout is never
  // retried.
  if (impl_->connected && !impl_->still_open()) impl_->disconnect();
  const bool reused = impl_->connected;
  if (!impl_->connected) impl_->connect();
  try {
    return impl_->exchange(request);
  } catch (const ServiceUnavailable&) {
    if (!reused || !impl_->peer_closed || request.method != "GET") throw;
  }
  impl_->connect();
  return impl_->exchange(request);
}

// Here rather than beside the JSON client, so that the client builds without Beast (its fuzz
// target does).
std::unique_ptr<ServiceClient> make_https_service_client(HttpsOptions options, std::string clerk) {
  return std::make_unique<JsonServiceClient>(std::make_shared<BeastHttpTransport>(std::move(options)),
                                             std::move(clerk));
}

}  // namespace skillcard::host
