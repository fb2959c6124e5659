// base64url (RFC 4648 §5, no padding), lower-case hex and big-endian helpers.
#include "skillcard/host/encoding.hpp"

#include <stdexcept>

#include "skillcard/schemas/base64url.hpp"

namespace skillcard::host {

std::string base64url_encode(ByteView bytes) { return schemas::base64url_encode(bytes); }

Bytes base64url_decode(std::string_view text, std::string_view what) {
  auto bytes = schemas::base64url_decode(text);
  if (!bytes) throw std::invalid_argument(std::string(what) + ": not base64url without padding");
  return std::move(*bytes);
}

std::string lower_hex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const auto b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0x0F];
  }
  return out;
}

std::uint32_t read_be32(ByteView bytes, std::size_t offset) {
  if (offset + 4 > bytes.size()) throw std::out_of_range("read_be32 past the end of the answer");
  return (std::uint32_t{bytes[offset]} << 24) | (std::uint32_t{bytes[offset + 1]} << 16) |
         (std::uint32_t{bytes[offset + 2]} << 8) | bytes[offset + 3];
}

void append_be(Bytes& out, std::uint64_t value, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * (width - 1 - i))));
}

}  // namespace skillcard::host
