// The contract's JSON bodies (contract-v1.md) for every call, and refusal bodies.
#include "skillcard/host/json_service_client.hpp"

#include <nlohmann/json.hpp>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/host/encoding.hpp"

namespace skillcard::host {

using nlohmann::json;

namespace {

[[noreturn]] void not_contract(const std::string& what) {
  throw ServiceUnavailable("the service's answer is not contract v1: " + what);
}

const json& field(const json& j, const char* name) {
  if (!j.is_object() || !j.contains(name)) not_contract(std::string("missing \"") + name + "\"");
  return j.at(name);
}

std::string str(const json& j, const char* name) {
  const auto& v = field(j, name);
  if (!v.is_string()) not_contract(std::string("\"") + name + "\" is not a string");
  return v.get<std::string>();
}

std::uint64_t uint(const json& j, const char* name) {
  const auto& v = field(j, name);
  if (!v.is_number_unsigned()) not_contract(std::string("\"") + name + "\" is not an unsigned integer");
  return v.get<std::uint64_t>();
}

std::uint32_t u32(const json& j, const char* name) {
  const auto v = uint(j, name);
  if (v > 0xFFFFFFFFu) not_contract(std::string("\"") + name + "\" out of range");
  return static_cast<std::uint32_t>(v);
}

Bytes b64(const json& j, const char* name) {
  try {
    return base64url_decode(str(j, name), name);
  } catch (const std::invalid_argument& e) {
    not_contract(e.what());
  }
}

template <std::size_t N>
std::array<std::uint8_t, N> hexid(const std::string& text, const char* name) {
  try {
    return fixed_from_hex<N>(text, name);
  } catch (const std::invalid_argument& e) {
    not_contract(e.what());
  }
}
template <std::size_t N>
std::array<std::uint8_t, N> hexid(const json& j, const char* name) {
  return hexid<N>(str(j, name), name);
}

std::vector<std::uint32_t> u32_list(const json& j, const char* name) {
  std::vector<std::uint32_t> out;
  if (!j.contains(name)) return out;
  const auto& v = j.at(name);
  if (!v.is_array()) not_contract(std::string("\"") + name + "\" is not an array");
  for (const auto& e : v) {
    if (!e.is_number_unsigned() || e.get<std::uint64_t>() > 0xFFFFFFFFu) not_contract(std::string(name) + " item");
    out.push_back(e.get<std::uint32_t>());
  }
  return out;
}

std::vector<std::string> str_list(const json& j, const char* name) {
  std::vector<std::string> out;
  if (!j.contains(name)) return out;
  const auto& v = j.at(name);
  if (!v.is_array()) not_contract(std::string("\"") + name + "\" is not an array");
  for (const auto& e : v) {
    if (!e.is_string()) not_contract(std::string(name) + " item");
    out.push_back(e.get<std::string>());
  }
  return out;
}

Message message_of(const json& j) {
  Message m;
  if (j.contains("message") && j.at("message").is_object()) {
    const auto& msg = j.at("message");
    if (msg.contains("zh-CN") && msg.at("zh-CN").is_string()) m.zh_cn = msg.at("zh-CN").get<std::string>();
    if (msg.contains("en") && msg.at("en").is_string()) m.en = msg.at("en").get<std::string>();
  }
  return m;
}

VoucherInfo voucher_info(const json& j) {
  VoucherInfo v;
  v.id = hexid<8>(j, "id");
  v.issuer = u32(j, "issuer");
  v.holder = hexid<16>(j, "holder");
  v.programme = u32(j, "programme");
  v.occupation = str(j, "occupation");
  v.level = u32(j, "level");
  v.fund = u32(j, "fund");
  v.face_value_fen = uint(j, "face_value_fen");
  v.planned_hours = u32(j, "planned_hours");
  v.planned_online_hours = u32(j, "planned_online_hours");
  v.eligible_regions = u32_list(j, "eligible_regions");
  v.eligible_providers = u32_list(j, "eligible_providers");
  v.issued_at = uint(j, "issued_at");
  v.not_before = uint(j, "not_before");
  v.expires_at = uint(j, "expires_at");
  return v;
}

Redemption redemption_of(const json& j) {
  Redemption r;
  r.seq = uint(j, "seq");
  r.voucher_id = hexid<8>(j, "voucher_id");
  r.card = str(j, "card");
  r.counter = u32(j, "counter");
  r.site = u32(j, "site");
  r.nonce = str(j, "nonce");
  r.terminal_time = uint(j, "terminal_time");
  r.server_time = uint(j, "server_time");
  r.classroom_hours = u32(j, "classroom_hours");
  r.online_hours = u32(j, "online_hours");
  r.face_value_fen = uint(j, "face_value_fen");
  r.receipt_id = str(j, "receipt_id");
  if (j.contains("reversed_at")) {
    r.reversed_at = uint(j, "reversed_at");
    r.reversal_reason = str(j, "reversal_reason");
  }
  return r;
}

CardRecord card_record(const json& j) {
  CardRecord c;
  c.card = str(j, "card");
  c.region = u32(j, "region");
  c.holder = hexid<16>(j, "holder");
  c.state = str(j, "state");
  if (j.contains("replaced_by") && j.at("replaced_by").is_string())
    c.replaced_by = j.at("replaced_by").get<std::string>();
  return c;
}

json proof_json(const CardProof& p) { return json::parse(p.to_json()); }

json parse_body(const HttpResponse& r) {
  try {
    return json::parse(r.body);
  } catch (const json::exception&) {
    not_contract("HTTP " + std::to_string(r.status) + " body is not JSON");
  }
}

json submission_json(const ReceiptSubmission& s) {
  json j = {{"voucher_id", lower_hex(s.voucher_id)}, {"receipt", base64url_encode(s.receipt)}};
  if (s.card) j["card"] = *s.card;
  return j;
}

}  // namespace

ServiceRefusal::ServiceRefusal(int http_status, std::string code, std::vector<std::string> rules, Message message,
                               std::vector<Violation> violations, std::string field, std::string detail, Extra extra)
    : Refusal(std::move(code), {}, "HTTP " + std::to_string(http_status) + (detail.empty() ? "" : ": " + detail)),
      http_status_(http_status),
      rules_(std::move(rules)),
      message_(std::move(message)),
      violations_(std::move(violations)),
      field_(std::move(field)),
      detail_(std::move(detail)),
      extra_(std::move(extra)) {}

std::string receipt_id(ByteView receipt) {
  const auto d = crypto::OpenSsl::sha256(receipt);
  return lower_hex(ByteView(d).first(8));
}

JsonServiceClient::JsonServiceClient(std::shared_ptr<HttpTransport> transport, std::string clerk)
    : transport_(std::move(transport)), clerk_(std::move(clerk)) {}

HttpResponse JsonServiceClient::call(const std::string& method, const std::string& target, const std::string& body,
                                     bool write, const std::string& proof_header) {
  HttpRequest request{method, target, {}, body};
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  if (write && !clerk_.empty()) request.headers.emplace_back("Skillcard-Clerk", clerk_);
  if (!proof_header.empty()) request.headers.emplace_back("Skillcard-Card-Proof", proof_header);
  auto response = transport_->send(request);
  if (response.status >= 400) {
    json j;
    try {
      j = json::parse(response.body);
    } catch (const json::exception&) {
      // Not ours (a proxy, a crash): nothing was decided.
      throw ServiceUnavailable("HTTP " + std::to_string(response.status) + " without a refusal body");
    }
    if (!j.is_object() || !j.contains("error") || !j.at("error").is_string())
      throw ServiceUnavailable("HTTP " + std::to_string(response.status) + " without a refusal code");
    std::vector<Violation> violations;
    if (j.contains("violations") && j.at("violations").is_array()) {
      for (const auto& v : j.at("violations")) {
        if (!v.is_object() || !v.contains("error") || !v.at("error").is_string()) continue;
        violations.push_back({v.at("error").get<std::string>(), str_list(v, "rules"), message_of(v)});
      }
    }
    const auto opt = [&](const char* name) {
      return j.contains(name) && j.at(name).is_string() ? j.at(name).get<std::string>() : std::string();
    };
    // 5xx: the service could not decide (storage, registry, policy busy) and changed nothing, so
    // the caller retries, queues or falls back offline — never treats it as a final refusal.
    if (response.status >= 500) {
      const auto detail = opt("detail");
      throw ServiceUnavailable("HTTP " + std::to_string(response.status) + " " + j.at("error").get<std::string>() +
                               (detail.empty() ? std::string() : " (" + detail + ")"));
    }
    ServiceRefusal::Extra extra;
    for (const auto& [name, value] : j.items()) {
      if (value.is_string() && name != "error" && name != "field" && name != "detail") {
        extra.emplace(name, value.get<std::string>());
      }
    }
    throw ServiceRefusal(response.status, j.at("error").get<std::string>(), str_list(j, "rules"), message_of(j),
                         std::move(violations), opt("field"), opt("detail"), std::move(extra));
  }
  if (response.status < 200 || response.status >= 300)
    throw ServiceUnavailable("unexpected HTTP status " + std::to_string(response.status));
  return response;
}

NonceGrant JsonServiceClient::create_nonce() {
  const auto j = parse_body(call("POST", "/v1/nonces", "{}", true));
  NonceGrant g;
  g.nonce = hexid<17>(j, "nonce");
  g.issued_at = uint(j, "issued_at");
  g.expires_at = uint(j, "expires_at");
  if (j.contains("sync_window_hours")) {
    const auto hours = uint(j, "sync_window_hours");
    if (hours < 1 || hours > 24 * 30) not_contract("sync_window_hours " + std::to_string(hours) + " is not 1-720");
    g.sync_window_seconds = hours * 3600;
  }
  return g;
}

CardRecord JsonServiceClient::register_card(ByteView certificate, std::string_view citizen_id) {
  const json body = {{"certificate", base64url_encode(certificate)}, {"citizen_id", std::string(citizen_id)}};
  return card_record(parse_body(call("POST", "/v1/cards", body.dump(), true)));
}

CardRecord JsonServiceClient::get_card(std::string_view number) {
  return card_record(parse_body(call("GET", "/v1/cards/" + std::string(number), "", false)));
}

CardRecord JsonServiceClient::check_holder(std::string_view citizen_id, const CardProof& proof) {
  const json body = {{"citizen_id", std::string(citizen_id)}, {"card_proof", proof_json(proof)}};
  return card_record(parse_body(call("POST", "/v1/cards/" + proof.card + "/holder-check", body.dump(), true)));
}

IssuedVoucher JsonServiceClient::issue_voucher(const IssueRequest& r) {
  json body = {{"card", r.card},
               {"citizen_id", r.citizen_id},
               {"programme", r.programme},
               {"occupation", r.occupation},
               {"level", r.level},
               {"fund", r.fund},
               {"planned_hours", r.planned_hours},
               {"planned_online_hours", r.planned_online_hours},
               {"card_proof", proof_json(r.card_proof)}};
  if (r.eligible_regions) body["eligible_regions"] = *r.eligible_regions;
  if (r.eligible_providers) body["eligible_providers"] = *r.eligible_providers;
  const auto j = parse_body(call("POST", "/v1/vouchers", body.dump(), true));
  IssuedVoucher v;
  v.voucher_id = hexid<8>(j, "voucher_id");
  v.token = b64(j, "token");
  v.state = str(j, "state");
  v.voucher = voucher_info(field(j, "voucher"));
  return v;
}

namespace {
VoucherStateAnswer state_answer(const json& j) { return {hexid<8>(j, "voucher_id"), str(j, "state")}; }
}  // namespace

VoucherStateAnswer JsonServiceClient::mark_written(const VoucherId& id) {
  return state_answer(parse_body(call("POST", "/v1/vouchers/" + lower_hex(id) + "/written", "", true)));
}

VoucherStateAnswer JsonServiceClient::void_voucher(const VoucherId& id, std::string_view reason) {
  const json body = {{"reason", std::string(reason)}};
  return state_answer(parse_body(call("POST", "/v1/vouchers/" + lower_hex(id) + "/void", body.dump(), true)));
}

VerifiedToken JsonServiceClient::verify_token(ByteView token) {
  const json body = {{"token", base64url_encode(token)}};
  const auto j = parse_body(call("POST", "/v1/vouchers/verify", body.dump(), false));
  VerifiedToken v;
  const auto& valid = field(j, "valid");
  if (!valid.is_boolean()) not_contract("\"valid\" is not a boolean");
  v.valid = valid.get<bool>();
  v.kid = str(j, "kid");
  v.state = str(j, "state");
  v.voucher = voucher_info(field(j, "voucher"));
  return v;
}

RedemptionAnswer JsonServiceClient::submit_redemption(const ReceiptSubmission& s) {
  const auto r = call("POST", "/v1/redemptions", submission_json(s).dump(), true);
  const auto j = parse_body(r);
  return {r.status == 201, redemption_of(field(j, "redemption"))};
}

std::vector<SyncItemResult> JsonServiceClient::sync_redemptions(std::span<const ReceiptSubmission> items) {
  if (items.empty() || items.size() > 100) throw std::invalid_argument("sync takes 1..100 receipts");
  json list = json::array();
  for (const auto& s : items) list.push_back(submission_json(s));
  const json body = {{"receipts", list}};
  const auto j = parse_body(call("POST", "/v1/redemptions/sync", body.dump(), true));
  const auto& results = field(j, "results");
  if (!results.is_array()) not_contract("\"results\" is not an array");
  std::vector<SyncItemResult> out;
  for (const auto& r : results) {
    SyncItemResult item;
    item.voucher_id = hexid<8>(r, "voucher_id");
    item.status = static_cast<int>(u32(r, "status"));
    if (item.accepted()) {
      item.redemption = redemption_of(field(r, "redemption"));
    } else {
      item.error = str(r, "error");
      item.rules = str_list(r, "rules");
      item.message = message_of(r);
    }
    out.push_back(std::move(item));
  }
  return out;
}

RecordedCertificate JsonServiceClient::record_certificate(const CertificateRequest& r) {
  const json body = {
      {"card", r.card},   {"citizen_id", r.citizen_id}, {"kind", r.kind},     {"occupation", r.occupation},
      {"level", r.level}, {"issuer", r.issuer},         {"number", r.number}, {"date", r.date}};
  const auto j = parse_body(call("POST", "/v1/certificates", body.dump(), true));
  return {b64(j, "record"), str(j, "salt"), b64(j, "digest"), u32(j, "digest_version")};
}

LostAnswer JsonServiceClient::report_lost(const LostRequest& r) {
  json body = {{"citizen_id", r.citizen_id}};
  if (r.replacement) body["replacement"] = *r.replacement;
  const auto j = parse_body(call("POST", "/v1/cards/" + r.card + "/lost", body.dump(), true));
  LostAnswer a;
  a.card = str(j, "card");
  a.state = str(j, "state");
  if (j.contains("replacement") && j.at("replacement").is_string())
    a.replacement = j.at("replacement").get<std::string>();
  if (j.contains("moved")) {
    if (!j.at("moved").is_array()) not_contract("\"moved\" is not an array");
    for (const auto& m : j.at("moved"))
      a.moved.push_back({hexid<8>(m, "from"), hexid<8>(m, "voucher_id"), b64(m, "token")});
  }
  return a;
}

HolderVouchers JsonServiceClient::holder_vouchers(const HolderRef& holder, const CardProof& proof) {
  const auto j =
      parse_body(call("GET", "/v1/holders/" + lower_hex(holder) + "/vouchers", "", false, proof.header_value()));
  HolderVouchers h;
  h.holder = hexid<16>(j, "holder");
  const auto& list = field(j, "vouchers");
  if (!list.is_array()) not_contract("\"vouchers\" is not an array");
  for (const auto& v : list) {
    h.vouchers.push_back(
        {hexid<8>(v, "voucher_id"), str(v, "state"), b64(v, "token"), voucher_info(field(v, "voucher")), {}});
    if (v.contains("moved_from")) h.vouchers.back().moved_from = hexid<8>(v, "moved_from");
  }
  return h;
}

Portfolio JsonServiceClient::holder_portfolio(const HolderRef& holder, const CardProof& proof) {
  const auto j =
      parse_body(call("GET", "/v1/holders/" + lower_hex(holder) + "/portfolio", "", false, proof.header_value()));
  Portfolio p;
  p.holder = hexid<16>(j, "holder");
  p.digest_version = u32(j, "digest_version");
  if (!field(j, "digest").is_null()) p.digest = b64(j, "digest");
  const auto& records = field(j, "records");
  if (!records.is_array()) not_contract("\"records\" is not an array");
  for (const auto& r : records)
    p.records.push_back({b64(r, "record"), u32(r, "digest_version"), uint(r, "recorded_at")});
  return p;
}

TrustListAnswer JsonServiceClient::trust_list() {
  const auto j = parse_body(call("GET", "/v1/trust-list", "", false));
  return {b64(j, "trust_list"), uint(j, "sequence"), uint(j, "issued_at"), uint(j, "next_update")};
}

Revocations JsonServiceClient::revocations() {
  const auto j = parse_body(call("GET", "/v1/revocations", "", false));
  Revocations r;
  for (const auto& v : str_list(j, "vouchers")) r.vouchers.push_back(hexid<8>(v, "vouchers"));
  r.cards = str_list(j, "cards");
  r.terminals = str_list(j, "terminals");
  return r;
}

}  // namespace skillcard::host
