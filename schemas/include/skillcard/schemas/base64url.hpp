// base64url without padding (RFC 4648 §5) for binary structures in JSON (docs/design.md,
// "HTTP conventions"): one implementation for the service, the host and the tools.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "skillcard/crypto/types.hpp"

namespace skillcard::schemas {

std::string base64url_encode(ByteView bytes);
// Strict: alphabet A-Z a-z 0-9 - _, no padding, no whitespace, no non-zero trailing bits.
std::optional<Bytes> base64url_decode(std::string_view text);

}  // namespace skillcard::schemas
