// Helpers shared by the structure codecs (private to schemas/).
#pragma once

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cbor_strict.hpp"
#include "skillcard/schemas/common.hpp"

namespace skillcard::schemas::detail {

// A semantic check of a claims struct; the message names the structure, key and field.
// `detail` is text or a function that makes it: checks run on every decoded token, so a
// message that needs formatting is built only when the check fails.
template <class Detail>
inline void require(bool ok, std::string_view structure, std::int64_t key, std::string_view name,
                    const Detail& detail) {
  if (ok) return;
  std::string text;
  if constexpr (std::is_invocable_v<const Detail&>) {
    text = detail();
  } else {
    text = detail;
  }
  throw std::invalid_argument(std::string(structure) + " key " + std::to_string(key) + " (" + std::string(name) +
                              "): " + text);
}

inline std::string range(std::uint64_t v, std::uint64_t lo, std::uint64_t hi) {
  return std::to_string(v) + " not in " + std::to_string(lo) + ".." + std::to_string(hi);
}

inline bool ascending_unique(const std::vector<std::uint32_t>& v) {
  return std::adjacent_find(v.begin(), v.end(), [](auto a, auto b) { return a >= b; }) == v.end();
}

// Runs the struct's check() on decoded claims, turning its refusal into a DecodeError.
template <class Claims>
void check_decoded(const Claims& claims) {
  try {
    check(claims);
  } catch (const std::invalid_argument& e) {
    throw DecodeError(DecodeErrorKind::OutOfRange, "", e.what());
  }
}

template <std::size_t N>
std::array<std::uint8_t, N> to_array(const Bytes& b) {
  std::array<std::uint8_t, N> out{};
  std::memcpy(out.data(), b.data(), N);
  return out;
}

template <class T>
T narrow(std::uint64_t v) {
  return static_cast<T>(v);  // callers bound v to T's range through MapReader first
}

// The envelope, the profile and the claims, in that order.
template <class Claims, class DecodeClaims>
Signed<Claims> decode_signed(ByteView encoded, std::size_t max_size, const std::optional<ContentType>& content_type,
                             std::string_view what, DecodeClaims decode_claims) {
  if (encoded.size() > max_size) {
    throw DecodeError(DecodeErrorKind::TooLarge, std::string(what),
                      std::to_string(encoded.size()) + " bytes, at most " + std::to_string(max_size));
  }
  auto envelope = CoseSign1::decode(encoded, max_size);
  const auto kid = envelope.require_skillcard_profile(content_type, what);
  auto claims = decode_claims(envelope.payload());
  return Signed<Claims>{std::move(envelope), kid, std::move(claims)};
}

}  // namespace skillcard::schemas::detail
