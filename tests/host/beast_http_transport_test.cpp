// BeastHttpTransport against a small in-test Beast server on 127.0.0.1: plain HTTP (loopback
// only) with keep-alive and reconnection, mutual TLS with the terminal's client certificate
// (and a certificate of another CA refused), no service, and a silent service timing out.
#include <utility>  // Boost 1.74's Asio uses std::exchange without including it (g++ 12)

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <mutex>
#include <thread>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/x509.hpp"
#include "skillcard/host/json_service_client.hpp"

namespace skillcard::host {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

const std::string kNonceBody = R"({"nonce":"0177777777777777777777777777777777","issued_at":1,"expires_at":301})";

// One connection at a time, synchronous; stops when destroyed (a dummy connection unblocks
// accept).
class TestServer {
 public:
  // DropTheSecond: on each connection, answers the first request, reads the second and closes
  // without answering (a service gone after it carried the request out).
  enum class Mode { Answer, AnswerThenClose, Silent, DropTheSecond };
  explicit TestServer(Mode mode, ssl::context* tls = nullptr) : mode_(mode), tls_(tls) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { run(); });
  }
  ~TestServer() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket poke(io_);
    poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    thread_.join();
  }
  std::uint16_t port = 0;
  std::atomic<int> connections{0};
  std::atomic<int> handshakes{0};
  std::atomic<int> closed{0};  // connections this side has closed (counted once the socket is)
  std::mutex mutex;
  std::vector<http::request<http::string_body>> requests;

 private:
  template <class Stream>
  void serve(Stream& stream) {
    beast::flat_buffer buffer;
    for (int on_this_connection = 1;; ++on_this_connection) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(stream, buffer, req, ec);
      if (ec) return;
      {
        std::lock_guard lock(mutex);
        requests.push_back(req);
      }
      if (mode_ == Mode::DropTheSecond && on_this_connection == 2) return;
      if (mode_ == Mode::Silent) continue;  // never answers; the next read ends when the client goes
      http::response<http::string_body> res{http::status::created, 11};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(true);
      res.body() = kNonceBody;
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec || mode_ == Mode::AnswerThenClose) return;
    }
  }
  void run() {
    while (!stop_) {
      struct CountClose {
        std::atomic<int>& n;
        ~CountClose() { ++n; }
      } count_close{closed};  // declared first: counts after the socket below is closed
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      ++connections;
      if (tls_) {
        ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
        stream.handshake(ssl::stream_base::server, ec);
        if (ec) continue;
        ++handshakes;
        serve(stream);
      } else {
        serve(socket);
      }
    }
  }
  Mode mode_;
  ssl::context* tls_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

HttpsOptions plain(std::uint16_t port) {
  HttpsOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.plain_http_loopback = true;
  o.timeout = std::chrono::milliseconds(2000);
  return o;
}

TEST(BeastHttpTransport, PlainLoopbackKeepsOneConnectionAndSendsTheClerk) {
  TestServer server(TestServer::Mode::Answer);
  {
    JsonServiceClient client(std::make_shared<BeastHttpTransport>(plain(server.port)), "clerk-1");
    EXPECT_EQ(client.create_nonce().expires_at, 301u);
    EXPECT_EQ(client.create_nonce().issued_at, 1u);
  }
  EXPECT_EQ(server.connections, 1);
  std::lock_guard lock(server.mutex);
  ASSERT_EQ(server.requests.size(), 2u);
  EXPECT_EQ(server.requests[0].target(), "/v1/nonces");
  EXPECT_EQ(server.requests[0]["Skillcard-Clerk"], "clerk-1");
  EXPECT_EQ(server.requests[0].body(), "{}");
}

TEST(BeastHttpTransport, AClosedKeepAliveConnectionIsReopened) {
  TestServer server(TestServer::Mode::AnswerThenClose);
  {
    JsonServiceClient client(std::make_shared<BeastHttpTransport>(plain(server.port)), "");
    client.create_nonce();
    // Idle until the service has closed the connection, as after a keep-alive timeout.
    for (int i = 0; i < 2000 && server.closed == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(server.closed, 1);
    client.create_nonce();
  }
  EXPECT_EQ(server.connections, 2);
  std::lock_guard lock(server.mutex);
  EXPECT_EQ(server.requests.size(), 2u);  // replaced before sending: nothing sent twice
}

// The service read a POST and the connection dropped before its answer: it may have carried
// it out (an issued voucher, a recorded certificate), so it is never sent again — the caller
// gets ServiceUnavailable. A GET is sent again once on a new connection.
TEST(BeastHttpTransport, APostTheServiceReadIsNeverResentAGetIs) {
  TestServer server(TestServer::Mode::DropTheSecond);
  {
    JsonServiceClient client(std::make_shared<BeastHttpTransport>(plain(server.port)), "");
    client.create_nonce();
    EXPECT_THROW(client.create_nonce(), ServiceUnavailable);
  }
  {
    std::lock_guard lock(server.mutex);
    EXPECT_EQ(server.requests.size(), 2u) << "a POST was sent twice";
  }
  auto transport = std::make_shared<BeastHttpTransport>(plain(server.port));
  EXPECT_EQ(transport->send({"GET", "/v1/trust-list", {}, ""}).status, 201);
  EXPECT_EQ(transport->send({"GET", "/v1/trust-list", {}, ""}).status, 201);  // read, dropped, sent again
  std::lock_guard lock(server.mutex);
  EXPECT_EQ(server.requests.size(), 5u);
}

TEST(BeastHttpTransport, PlainHttpOnlyToLoopback) {
  auto o = plain(1);
  o.host = "localhost";
  EXPECT_THROW(BeastHttpTransport{o}, std::invalid_argument);
}

TEST(BeastHttpTransport, NoServiceAndASilentServiceAreServiceUnavailable) {
  std::uint16_t closed_port = 0;
  {
    TestServer gone(TestServer::Mode::Answer);
    closed_port = gone.port;
  }
  JsonServiceClient nobody(std::make_shared<BeastHttpTransport>(plain(closed_port)), "");
  EXPECT_THROW(nobody.create_nonce(), ServiceUnavailable);

  TestServer silent(TestServer::Mode::Silent);
  auto o = plain(silent.port);
  o.timeout = std::chrono::milliseconds(200);
  {
    JsonServiceClient client(std::make_shared<BeastHttpTransport>(o), "");
    EXPECT_THROW(client.create_nonce(), ServiceUnavailable);
  }
}

// A terminal CA, the service's certificate for 127.0.0.1, and a site terminal's certificate.
struct Pki {
  std::filesystem::path dir;
  crypto::OpenSsl::PrivateKey ca_key = crypto::OpenSsl::PrivateKey::generate();
  crypto::OpenSsl::PrivateKey server_key = crypto::OpenSsl::PrivateKey::generate();
  crypto::OpenSsl::PrivateKey client_key = crypto::OpenSsl::PrivateKey::generate();
  explicit Pki(const std::string& name) {
    dir = std::filesystem::temp_directory_path() / ("skillcard_host_tls_" + std::to_string(::getpid()) + name);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    crypto::CertificateSpec ca;
    ca.subject = {"skillcard terminal CA", "skillcard", "", "420000", ""};
    ca.usage = crypto::CertificateUsage::Ca;
    ca.path_length = 0;
    const auto ca_cert = crypto::Certificate::issue(ca, ca_key.public_key(), ca_key, nullptr);
    crypto::CertificateSpec server;
    server.subject = {"service", "skillcard", "service", "420000", ""};
    server.usage = crypto::CertificateUsage::TlsServer;
    server.ip_addresses = {"127.0.0.1"};
    const auto server_cert = crypto::Certificate::issue(server, server_key.public_key(), ca_key, &ca_cert);
    crypto::CertificateSpec client;
    client.subject = {"T0001", "skillcard", "site", "420100", "10001"};
    client.usage = crypto::CertificateUsage::TlsClient;
    const auto client_cert = crypto::Certificate::issue(client, client_key.public_key(), ca_key, &ca_cert);
    crypto::write_new_file(dir / "ca.pem", ca_cert.to_pem(), 0644);
    crypto::write_new_file(dir / "server.pem", server_cert.to_pem(), 0644);
    crypto::write_private_key(dir / "server.key", server_key);
    crypto::write_new_file(dir / "client.pem", client_cert.to_pem(), 0644);
    crypto::write_private_key(dir / "client.key", client_key);
  }
  ~Pki() { std::filesystem::remove_all(dir); }
  HttpsOptions client_options(std::uint16_t port) const {
    HttpsOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.ca_file = dir / "ca.pem";
    o.certificate_file = dir / "client.pem";
    o.key_file = dir / "client.key";
    o.timeout = std::chrono::milliseconds(5000);
    return o;
  }
};

TEST(BeastHttpTransport, MutualTlsWithTheTerminalCertificate) {
  const Pki pki("ok");
  const Pki stranger("stranger");
  ssl::context server_tls(ssl::context::tls_server);
  server_tls.use_certificate_chain_file((pki.dir / "server.pem").string());
  server_tls.use_private_key_file((pki.dir / "server.key").string(), ssl::context::pem);
  server_tls.load_verify_file((pki.dir / "ca.pem").string());
  server_tls.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  TestServer server(TestServer::Mode::Answer, &server_tls);
  {
    auto client = make_https_service_client(pki.client_options(server.port), "clerk-2");
    EXPECT_EQ(client->create_nonce().expires_at, 301u);
    // Kept alive over TLS: whatever the handshake left to read (TLS 1.3 session tickets) is not
    // taken for the service closing the connection.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(client->create_nonce().expires_at, 301u);
  }
  EXPECT_EQ(server.handshakes, 1);
  // A terminal certificate from another CA: the service refuses the handshake.
  auto other = stranger.client_options(server.port);
  other.ca_file = pki.dir / "ca.pem";
  {
    auto client = make_https_service_client(other, "clerk-2");
    EXPECT_THROW(client->create_nonce(), ServiceUnavailable);
  }
  // A service certificate the terminal's CA did not issue: the terminal refuses it.
  auto distrustful = pki.client_options(server.port);
  distrustful.ca_file = stranger.dir / "ca.pem";
  {
    auto client = make_https_service_client(distrustful, "clerk-2");
    EXPECT_THROW(client->create_nonce(), ServiceUnavailable);
  }
  EXPECT_EQ(server.handshakes, 1);
}

}  // namespace
}  // namespace skillcard::host
