// The test-side vpcd: a loopback TCP listener speaking vpcd frames.
#include "fake_vpcd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace skillcard::card::testing {

namespace {

[[noreturn]] void fail(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

int wait_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

int listen_on(std::uint16_t port, std::uint16_t& bound) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd, 4) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(), "bind/listen");
  }
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  bound = ntohs(address.sin_port);
  return fd;
}

}  // namespace

FakeVpcd::FakeVpcd(std::uint16_t port) { listener_ = listen_on(port, port_); }

FakeVpcd::~FakeVpcd() {
  close_connection();
  if (listener_ >= 0) ::close(listener_);
}

bool FakeVpcd::accept(std::chrono::milliseconds timeout) {
  close_connection();
  pollfd p{listener_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  connection_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
  return connection_ >= 0;
}

void FakeVpcd::close_connection() {
  if (connection_ >= 0) ::close(connection_);
  connection_ = -1;
}

void FakeVpcd::write_all(const std::uint8_t* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(connection_, data, n, MSG_NOSIGNAL);
    if (w <= 0) fail("send");
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

void FakeVpcd::send_control(std::uint8_t code) {
  const std::uint8_t frame[3] = {0x00, 0x01, code};
  write_all(frame, 3);
}

void FakeVpcd::send_apdu(ByteView apdu, bool split) {
  const std::uint8_t length[2] = {static_cast<std::uint8_t>(apdu.size() >> 8), static_cast<std::uint8_t>(apdu.size())};
  if (split) {
    write_all(length, 2);
    write_all(apdu.data(), apdu.size());
  } else {
    Bytes frame(length, length + 2);
    frame.insert(frame.end(), apdu.begin(), apdu.end());
    write_all(frame.data(), frame.size());
  }
}

bool FakeVpcd::read_exact(std::uint8_t* out, std::size_t n, std::chrono::steady_clock::time_point deadline) {
  while (n > 0) {
    pollfd p{connection_, POLLIN, 0};
    if (::poll(&p, 1, wait_ms(deadline)) != 1) return false;
    const ssize_t r = ::recv(connection_, out, n, 0);
    if (r <= 0) return false;
    out += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

std::optional<Bytes> FakeVpcd::receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::uint8_t length[2];
  if (!read_exact(length, 2, deadline)) return std::nullopt;
  Bytes payload(static_cast<std::size_t>((length[0] << 8) | length[1]));
  if (!read_exact(payload.data(), payload.size(), deadline)) return std::nullopt;
  return payload;
}

std::string FakeVpcd::transmit(const std::string& apdu_hex) {
  send_apdu(from_hex(apdu_hex));
  const auto answer = receive();
  return answer ? to_hex(*answer) : std::string();
}

bool FakeVpcd::closed_by_peer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd p{connection_, POLLIN, 0};
    if (::poll(&p, 1, wait_ms(deadline)) != 1) return false;
    std::uint8_t byte;
    const ssize_t r = ::recv(connection_, &byte, 1, 0);
    if (r == 0) return true;
    if (r < 0) return errno == ECONNRESET;
    // Data instead of a close: not what the caller expected.
    return false;
  }
}

std::uint16_t unused_port() {
  std::uint16_t port = 0;
  ::close(listen_on(0, port));
  return port;
}

}  // namespace skillcard::card::testing
