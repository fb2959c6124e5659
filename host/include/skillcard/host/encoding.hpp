// Encodings of the service API (docs/design.md, "HTTP conventions"): base64url without padding
// for binary structures, lower-case hex for ids, and the fixed-size ids the host handles.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::host {

std::string base64url_encode(ByteView bytes);
// Strict: alphabet A-Z a-z 0-9 - _, no padding, no non-zero trailing bits. Throws
// std::invalid_argument naming `what` otherwise.
Bytes base64url_decode(std::string_view text, std::string_view what = "base64url");

std::string lower_hex(ByteView bytes);
// Exactly N bytes of hex (either case); std::invalid_argument naming `what` otherwise.
template <std::size_t N>
std::array<std::uint8_t, N> fixed_from_hex(std::string_view text, std::string_view what) {
  Bytes b;
  try {
    b = from_hex(text);
  } catch (const HexError&) {
    throw std::invalid_argument(std::string(what) + ": not hex");
  }
  if (b.size() != N || text.size() != 2 * N)
    throw std::invalid_argument(std::string(what) + ": expected " + std::to_string(2 * N) + " hex digits");
  std::array<std::uint8_t, N> out{};
  std::copy(b.begin(), b.end(), out.begin());
  return out;
}

// Big-endian helpers for card answers.
std::uint32_t read_be32(ByteView bytes, std::size_t offset);
void append_be(Bytes& out, std::uint64_t value, std::size_t width);

}  // namespace skillcard::host
