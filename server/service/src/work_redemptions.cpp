// Redemptions (site): the card-signed receipt is checked here — its signature by the RECEIPT
// key of the card's registered certificate, its voucher and site, the policy at redemption
// (P1, P8, P9, P12, P15) — and recorded exactly once by the ledger, which also owns the nonce
// and (card, counter) rules (docs/design.md, "Receipt", "Site redemption").
#include "skillcard/crypto/backend.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/service/encoding.hpp"
#include "work.hpp"

namespace skillcard::service::detail {

namespace {

constexpr std::size_t kMaxSyncBatch = 100;
constexpr FieldRule kReceiptRules[] = {
    {"voucher_id", Kind::String, true}, {"receipt", Kind::String, true}, {"card", Kind::String, false}};

std::string receipt_id(ByteView receipt) {
  const auto digest = crypto::OpenSsl::sha256(receipt);
  return ledger::lower_hex(ByteView(digest).first(8));
}

json redemption_json(const ledger::RedemptionRecord& r, std::uint32_t face_value_fen) {
  json out{{"seq", r.seq},
           {"voucher_id", ledger::lower_hex(r.voucher)},
           {"card", r.card},
           {"counter", r.counter},
           {"site", r.site},
           {"nonce", ledger::lower_hex(r.nonce)},
           {"terminal_time", r.terminal_time},
           {"server_time", r.server_time},
           {"classroom_hours", r.classroom_hours},
           {"online_hours", r.online_hours},
           {"face_value_fen", face_value_fen},
           {"receipt_id", receipt_id(r.receipt)}};
  // A reversed redemption stands in the ledger but is not paid: the same receipt sent again
  // (a retry after a lost answer) must not read as a redemption that will be settled.
  if (r.reversed_at) {
    out["reversed_at"] = *r.reversed_at;
    out["reversal_reason"] = r.reversal_reason;
  }
  return out;
}

policy::RedemptionRequest::State policy_state(ledger::VoucherState state) {
  using S = ledger::VoucherState;
  using P = policy::RedemptionRequest::State;
  switch (state) {
    case S::Issued:
      return P::Issued;
    case S::Written:
      return P::Written;
    case S::Redeemed:
      return P::Redeemed;
    case S::Voided:
    case S::Moved:
      return P::Voided;
    case S::Expired:
      return P::Expired;
  }
  return P::Voided;
}

}  // namespace

Response Work::redemptions() {
  const auto body = parse_object(request_.body, kReceiptRules, false);
  return redeem_one(body, /*by_sync=*/false, {});
}

Response Work::sync() {
  static constexpr FieldRule rules[] = {{"receipts", Kind::Array, true}};
  const auto body = parse_object(request_.body, rules, false);
  const auto& receipts = body.at("receipts");
  if (receipts.empty() || receipts.size() > kMaxSyncBatch) {
    bad_field("receipts", "1 to " + std::to_string(kMaxSyncBatch) + " receipts");
  }
  (void)actor_of(request_);  // a batch without a clerk is refused as a whole
  json results = json::array();
  for (std::size_t i = 0; i < receipts.size(); ++i) {
    const auto& item = receipts[i];
    const auto path = "receipts[" + std::to_string(i) + "].";
    Response one;
    try {
      if (!item.is_object()) bad_field("receipts[" + std::to_string(i) + "]", "must be a JSON object");
      one = redeem_one(item, /*by_sync=*/true, path);
    } catch (Refused& refused) {
      one = std::move(refused.response);
    }
    auto result = json::parse(one.body);
    json entry{{"status", one.status}};
    if (item.is_object() && item.contains("voucher_id") && item["voucher_id"].is_string()) {
      entry["voucher_id"] = item["voucher_id"].get<std::string>().substr(0, 16);
    }
    for (auto& [name, value] : result.items()) entry[name] = value;
    results.push_back(std::move(entry));
  }
  return json_response(200, json{{"results", std::move(results)}});
}

Response Work::redeem_one(const json& item, bool by_sync, std::string_view path) {
  check_members(item, kReceiptRules, path);
  const auto actor = actor_of(request_);
  const auto id = voucher_id_from_hex(text(item, "voucher_id"), std::string(path) + "voucher_id");
  // P12: a redemption stands only on the card's own receipt made at that moment; a site that
  // has none (the holder left before the card answered) cannot record one after the fact.
  if (text(item, "receipt").empty()) refuse("P12_NO_CARD_PROOF", {}, {{"field", std::string(path) + "receipt"}});
  const auto receipt = base64url_field(item, "receipt", schemas::kMaxReceipt, path);
  const auto at = now();

  // 1. format
  std::optional<schemas::Signed<schemas::ReceiptClaims>> decoded;
  try {
    decoded = schemas::decode_receipt(receipt);
  } catch (const schemas::DecodeError& e) {
    if (e.kind() == schemas::DecodeErrorKind::NewerFormat) refuse_token("TOKEN_NEWER_FORMAT", "format");
    refuse_token("TOKEN_MALFORMED", "format", {{"detail", e.what()}});
  }
  const auto& claims = decoded->claims;
  // 2. what it is for: this voucher, this site
  if (claims.voucher != id) refuse("RECEIPT_WRONG_VOUCHER");
  if (!request_.terminal.site || claims.site != *request_.terminal.site) refuse("RECEIPT_WRONG_SITE");
  // 3. the voucher and the card that signed
  const auto voucher = ctx_.ledger->voucher(id);
  if (!voucher) refuse("VOUCHER_UNKNOWN");
  const std::string card_text = item.contains("card") ? card_number(item, "card", path) : voucher->card;
  if (card_text.empty()) bad_field(std::string(path) + "card", "missing: the voucher names no card");
  const auto card = ctx_.ledger->card(card_text);
  if (!card) refuse("CARD_UNKNOWN");
  const auto cert = certificate_claims(*card);
  const auto receipt_key = crypto::OpenSsl::decompress(cert.receipt_key);
  if (decoded->kid != crypto::kid_of<crypto::OpenSsl>(receipt_key))
    refuse("RECEIPT_BAD_SIGNATURE", {}, {{"check", "kid"}});
  const auto verdict = decoded->envelope.verify(
      [&](ByteView tbs, const crypto::EcSignature& sig) { return crypto::OpenSsl::verify(receipt_key, tbs, sig); });
  if (!verdict.ok()) refuse("RECEIPT_BAD_SIGNATURE", {}, {{"check", "signature"}});

  // 4. the identical receipt again is the same record; another one for a redeemed voucher is not
  if (const auto existing = ctx_.ledger->redemption(id)) {
    if (existing->receipt == receipt) {
      return json_response(200, json{{"redemption", redemption_json(*existing, voucher->claims.face_value_fen)}});
    }
    refuse("P15_ALREADY_REDEEMED");
  }
  if (card->state == ledger::CardState::Lost) refuse("CARD_REVOKED");

  // 5. the policy at redemption
  require_policy();
  const bool offline = by_sync || claims.nonce_kind() == schemas::NonceKind::Terminal;
  policy::RedemptionRequest ask;
  ask.voucher = voucher->claims;
  ask.rules_region = voucher->issuing_region;
  ask.state = policy_state(voucher->state);
  ask.site_region = request_.terminal.region;
  ask.site_provider = claims.site;
  ask.classroom_hours = claims.classroom_hours;
  ask.online_hours = claims.online_hours;
  ask.offline = offline;
  ask.terminal_time = claims.terminal_time;
  ask.now = at;
  if (offline) {
    const auto around = ctx_.ledger->receipt_times_around(card_text, claims.counter);
    ask.previous_receipt_time = around.latest_below;
    ask.next_receipt_time = around.earliest_above;
  }
  const auto decision = policy::decide_redemption(*ctx_.policy, ask, history(voucher->claims.holder));
  if (!decision.allowed()) refuse_violations(decision.violations);

  // 6. exactly once, by the ledger
  ledger::RedemptionRequest record{receipt, card_text, at, actor,
                                   offline ? ledger::NonceRule::Unseen : ledger::NonceRule::Live};
  const auto outcome = ctx_.ledger->record_redemption(record);
  using S = ledger::RecordStatus;
  switch (outcome.status) {
    case S::Recorded:
      return json_response(201, json{{"redemption", redemption_json(*outcome.record, voucher->claims.face_value_fen)}});
    case S::AlreadyRecordedSame:
      return json_response(200, json{{"redemption", redemption_json(*outcome.record, voucher->claims.face_value_fen)}});
    default:
      refuse(ledger::refusal_code(outcome.status));
  }
}

}  // namespace skillcard::service::detail
