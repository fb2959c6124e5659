// The service's text encodings: base64url from schemas (one implementation for every part).
#pragma once

#include "skillcard/schemas/base64url.hpp"

namespace skillcard::service {

using schemas::base64url_decode;
using schemas::base64url_encode;

}  // namespace skillcard::service
