// Response APDUs (ISO/IEC 7816-4:2005 §5.1): response data followed by the status word.
#pragma once

#include <cstddef>
#include <cstdint>

#include "skillcard/iso7816/apdu_format_error.hpp"
#include "skillcard/iso7816/bytes.hpp"
#include "skillcard/iso7816/status_word.hpp"

namespace skillcard::iso7816 {

class ResponseApdu {
 public:
  // Nr can never exceed the largest Ne a command can ask for.
  static constexpr std::size_t kMaxNr = 65536;

  // Status only (e.g. 6982, or 9000 after VERIFY).
  explicit ResponseApdu(StatusWord sw) : sw_(sw) {}
  // Throws std::invalid_argument ("data") when data is longer than kMaxNr.
  ResponseApdu(ByteView data, StatusWord sw);

  // The last two bytes are SW1 SW2, everything before is data. Throws ApduFormatError when
  // fewer than 2 bytes arrive or the data is longer than kMaxNr.
  static ResponseApdu parse(ByteView response);

  Bytes encode() const;

  const Bytes& data() const noexcept { return data_; }
  StatusWord sw() const noexcept { return sw_; }
  std::uint8_t sw1() const noexcept { return iso7816::sw1(sw_); }
  std::uint8_t sw2() const noexcept { return iso7816::sw2(sw_); }
  bool is_success() const noexcept { return iso7816::is_success(sw_); }

  friend bool operator==(const ResponseApdu&, const ResponseApdu&) = default;

 private:
  Bytes data_;
  StatusWord sw_;
};

}  // namespace skillcard::iso7816
