// ISO/IEC 7816-4 status words (SW1 SW2): names, family helpers (61xx, 63Cx, 6Cxx), readable
// descriptions, and the exception an applet throws to answer a command with a status word.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace skillcard::iso7816 {

// A plain uint16 underneath, so a status word the card invents survives a round trip even
// when it has no name here. Values from ISO/IEC 7816-4:2005 §5.1.3, Tables 5 and 6.
enum class StatusWord : std::uint16_t {
  Success = 0x9000,
  BytesAvailable = 0x6100,  // family base: SW2 = bytes still available, see bytes_available()
  WarningNvUnchanged = 0x6200,
  VerificationFailed = 0x63C0,  // family base: low nibble = tries left, see retries_left()
  MemoryFailure = 0x6581,
  WrongLength = 0x6700,
  LogicalChannelNotSupported = 0x6881,
  SecureMessagingNotSupported = 0x6882,
  LastCommandOfChainExpected = 0x6883,
  CommandChainingNotSupported = 0x6884,
  SecurityStatusNotSatisfied = 0x6982,
  AuthenticationMethodBlocked = 0x6983,
  ReferenceDataNotUsable = 0x6984,
  ConditionsNotSatisfied = 0x6985,
  CommandNotAllowedNoEf = 0x6986,
  ExpectedSmDataObjectsMissing = 0x6987,
  IncorrectSmDataObjects = 0x6988,
  WrongData = 0x6A80,
  FunctionNotSupported = 0x6A81,
  FileNotFound = 0x6A82,
  RecordNotFound = 0x6A83,
  NotEnoughMemory = 0x6A84,
  IncorrectP1P2 = 0x6A86,
  LcInconsistentWithP1P2 = 0x6A87,
  ReferencedDataNotFound = 0x6A88,
  WrongP1P2 = 0x6B00,
  WrongLe = 0x6C00,  // family base: SW2 = exact Ne to resend with, see corrected_le()
  InsNotSupported = 0x6D00,
  ClaNotSupported = 0x6E00,
  NoPreciseDiagnosis = 0x6F00,
};

constexpr std::uint8_t sw1(StatusWord sw) noexcept {
  return static_cast<std::uint8_t>(static_cast<std::uint16_t>(sw) >> 8);
}
constexpr std::uint8_t sw2(StatusWord sw) noexcept {
  return static_cast<std::uint8_t>(static_cast<std::uint16_t>(sw) & 0xFF);
}
constexpr StatusWord make_sw(std::uint8_t first, std::uint8_t second) noexcept {
  return static_cast<StatusWord>(static_cast<std::uint16_t>((first << 8) | second));
}

// Only 9000. 61xx also means "processed" but the caller still has to fetch the rest with
// GET RESPONSE, so treating it as plain success would silently truncate data.
constexpr bool is_success(StatusWord sw) noexcept { return sw == StatusWord::Success; }

// 61xx: how many response bytes GET RESPONSE can still fetch; SW2 00 stands for 256.
std::optional<std::size_t> bytes_available(StatusWord sw) noexcept;
// 6Cxx: the exact Ne the command must be resent with; SW2 00 stands for 256.
std::optional<std::size_t> corrected_le(StatusWord sw) noexcept;
// 63Cx: verification failed, x tries left (0..15).
std::optional<int> retries_left(StatusWord sw) noexcept;

// Builders for the families above; std::invalid_argument outside 1..256 (count) or 0..15 (tries).
StatusWord make_bytes_available(std::size_t count);
StatusWord make_wrong_le(std::size_t exact_ne);
StatusWord make_verification_failed(int tries_left);

// Four upper-case hex digits, e.g. "6A82".
std::string to_string(StatusWord sw);
// e.g. "6A82 file or application not found"; unnamed values: "unknown status '6A99'".
std::string describe(StatusWord sw);

// Thrown by applet code to end a command with this status word; the card dispatcher catches it
// and answers SW only. what() is the description plus the optional detail, for logs.
class StatusWordError : public std::runtime_error {
 public:
  explicit StatusWordError(StatusWord sw);
  StatusWordError(StatusWord sw, const std::string& detail);
  StatusWord sw() const noexcept { return sw_; }

 private:
  StatusWord sw_;
};

}  // namespace skillcard::iso7816
