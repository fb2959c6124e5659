// Encodings of the HTTP conventions (docs/design.md): base64url without padding for binary
// structures, lower-case hex for ids.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::service {

std::string base64url_encode(ByteView bytes);
// Strict: alphabet A-Z a-z 0-9 - _, no padding, no whitespace, no non-zero trailing bits.
std::optional<Bytes> base64url_decode(std::string_view text);

}  // namespace skillcard::service
