// A blocking HTTP/1.1 keep-alive client over a loopback socket, optionally through TLS
// (OpenSSL): what the service benchmark's load generator and the service's process-level tests
// (kill -9) use to talk to a running skillcard-server. Test and bench code only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace skillcard::testing {

class Client {
 public:
  // spin: wait for answers by polling the socket without sleeping (see read_some).
  Client(std::uint16_t port, SSL_CTX* tls, bool spin = false) : spin_(spin) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect");
    }
    if (tls) {
      ssl_ = SSL_new(tls);
      SSL_set_fd(ssl_, fd_);
      if (SSL_connect(ssl_) != 1) throw std::runtime_error("TLS handshake failed");
    }
  }
  ~Client() {
    if (ssl_) SSL_free(ssl_);
    ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one request and reads one response; returns the status code (the body in `body_out`).
  int post(const std::string& path, const std::string& body, const std::string& extra_headers,
           std::string* body_out = nullptr) {
    return request("POST", path, body, extra_headers, body_out);
  }
  int request(const std::string& method, const std::string& path, const std::string& body,
              const std::string& extra_headers, std::string* body_out = nullptr) {
    std::string text = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                       extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    write_all(text);
    // Headers, then Content-Length bytes of body.
    std::size_t header_end;
    while ((header_end = in_.find("\r\n\r\n")) == std::string::npos) read_some();
    const auto status = std::stoi(in_.substr(9, 3));
    const auto cl = in_.find("Content-Length: ");
    const std::size_t length = cl < header_end ? std::stoul(in_.substr(cl + 16)) : 0;
    while (in_.size() < header_end + 4 + length) read_some();
    if (body_out) *body_out = in_.substr(header_end + 4, length);
    in_.erase(0, header_end + 4 + length);
    return status;
  }

 private:
  void write_all(const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const auto n = ssl_ ? SSL_write(ssl_, data.data() + done, static_cast<int>(data.size() - done))
                          : static_cast<int>(::send(fd_, data.data() + done, data.size() - done, 0));
      if (n <= 0) throw std::runtime_error("write failed");
      done += static_cast<std::size_t>(n);
    }
  }
  // A spinning client never sleeps in recv, so the server's kernel has no reader to wake on
  // another CPU when it sends the answer: on a loopback benchmark that wake-up (an
  // inter-processor interrupt, costly in a virtual machine) is charged to the server's CPU,
  // where a remote terminal would cost it nothing.
  void read_some() {
    char buf[8192];
    for (;;) {
      if (ssl_) {
        if (spin_ && SSL_pending(ssl_) == 0) {
          char probe;
          const auto p = ::recv(fd_, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
          if (p < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            sched_yield();  // the other clients on this CPU
            continue;
          }
        }
        const auto n = SSL_read(ssl_, buf, sizeof buf);
        if (n <= 0) throw std::runtime_error("connection closed");
        in_.append(buf, static_cast<std::size_t>(n));
        return;
      }
      const auto n = ::recv(fd_, buf, sizeof buf, spin_ ? MSG_DONTWAIT : 0);
      if (n < 0 && spin_ && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        sched_yield();  // the other clients on this CPU
        continue;
      }
      if (n <= 0) throw std::runtime_error("connection closed");
      in_.append(buf, static_cast<std::size_t>(n));
      return;
    }
  }
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool spin_ = false;
  std::string in_;
};

}  // namespace skillcard::testing
