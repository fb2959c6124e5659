// A blocking HTTP/1.1 keep-alive client over a loopback socket, optionally through TLS
// (OpenSSL): what the service benchmark's load generator and the service's process-level tests
// (kill -9) use to talk to a running skillcard-server. Test and bench code only.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace skillcard::testing {

class Client {
 public:
  Client(std::uint16_t port, SSL_CTX* tls) {
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
    send(method, path, body, extra_headers);
    int status = 0;
    while (!answer_in_buffer(status, body_out)) read_some();
    return status;
  }

  // The benchmark's event loop: the socket in non-blocking mode, requests sent with send() and
  // answers collected with try_read_answer() when poll() says the socket is readable (or
  // has_buffered(): TLS may have read a record the application has not yet taken).
  void set_nonblocking() { ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK); }
  int fd() const { return fd_; }
  bool has_buffered() const { return ssl_ && SSL_pending(ssl_) > 0; }
  void send(const std::string& method, const std::string& path, const std::string& body,
            const std::string& extra_headers) {
    std::string text = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                       extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    write_all(text);
  }
  // Reads what is there without waiting; true (and the status) once a whole answer has come.
  bool try_read_answer(int& status) {
    char buf[8192];
    for (;;) {
      const auto n = ssl_ ? SSL_read(ssl_, buf, sizeof buf) : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
      if (n > 0) {
        in_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (!would_block(n)) throw std::runtime_error("connection closed");
      break;
    }
    return answer_in_buffer(status, nullptr);
  }

 private:
  // Takes one whole answer (head, then Content-Length bytes of body) off the input, if there.
  bool answer_in_buffer(int& status, std::string* body_out) {
    const auto header_end = in_.find("\r\n\r\n");
    if (header_end == std::string::npos) return false;
    const auto cl = in_.find("Content-Length: ");
    const std::size_t length = cl < header_end ? std::stoul(in_.substr(cl + 16)) : 0;
    if (in_.size() < header_end + 4 + length) return false;
    status = std::stoi(in_.substr(9, 3));
    if (body_out) *body_out = in_.substr(header_end + 4, length);
    in_.erase(0, header_end + 4 + length);
    return true;
  }
  bool would_block(int n) const {
    if (ssl_) {
      const int e = SSL_get_error(ssl_, n);
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  }
  void write_all(const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
      const auto n = ssl_ ? SSL_write(ssl_, data.data() + done, static_cast<int>(data.size() - done))
                          : static_cast<int>(::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL));
      if (n <= 0) {
        if (would_block(n)) continue;  // non-blocking and full: try again
        throw std::runtime_error("write failed");
      }
      done += static_cast<std::size_t>(n);
    }
  }
  void read_some() {
    char buf[8192];
    const auto n = ssl_ ? SSL_read(ssl_, buf, sizeof buf) : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
    if (n <= 0) throw std::runtime_error("connection closed");
    in_.append(buf, static_cast<std::size_t>(n));
  }
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string in_;
};

}  // namespace skillcard::testing
