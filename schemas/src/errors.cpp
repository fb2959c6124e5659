// DecodeError text.
#include "skillcard/schemas/errors.hpp"

namespace skillcard::schemas {

std::string_view to_string(DecodeErrorKind kind) noexcept {
  switch (kind) {
    case DecodeErrorKind::TooLarge:
      return "too large";
    case DecodeErrorKind::Truncated:
      return "truncated";
    case DecodeErrorKind::TrailingBytes:
      return "trailing bytes";
    case DecodeErrorKind::IndefiniteLength:
      return "indefinite length";
    case DecodeErrorKind::NonCanonical:
      return "not deterministic CBOR";
    case DecodeErrorKind::DuplicateKey:
      return "duplicate key";
    case DecodeErrorKind::Malformed:
      return "malformed";
    case DecodeErrorKind::WrongType:
      return "wrong type";
    case DecodeErrorKind::OutOfRange:
      return "out of range";
    case DecodeErrorKind::UnknownKey:
      return "unknown key";
    case DecodeErrorKind::MissingField:
      return "missing field";
    case DecodeErrorKind::NewerFormat:
      return "newer format";
    case DecodeErrorKind::WrongTag:
      return "wrong tag";
    case DecodeErrorKind::ProfileViolation:
      return "outside the skillcard COSE profile";
  }
  return "unknown";
}

DecodeError::DecodeError(DecodeErrorKind kind, std::string field, const std::string& detail)
    : std::runtime_error(std::string(to_string(kind)) + (field.empty() ? "" : ": " + field) +
                         (detail.empty() ? "" : ": " + detail)),
      kind_(kind),
      field_(std::move(field)) {}

}  // namespace skillcard::schemas
