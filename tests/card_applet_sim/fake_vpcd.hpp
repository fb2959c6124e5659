// The vpcd side of the vpcd protocol, played by the tests themselves (no pcscd needed): a
// loopback TCP listener that sends control codes and APDUs as vpcd frames and reads answers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::card::testing {

class FakeVpcd {
 public:
  // Listens on 127.0.0.1, on `port` or (0) an ephemeral one.
  explicit FakeVpcd(std::uint16_t port = 0);
  FakeVpcd(const FakeVpcd&) = delete;
  FakeVpcd& operator=(const FakeVpcd&) = delete;
  ~FakeVpcd();

  std::uint16_t port() const { return port_; }
  // Takes the next connection (closing the current one); false on timeout.
  bool accept(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void close_connection();

  void send_control(std::uint8_t code);
  // As Debian 12's vpcd does when `split`: length and payload in two writes, Nagle left on.
  void send_apdu(ByteView apdu, bool split = false);
  // The next frame's payload; nullopt when the connection closed or nothing came in time.
  std::optional<Bytes> receive(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // send_apdu + receive, as upper-case hex ("" when no answer came).
  std::string transmit(const std::string& apdu_hex);
  // True if the connection is closed by the other side within the timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  bool read_exact(std::uint8_t* out, std::size_t n, std::chrono::steady_clock::time_point deadline);
  void write_all(const std::uint8_t* data, std::size_t n);

  int listener_ = -1;
  int connection_ = -1;
  std::uint16_t port_ = 0;
};

// A port number nobody listens on right now (bound once, then released).
std::uint16_t unused_port();

}  // namespace skillcard::card::testing
