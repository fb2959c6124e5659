// A JSON text written straight into one string: for the answers sent for every request (the
// verified voucher), where building an nlohmann DOM first cost more allocations than the rest
// of the request. Members come out in the order written; strings are escaped per RFC 8259 §7
// (control characters as \u00XX; non-ASCII UTF-8 passes through unchanged).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace skillcard::service::detail {

class JsonWriter {
 public:
  explicit JsonWriter(std::size_t reserve = 512) { out_.reserve(reserve); }

  JsonWriter& begin_object() {
    separate();
    out_ += '{';
    first_ = true;
    return *this;
  }
  JsonWriter& end_object() {
    out_ += '}';
    first_ = false;
    return *this;
  }
  // The member's name; its value follows with the next call.
  JsonWriter& key(std::string_view name) {
    separate();
    string(name);
    out_ += ':';
    first_ = true;  // the value needs no separator
    return *this;
  }
  // Named by kind, not overloaded: an integer must never turn into `true` by overload choice.
  JsonWriter& text(std::string_view s) {
    separate();
    string(s);
    return *this;
  }
  // Bytes as a string of lower-case hex digits (ids, kids: as ledger::lower_hex writes them).
  JsonWriter& hex(std::span<const std::uint8_t> bytes) {
    separate();
    out_ += '"';
    for (const auto b : bytes) {
      out_ += kHex[b >> 4];
      out_ += kHex[b & 0xF];
    }
    out_ += '"';
    return *this;
  }
  JsonWriter& boolean(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
  }
  JsonWriter& number(std::uint64_t n) {
    separate();
    char digits[20];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out_.append(digits, static_cast<std::size_t>(end - digits));
    return *this;
  }
  JsonWriter& numbers(std::span<const std::uint32_t> list) {
    separate();
    out_ += '[';
    first_ = true;
    for (const auto n : list) number(n);
    out_ += ']';
    first_ = false;
    return *this;
  }

  std::string take() && { return std::move(out_); }

 private:
  void separate() {
    if (!first_) out_ += ',';
    first_ = false;
  }
  static constexpr char kHex[] = "0123456789abcdef";

  static bool plain(char c) { return c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20; }

  void string(std::string_view s) {
    out_ += '"';
    // Names and most values need no escape: one append, not a character at a time.
    if (std::all_of(s.begin(), s.end(), plain)) {
      out_.append(s);
      out_ += '"';
      return;
    }
    for (const char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += c;
      } else if (u < 0x20) {
        out_ += "\\u00";
        out_ += kHex[u >> 4];
        out_ += kHex[u & 0xF];
      } else {
        out_ += c;
      }
    }
    out_ += '"';
  }

  std::string out_;
  bool first_ = true;
};

}  // namespace skillcard::service::detail
