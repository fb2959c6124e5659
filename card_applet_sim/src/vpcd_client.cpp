// vpcd client: POSIX TCP socket, frame codec, control codes, reconnect loop, stop and pull.
#include "skillcard/card/vpcd_client.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "skillcard/card/image_error.hpp"
#include "unique_fd.hpp"

namespace skillcard::card {

namespace {

constexpr std::uint8_t kCtrlPowerOff = 0x00;
constexpr std::uint8_t kCtrlPowerOn = 0x01;
constexpr std::uint8_t kCtrlReset = 0x02;
constexpr std::uint8_t kCtrlAtr = 0x04;
constexpr int kConnectTimeoutMs = 5000;

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const noexcept { ::freeaddrinfo(a); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

bool is_loopback(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) != 0;
  }
  return false;
}

// Debian 12's vpcd writes the length and the payload separately and without TCP_NODELAY, so
// its second write waits for our ACK of the first; delayed ACKs would make that ~40-48 ms per
// APDU. Linux clears TCP_QUICKACK again on its own, hence after every read.
void quickack(int socket) {
  const int one = 1;
  ::setsockopt(socket, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

std::string header_text(ByteView apdu) { return to_hex(apdu.first(std::min<std::size_t>(4, apdu.size()))); }

bool starts_with(ByteView apdu, ByteView prefix) {
  return apdu.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), apdu.begin());
}

}  // namespace

struct VpcdClient::Impl {
  AddrInfoPtr addresses;
  detail::UniqueFd stop_read;
  detail::UniqueFd stop_write;

  // Waits until `socket` has `events` or a stop is requested. False on stop.
  bool wait(int socket, short events, int timeout_ms, bool& timed_out) const {
    timed_out = false;
    for (;;) {
      pollfd fds[2] = {{stop_read.get(), POLLIN, 0}, {socket, events, 0}};
      const int n = ::poll(fds, socket >= 0 ? 2 : 1, timeout_ms);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::system_error(errno, std::generic_category(), "poll");
      if (fds[0].revents != 0) return false;
      if (n == 0) {
        timed_out = true;
        return true;
      }
      return true;
    }
  }

  bool read_exact(int socket, std::uint8_t* out, std::size_t n) const {
    std::size_t done = 0;
    bool timed_out = false;
    while (done < n) {
      if (!wait(socket, POLLIN, -1, timed_out)) return false;
      const ssize_t got = ::recv(socket, out + done, n - done, 0);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) return false;
      quickack(socket);
      done += static_cast<std::size_t>(got);
    }
    return true;
  }

  static bool send_frame(int socket, ByteView payload) {
    // The length field has 16 bits: a longer answer cannot be framed, and cut short it would
    // desynchronise the stream. Closing makes vpcd report the card gone instead.
    if (payload.size() > 0xFFFF) return false;
    Bytes frame;
    frame.reserve(payload.size() + 2);
    frame.push_back(static_cast<std::uint8_t>(payload.size() >> 8));
    frame.push_back(static_cast<std::uint8_t>(payload.size()));
    frame.insert(frame.end(), payload.begin(), payload.end());
    std::size_t done = 0;
    while (done < frame.size()) {
      const ssize_t n = ::send(socket, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }

  detail::UniqueFd connect_once() const {
    for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
      detail::UniqueFd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
      if (!s) continue;
      if (::connect(s.get(), a->ai_addr, a->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) continue;
        bool timed_out = false;
        if (!wait(s.get(), POLLOUT, kConnectTimeoutMs, timed_out)) return {};
        int error = 0;
        socklen_t length = sizeof error;
        if (timed_out || ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) continue;
      }
      const int flags = ::fcntl(s.get(), F_GETFL);
      if (flags < 0 || ::fcntl(s.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) continue;
      const int one = 1;
      ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return s;
    }
    return {};
  }
};

VpcdClient::VpcdClient(Card& card, VpcdOptions options)
    : card_(&card), options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options_.port);
  if (const int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw VpcdConfigError("vpcd host '" + options_.host + "': " + ::gai_strerror(rc));
  }
  impl_->addresses.reset(found);
  if (!options_.allow_remote) {
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
      if (!is_loopback(a->ai_addr)) {
        throw VpcdConfigError("vpcd host '" + options_.host +
                              "' is not a loopback address; APDUs would cross the network in clear "
                              "(allow it explicitly)");
      }
    }
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  impl_->stop_read.reset(fds[0]);
  impl_->stop_write.reset(fds[1]);
}

VpcdClient::~VpcdClient() = default;

void VpcdClient::request_stop() noexcept {
  stop_.store(true);
  const char byte = 's';
  // Non-blocking: if the pipe is somehow full, it is already readable, which is all we need.
  [[maybe_unused]] const ssize_t ignored = ::write(impl_->stop_write.get(), &byte, 1);
}

void VpcdClient::pull_card() noexcept { pull_.store(true); }

void VpcdClient::say(const std::string& line) const {
  if (options_.log) options_.log(line);
}

bool VpcdClient::wait_for_stop(std::chrono::milliseconds timeout) {
  bool timed_out = false;
  return !impl_->wait(-1, 0, static_cast<int>(timeout.count()), timed_out);
}

void VpcdClient::run() {
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  auto backoff = options_.initial_backoff;
  while (!stop_.load()) {
    detail::UniqueFd socket = impl_->connect_once();
    if (!socket) {
      if (stop_.load()) break;
      say("vpcd " + where + " not reachable; retrying in " + std::to_string(backoff.count()) + " ms");
      if (wait_for_stop(backoff)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    connections_.fetch_add(1);
    say("connected to vpcd " + where + " (card inserted)");
    const auto frames_before = frames_.load();
    const End end = serve(socket.get());
    // The backoff starts over only after a connection that carried frames: a peer that accepts
    // and closes at once (vpcd crash-looping, another program on the port) is retried ever more
    // slowly, not in a tight loop that floods the log.
    const bool served = frames_.load() != frames_before;
    if (served) backoff = options_.initial_backoff;
    socket.reset();
    card_->power_off();
    if (end == End::Stopped) break;
    if (end == End::Pulled) {
      say("card pulled; reinserting in " + std::to_string(options_.reinsert_delay.count()) + " ms");
      if (wait_for_stop(options_.reinsert_delay)) break;
    } else if (end == End::CardFailed) {
      // The card cannot power on (image refused or unwritable): do not hammer vpcd with it.
      say("card removed after a failed power-on; retrying in " + std::to_string(options_.max_backoff.count()) + " ms");
      if (wait_for_stop(options_.max_backoff)) break;
    } else if (served) {
      say("vpcd closed the connection (card removed); reconnecting");
    } else {
      say("vpcd closed the connection before any frame; retrying in " + std::to_string(backoff.count()) + " ms");
      if (wait_for_stop(backoff)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  card_->power_off();
  say("stopped");
}

VpcdClient::End VpcdClient::serve(int socket) {
  for (;;) {
    std::uint8_t length[2];
    if (!impl_->read_exact(socket, length, 2)) return stop_.load() ? End::Stopped : End::PeerClosed;
    Bytes frame(static_cast<std::size_t>((length[0] << 8) | length[1]));
    if (!impl_->read_exact(socket, frame.data(), frame.size())) return stop_.load() ? End::Stopped : End::PeerClosed;
    frames_.fetch_add(1);

    if (frame.size() == 1) {
      try {
        switch (frame[0]) {
          case kCtrlPowerOff:
            card_->power_off();
            say("power off");
            continue;
          case kCtrlPowerOn:
            card_->power_on();
            say("power on");
            continue;
          case kCtrlReset:
            card_->reset();
            say("reset");
            continue;
          case kCtrlAtr:
            // vpcd may ask at any moment, powered or not: the ATR is a constant of the card.
            if (!Impl::send_frame(socket, Card::atr())) return End::PeerClosed;
            continue;
          default:
            say("ignoring unknown vpcd control code " + to_hex(frame));
            continue;
        }
      } catch (const ImageError& e) {
        say(std::string("card image refused at power-on: ") + e.what());
        return End::CardFailed;
      } catch (const PowerLost& e) {
        say(std::string("power lost during power-on: ") + e.what());
        return End::CardFailed;
      }
    }

    // Anything longer (or empty) is an APDU; the card answers malformed ones with a status word.
    Bytes response;
    try {
      if (!card_->powered()) card_->power_on();  // a reader powers the card before any APDU
      bool cut_armed = false;
      if (options_.cut_on && starts_with(frame, options_.cut_on->prefix)) {
        card_->eeprom().arm(PowerCut{options_.cut_on->write_index, CutMode::Before, 0});
        options_.cut_on.reset();
        cut_armed = true;
      }
      response = card_->process(frame);
      if (cut_armed) card_->eeprom().disarm();  // the command wrote less than the index
    } catch (const ImageError& e) {
      say(std::string("card image refused at power-on: ") + e.what());
      return End::CardFailed;
    } catch (const PowerLost& e) {
      say(std::string("power lost during APDU ") + header_text(frame) + ": " + e.what());
      pulls_.fetch_add(1);
      return End::Pulled;
    }
    const std::uint64_t count = apdus_.fetch_add(1) + 1;
    bool pull = pull_.exchange(false) || (options_.pull_after && *options_.pull_after == count);
    if (options_.pull_on && starts_with(frame, *options_.pull_on)) {
      options_.pull_on.reset();
      pull = true;
    }
    if (options_.log) {  // the line costs more than the APDU: build it only when someone reads it
      say("apdu #" + std::to_string(count) + " " + header_text(frame) + " (" + std::to_string(frame.size()) +
          " bytes) -> " + to_hex(ByteView(response).last(2)) + " (" + std::to_string(response.size()) + " bytes)" +
          (pull ? ", card pulled before answering" : ""));
    }
    if (pull) {
      pulls_.fetch_add(1);
      return End::Pulled;
    }
    if (!Impl::send_frame(socket, response)) return End::PeerClosed;
  }
}

}  // namespace skillcard::card
