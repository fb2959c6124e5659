// The refusal of a card image at load or power-on: one precise reason per way an image can be
// unusable, so that a corrupt image is refused whole and never half-loaded.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace skillcard::card {

// Page counts an image may have: header + 16 journal pages + at least one applet page, and at
// most 256 because the commit record names each target page in one byte.
inline constexpr std::size_t kMinPages = 18;
inline constexpr std::size_t kMaxPages = 256;

class ImageError : public std::runtime_error {
 public:
  enum class Reason {
    Unreadable,         // the file cannot be opened, read or created
    WrongSize,          // not a whole number of pages, or fewer than 18 / more than 256
    BadMagic,           // page 0 does not start with "SKCI"
    NewerVersion,       // format version above the one this simulator knows
    OlderVersion,       // format version below it, with no migration
    PageCountMismatch,  // header page count differs from the image size (e.g. a truncated file)
    BadCrc,             // header CRC32 does not match the image
    InUse,              // another simulator (process or object) has the image file open
  };

  ImageError(Reason reason, const std::string& detail) : std::runtime_error(detail), reason_(reason) {}
  Reason reason() const noexcept { return reason_; }

 private:
  Reason reason_;
};

// "bad-crc", "newer-version", … for logs and tests.
const char* to_string(ImageError::Reason reason) noexcept;

}  // namespace skillcard::card
