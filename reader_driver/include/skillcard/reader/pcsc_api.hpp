// The seam between the reader driver and pcsc-lite: exactly the SCard* calls the driver makes,
// with PC/SC's return codes passed through unchanged. The real implementation calls libpcsclite;
// tests replace it with a fake that replays APDU scripts and reader events without pcscd.
// PC/SC's own headers stay out of ours: handles are integers, codes are PC/SC's numbers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::reader {

using PcscCode = std::int64_t;  // PC/SC's LONG return code, e.g. 0x8010000C (SCARD_E_NO_SMARTCARD)
using PcscHandle = std::uintptr_t;

// The codes the driver acts on (values from pcsclite.h; a test checks they match).
namespace code {
inline constexpr PcscCode kSuccess = 0;
inline constexpr PcscCode kCancelled = 0x80100002;
inline constexpr PcscCode kInvalidHandle = 0x80100003;
inline constexpr PcscCode kUnknownReader = 0x80100009;
inline constexpr PcscCode kTimeout = 0x8010000A;
inline constexpr PcscCode kSharingViolation = 0x8010000B;
inline constexpr PcscCode kNoSmartcard = 0x8010000C;
inline constexpr PcscCode kCommError = 0x80100013;
inline constexpr PcscCode kNotTransacted = 0x80100016;
inline constexpr PcscCode kReaderUnavailable = 0x80100017;
inline constexpr PcscCode kNoService = 0x8010001D;
inline constexpr PcscCode kServiceStopped = 0x8010001E;
inline constexpr PcscCode kNoReadersAvailable = 0x8010002E;
inline constexpr PcscCode kUnresponsiveCard = 0x80100066;
inline constexpr PcscCode kUnpoweredCard = 0x80100067;
inline constexpr PcscCode kResetCard = 0x80100068;
inline constexpr PcscCode kRemovedCard = 0x80100069;
}  // namespace code

// SCARD_STATE_* bits used by the event monitor.
namespace state {
inline constexpr std::uint32_t kUnaware = 0x0000;
inline constexpr std::uint32_t kChanged = 0x0002;
inline constexpr std::uint32_t kUnknown = 0x0004;
inline constexpr std::uint32_t kUnavailable = 0x0008;
inline constexpr std::uint32_t kEmpty = 0x0010;
inline constexpr std::uint32_t kPresent = 0x0020;
inline constexpr std::uint32_t kMute = 0x0200;
}  // namespace state

enum class Protocol : std::uint32_t { T0 = 0x0001, T1 = 0x0002, Any = 0x0003 };
enum class Disposition : std::uint32_t { Leave = 0x0000, Reset = 0x0001 };

struct ReaderState {
  std::string reader;
  std::uint32_t current_state = state::kUnaware;
  std::uint32_t event_state = 0;
  Bytes atr;
};

class PcscApi {
 public:
  virtual ~PcscApi() = default;
  virtual PcscCode establish_context(PcscHandle* context) = 0;
  virtual PcscCode release_context(PcscHandle context) = 0;
  virtual PcscCode list_readers(PcscHandle context, std::vector<std::string>* readers) = 0;
  virtual PcscCode get_status_change(PcscHandle context, std::uint32_t timeout_ms,
                                     std::vector<ReaderState>& states) = 0;
  virtual PcscCode cancel(PcscHandle context) = 0;
  // Always shared mode (other applications may use the reader between our transactions).
  virtual PcscCode connect(PcscHandle context, const std::string& reader, Protocol protocols, PcscHandle* card,
                           Protocol* active) = 0;
  virtual PcscCode reconnect(PcscHandle card, Protocol protocols, Disposition init, Protocol* active) = 0;
  virtual PcscCode disconnect(PcscHandle card, Disposition disposition) = 0;
  virtual PcscCode begin_transaction(PcscHandle card) = 0;
  virtual PcscCode end_transaction(PcscHandle card, Disposition disposition) = 0;
  // `response` is resized to what the card answered (up to 65538 bytes).
  virtual PcscCode transmit(PcscHandle card, Protocol protocol, ByteView command, Bytes* response) = 0;
  virtual PcscCode status(PcscHandle card, Bytes* atr) = 0;
};

// libpcsclite (talks to pcscd over its socket; honours PCSCLITE_CSOCK_NAME).
std::shared_ptr<PcscApi> system_pcsc();

// "SCARD_E_NO_SMARTCARD (0x8010000C): ..." for messages.
std::string describe_code(PcscCode code);

}  // namespace skillcard::reader
