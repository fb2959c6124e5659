// A diagnostic applet for exercising the card OS without the training applet: echo, generated
// data of any length, a persistent counter, raw reads and writes of its storage window, a
// volatile scratch value, and raising a chosen status word. Used by skillcard-sim --echo-applet,
// the fuzz target and the benchmark (command table in docs/card-os.md, "Echo applet").
#pragma once

#include "skillcard/card/applet.hpp"

namespace skillcard::card {

class EchoApplet : public Applet {
 public:
  // F0 73 6B 69 6C 6C 63 61 72 64 FE: the project's proprietary RID-like prefix, "skillcard",
  // FE for "test". The training applet is the same with 01.
  static const Bytes& kAid();
  static constexpr std::uint8_t kCla = 0x80;
  static constexpr std::uint8_t kInsEcho = 0x10;         // data → the same data
  static constexpr std::uint8_t kInsGenerate = 0x12;     // Le → Ne bytes 00 01 02 …
  static constexpr std::uint8_t kInsIncrement = 0x14;    // → counter + 1 (uint32 at offset 0), one commit
  static constexpr std::uint8_t kInsWrite = 0x16;        // P1P2 = offset, data → written in one commit
  static constexpr std::uint8_t kInsRead = 0x18;         // P1P2 = offset, Le → Ne committed bytes
  static constexpr std::uint8_t kInsSetVolatile = 0x1A;  // data (≤ 32) → kept in transient RAM
  static constexpr std::uint8_t kInsGetVolatile = 0x1C;  // → the data last set since selection
  static constexpr std::uint8_t kInsRaise = 0x1E;        // P1P2 = SW (61xx-6Fxx, 9000) → that SW
  static constexpr std::size_t kVolatileCapacity = 32;

  Bytes aid() const override { return kAid(); }
  std::size_t transient_size() const override { return kVolatileCapacity + 1; }
  Bytes process(const iso7816::CommandApdu& command, AppletContext& context) override;
};

}  // namespace skillcard::card
