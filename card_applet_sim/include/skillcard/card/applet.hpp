// What an applet is to the card OS: it gets one assembled command APDU at a time with a context
// (its persistent storage window and its transient RAM) and returns response data or throws
// iso7816::StatusWordError. It never sees the transport, GET RESPONSE, chaining or power.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "skillcard/card/persistent_memory.hpp"
#include "skillcard/iso7816/bytes.hpp"
#include "skillcard/iso7816/command_apdu.hpp"
#include "skillcard/iso7816/status_word.hpp"

namespace skillcard::card {

class AppletContext {
 public:
  AppletContext(AppletStorage storage, std::span<std::uint8_t> transient) noexcept
      : storage_(storage), transient_(transient) {}

  // The applet's window of the persistent applet area; reads see committed state.
  AppletStorage& storage() noexcept { return storage_; }
  // transient_size() bytes of RAM the OS zeroes on deselect, warm reset and power-off (like
  // Java Card's CLEAR_ON_DESELECT arrays), so volatile state cannot outlive them by accident.
  std::span<std::uint8_t> transient() noexcept { return transient_; }

 private:
  AppletStorage storage_;
  std::span<std::uint8_t> transient_;
};

// Thrown by an applet to answer with data AND a warning status word (62xx or 63xx): e.g. a wrong
// PIN inside a secure channel, whose 63Cx carries an R-MAC (GlobalPlatform protects 9000 and
// the warnings). The runtime sends the data by the usual rules (61xx and GET RESPONSE when
// longer than Ne) and this status word after the last byte. Any other status word is a bug:
// std::invalid_argument.
class WarningResponse : public iso7816::StatusWordError {
 public:
  WarningResponse(iso7816::StatusWord sw, Bytes data);
  const Bytes& data() const noexcept { return data_; }

 private:
  Bytes data_;
};

class Applet {
 public:
  virtual ~Applet();

  // 5..16 bytes (a 5-byte RID and up to 11 bytes of PIX); fixed for the applet's lifetime.
  virtual Bytes aid() const = 0;
  virtual std::size_t transient_size() const { return 0; }

  // Becoming the selected applet. Returns proprietary data for the FCI's A5 template (empty: no
  // A5). Throwing StatusWordError refuses the selection; then no applet is selected.
  virtual Bytes on_select(AppletContext& context);
  // Another SELECT succeeded (of this or another applet). Transient RAM is zeroed after it.
  virtual void on_deselect(AppletContext& context);
  // One command for this applet, chaining already assembled (CLA without the chaining bit).
  // Returns the response data (SW 9000, or 61xx when longer than Ne) or throws StatusWordError.
  // It must let iso7816 and PowerLost exceptions it did not raise pass through.
  virtual Bytes process(const iso7816::CommandApdu& command, AppletContext& context) = 0;
  // After power-on and warm reset, once memory is mounted and transient RAM is zero.
  virtual void on_power_reset(AppletContext& context);
  // The card lost power (removed from the field): what the applet object holds that a real card
  // keeps in RAM — session keys, loaded private keys — must not outlive it.
  virtual void on_power_off() noexcept {}

 protected:
  Applet() = default;
  Applet(const Applet&) = default;
  Applet& operator=(const Applet&) = default;
};

}  // namespace skillcard::card
