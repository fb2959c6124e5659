// Decode errors: every way an encoded structure can be refused, with the field it concerns.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace skillcard::schemas {

enum class DecodeErrorKind {
  TooLarge,          // input over the structure's size cap
  Truncated,         // a declared length or count runs past the end of the input
  TrailingBytes,     // bytes left after the item
  IndefiniteLength,  // indefinite-length strings, arrays or maps
  NonCanonical,      // not deterministic CBOR (RFC 8949 §4.2.1): long-form heads, unsorted keys
  DuplicateKey,      // the same map key twice
  Malformed,         // not well-formed CBOR (reserved values, bad UTF-8, nesting too deep)
  WrongType,         // a field of another CBOR type than the format says
  OutOfRange,        // a value outside what the format allows
  UnknownKey,        // a key this format version does not define
  MissingField,      // a required key is absent
  NewerFormat,       // a format version this decoder does not know yet
  WrongTag,          // a CBOR tag other than the expected one
  ProfileViolation,  // valid COSE, but outside skillcard's stricter profile
};

std::string_view to_string(DecodeErrorKind kind) noexcept;

class DecodeError : public std::runtime_error {
 public:
  DecodeError(DecodeErrorKind kind, std::string field, const std::string& detail);
  DecodeErrorKind kind() const noexcept { return kind_; }
  // Which structure and field, e.g. "voucher token claim -6 (face value)"; empty for framing.
  const std::string& field() const noexcept { return field_; }

 private:
  DecodeErrorKind kind_;
  std::string field_;
};

}  // namespace skillcard::schemas
