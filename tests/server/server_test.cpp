// The network layer in process (plain HTTP on loopback): a stop while keep-alive sessions end
// on their own touches no session that has already ended, serves no new connection, and returns.
// The race this guards against only shows as a crash now and then in a release build; under
// AddressSanitizer (the sanitizer stage runs this unit test) it is a use-after-free report.

#include "skillcard/service/server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "service_support.hpp"

namespace skillcard::service {
namespace {

using namespace skillcard::service::testing;

// An owned client socket to 127.0.0.1:port; fd is -1 if the connection was refused.
class Client {
 public:
  explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) close();
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ~Client() { close(); }

  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // One keep-alive GET /healthz; the answer's status line, or "" if the connection ended.
  std::string healthz() {
    const auto answer = exchange("GET /healthz HTTP/1.1\r\n" + std::string(kKiosk) + "\r\n");
    return answer.substr(0, answer.find("\r\n"));
  }

  // Sends `request` and reads one whole answer (head and Content-Length body); "" if the
  // connection ended first.
  std::string exchange(const std::string& request) {
    if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return {};
    std::string answer;
    std::array<char, 1024> chunk{};
    while (answer.find("\r\n\r\n") == std::string::npos || !body_complete(answer)) {
      const auto n = ::recv(fd_, chunk.data(), chunk.size(), 0);
      if (n <= 0) return {};
      answer.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return answer;
  }

  // A recv that waits longer fails (so a test that expects a close cannot hang).
  void receive_timeout(int seconds) {
    timeval tv{seconds, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool send_text(std::string_view text) {
    return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  }

  // Reads up to the end of one answer's head ("\r\n\r\n"), nothing beyond; "" if the connection
  // ended or the receive timeout passed first.
  std::string head() {
    std::string text;
    char c = 0;
    while (text.size() < 4 || text.compare(text.size() - 4, 4, "\r\n\r\n") != 0) {
      if (::recv(fd_, &c, 1, 0) != 1) return {};
      text.push_back(c);
    }
    return text;
  }

  // True once the service has closed its side (recv sees the end, not data).
  bool closed_by_peer() {
    char c = 0;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

  static constexpr std::string_view kKiosk =
      "Host: localhost\r\nSkillcard-Dev-Terminal-Id: K1\r\nSkillcard-Dev-Terminal-Role: kiosk\r\n"
      "Skillcard-Dev-Terminal-Region: 420100\r\n";

 private:
  static bool body_complete(const std::string& answer) {
    const auto head_end = answer.find("\r\n\r\n");
    const auto at = answer.find("Content-Length: ");
    if (at == std::string::npos || at > head_end) return false;
    const auto length = std::stoul(answer.substr(at + 16));
    return answer.size() >= head_end + 4 + length;
  }
  int fd_;
};

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : trust(keys.trust_store()) {
    handler = std::make_unique<Handler>(base_context(ledger, *trust, [] { return kNow; }));
  }

  ServerOptions options() const {
    ServerOptions o;
    o.port = 0;
    o.insecure_loopback = true;
    o.threads = 4;
    return o;
  }

  KeySet keys;
  FakeLedger ledger;
  std::unique_ptr<TrustStore> trust;
  std::unique_ptr<Handler> handler;
};

TEST_F(ServerTest, StopWhileKeepAliveSessionsEndTouchesNoEndedSession) {
  constexpr int kRounds = 40;
  constexpr int kClients = 12;
  for (int round = 0; round < kRounds; ++round) {
    auto o = options();
    o.threads = round % 2 == 0 ? 4 : 1;  // sessions on strands, and on the one thread's executor
    Server server(*handler, o);
    const auto port = server.port();
    std::thread serving([&server] { server.run(false); });
    std::vector<Client> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.emplace_back(port);
      ASSERT_TRUE(clients.back().connected()) << "round " << round;
      ASSERT_EQ(clients.back().healthz(), "HTTP/1.1 200 OK") << "round " << round;
    }
    // Every session is idle on a keep-alive read; half of them end (the client closes) while
    // the stop's cancels are on their way to the sessions' strands.
    std::atomic<bool> go{false};
    std::thread closer([&] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kClients; i += 2) clients[static_cast<std::size_t>(i)].close();
    });
    go = true;
    server.stop();
    closer.join();
    serving.join();  // run() returns: every session ended, none was left waiting
    EXPECT_FALSE(Client(port).connected()) << "round " << round << ": a stopped server accepted a connection";
    for (int i = 1; i < kClients; i += 2) {
      EXPECT_EQ(clients[static_cast<std::size_t>(i)].healthz(), "") << "round " << round << ": idle session left open";
    }
  }
}

TEST_F(ServerTest, RequestsGetAnswersUntilStopAndStopIsIdempotent) {
  Server server(*handler, options());
  std::thread serving([&server] { server.run(false); });
  Client client(server.port());
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(client.healthz(), "HTTP/1.1 200 OK");
  EXPECT_EQ(client.healthz(), "HTTP/1.1 200 OK");  // the same connection, kept alive
  server.stop();
  server.stop();
  serving.join();
  EXPECT_EQ(client.healthz(), "");
}

// The time limit is per read and per write, not per connection: a client that stops halfway
// through a request is closed once the limit passes, one that keeps asking over a longer time
// is not (each request moves the limit on). With one thread and with several (strands).
TEST_F(ServerTest, ASilentClientIsClosedAfterTheTimeLimitAndABusyOneIsNot) {
  for (const unsigned threads : {1U, 4U}) {
    SCOPED_TRACE(threads);
    auto o = options();
    o.threads = threads;
    o.timeout = std::chrono::milliseconds(1000);
    Server server(*handler, o);
    std::thread serving([&server] { server.run(false); });
    Client silent(server.port());
    Client busy(server.port());
    ASSERT_TRUE(silent.connected() && busy.connected());
    silent.receive_timeout(20);
    ASSERT_TRUE(silent.send_text("GET /healthz HTTP/1.1\r\nHost: local"));
    for (int i = 0; i < 15; ++i) {
      EXPECT_EQ(busy.healthz(), "HTTP/1.1 200 OK") << i;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(silent.closed_by_peer());
    EXPECT_EQ(busy.healthz(), "HTTP/1.1 200 OK");
    server.stop();
    serving.join();
  }
}

TEST(LoggablePath, ACitizenIdInThePathNeverReachesTheAccessLog) {
  EXPECT_EQ(loggable_path("/v1/holders/11010519491231002X/vouchers?x=1"), "/v1/holders/{citizen-id}/vouchers");
  EXPECT_EQ(loggable_path("/v1/holders/11010519491231002x/portfolio"), "/v1/holders/{citizen-id}/portfolio");
  EXPECT_EQ(loggable_path("/v1/holders/110105491231002"), "/v1/holders/{citizen-id}");  // 15 digits (1984-99 IDs)
  // What belongs there stays: holder references, card numbers, voucher ids, report kinds.
  EXPECT_EQ(loggable_path("/v1/holders/0123456789abcdef0123456789abcdef/vouchers"),
            "/v1/holders/0123456789abcdef0123456789abcdef/vouchers");
  EXPECT_EQ(loggable_path("/v1/cards/4201000001/lost"), "/v1/cards/4201000001/lost");
  EXPECT_EQ(loggable_path("/v1/vouchers/00000000000000a1/void"), "/v1/vouchers/00000000000000a1/void");
  EXPECT_EQ(loggable_path("/"), "/");
  EXPECT_EQ(loggable_path(""), "");
  EXPECT_EQ(loggable_path("/v1//x/"), "/v1//x/");
}

// The answer is written by hand (not by Beast's serializer): its head must still say what HTTP
// requires — the status line in the request's version, Date, a Content-Length that matches the
// body, and whether the connection stays open.
TEST_F(ServerTest, AnswersCarryDateLengthAndTheConnectionsFate) {
  Server server(*handler, options());
  std::thread serving([&server] { server.run(false); });
  {
    Client client(server.port());
    const auto answer = client.exchange("GET /healthz HTTP/1.1\r\n" + std::string(Client::kKiosk) + "\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << answer;
    EXPECT_NE(answer.find("\r\nServer: skillcard\r\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find(" GMT\r\n"), std::string::npos) << answer;
    EXPECT_NE(answer.find("\r\nDate: "), std::string::npos) << answer;
    EXPECT_NE(answer.find("\r\nContent-Type: application/json"), std::string::npos) << answer;
    EXPECT_EQ(answer.find("Connection:"), std::string::npos) << "HTTP/1.1 persists without saying so: " << answer;
    const auto body = answer.substr(answer.find("\r\n\r\n") + 4);
    EXPECT_EQ(body.rfind("{\"status\":\"ok\"", 0), 0U) << body;
    EXPECT_NE(answer.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos) << answer;
  }
  {
    Client client(server.port());  // HTTP/1.1 asking to close: answered, then closed
    const auto answer =
        client.exchange("GET /healthz HTTP/1.1\r\nConnection: close\r\n" + std::string(Client::kKiosk) + "\r\n");
    EXPECT_NE(answer.find("\r\nConnection: close\r\n"), std::string::npos) << answer;
    EXPECT_TRUE(client.closed_by_peer());
  }
  {
    Client client(server.port());  // HTTP/1.0 asking to stay: kept, and said so
    const auto answer =
        client.exchange("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n" + std::string(Client::kKiosk) + "\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.0 200 OK\r\n", 0), 0U) << answer;
    EXPECT_NE(answer.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << answer;
    EXPECT_EQ(client.healthz(), "HTTP/1.1 200 OK") << "an HTTP/1.0 keep-alive connection was not kept";
  }
  {
    Client client(server.port());  // HTTP/1.0 by default: closed after the answer
    const auto answer = client.exchange("GET /healthz HTTP/1.0\r\n" + std::string(Client::kKiosk) + "\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.0 200 OK\r\n", 0), 0U) << answer;
    EXPECT_EQ(answer.find("Connection:"), std::string::npos) << answer;
    EXPECT_TRUE(client.closed_by_peer());
  }
  {
    Client client(server.port());  // a refusal keeps its status and JSON body
    const auto answer = client.exchange("GET /no-such-thing HTTP/1.1\r\n" + std::string(Client::kKiosk) + "\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0U) << answer;
    EXPECT_NE(answer.find("\"error\":"), std::string::npos) << answer;
  }
  server.stop();
  serving.join();
}

// The parser writes each request into the session's reused Request: a chunked body arrives
// whole, a later shorter body is not mixed with an earlier one, and the API's own headers reach
// the handler whatever the case of their names.
TEST_F(ServerTest, RequestsArriveWholeWhateverTheirFraming) {
  Server server(*handler, options());
  std::thread serving([&server] { server.run(false); });
  Client client(server.port());
  const std::string kiosk(Client::kKiosk);
  // Chunked, split inside the member name: the handler sees the whole body and names the field.
  auto answer = client.exchange("POST /v1/vouchers/verify HTTP/1.1\r\n" + kiosk +
                                "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"tok\r\nA\r\nen\":\"a+b\"}\r\n0\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0U) << answer;
  EXPECT_NE(answer.find("\"field\":\"token\""), std::string::npos) << answer;
  EXPECT_NE(answer.find("base64url"), std::string::npos) << answer;
  // The same connection, a shorter body: "missing", not the earlier body's leftovers.
  answer = client.exchange("POST /v1/vouchers/verify HTTP/1.1\r\n" + kiosk + "Content-Length: 2\r\n\r\n{}");
  EXPECT_NE(answer.find("\"field\":\"token\""), std::string::npos) << answer;
  EXPECT_NE(answer.find("missing"), std::string::npos) << answer;
  // A counter's write without a clerk is refused by name; with one (any case) it gets past that.
  const std::string counter =
      "Host: localhost\r\nSkillcard-Dev-Terminal-Id: C1\r\nSkillcard-Dev-Terminal-Role: counter\r\n"
      "Skillcard-Dev-Terminal-Region: 420100\r\n";
  const std::string void_request = "POST /v1/vouchers/00000000000000ff/void HTTP/1.1\r\n" + counter;
  const std::string body = "{\"reason\":\"test\"}";
  const std::string framing = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  answer = client.exchange(void_request + framing);
  EXPECT_NE(answer.find("Skillcard-Clerk"), std::string::npos) << answer;
  answer = client.exchange(void_request + "sKILLCARD-cLERK: CLERK7\r\n" + framing);
  EXPECT_EQ(answer.find("Skillcard-Clerk"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\"error\":"), std::string::npos) << answer;  // no such voucher here
  // Two clerks (in any spelling): which one made the write is not guessed.
  answer = client.exchange(void_request + "Skillcard-Clerk: CLERK7\r\nskillcard-clerk: CLERK8\r\n" + framing);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0U) << answer;
  EXPECT_NE(answer.find("\"field\":\"skillcard-clerk\""), std::string::npos) << answer;
  EXPECT_NE(answer.find("more than once"), std::string::npos) << answer;
  server.stop();
  serving.join();
}

// RFC 9110 §10.1.1: a client that holds its body back until told (Expect: 100-continue) is
// told, once, and then answered as usual on the same connection; one whose body would be refused
// for its size gets the refusal instead of the go-ahead; an HTTP/1.0 client is never sent a 1xx.
TEST_F(ServerTest, AClientThatExpects100ContinueIsToldToSendItsBodyUnlessItIsTooLarge) {
  Server server(*handler, options());
  std::thread serving([&server] { server.run(false); });
  const std::string kiosk(Client::kKiosk);
  const std::string body = "{\"token\":\"a+b\"}";
  {
    Client client(server.port());
    client.receive_timeout(10);
    ASSERT_TRUE(client.send_text("POST /v1/vouchers/verify HTTP/1.1\r\n" + kiosk + "Expect: 100-Continue\r\n" +
                                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    EXPECT_EQ(client.head(), "HTTP/1.1 100 Continue\r\n\r\n");
    const auto answer = client.exchange(body);
    EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0U) << answer;  // the body reached the handler
    EXPECT_NE(answer.find("\"field\":\"token\""), std::string::npos) << answer;
    EXPECT_NE(answer.find("base64url"), std::string::npos) << answer;
    EXPECT_EQ(client.healthz(), "HTTP/1.1 200 OK") << "the connection was not kept";
  }
  {
    Client client(server.port());  // declared over the limit: no go-ahead, the refusal instead
    client.receive_timeout(10);
    ASSERT_TRUE(client.send_text("POST /v1/vouchers/verify HTTP/1.1\r\n" + kiosk +
                                 "Expect: 100-continue\r\nContent-Length: 50000000\r\n\r\n"));
    const auto answer = client.exchange("");
    EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0U) << answer;
    EXPECT_NE(answer.find("\"field\":\"body\""), std::string::npos) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  }
  {
    Client client(server.port());  // refused whatever its body (a header twice): the refusal at once
    client.receive_timeout(10);
    ASSERT_TRUE(client.send_text("POST /v1/vouchers/verify HTTP/1.1\r\n" + kiosk +
                                 "Skillcard-Clerk: A\r\nSkillcard-Clerk: B\r\nExpect: 100-continue\r\n" +
                                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    const auto answer = client.exchange("");
    EXPECT_EQ(answer.rfind("HTTP/1.1 400 ", 0), 0U) << answer;
    EXPECT_NE(answer.find("\"field\":\"skillcard-clerk\""), std::string::npos) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  }
  {
    Client client(server.port());  // HTTP/1.0: no interim answer, the body is simply read
    client.receive_timeout(10);
    const auto answer =
        client.exchange("POST /v1/vouchers/verify HTTP/1.0\r\n" + kiosk +
                        "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_EQ(answer.rfind("HTTP/1.0 400 ", 0), 0U) << answer;
    EXPECT_NE(answer.find("\"field\":\"token\""), std::string::npos) << answer;
  }
  server.stop();
  serving.join();
}

}  // namespace
}  // namespace skillcard::service
