// Strict request parsing for the handler (docs/design.md, "HTTP conventions"): JSON objects
// with exactly the allowed members, ids in lower-case hex, binaries in base64url.
#include "request.hpp"

#include <algorithm>
#include <set>
#include <vector>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/schemas/common.hpp"
#include "skillcard/service/encoding.hpp"

namespace skillcard::service::detail {

namespace {

const std::pair<std::string, std::string> kJsonType{"Content-Type", "application/json; charset=utf-8"};
const std::pair<std::string, std::string> kNoStore{"Cache-Control", "no-store"};
constexpr int kMaxDepth = 16;

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::String:
      return "must be a string";
    case Kind::Unsigned:
      return "must be an unsigned integer";
    case Kind::Boolean:
      return "must be true or false";
    case Kind::UnsignedArray:
      return "must be an array of unsigned integers";
    case Kind::Object:
      return "must be a JSON object";
    case Kind::Array:
      return "must be an array";
  }
  return "has the wrong type";
}

bool has_kind(const json& value, Kind kind) {
  switch (kind) {
    case Kind::String:
      return value.is_string();
    case Kind::Unsigned:
      return value.is_number_unsigned();
    case Kind::Boolean:
      return value.is_boolean();
    case Kind::UnsignedArray:
      return value.is_array() &&
             std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_number_unsigned(); });
    case Kind::Object:
      return value.is_object();
    case Kind::Array:
      return value.is_array();
  }
  return false;
}

std::string clip(std::string_view name) { return std::string(name.substr(0, 64)); }

std::string joined(std::string_view path, std::string_view field) { return std::string(path) + std::string(field); }

template <std::size_t N>
std::array<std::uint8_t, N> hex_id(std::string_view text, std::string_view field) {
  std::array<std::uint8_t, N> out{};
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (text.size() != 2 * N) bad_field(field, std::to_string(2 * N) + " lower-case hex digits");
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = nibble(text[2 * i]);
    const int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) bad_field(field, std::to_string(2 * N) + " lower-case hex digits");
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace

Response json_response(int status, const json& body) {
  return json_text_response(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

Response json_text_response(int status, std::string body) {
  return Response{status, std::move(body), {kJsonType, kNoStore}};
}

void refuse(std::string_view code, const Values& values, const Values& extra) {
  throw Refused{Handler::refusal(code, values, extra)};
}

void bad_field(std::string_view field, std::string_view detail) {
  refuse("BAD_REQUEST_FIELD", {{"field", std::string(field)}, {"detail", std::string(detail)}},
         {{"field", std::string(field)}});
}

void check_members(const json& object, std::span<const FieldRule> rules, std::string_view path) {
  for (const auto& item : object.items()) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const auto& name = item.key();
    const auto rule = std::find_if(rules.begin(), rules.end(), [&](const FieldRule& r) { return r.name == name; });
    if (rule == rules.end()) bad_field(joined(path, clip(name)), "unknown field");
    if (!has_kind(item.value(), rule->kind)) bad_field(joined(path, rule->name), kind_name(rule->kind));
  }
  for (const auto& rule : rules) {
    if (rule.required && !object.contains(std::string(rule.name))) bad_field(joined(path, rule.name), "missing");
  }
}

json parse_object(const std::string& body, std::span<const FieldRule> rules, bool empty_ok) {
  if (body.empty() && empty_ok) return json::object();
  json value = parse_strict(body, "body");
  if (!value.is_object()) bad_field("body", "must be a JSON object");
  check_members(value, rules, {});
  return value;
}

json parse_strict(std::string_view text, std::string_view source) {
  // Duplicate members (RFC 8259 leaves them undefined; nlohmann keeps the last): the names seen
  // in each open object, flat, with where each object's names begin. Request objects are small,
  // so a linear search beats a set per object.
  struct Seen {
    std::vector<std::string> names;
    std::vector<std::size_t> starts;
    std::string problem;
    std::string problem_field;
  } seen;
  seen.problem_field = source;
  // One captured pointer: std::function keeps it without allocating.
  const json::parser_callback_t callback = [state = &seen](int depth, json::parse_event_t event, json& parsed) {
    auto& s = *state;
    if (!s.problem.empty()) return true;
    if (depth > kMaxDepth) s.problem = "nested more than " + std::to_string(kMaxDepth) + " levels deep";
    switch (event) {
      case json::parse_event_t::object_start:
        s.starts.push_back(s.names.size());
        break;
      case json::parse_event_t::object_end:
        if (!s.starts.empty()) {
          s.names.resize(s.starts.back());
          s.starts.pop_back();
        }
        break;
      case json::parse_event_t::key:
        if (!s.starts.empty() && parsed.is_string()) {
          const auto& name = parsed.get_ref<const std::string&>();
          const auto begin = s.names.begin() + static_cast<std::ptrdiff_t>(s.starts.back());
          if (std::find(begin, s.names.end(), name) != s.names.end()) {
            s.problem = "duplicate member";
            s.problem_field = clip(name);
          } else {
            s.names.push_back(name);
          }
        }
        break;
      default:
        break;
    }
    return true;
  };
  json value = json::parse(text, callback, /*allow_exceptions=*/false);
  if (value.is_discarded()) bad_field(source, "not well-formed JSON");
  if (!seen.problem.empty()) bad_field(seen.problem_field, seen.problem);
  return value;
}

std::optional<std::string_view> sole_plain_string(std::string_view body, std::string_view name) noexcept {
  std::size_t at = 0;
  const auto space = [&] {
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t' || body[at] == '\n' || body[at] == '\r')) ++at;
  };
  const auto take = [&](char c) {
    space();
    if (at >= body.size() || body[at] != c) return false;
    ++at;
    return true;
  };
  // A string token without escapes: its characters as they stand, or nullopt.
  const auto plain = [&]() -> std::optional<std::string_view> {
    if (!take('"')) return std::nullopt;
    const auto start = at;
    while (at < body.size() && body[at] != '"') {
      const auto c = static_cast<unsigned char>(body[at]);
      if (c < 0x20 || c > 0x7e || c == '\\') return std::nullopt;
      ++at;
    }
    if (at >= body.size()) return std::nullopt;
    return body.substr(start, at++ - start);
  };
  if (!take('{')) return std::nullopt;
  const auto key = plain();
  if (!key || *key != name || !take(':')) return std::nullopt;
  const auto value = plain();
  if (!value || !take('}')) return std::nullopt;
  space();
  if (at != body.size()) return std::nullopt;
  return value;
}

const std::string& text(const json& body, std::string_view field) {
  return body.at(std::string(field)).get_ref<const std::string&>();
}

const std::string& free_text(const json& body, std::string_view field, std::size_t max_bytes) {
  const auto& value = text(body, field);
  if (value.empty() || value.size() > max_bytes) {
    bad_field(field, "1 to " + std::to_string(max_bytes) + " bytes of text");
  }
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) bad_field(field, "no control characters (line breaks, tabs, NUL)");
  }
  return value;
}

std::uint64_t number(const json& body, std::string_view field, std::uint64_t min, std::uint64_t max,
                     std::string_view path) {
  const auto value = body.at(std::string(field)).get<std::uint64_t>();
  if (value < min || value > max) {
    bad_field(joined(path, field), "must be from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return value;
}

std::optional<std::uint64_t> optional_number(const json& body, std::string_view field, std::uint64_t min,
                                             std::uint64_t max) {
  if (!body.contains(std::string(field))) return std::nullopt;
  return number(body, field, min, max);
}

bool is_card_number(std::string_view text) noexcept {
  return text.size() == 10 && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string card_number(const json& body, std::string_view field, std::string_view path) {
  const auto& value = body.at(std::string(field));
  if (!value.is_string() || !is_card_number(value.get_ref<const std::string&>())) {
    bad_field(joined(path, field), "a card number of 10 digits");
  }
  return value.get<std::string>();
}

std::string citizen_id(const json& body, std::string_view field) {
  const auto& value = text(body, field);
  if (!crypto::citizen_id_problem(value).empty()) refuse("CITIZEN_ID_INVALID", {}, {{"field", std::string(field)}});
  return crypto::canonical_citizen_id(value);
}

schemas::VoucherId voucher_id_from_hex(std::string_view text, std::string_view field) { return hex_id<8>(text, field); }
schemas::HolderRef holder_ref_from_hex(std::string_view text, std::string_view field) {
  return hex_id<16>(text, field);
}
schemas::Nonce nonce_from_hex(std::string_view text, std::string_view field) { return hex_id<17>(text, field); }

Bytes base64url_field(const json& body, std::string_view field, std::size_t max_bytes, std::string_view path) {
  return base64url_text(text(body, field), field, max_bytes, path);
}

Bytes base64url_text(std::string_view value, std::string_view field, std::size_t max_bytes, std::string_view path) {
  if (value.size() > (max_bytes * 4 + 2) / 3) {
    bad_field(joined(path, field), "larger than " + std::to_string(max_bytes) + " bytes");
  }
  auto bytes = base64url_decode(value);
  if (!bytes) bad_field(joined(path, field), "not base64url without padding");
  return std::move(*bytes);
}

std::uint32_t occupation(const json& body, std::string_view field) {
  try {
    return schemas::parse_occupation(text(body, field));
  } catch (const std::invalid_argument&) {
    bad_field(field, "an occupation code d-dd-dd-dd");
  }
}

ledger::Actor actor_of(const Request& request) {
  const auto it = request.headers.find(kClerkHeader);
  if (it == request.headers.end() || it->second.empty()) {
    if (request.terminal.role == Role::Kiosk) return {request.terminal.id, "self-service"};
    bad_field("Skillcard-Clerk", "required for every write: the operator logged in at the terminal");
  }
  const auto& clerk = it->second;
  if (clerk.size() > 64 || !std::all_of(clerk.begin(), clerk.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    bad_field("Skillcard-Clerk", "1-64 printable ASCII characters without spaces");
  }
  return {request.terminal.id, clerk};
}

}  // namespace skillcard::service::detail
