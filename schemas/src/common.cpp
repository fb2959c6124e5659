// Shared helpers: programme check, occupation codes, diagnostic notation.
#include "skillcard/schemas/common.hpp"

#include <cstdint>
#include <utility>

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
  // d-dd-dd-dd without printf: every verify answer carries one.
  std::string out = std::to_string(code / 1000000);
  for (const std::uint32_t part : {code / 10000 % 100, code / 100 % 100, code % 100}) {
    out += '-';
    out += static_cast<char>('0' + part / 10);
    out += static_cast<char>('0' + part % 10);
  }
  return out;
}

namespace {

void diag(const cbor::Node* item, std::string& out) {
  switch (item->major) {
    case cbor::Major::Uint:
      out += std::to_string(item->value);
      break;
    case cbor::Major::Negint:  // -1 - value; the most negative, -2^64, does not fit a uint64
      out += item->value == UINT64_MAX ? std::string("-18446744073709551616") : "-" + std::to_string(item->value + 1);
      break;
    case cbor::Major::Bytes:
      out += "h'" + to_hex(cbor::as_bytes(item, {})) + "'";
      break;
    case cbor::Major::Text: {
      out += '"';
      // RFC 8949 §8: text strings as JSON strings, control characters escaped.
      for (const char c : cbor::as_text(item, {})) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
          out += '\\';
          out += c;
        } else if (c == '\n') {
          out += "\\n";
        } else if (c == '\r') {
          out += "\\r";
        } else if (c == '\t') {
          out += "\\t";
        } else if (u < 0x20 || u == 0x7F) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xF];
        } else {
          out += c;
        }
      }
      out += '"';
      break;
    }
    case cbor::Major::Array: {
      out += '[';
      const char* sep = "";
      for (const auto* element : cbor::as_array(item, {})) {
        out += std::exchange(sep, ", ");
        diag(element, out);
      }
      out += ']';
      break;
    }
    case cbor::Major::Map: {
      out += '{';
      const char* sep = "";
      for (const auto& [key, value] : cbor::as_map(item, {})) {
        out += std::exchange(sep, ", ");
        diag(key, out);
        out += ": ";
        diag(value, out);
      }
      out += '}';
      break;
    }
    case cbor::Major::Tag:  // the validator allows tags only at the top, which load() takes off
      out += "<tag>";
      break;
    case cbor::Major::Simple:
      out += item->value == cbor::kSimpleNull        ? "null"
             : item->value == cbor::kSimpleUndefined ? "undefined"
             : item->value == cbor::kSimpleTrue      ? "true"
                                                     : "false";
      break;
  }
}

}  // namespace

std::string to_diagnostic(ByteView encoded) {
  std::optional<std::uint64_t> tag;
  const auto item = cbor::load(encoded, {kMaxTrustList, 16}, "CBOR item", &tag);
  std::string out;
  diag(item.root(), out);
  return tag ? std::to_string(*tag) + "(" + out + ")" : out;
}

}  // namespace skillcard::schemas
