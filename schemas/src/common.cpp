// Shared helpers: programme check, occupation codes, diagnostic notation.
#include "skillcard/schemas/common.hpp"

#include <cstdio>

#include "cbor_strict.hpp"

namespace skillcard::schemas {

bool is_known(Programme p) noexcept {
  const auto v = static_cast<unsigned>(p);
  return (v >= 1 && v <= 11) || v == 99;
}

std::uint32_t parse_occupation(std::string_view code) {
  // d-dd-dd-dd: the national occupational classification (e.g. 4-04-05-05).
  if (code.size() != 10 || code[1] != '-' || code[4] != '-' || code[7] != '-') {
    throw std::invalid_argument("occupation code must look like 4-04-05-05, got '" + std::string(code) + "'");
  }
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < code.size(); ++i) {
    if (i == 1 || i == 4 || i == 7) continue;
    if (code[i] < '0' || code[i] > '9') {
      throw std::invalid_argument("occupation code must look like 4-04-05-05, got '" + std::string(code) + "'");
    }
    v = v * 10 + static_cast<std::uint32_t>(code[i] - '0');
  }
  if (v < 1000000)
    throw std::invalid_argument("occupation code major group must be 1-9, got '" + std::string(code) + "'");
  return v;
}

std::string format_occupation(std::uint32_t code) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u-%02u-%02u-%02u", code / 1000000, code / 10000 % 100, code / 100 % 100, code % 100);
  return buf;
}

namespace {

void diag(const cbor_item_t* item, std::string& out) {
  switch (cbor_typeof(item)) {
    case CBOR_TYPE_UINT:
      out += std::to_string(cbor_get_int(item));
      break;
    case CBOR_TYPE_NEGINT:
      out += "-" + std::to_string(cbor_get_int(item) + 1);
      break;
    case CBOR_TYPE_BYTESTRING:
      out += "h'" + to_hex(ByteView(cbor_bytestring_handle(item), cbor_bytestring_length(item))) + "'";
      break;
    case CBOR_TYPE_STRING: {
      out += '"';
      const auto* p = reinterpret_cast<const char*>(cbor_string_handle(item));
      for (std::size_t i = 0; i < cbor_string_length(item); ++i) {
        if (p[i] == '"' || p[i] == '\\') out += '\\';
        out += p[i];
      }
      out += '"';
      break;
    }
    case CBOR_TYPE_ARRAY: {
      out += '[';
      for (std::size_t i = 0; i < cbor_array_size(item); ++i) {
        if (i) out += ", ";
        diag(cbor_array_handle(item)[i], out);
      }
      out += ']';
      break;
    }
    case CBOR_TYPE_MAP: {
      out += '{';
      const auto* pairs = cbor_map_handle(item);
      for (std::size_t i = 0; i < cbor_map_size(item); ++i) {
        if (i) out += ", ";
        diag(pairs[i].key, out);
        out += ": ";
        diag(pairs[i].value, out);
      }
      out += '}';
      break;
    }
    case CBOR_TYPE_TAG:  // the validator allows tags only at the top, which load() takes off
      out += "<tag>";
      break;
    case CBOR_TYPE_FLOAT_CTRL:
      out += cbor_is_null(item) ? "null" : cbor_is_undef(item) ? "undefined" : cbor_get_bool(item) ? "true" : "false";
      break;
  }
}

}  // namespace

std::string to_diagnostic(ByteView encoded) {
  std::optional<std::uint64_t> tag;
  const auto item = cbor::load(encoded, {kMaxTrustList, 16}, "CBOR item", &tag);
  std::string out;
  diag(item.get(), out);
  return tag ? std::to_string(*tag) + "(" + out + ")" : out;
}

}  // namespace skillcard::schemas
