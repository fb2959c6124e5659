// The vpcd transport: makes the simulated card appear in a real reader through pcscd and
// vsmartcard's vpcd driver. vpcd listens; this client connects, answers its frames (2-byte
// big-endian length, then either a 1-byte control code or an APDU), reconnects when the socket
// closes (pcscd restarted) and can "pull the card" mid-APDU for tests (docs/card-os.md, "vpcd").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "skillcard/card/card.hpp"

namespace skillcard::card {

// A bad endpoint: unresolvable host, or a non-loopback one without allow_remote.
class VpcdConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct VpcdOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 35963;  // vpcd's default
  // vpcd relays APDUs in clear; the card stays on this machine unless explicitly allowed.
  bool allow_remote = false;
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
  // How long the card stays out after a pull, so that pcscd's reader polling sees it removed.
  std::chrono::milliseconds reinsert_delay{1000};
  // Pull the card after processing the Nth APDU (1-based, counted over the client's lifetime):
  // the card runs it, then the socket closes without the response. Once.
  std::optional<std::uint64_t> pull_after;
  // Pull the card during the first APDU that starts with these bytes (e.g. 80 36: CLA and INS
  // of one command), once. Through pcscd, middleware sends probes of its own, so "the next APDU"
  // is not always the one a test means.
  std::optional<Bytes> pull_on;
  // Cut the card's power inside the first APDU that starts with `prefix`, once: its physical
  // page write number `write_index` (0-based, counted from that APDU) and every later one do not
  // happen (CutMode::Before). The host gets no answer, as with a pull, but the command did not
  // complete: the next power-on's recovery leaves the card as before it (or, past the commit
  // record, as after it). Unfired (the command wrote less) it is disarmed after the APDU.
  struct CutOn {
    Bytes prefix;
    std::uint64_t write_index = 0;
  };
  std::optional<CutOn> cut_on;
  // One line per event. APDUs appear as header, lengths and status word, never their data.
  std::function<void(std::string_view)> log;
};

class VpcdClient {
 public:
  // Resolves the endpoint now. Throws VpcdConfigError, std::system_error (no self-pipe).
  VpcdClient(Card& card, VpcdOptions options);
  VpcdClient(const VpcdClient&) = delete;
  VpcdClient& operator=(const VpcdClient&) = delete;
  ~VpcdClient();

  // Connects, serves frames and reconnects with exponential backoff whenever the connection
  // fails or closes, until request_stop(). Each lost connection means "card removed": the card
  // is powered off. Returns normally after a stop.
  void run();

  // Both are async-signal-safe (an atomic store and one write() to a self-pipe), so a SIGTERM
  // or SIGUSR1 handler may call them; also safe from any thread.
  void request_stop() noexcept;
  // The next APDU is processed by the card, then the connection closes without an answer:
  // the card's state changed but the host saw no status word (an unknown outcome).
  void pull_card() noexcept;

  std::uint64_t apdus() const noexcept { return apdus_.load(); }
  std::uint64_t connections() const noexcept { return connections_.load(); }
  std::uint64_t pulls() const noexcept { return pulls_.load(); }

 private:
  // Sockets, the self-pipe and the resolved endpoint, all RAII, behind one pointer so that no
  // POSIX type leaks into this header.
  struct Impl;
  enum class End { PeerClosed, Pulled, CardFailed, Stopped };

  End serve(int socket);
  std::atomic<std::uint64_t> frames_{0};  // frames read, control codes included
  bool wait_for_stop(std::chrono::milliseconds timeout);
  void say(const std::string& line) const;

  Card* card_;
  VpcdOptions options_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pull_{false};
  std::atomic<std::uint64_t> apdus_{0};
  std::atomic<std::uint64_t> connections_{0};
  std::atomic<std::uint64_t> pulls_{0};
};

}  // namespace skillcard::card
