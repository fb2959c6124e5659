// Internal to the handler: strict request parsing and the answers shared by every endpoint.
// A check that fails throws Refused with the finished response; Handler::handle turns it into
// the answer, so endpoint code reads as the sequence of checks docs/api.yaml describes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "skillcard/ledger/types.hpp"
#include "skillcard/service/handler.hpp"

namespace skillcard::service::detail {

using json = nlohmann::json;
using Values = std::map<std::string, std::string, std::less<>>;

// The answer, decided before the endpoint finished (a refusal, usually).
struct Refused {
  Response response;
};

Response json_response(int status, const json& body);
// `body` is JSON text already (written by JsonWriter).
Response json_text_response(int status, std::string body);
[[noreturn]] void refuse(std::string_view code, const Values& values = {}, const Values& extra = {});
[[noreturn]] void bad_field(std::string_view field, std::string_view detail);

enum class Kind { String, Unsigned, Boolean, UnsignedArray, Object, Array };
struct FieldRule {
  std::string_view name;
  Kind kind;
  bool required;
};

// The body as a JSON object holding exactly the fields `rules` allow (each of its kind, the
// required ones present); otherwise BAD_REQUEST_FIELD naming the first wrong field. An empty
// body counts as {} when `empty_ok`. Depth, duplicate members and syntax are checked too.
json parse_object(const std::string& body, std::span<const FieldRule> rules, bool empty_ok);
// Any JSON value, as strictly as parse_object reads a body (syntax, depth, duplicate members);
// BAD_REQUEST_FIELD names `source` (e.g. a header) or the duplicated member.
json parse_strict(std::string_view text, std::string_view source);
// The value of a body that is exactly `{"<name>": "<value>"}` (JSON whitespace allowed) with a
// value that needs no unescaping: printable ASCII without `"` or `\`. Anything else gives
// nullopt, and the caller parses the body in full (parse_object), which names what is wrong.
// Such a body means the same to both, so this is only a shortcut for the hottest request.
std::optional<std::string_view> sole_plain_string(std::string_view body, std::string_view name) noexcept;
// The same member checks for a nested object; `path` prefixes field names ("card_proof.").
void check_members(const json& object, std::span<const FieldRule> rules, std::string_view path);

// Typed field readers for members parse_object already checked the kind of.
const std::string& text(const json& body, std::string_view field);
// Free text a person typed (a certificate's issuer and number, a reason): 1 to `max_bytes` bytes
// and no control character (U+0000-U+001F, U+007F): a NUL would be cut off by PostgreSQL and kept
// by SQLite — two different records for one — and line breaks forge lines in exports and logs.
const std::string& free_text(const json& body, std::string_view field, std::size_t max_bytes);
std::uint64_t number(const json& body, std::string_view field, std::uint64_t min, std::uint64_t max,
                     std::string_view path = {});
std::optional<std::uint64_t> optional_number(const json& body, std::string_view field, std::uint64_t min,
                                             std::uint64_t max);

// Field formats of docs/design.md, "HTTP conventions".
std::string card_number(const json& body, std::string_view field, std::string_view path = {});
std::string citizen_id(const json& body, std::string_view field);  // CITIZEN_ID_INVALID
schemas::VoucherId voucher_id_from_hex(std::string_view text, std::string_view field);
schemas::HolderRef holder_ref_from_hex(std::string_view text, std::string_view field);
schemas::Nonce nonce_from_hex(std::string_view text, std::string_view field);
Bytes base64url_field(const json& body, std::string_view field, std::size_t max_bytes, std::string_view path = {});
Bytes base64url_text(std::string_view value, std::string_view field, std::size_t max_bytes, std::string_view path = {});
std::uint32_t occupation(const json& body, std::string_view field);
bool is_card_number(std::string_view text) noexcept;

// Every write names the clerk logged in at the terminal; a kiosk has none (self-service).
ledger::Actor actor_of(const Request& request);

}  // namespace skillcard::service::detail
