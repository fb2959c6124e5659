// PIN entry: a line from a descriptor, and a terminal whose echo comes back even when a signal
// ends the program while the holder types (on a pseudo-terminal, in a forked child).
#include "skillcard/host/pin_entry.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <thread>

#include "skillcard/host/refusal.hpp"

using namespace skillcard;
using namespace skillcard::host;

namespace {

std::string refusal_code(const std::string& input) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  (void)!::write(fds[1], input.data(), input.size());
  ::close(fds[1]);
  std::string code = "accepted";
  try {
    read_pin_line(fds[0]);
  } catch (const HostRefusal& r) {
    code = r.code();
  }
  ::close(fds[0]);
  return code;
}

struct Pty {
  int master = -1;
  int slave = -1;
  Pty() {
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) throw std::runtime_error("openpty");
  }
  ~Pty() {
    ::close(master);
    ::close(slave);
  }
  bool echo() const {
    termios t{};
    ::tcgetattr(slave, &t);
    return (t.c_lflag & ECHO) != 0;
  }
  // Reads what the child writes until `text` has appeared (up to 10 s).
  bool wait_for_text(const std::string& text) {
    for (int i = 0; i < 1000 && seen.find(text) == std::string::npos; ++i) {
      char buf[64];
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 10) > 0) {
        const auto got = ::read(master, buf, sizeof buf);
        if (got > 0) seen.append(buf, static_cast<std::size_t>(got));
      }
    }
    const auto at = seen.find(text);
    if (at == std::string::npos) return false;
    seen.erase(0, at + text.size());
    return true;
  }
  std::string seen;
  // Waits (up to 10 s) until the child has switched echo off, i.e. is reading the PIN.
  bool wait_for_echo_off() const {
    for (int i = 0; i < 1000; ++i) {
      if (!echo()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

// Forks a child that reads a PIN from the pty; it exits 0 when it got 4 digits, 3 when refused.
pid_t read_in_child(const Pty& pty) {
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      const auto pin = read_pin_from_terminal(pty.slave, "PIN: ");
      ::_exit(pin.size() == 4 ? 0 : 2);
    } catch (const HostRefusal&) {
      ::_exit(3);
    }
  }
  return child;
}

// Forks a child that reads a new PIN twice: exit 0 when both agree, 4 for PIN_MISMATCH.
pid_t read_new_in_child(const Pty& pty) {
  const pid_t child = ::fork();
  if (child == 0) {
    try {
      (void)read_new_pin_from_terminal(pty.slave, "New PIN: ", "Again: ");
      ::_exit(0);
    } catch (const HostRefusal& r) {
      ::_exit(r.code() == "PIN_MISMATCH" ? 4 : 3);
    }
  }
  return child;
}

int exit_code_of(pid_t child) {
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace

// A new PIN is typed twice: a slip must not become the card's PIN (and block it at the next site).
TEST(PinEntry, ANewPinIsTypedTwiceAndTwoDifferentOnesAreRefused) {
  for (const auto& [second, expected] : {std::pair{"24680\n", 0}, std::pair{"24681\n", 4}}) {
    Pty pty;
    const pid_t child = read_new_in_child(pty);
    ASSERT_TRUE(pty.wait_for_text("New PIN: "));
    (void)!::write(pty.master, "24680\n", 6);
    ASSERT_TRUE(pty.wait_for_text("Again: "));  // written once echo is off for the second line
    (void)!::write(pty.master, second, 6);
    EXPECT_EQ(exit_code_of(child), expected) << second;
  }
}

TEST(PinEntry, ALineFromADescriptor) {
  EXPECT_EQ(refusal_code("1234\n"), "accepted");
  EXPECT_EQ(refusal_code("123456789012"), "accepted");  // no newline at the end of input
  EXPECT_EQ(refusal_code("123\n"), "PIN_FORMAT");
  EXPECT_EQ(refusal_code("12a4\n"), "PIN_FORMAT");
  EXPECT_EQ(refusal_code(std::string(100, '1') + "\n"), "PIN_FORMAT");
}

// The reader is held while the PIN is awaited: a holder who walks away must not hold it for good.
TEST(PinEntry, NothingEnteredInTimeIsRefusedAndTheTerminalRestored) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  try {
    (void)read_pin_line(fds[0], std::chrono::milliseconds(100));
    ADD_FAILURE() << "no PIN came, yet one was read";
  } catch (const HostRefusal& r) {
    EXPECT_EQ(r.code(), "ENTRY_TIMEOUT");
  }
  // Two digits typed, then nothing: still the time limit, not a short PIN.
  (void)!::write(fds[1], "12", 2);
  try {
    (void)read_pin_line(fds[0], std::chrono::milliseconds(100));
    ADD_FAILURE() << "half a PIN was read as a whole";
  } catch (const HostRefusal& r) {
    EXPECT_EQ(r.code(), "ENTRY_TIMEOUT");
  }
  ::close(fds[0]);
  ::close(fds[1]);

  Pty pty;
  try {
    (void)read_pin_from_terminal(pty.slave, "PIN: ", std::chrono::milliseconds(100));
    ADD_FAILURE() << "no PIN came, yet one was read";
  } catch (const HostRefusal& r) {
    EXPECT_EQ(r.code(), "ENTRY_TIMEOUT");
  }
  EXPECT_TRUE(pty.echo());
}

// The holder's choice among usable vouchers: a line as typed, the end of input told apart.
TEST(PinEntry, AnAnswerLineEndOfInputAndTimeLimit) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  (void)!::write(fds[1], "2\n\nq\n", 5);
  EXPECT_EQ(read_answer_line(fds[0], std::chrono::seconds(5)), std::optional<std::string>("2"));
  EXPECT_EQ(read_answer_line(fds[0], std::chrono::seconds(5)), std::optional<std::string>(""));
  EXPECT_EQ(read_answer_line(fds[0], std::chrono::seconds(5)), std::optional<std::string>("q"));
  try {
    (void)read_answer_line(fds[0], std::chrono::milliseconds(100));
    ADD_FAILURE() << "an answer was read where none came";
  } catch (const HostRefusal& r) {
    EXPECT_EQ(r.code(), "ENTRY_TIMEOUT");
  }
  (void)!::write(fds[1], std::string(70, '1').data(), 70);
  ::close(fds[1]);
  EXPECT_EQ(read_answer_line(fds[0], std::chrono::seconds(5))->size(), 65u);  // too long: no number
  EXPECT_EQ(read_answer_line(fds[0], std::chrono::seconds(5)), std::nullopt);
  ::close(fds[0]);
}

TEST(PinEntry, TypedAtATerminalWithEchoOffThenRestored) {
  Pty pty;
  ASSERT_TRUE(pty.echo());
  const pid_t child = read_in_child(pty);
  ASSERT_TRUE(pty.wait_for_echo_off());
  (void)!::write(pty.master, "2468\n", 5);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(pty.echo());
}

// The prompt shows only once echo is off: a holder who types as soon as it appears never has a
// digit echoed.
TEST(PinEntry, ThePromptShowsOnlyOnceEchoIsOff) {
  Pty pty;
  const pid_t child = read_in_child(pty);
  std::string seen;
  for (int i = 0; i < 2000 && seen.find("PIN: ") == std::string::npos; ++i) {
    char buf[64];
    const auto got = ::read(pty.master, buf, sizeof buf);
    if (got > 0) seen.append(buf, static_cast<std::size_t>(got));
  }
  ASSERT_NE(seen.find("PIN: "), std::string::npos);
  EXPECT_FALSE(pty.echo()) << "the prompt came before echo was off";
  (void)!::write(pty.master, "2468\n", 5);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A holder who presses Ctrl-C, a terminal that hangs up, a kill: the program still ends by that
// signal, but not before the terminal has its echo back (else the next shell command is typed
// blind — and the next holder's PIN shown).
TEST(PinEntry, EchoIsRestoredWhenASignalEndsTheProgramMidEntry) {
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) {
    Pty pty;
    const pid_t child = read_in_child(pty);
    ASSERT_TRUE(pty.wait_for_echo_off());
    (void)!::write(pty.master, "12", 2);  // half a PIN typed
    ::kill(child, signal);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "signal " << signal;
    EXPECT_EQ(WTERMSIG(status), signal);
    EXPECT_TRUE(pty.echo()) << "signal " << signal;
  }
}
