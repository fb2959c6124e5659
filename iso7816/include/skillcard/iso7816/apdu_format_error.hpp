// The error for bytes that are not a well-formed command or response APDU.
#pragma once

#include <stdexcept>
#include <string>

#include "skillcard/iso7816/status_word.hpp"

namespace skillcard::iso7816 {

// Carries the status word a card answers to such bytes (normally 6700 wrong length), so the
// card dispatcher can reply without knowing why parsing failed; reason() is for logs.
class ApduFormatError : public std::invalid_argument {
 public:
  ApduFormatError(StatusWord sw, const std::string& reason)
      : std::invalid_argument("malformed APDU: " + reason), sw_(sw), reason_(reason) {}
  StatusWord sw() const noexcept { return sw_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  StatusWord sw_;
  std::string reason_;
};

}  // namespace skillcard::iso7816
