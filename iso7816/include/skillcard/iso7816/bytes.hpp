// Byte strings shared by every layer: owning Bytes, borrowed ByteView, hex conversion.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace skillcard {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Thrown when text that should be hex is not; names the offending position.
class HexError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Upper-case hex without separators, e.g. "9000".
std::string to_hex(ByteView bytes);

// Accepts upper or lower case; ignores ASCII spaces and colons so that traces can be pasted.
// Throws HexError on an odd digit count or a non-hex character.
Bytes from_hex(std::string_view hex);

inline ByteView as_bytes(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

inline Bytes concat(std::initializer_list<ByteView> parts) {
  Bytes out;
  std::size_t n = 0;
  for (auto p : parts) n += p.size();
  out.reserve(n);
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace skillcard
