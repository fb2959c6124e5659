// Boost.Beast sessions: one coroutine per connection on its own strand, a fresh parser per
// request with a body limit and a timeout, TLS with required client certificates.
#include <utility>  // before any Boost header (g++ 12, C++20: std::exchange in awaitable.hpp)

#include "skillcard/service/server.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "request_parser.hpp"
#include "skillcard/crypto/key_files.hpp"

namespace skillcard::service {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using detail::DevIdentity;
using detail::RequestParser;

// The verified peer certificate's subject and serial (hex), via crypto::Certificate.
struct Peer {
  crypto::DistinguishedName subject;
  std::string serial_hex;
};

std::optional<Peer> peer_of(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return std::nullopt;
  Peer peer;
  BIO* bio = BIO_new(BIO_s_mem());
  std::string pem;
  if (bio && PEM_write_bio_X509(bio, cert) == 1) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    if (size > 0) pem.assign(data, static_cast<std::size_t>(size));
  }
  BIO_free(bio);
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      peer.serial_hex = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  X509_free(cert);
  try {
    peer.subject = crypto::Certificate::from_pem(pem).subject();
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return peer;
}

}  // namespace

std::string loggable_path(std::string_view target) {
  const auto path = target.substr(0, target.find('?'));
  const auto looks_like_citizen_id = [](std::string_view s) {
    if (s.size() != 15 && s.size() != 18) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const bool last_x = i + 1 == s.size() && (s[i] == 'X' || s[i] == 'x');
      if (!last_x && (s[i] < '0' || s[i] > '9')) return false;
    }
    return true;
  };
  std::string out;
  out.reserve(path.size());
  std::size_t at = 0;
  while (at <= path.size()) {
    const auto end = std::min(path.find('/', at), path.size());
    const auto segment = path.substr(at, end - at);
    out += looks_like_citizen_id(segment) ? std::string_view("{citizen-id}") : segment;
    if (end == path.size()) break;
    out += '/';
    at = end + 1;
  }
  return out;
}

struct Server::Impl {
  struct Session {
    std::function<void()> cancel_if_idle;  // posts the cancel to the session's strand
  };

  Impl(const Handler& h, ServerOptions o)
      : handler(h), options(std::move(o)), acceptor(ioc), signals(ioc), revocations(options.revocations) {}

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  const Handler& handler;
  ServerOptions options;
  // One thread: Asio may skip its cross-thread wake-ups (the concurrency hint).
  net::io_context ioc{options.threads == 1 ? 1 : BOOST_ASIO_CONCURRENCY_HINT_DEFAULT};
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor;
  net::signal_set signals;
  TerminalRevocations revocations;
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::map<std::uint64_t, Session> sessions;
  std::uint64_t next_id = 0;

  void begin_stop() {
    if (stopping.exchange(true)) return;
    log("stopping: no new connections; finishing requests in flight");
    net::post(ioc, [this] {
      beast::error_code ec;
      acceptor.close(ec);
      // The next SIGTERM or SIGINT has its default effect: an operator's second signal ends a
      // stop that waits on a stuck request (what is acknowledged is durable either way).
      signals.clear(ec);
      std::lock_guard lock(mutex);
      for (auto& [id, s] : sessions) s.cancel_if_idle();
    });
  }

  static constexpr std::size_t kDrainLimit = 4 * 1024 * 1024;
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  std::atomic<std::int64_t> last_revocation_check{0};

  // RFC 9110 IMF-fixdate, e.g. "Sat, 28 Nov 2026 21:30:00 GMT": formatted once a second per
  // thread, not once an answer.
  static std::string_view http_date() {
    thread_local std::time_t formatted = -1;
    thread_local std::array<char, 40> text{};
    thread_local std::size_t length = 0;
    const std::time_t now = std::time(nullptr);
    if (now != formatted) {
      std::tm utc{};
      gmtime_r(&now, &utc);
      length = std::strftime(text.data(), text.size(), "%a, %d %b %Y %H:%M:%S GMT", &utc);
      formatted = now;
    }
    return {text.data(), length};
  }

  // The whole answer as one buffer (one write, one TLS record for a small answer): the status
  // line, Server, Date (offline terminals take the time from it: design, "Time"), the
  // handler's headers, Content-Length and the connection's fate, then the body. Written
  // directly: Beast's generic serializer costs more than the answer's bytes do.
  static std::string answer_text(const Response& response, unsigned version, bool keep_alive) {
    const auto status = static_cast<unsigned>(response.status);
    const auto reason = http::obsolete_reason(static_cast<http::status>(response.status));
    std::string out;
    out.reserve(160 + response.body.size());
    out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out.append(reason.data(), reason.size());
    out += "\r\nServer: skillcard\r\nDate: ";
    out += http_date();
    for (const auto& [name, value] : response.headers) {
      out += "\r\n";
      out += name;
      out += ": ";
      out += value;
    }
    out += "\r\nContent-Length: ";
    out += std::to_string(response.body.size());
    // HTTP/1.1 connections persist unless closed; HTTP/1.0 ones close unless kept.
    if (version == 10 && keep_alive) out += "\r\nConnection: keep-alive";
    if (version != 10 && !keep_alive) out += "\r\nConnection: close";
    out += "\r\n\r\n";
    out += response.body;
    return out;
  }

  // The "error" member of a refusal body, without a JSON library in this translation unit.
  static std::string error_code_of(std::string_view body) {
    constexpr std::string_view key = "\"error\":\"";
    const auto at = body.find(key);
    if (at == std::string_view::npos) return {};
    const auto start = at + key.size();
    const auto end = body.find('"', start);
    return end == std::string_view::npos ? std::string() : std::string(body.substr(start, end - start));
  }

  template <class Stream>
  net::awaitable<void> serve(Stream& stream, beast::tcp_stream& lowest, std::optional<Terminal> terminal,
                             std::string_view refusal, bool& idle, std::string_view serial) {
    beast::flat_buffer buffer;
    Request request;
    DevIdentity dev;
    for (;;) {
      RequestParser parser(request, dev);
      parser.body_limit(options.max_body);
      parser.header_limit(16 * 1024);
      lowest.expires_after(options.timeout);
      beast::error_code ec;
      idle = true;
      if (stopping) co_return;
      co_await http::async_read_header(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      // A client that sent "Expect: 100-continue" holds its body back until told to send it
      // (curl does, for a second, on larger uploads). One whose declared body is over the limit,
      // or whose request is refused whatever its body (a refused terminal, a repeated header), is
      // not told: it gets the refusal below at once, the connection closes, and a body it sends
      // anyway is drained.
      const bool held_back = !ec && parser.expects_continue() && !parser.is_done();
      const bool refused_by_head = held_back && (!refusal.empty() || !parser.repeated_header().empty());
      if (held_back && !refused_by_head && parser.version() >= 11) {
        // Asked for, the body is work in flight: a stop lets it arrive and be answered, and it
        // gets the whole time limit, not what the idle wait before the head left of it.
        idle = false;
        co_await net::async_write(stream, net::buffer(kContinue), net::redirect_error(net::use_awaitable, ec));
        lowest.expires_after(options.timeout);
      }
      if (!ec && !parser.is_done() && !refused_by_head) {
        co_await http::async_read(stream, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      }
      idle = false;
      Response response;
      bool keep_alive = false;
      bool drain = false;
      unsigned version = 11;
      if (ec == http::error::body_limit) {
        drain = true;
        response = Handler::refusal(
            "BAD_REQUEST_FIELD",
            {{"field", "body"}, {"detail", "larger than " + std::to_string(options.max_body) + " bytes"}},
            {{"field", "body"}});
      } else if (ec == http::error::end_of_stream || ec == net::error::operation_aborted ||
                 ec == beast::error::timeout || ec == net::error::eof || ec == net::ssl::error::stream_truncated) {
        co_return;
      } else if (ec) {
        response = Handler::refusal("BAD_REQUEST_FIELD",
                                    {{"field", "request"}, {"detail", "not a well-formed HTTP/1.x request"}},
                                    {{"field", "request"}});
      } else {
        // The handler sees the API's own headers (Skillcard-*, docs/api.yaml); HTTP's framing
        // (Host, Content-Length, Connection, …) stays here, where it is handled.
        version = parser.version();
        keep_alive = parser.keep_alive() && !stopping;
        std::optional<Terminal> who = terminal;
        if (options.insecure_loopback) {
          const auto verdict = terminal_from_subject({dev.id, "skillcard", dev.role, dev.region, dev.site});
          who = verdict.terminal;
        }
        // A terminal revoked while its connection stays open is refused from its next request.
        if (refusal.empty() && terminal) {
          const auto tick =
              std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                  .count();
          auto last = last_revocation_check.load();
          // The file is looked at no more than once a second, whatever the request rate.
          if (tick - last > 1'000'000'000LL && last_revocation_check.compare_exchange_strong(last, tick)) {
            revocations.reload_if_changed();
          }
          if (revocations.is_revoked(terminal->id, serial)) {
            log("revoked terminal " + terminal->id + " refused on an open connection");
            refusal = "TERMINAL_REVOKED";
          }
        }
        if (!refusal.empty()) {
          response = Handler::refusal(refusal);
          keep_alive = false;
        } else if (!parser.repeated_header().empty()) {
          response = Handler::refusal("BAD_REQUEST_FIELD",
                                      {{"field", parser.repeated_header()}, {"detail", "given more than once"}},
                                      {{"field", parser.repeated_header()}});
        } else if (!who) {
          response = Handler::refusal("TERMINAL_ROLE_FORBIDDEN");
          keep_alive = false;
        } else {
          request.terminal = *who;
          const auto started = std::chrono::steady_clock::now();
          response = handler.handle(request);
          // A stop that came while the handler ran: this answer is the connection's last, and
          // says so (a pipelined request behind it would otherwise be dropped unanswered).
          keep_alive = keep_alive && !stopping;
          if (options.access_log) {
            AccessRecord record;
            record.terminal = who->id;
            record.role = std::string(to_string(who->role));
            record.method = request.method;
            record.path = loggable_path(request.target);
            record.status = response.status;
            if (response.status >= 400) record.error = error_code_of(response.body);
            record.millis =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
            options.access_log(record);
          }
        }
      }
      if (refused_by_head) {
        keep_alive = false;  // its body was never read: nothing after it on this connection is framed
        drain = true;
      }
      const std::string answer = answer_text(response, version, keep_alive);
      lowest.expires_after(options.timeout);
      co_await net::async_write(stream, net::buffer(answer), net::redirect_error(net::use_awaitable, ec));
      if (drain && !ec) {
        // Read and drop the rest of an oversize upload (within a bound) before closing, so that
        // the client gets the 400 rather than a connection reset on its unread bytes.
        std::array<char, 16 * 1024> scratch{};
        std::size_t dropped = 0;
        lowest.expires_after(std::chrono::seconds(2));
        while (dropped < kDrainLimit) {
          const auto n =
              co_await stream.async_read_some(net::buffer(scratch), net::redirect_error(net::use_awaitable, ec));
          if (ec) break;
          dropped += n;
        }
      }
      if (ec || !keep_alive) co_return;
    }
  }

  // A session's place in `sessions` for as long as its coroutine frame lives. begin_stop posts
  // the session's cancel to the session's strand; that post may run after the session has
  // ended on the same strand (a handshake failing just as the service stops), so the posted
  // work checks `alive`, which only the strand reads and writes, and touches the stream only
  // while the frame that owns it still exists.
  class Enrollment {
   public:
    template <class Executor, class Cancel>
    Enrollment(Impl& impl, const Executor& executor, Cancel cancel) : impl_(impl) {
      auto alive = alive_;
      std::lock_guard lock(impl_.mutex);
      id_ = impl_.next_id++;
      impl_.sessions.emplace(id_, Session{[executor, cancel, alive] {
                               net::post(executor, [cancel, alive] {
                                 if (*alive) cancel();
                               });
                             }});
    }
    Enrollment(const Enrollment&) = delete;
    Enrollment& operator=(const Enrollment&) = delete;
    // Runs on the session's strand as its frame is destroyed, whether it returned or threw.
    ~Enrollment() {
      *alive_ = false;
      std::lock_guard lock(impl_.mutex);
      impl_.sessions.erase(id_);
    }

   private:
    Impl& impl_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::uint64_t id_ = 0;
  };

  net::awaitable<void> tls_session(tcp::socket socket) {
    std::string problem;
    if (revocations.reload_if_changed(&problem))
      log("terminal revocation list loaded: " + std::to_string(revocations.size()) + " entries");
    if (!problem.empty()) log(problem);
    TlsStream stream(beast::tcp_stream(std::move(socket)), *tls);
    bool idle = true;
    const Enrollment enrolled(*this, stream.get_executor(), [&stream, &idle] {
      if (idle) beast::get_lowest_layer(stream).cancel();
    });
    beast::error_code ec;
    beast::get_lowest_layer(stream).expires_after(options.timeout);
    co_await stream.async_handshake(ssl::stream_base::server, net::redirect_error(net::use_awaitable, ec));
    if (ec) {
      log("TLS handshake refused: " + ec.message());
    } else {
      std::optional<Terminal> terminal;
      std::string_view refusal;
      const auto peer = peer_of(stream.native_handle());
      if (!peer) {
        refusal = "TERMINAL_ROLE_FORBIDDEN";
      } else {
        const auto verdict = terminal_from_subject(peer->subject);
        if (!verdict.terminal) {
          log("client certificate names no terminal: " + verdict.reason);
          refusal = "TERMINAL_ROLE_FORBIDDEN";
        } else if (revocations.is_revoked(verdict.terminal->id, peer->serial_hex)) {
          log("revoked terminal " + verdict.terminal->id + " refused");
          refusal = "TERMINAL_REVOKED";
        } else {
          terminal = verdict.terminal;
        }
      }
      // serial: a view into `peer`, which outlives the awaited serve().
      co_await serve(stream, beast::get_lowest_layer(stream), terminal, refusal, idle,
                     peer ? std::string_view(peer->serial_hex) : std::string_view());
      idle = false;
      // Our close_notify goes out either way; waiting for the peer's (RFC 8446 §6.1 does not
      // require it) is brief when the service stops, so that an idle keep-alive client that
      // reads nothing does not hold up the shutdown.
      beast::get_lowest_layer(stream).expires_after(stopping ? std::chrono::milliseconds(250)
                                                             : std::chrono::milliseconds(5000));
      co_await stream.async_shutdown(net::redirect_error(net::use_awaitable, ec));
    }
  }

  net::awaitable<void> plain_session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    bool idle = true;
    const Enrollment enrolled(*this, stream.get_executor(), [&stream, &idle] {
      if (idle) stream.cancel();
    });
    co_await serve(stream, stream, std::nullopt, {}, idle, {});
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      beast::error_code ec;
      // A session's work (its coroutine, its timer, a stop's cancel) runs on a strand when several
      // threads serve; with one thread it is serial anyway, and the io_context's own executor
      // spares every handler the strand's lock and shared reference counting.
      const net::any_io_executor executor_for_session =
          options.threads > 1 ? net::any_io_executor(net::make_strand(ioc)) : net::any_io_executor(ioc.get_executor());
      tcp::socket socket =
          co_await acceptor.async_accept(executor_for_session, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        if (stopping || ec == net::error::operation_aborted) co_return;
        log("accept failed: " + ec.message());
        // Out of descriptors (EMFILE, ENFILE) or memory: the connection stays in the backlog, so
        // accepting again at once would spin a core and flood the log. Pause; sessions ending
        // meanwhile give descriptors back.
        net::steady_timer pause(ioc, std::chrono::milliseconds(200));
        co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
        continue;
      }
      // Answers go out as soon as they are written: with Nagle's algorithm a second small write
      // (the next pipelined answer, a TLS record) waits for the client's delayed ACK (40 ms).
      socket.set_option(tcp::no_delay(true), ec);
      const auto executor = socket.get_executor();
      if (tls) {
        net::co_spawn(executor, tls_session(std::move(socket)), net::detached);
      } else {
        net::co_spawn(executor, plain_session(std::move(socket)), net::detached);
      }
    }
  }
};

Server::Server(const Handler& handler, ServerOptions options)
    : impl_(std::make_unique<Impl>(handler, std::move(options))) {
  auto& o = impl_->options;
  beast::error_code ec;
  const auto address = net::ip::make_address(o.address, ec);
  if (ec) throw ServerError("--listen: '" + o.address + "' is not an IP address");
  if (o.insecure_loopback) {
    if (!address.is_loopback()) throw ServerError("plain HTTP is allowed on a loopback address only");
  } else {
    try {
      impl_->tls.emplace(ssl::context::tls_server);
      auto& ctx = *impl_->tls;
      ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
      SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
      ctx.use_certificate_chain_file(o.tls_cert.string());
      crypto::require_private_file(o.tls_key);
      ctx.use_private_key_file(o.tls_key.string(), ssl::context::pem);
      ctx.load_verify_file(o.client_ca.string());
      ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      // Only the terminal CA may issue client certificates: one level below the anchor.
      // The terminal CA is the trust anchor itself (it is not self-signed: the root issued it).
      SSL_CTX_set_verify_depth(ctx.native_handle(), 2);
      X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx.native_handle()), X509_V_FLAG_PARTIAL_CHAIN);
    } catch (const boost::system::system_error& e) {
      throw ServerError(std::string("TLS setup: ") + e.what());
    } catch (const crypto::KeyFileError& e) {
      throw ServerError(std::string("TLS setup: ") + e.what());
    }
  }
  tcp::endpoint endpoint(address, o.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw ServerError("cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " + ec.message());
}

Server::~Server() = default;

std::uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

void Server::run(bool handle_signals) {
  auto& impl = *impl_;
  if (handle_signals) {
    impl.signals.add(SIGTERM);
    impl.signals.add(SIGINT);
    impl.signals.async_wait([&impl](const beast::error_code& ec, int) {
      if (!ec) impl.begin_stop();
    });
  }
  net::co_spawn(impl.ioc, impl.accept_loop(), net::detached);
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < impl.options.threads; ++i) extra.emplace_back([&impl] { impl.ioc.run(); });
  impl.ioc.run();
  for (auto& t : extra) t.join();
  impl.log("stopped");
}

void Server::stop() { impl_->begin_stop(); }

}  // namespace skillcard::service
