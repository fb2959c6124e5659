// Reading a holder's PIN: a line from a file descriptor (--pin-fd, for PIN pads and scripts) or
// typed at a terminal with echo off. The digits only ever sit in a stack buffer that is wiped.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "skillcard/host/card_commands.hpp"

namespace skillcard::host {

// The process's controlling terminal (/dev/tty) for PIN entry, closed when it goes.
class ControllingTerminal {
 public:
  // nullopt when the process has none (a service, a session without a terminal).
  static std::optional<ControllingTerminal> open();
  ControllingTerminal(ControllingTerminal&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ControllingTerminal& operator=(ControllingTerminal&&) = delete;
  ControllingTerminal(const ControllingTerminal&) = delete;
  ControllingTerminal& operator=(const ControllingTerminal&) = delete;
  ~ControllingTerminal();
  int fd() const noexcept { return fd_; }

 private:
  explicit ControllingTerminal(int fd) noexcept : fd_(fd) {}
  int fd_;
};

// How long a PIN may take to type. The reader is held for the whole command (another
// application waits), so a holder who walks away from the prompt must not hold it for good.
inline constexpr std::chrono::milliseconds kPinEntryLimit{std::chrono::seconds(60)};

// One line (its newline dropped) from `fd` as a Pin; HostRefusal(PIN_FORMAT) for a line over 64
// characters or anything but 4-12 digits; HostRefusal(ENTRY_TIMEOUT) when no whole line came
// within `limit`.
Pin read_pin_line(int fd, std::chrono::milliseconds limit = kPinEntryLimit);

// Writes `prompt` to the terminal `tty`, reads a line with echo off, then restores the terminal's
// modes. A signal that would end the program meanwhile (Ctrl-C, a hung-up terminal, kill) finds
// the terminal restored first: its handler is deferred until the modes are back, then the signal
// is raised again, so the program still ends as it would have — but a holder's next shell
// command is not typed blind. `tty` need not be a terminal (then it is read as a plain line).
// HostRefusal(ENTRY_TIMEOUT), the terminal restored, when no whole line came within `limit`.
Pin read_pin_from_terminal(int tty, std::string_view prompt, std::chrono::milliseconds limit = kPinEntryLimit);

// One line typed at `fd` as it is (a choice from a menu, echo as the terminal has it), its
// newline dropped: nullopt at the end of input, 65 '?' for a line over 64 characters, and
// HostRefusal(ENTRY_TIMEOUT) when no whole line came within `limit`.
std::optional<std::string> read_answer_line(int fd, std::chrono::milliseconds limit = kPinEntryLimit);

// A new PIN typed twice at the terminal (prompt, then again_prompt): a typing slip would otherwise
// become the card's PIN and block it at the next site. HostRefusal(PIN_MISMATCH) when the two
// differ (compared in constant time; both wiped).
Pin read_new_pin_from_terminal(int tty, std::string_view prompt, std::string_view again_prompt,
                               std::chrono::milliseconds limit = kPinEntryLimit);

}  // namespace skillcard::host
