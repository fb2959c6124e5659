// PIN entry (pin_entry.hpp): one wiped stack buffer, read(2) a byte at a time so that no stdio
// buffer keeps a copy, and a terminal whose echo is given back even when a signal ends the program.
#include "skillcard/host/pin_entry.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <string>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/types.hpp"
#include "skillcard/host/refusal.hpp"

namespace skillcard::host {

namespace {

// The signals that end a program at a terminal by default.
constexpr std::array kEndingSignals{SIGINT, SIGTERM, SIGHUP, SIGQUIT};

volatile std::sig_atomic_t g_caught_signal = 0;

extern "C" void note_signal(int signal) { g_caught_signal = signal; }

enum class LineEnd { Read, EndOfInput, Signal, TimeUp };

// Reads a line into `line` within `limit`; stops early when a signal was caught or the time is
// up. With `wait_mask`, the ending signals are blocked except while waiting for input (ppoll
// swaps the mask atomically): one that comes while the prompt is written, or between two
// characters, is caught at the next wait instead of leaving a read() blocked with the handler
// already run. Without one, ppoll keeps the mask as it is.
LineEnd read_line(int fd, std::array<char, 64>& line, std::size_t& n, bool& too_long, std::chrono::milliseconds limit,
                  const sigset_t* wait_mask = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char c = 0;
  auto end = LineEnd::Read;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      end = LineEnd::TimeUp;
      break;
    }
    const timespec wait{static_cast<time_t>(left.count() / 1'000'000'000),
                        static_cast<long>(left.count() % 1'000'000'000)};
    pollfd p{fd, POLLIN, 0};
    const int ready = ::ppoll(&p, 1, &wait, wait_mask);
    if (ready < 0 && errno == EINTR && g_caught_signal != 0) break;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      end = LineEnd::EndOfInput;
      break;
    }
    if (ready == 0) continue;  // the deadline is looked at again above
    const auto got = ::read(fd, &c, 1);
    if (got < 0 && errno == EINTR) {
      if (g_caught_signal != 0) break;
      continue;
    }
    if (got != 1) {
      end = LineEnd::EndOfInput;
      break;
    }
    if (c == '\n') break;
    if (n < line.size()) {
      line[n++] = c;
    } else {
      too_long = true;
    }
  }
  c = 0;
  return g_caught_signal != 0 ? LineEnd::Signal : end;
}

struct Wipe {
  std::array<char, 64>& buffer;
  ~Wipe() { crypto::secure_wipe(buffer.data(), buffer.size()); }
};

Pin to_pin(const std::array<char, 64>& line, std::size_t n, bool too_long) {
  if (too_long) throw HostRefusal("PIN_FORMAT", "a PIN has 4 to 12 digits");
  return Pin(std::string_view(line.data(), n));
}

[[noreturn]] void time_up(std::chrono::milliseconds limit) {
  throw HostRefusal("ENTRY_TIMEOUT",
                    "no PIN was entered within " + std::to_string(limit.count() / 1000) + " s; nothing was done");
}

}  // namespace

Pin read_pin_line(int fd, std::chrono::milliseconds limit) {
  std::array<char, 64> line{};
  const Wipe wipe{line};
  std::size_t n = 0;
  bool too_long = false;
  if (read_line(fd, line, n, too_long, limit) == LineEnd::TimeUp) time_up(limit);
  return to_pin(line, n, too_long);
}

std::optional<ControllingTerminal> ControllingTerminal::open() {
  const int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  return ControllingTerminal(fd);
}

ControllingTerminal::~ControllingTerminal() {
  if (fd_ >= 0) ::close(fd_);
}

Pin read_pin_from_terminal(int tty, std::string_view prompt, std::chrono::milliseconds limit) {
  std::array<char, 64> line{};
  const Wipe wipe{line};
  std::size_t n = 0;
  bool too_long = false;
  termios old{};
  const bool is_terminal = ::tcgetattr(tty, &old) == 0;
  // Caught, not acted on, while echo is off: no SA_RESTART, so the read returns EINTR. A signal
  // the program ignores (nohup's SIGHUP) stays ignored.
  std::array<struct sigaction, kEndingSignals.size()> previous{};
  std::array<bool, kEndingSignals.size()> replaced{};
  sigset_t ending, before, waiting;
  sigemptyset(&ending);
  for (const int s : kEndingSignals) sigaddset(&ending, s);
  if (is_terminal) {
    ::pthread_sigmask(SIG_BLOCK, &ending, &before);
    waiting = before;
    for (const int s : kEndingSignals) sigdelset(&waiting, s);
    g_caught_signal = 0;
    struct sigaction note {};
    note.sa_handler = note_signal;
    sigemptyset(&note.sa_mask);
    for (std::size_t i = 0; i < kEndingSignals.size(); ++i) {
      ::sigaction(kEndingSignals[i], nullptr, &previous[i]);
      if (previous[i].sa_handler == SIG_IGN) continue;
      replaced[i] = ::sigaction(kEndingSignals[i], &note, nullptr) == 0;
    }
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(tty, TCSANOW, &quiet);
  }
  // The prompt once echo is off: a digit typed as soon as it shows is never echoed.
  (void)::write(tty, prompt.data(), prompt.size());
  const auto end = read_line(tty, line, n, too_long, limit, is_terminal ? &waiting : nullptr);
  if (is_terminal) {
    ::tcsetattr(tty, TCSANOW, &old);
    for (std::size_t i = 0; i < kEndingSignals.size(); ++i) {
      if (replaced[i]) ::sigaction(kEndingSignals[i], &previous[i], nullptr);
    }
    // One still pending now meets the program's own disposition, with the terminal restored.
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }
  (void)::write(tty, "\n", 1);
  if (const int signal = g_caught_signal; signal != 0) {
    g_caught_signal = 0;
    crypto::secure_wipe(line.data(), line.size());
    std::raise(signal);  // what the program would have done: its own handler, or the default
    throw HostRefusal("CANCELLED", "PIN entry was interrupted");  // a handler that returned
  }
  if (end == LineEnd::TimeUp) time_up(limit);
  return to_pin(line, n, too_long);
}

std::optional<std::string> read_answer_line(int fd, std::chrono::milliseconds limit) {
  std::array<char, 64> line{};
  std::size_t n = 0;
  bool too_long = false;
  // A character at a time through the same wait: nothing is left in a stdio buffer for the next
  // prompt, and a holder who walks away does not hold the reader.
  const auto end = read_line(fd, line, n, too_long, limit);
  if (end == LineEnd::TimeUp) {
    throw HostRefusal("ENTRY_TIMEOUT",
                      "nothing was entered within " + std::to_string(limit.count() / 1000) + " s; nothing was done");
  }
  if (end == LineEnd::EndOfInput && n == 0 && !too_long) return std::nullopt;
  return too_long ? std::string(line.size() + 1, '?') : std::string(line.data(), n);
}

Pin read_new_pin_from_terminal(int tty, std::string_view prompt, std::string_view again_prompt,
                               std::chrono::milliseconds limit) {
  auto pin = read_pin_from_terminal(tty, prompt, limit);
  const auto again = read_pin_from_terminal(tty, again_prompt, limit);
  const auto a = pin.block();
  const auto b = again.block();
  if (pin.size() != again.size() || !crypto::OpenSsl::equal_ct(a.view(), b.view())) {
    throw HostRefusal("PIN_MISMATCH", "the two new PINs typed differ");
  }
  return pin;
}

}  // namespace skillcard::host
