// The card runtime: power states and ATR, the applet registry, and the APDU dispatcher — the one
// place that turns applet and parser exceptions into status words — with SELECT by AID, CLA and
// logical-channel checks, command chaining and GET RESPONSE (docs/card-os.md, "Runtime").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "skillcard/card/applet.hpp"
#include "skillcard/card/persistent_memory.hpp"
#include "skillcard/iso7816/bytes.hpp"
#include "skillcard/iso7816/command_apdu.hpp"
#include "skillcard/iso7816/status_word.hpp"

namespace skillcard::card {

// process() on a card without power: a transport bug (a reader powers the card first).
class CardNotPowered : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class Card {
 public:
  // Largest command data a chain may assemble: the card's APDU buffer. Larger → 6700.
  static constexpr std::size_t kMaxChainedData = 4096;

  // The card starts powered off; nothing is read until power_on().
  explicit Card(PersistentMemory memory);
  explicit Card(Eeprom eeprom) : Card(PersistentMemory(std::move(eeprom))) {}
  Card(const Card&) = delete;
  Card& operator=(const Card&) = delete;
  ~Card();

  // Registers an applet with a window of the applet area. Throws std::invalid_argument for an
  // AID outside 5..16 bytes, a duplicate AID or a window overlapping another applet's, and
  // std::out_of_range for a window past the applet area.
  void install(std::unique_ptr<Applet> applet, std::size_t storage_offset, std::size_t storage_size);

  // Cold reset: power (back) on, journal recovery and image checks, volatile state cleared,
  // no applet selected. Returns the ATR. Throws ImageError (the card stays off: a refused image
  // is never half-loaded) or PowerLost (a cut during recovery; power on again).
  Bytes power_on();
  // Volatile state is gone; the image stays as the last completed page write left it.
  void power_off() noexcept;
  // Warm reset: volatile state cleared, applets' on_power_reset called, memory untouched.
  // Powers on first when the card is off. Returns the ATR.
  Bytes reset();
  bool powered() const noexcept { return powered_; }

  // The raw transport entry: one command APDU in, one response (data + SW1 SW2, at least two
  // bytes) out, whatever the bytes are. Throws only PowerLost (power went during the command;
  // the card is now off and the answer is lost) and CardNotPowered.
  Bytes process(ByteView apdu);

  // 3B 9B 13 81 31 FE 45 80 59 "skillcard" TCK: T=1 only, IFSC 254, historical bytes naming
  // the card (docs/card-os.md, "ATR").
  static const Bytes& atr();

  // Physical page writes of the last process() call, including an interrupted one: the tearing
  // tests enumerate cut points 0..n-1 of a command from it.
  std::uint64_t last_command_writes() const noexcept { return last_command_writes_; }
  // What journal recovery did at the last successful power-on.
  const MountReport& last_mount() const noexcept { return last_mount_; }
  // The selected applet, or nullptr.
  const Applet* selected() const noexcept;
  // Response bytes waiting for GET RESPONSE.
  std::size_t pending_response_bytes() const noexcept { return pending_.size() - pending_offset_; }

  PersistentMemory& memory() noexcept { return memory_; }
  Eeprom& eeprom() noexcept { return memory_.eeprom(); }

 private:
  struct Slot;
  struct Chain {
    std::uint8_t cla, ins, p1, p2;
    Bytes data;
  };

  Bytes dispatch(ByteView apdu);
  Bytes execute(ByteView apdu);
  Bytes select(const iso7816::CommandApdu& command);
  Bytes get_response(const iso7816::CommandApdu& command);
  // Data by the Ne rules (61xx + GET RESPONSE when longer), final_sw after the last byte.
  Bytes respond(Bytes data, std::optional<std::size_t> ne, iso7816::StatusWord final_sw = iso7816::StatusWord::Success);
  Slot* find_applet(ByteView aid) const;
  void clear_volatile() noexcept;
  void drop_pending() noexcept;

  PersistentMemory memory_;
  std::vector<std::unique_ptr<Slot>> slots_;
  bool powered_ = false;
  Slot* selected_ = nullptr;
  std::optional<Chain> chain_;
  Bytes pending_;
  std::size_t pending_offset_ = 0;
  iso7816::StatusWord pending_sw_ = iso7816::StatusWord::Success;  // after the last pending byte
  std::uint64_t last_command_writes_ = 0;
  MountReport last_mount_;
};

}  // namespace skillcard::card
