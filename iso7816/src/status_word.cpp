// Status word families and the description table used in traces and error messages.
#include "skillcard/iso7816/status_word.hpp"

#include <array>
#include <utility>

#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::iso7816 {

namespace {

// SW2 of a 61xx / 6Cxx word counts bytes in one byte, so 256 wraps to 00, as Le does in
// short form (ISO/IEC 7816-4:2005 §5.1.3, Table 5).
std::size_t count_from_sw2(std::uint8_t b) { return b == 0 ? 256 : b; }

StatusWord count_family(std::uint8_t family, std::size_t count, const char* what) {
  if (count < 1 || count > 256) {
    throw std::invalid_argument(std::string(what) + ": count must be 1..256, got " + std::to_string(count));
  }
  return make_sw(family, static_cast<std::uint8_t>(count & 0xFF));
}

// ISO/IEC 7816-4:2005 Table 6, plus the families of Table 5 handled in describe().
constexpr std::pair<std::uint16_t, const char*> kDescriptions[] = {
    {0x9000, "success"},
    {0x6200, "warning, non-volatile memory unchanged"},
    {0x6281, "part of returned data may be corrupted"},
    {0x6282, "end of file or record reached before reading Ne bytes"},
    {0x6283, "selected file deactivated"},
    {0x6284, "file control information not formatted according to 5.3.3"},
    {0x6285, "selected file in termination state"},
    {0x6286, "no input data available from a sensor on the card"},
    {0x6300, "warning, non-volatile memory changed"},
    {0x6381, "file filled up by the last write"},
    {0x6400, "execution error, non-volatile memory unchanged"},
    {0x6401, "immediate response required by the card"},
    {0x6500, "execution error, non-volatile memory changed"},
    {0x6581, "memory failure"},
    {0x6700, "wrong length"},
    {0x6800, "functions in CLA not supported"},
    {0x6881, "logical channel not supported"},
    {0x6882, "secure messaging not supported"},
    {0x6883, "last command of the chain expected"},
    {0x6884, "command chaining not supported"},
    {0x6900, "command not allowed"},
    {0x6981, "command incompatible with file structure"},
    {0x6982, "security status not satisfied"},
    {0x6983, "authentication method blocked"},
    {0x6984, "reference data not usable"},
    {0x6985, "conditions of use not satisfied"},
    {0x6986, "command not allowed, no current EF"},
    {0x6987, "expected secure messaging data objects missing"},
    {0x6988, "incorrect secure messaging data objects"},
    {0x6A00, "wrong parameters P1-P2"},
    {0x6A80, "incorrect parameters in the command data field"},
    {0x6A81, "function not supported"},
    {0x6A82, "file or application not found"},
    {0x6A83, "record not found"},
    {0x6A84, "not enough memory space in the file"},
    {0x6A85, "Nc inconsistent with TLV structure"},
    {0x6A86, "incorrect parameters P1-P2"},
    {0x6A87, "Nc inconsistent with parameters P1-P2"},
    {0x6A88, "referenced data or reference data not found"},
    {0x6A89, "file already exists"},
    {0x6A8A, "DF name already exists"},
    {0x6B00, "wrong parameters P1-P2"},
    {0x6D00, "instruction code not supported or invalid"},
    {0x6E00, "class not supported"},
    {0x6F00, "no precise diagnosis"},
};

}  // namespace

std::optional<std::size_t> bytes_available(StatusWord sw) noexcept {
  if (sw1(sw) != 0x61) return std::nullopt;
  return count_from_sw2(sw2(sw));
}

std::optional<std::size_t> corrected_le(StatusWord sw) noexcept {
  if (sw1(sw) != 0x6C) return std::nullopt;
  return count_from_sw2(sw2(sw));
}

std::optional<int> retries_left(StatusWord sw) noexcept {
  if (sw1(sw) != 0x63 || (sw2(sw) & 0xF0) != 0xC0) return std::nullopt;
  return sw2(sw) & 0x0F;
}

StatusWord make_bytes_available(std::size_t count) { return count_family(0x61, count, "make_bytes_available"); }

StatusWord make_wrong_le(std::size_t exact_ne) { return count_family(0x6C, exact_ne, "make_wrong_le"); }

StatusWord make_verification_failed(int tries_left) {
  if (tries_left < 0 || tries_left > 15) {
    throw std::invalid_argument("make_verification_failed: tries_left must be 0..15, got " +
                                std::to_string(tries_left));
  }
  return make_sw(0x63, static_cast<std::uint8_t>(0xC0 | tries_left));
}

std::string to_string(StatusWord sw) {
  const std::array<std::uint8_t, 2> raw{sw1(sw), sw2(sw)};
  return to_hex(raw);
}

std::string describe(StatusWord sw) {
  const std::string hex = to_string(sw);
  if (auto n = bytes_available(sw)) {
    return hex + " success, " + std::to_string(*n) + " more bytes available";
  }
  if (auto n = corrected_le(sw)) {
    return hex + " wrong Le, exact length is " + std::to_string(*n);
  }
  if (auto n = retries_left(sw)) {
    return hex + " verification failed, " + std::to_string(*n) + (*n == 1 ? " try" : " tries") + " left";
  }
  for (const auto& [code, text] : kDescriptions) {
    if (code == static_cast<std::uint16_t>(sw)) return hex + " " + text;
  }
  return "unknown status '" + hex + "'";
}

StatusWordError::StatusWordError(StatusWord sw) : std::runtime_error(describe(sw)), sw_(sw) {}

StatusWordError::StatusWordError(StatusWord sw, const std::string& detail)
    : std::runtime_error(describe(sw) + ": " + detail), sw_(sw) {}

}  // namespace skillcard::iso7816
