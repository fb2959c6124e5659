// Cards and holders: registering a personalised card, a lost card and its replacement (the
// same subsidies moved under new tokens), certificates and the signed portfolio digest (P14),
// and the holder reads a kiosk or counter may make only with the card's proof (docs/design.md,
// "Card proof and nonces", "Portfolio digest").
#include <algorithm>
#include <chrono>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/service/encoding.hpp"
#include "work.hpp"

namespace skillcard::service::detail {

namespace {

constexpr std::string_view kCardProofHeader = "skillcard-card-proof";
constexpr std::string_view kAuthLabel = "skillcard/card-auth/v1";
constexpr std::size_t kSaltBytes = 16;

json card_json(const ledger::CardRecord& card) {
  json out{{"card", card.number},
           {"region", card.region},
           {"holder", ledger::lower_hex(card.holder)},
           {"state", ledger::to_string(card.state)}};
  if (card.replaced_by) out["replaced_by"] = *card.replaced_by;
  return out;
}

// YYYY-MM-DD → days since 1970-01-01.
std::uint32_t date_days(const json& body, std::string_view field) {
  const auto& value = text(body, field);
  // Digits exactly where the pattern has them: no sign, space or other spelling of a number.
  const auto digit = [&](std::size_t i) { return value[i] >= '0' && value[i] <= '9'; };
  const auto number = [&](std::size_t at, std::size_t n) {
    unsigned v = 0;
    for (std::size_t i = at; i < at + n; ++i) v = v * 10 + static_cast<unsigned>(value[i] - '0');
    return v;
  };
  if (value.size() != 10 || value[4] != '-' || value[7] != '-' ||
      !(digit(0) && digit(1) && digit(2) && digit(3) && digit(5) && digit(6) && digit(8) && digit(9))) {
    bad_field(field, "a date YYYY-MM-DD");
  }
  const int y = static_cast<int>(number(0, 4));
  const unsigned m = number(5, 2);
  const unsigned d = number(8, 2);
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  if (!ymd.ok() || y < 1970) bad_field(field, "not a calendar date from 1970 on");
  return static_cast<std::uint32_t>(std::chrono::sys_days{ymd}.time_since_epoch().count());
}

}  // namespace

// --- shared checks -------------------------------------------------------------------------

ledger::CardRecord Work::active_card(std::string_view number) const {
  auto card = ctx_.ledger->card(number);
  if (!card) refuse("CARD_UNKNOWN");
  if (card->state != ledger::CardState::Active) {
    refuse("CARD_REVOKED", {}, {{"detail", std::string(ledger::to_string(card->state))}});
  }
  return std::move(*card);
}

schemas::HolderRef Work::holder_of(std::string_view citizen_id) const {
  if (!ctx_.holder_ref) refuse("SERVICE_UNAVAILABLE", {{"detail", "holder reference key"}});
  return ctx_.holder_ref(citizen_id);
}

void Work::require_holder(const ledger::CardRecord& card, const schemas::HolderRef& holder) const {
  if (card.holder != holder) refuse("P13_REGISTRY_MISMATCH", {}, {{"detail", "the card belongs to another person"}});
}

schemas::CardCertificateClaims Work::certificate_claims(const ledger::CardRecord& card) {
  // Verified against the card CA when the card was registered; the ledger keeps it unchanged.
  return schemas::decode_card_certificate(card.certificate).claims;
}

CardProof Work::parse_card_proof(const json& object, std::string_view path) const {
  static constexpr FieldRule rules[] = {{"card", Kind::String, true},
                                        {"nonce", Kind::String, true},
                                        {"counter", Kind::Unsigned, true},
                                        {"pin_verified", Kind::Boolean, true},
                                        {"signature", Kind::String, true}};
  check_members(object, rules, path);
  CardProof proof;
  proof.card = card_number(object, "card", path);
  proof.nonce = nonce_from_hex(text(object, "nonce"), std::string(path) + "nonce");
  proof.counter = static_cast<std::uint32_t>(number(object, "counter", 0, 0xFFFFFFFFULL, path));
  proof.pin_verified = object.at("pin_verified").get<bool>();
  const auto signature = base64url_field(object, "signature", 64, path);
  if (signature.size() != 64) bad_field(std::string(path) + "signature", "64 bytes r||s");
  std::copy(signature.begin(), signature.end(), proof.signature.begin());
  return proof;
}

ledger::CardRecord Work::check_card_proof(const CardProof& proof, bool consume, std::string_view used_by) const {
  const auto invalid = [](std::string detail) { refuse("CARD_PROOF_INVALID", {}, {{"detail", std::move(detail)}}); };
  auto card = ctx_.ledger->card(proof.card);
  if (!card) invalid("card not registered");
  if (card->state != ledger::CardState::Active) refuse("CARD_REVOKED");
  if (proof.nonce[0] != static_cast<std::uint8_t>(schemas::NonceKind::Server)) invalid("not a service nonce");
  const auto status = ctx_.ledger->check_nonce(proof.nonce, request_.terminal.id, now());
  if (status != ledger::NonceStatus::Ok) invalid("nonce " + std::string(ledger::to_string(status)));

  Bytes message(kAuthLabel.begin(), kAuthLabel.end());
  message.push_back(0x00);
  message.insert(message.end(), proof.card.begin(), proof.card.end());
  for (int shift = 24; shift >= 0; shift -= 8) message.push_back(static_cast<std::uint8_t>(proof.counter >> shift));
  message.push_back(proof.pin_verified ? 0x01 : 0x00);
  message.insert(message.end(), proof.nonce.begin(), proof.nonce.end());
  const auto auth_key = crypto::OpenSsl::decompress(certificate_claims(*card).auth_key);
  if (!crypto::OpenSsl::verify(auth_key, message, proof.signature)) invalid("signature");

  if (consume) consume_proof_nonce(proof, used_by);
  return std::move(*card);
}

void Work::consume_proof_nonce(const CardProof& proof, std::string_view used_by) const {
  const auto used = ctx_.ledger->consume_nonce(proof.nonce, request_.terminal.id, used_by, actor_of(request_), now());
  if (used != ledger::NonceStatus::Ok) {
    refuse("CARD_PROOF_INVALID", {}, {{"detail", "nonce " + std::string(ledger::to_string(used))}});
  }
}

// --- cards ---------------------------------------------------------------------------------

Response Work::register_card() {
  static constexpr FieldRule rules[] = {{"certificate", Kind::String, true}, {"citizen_id", Kind::String, true}};
  const auto body = parse_object(request_.body, rules, false);
  const auto actor = actor_of(request_);
  const auto certificate = base64url_field(body, "certificate", schemas::kMaxCardCertificate);
  const auto citizen = citizen_id(body, "citizen_id");
  std::optional<schemas::Signed<schemas::CardCertificateClaims>> decoded;
  try {
    decoded = schemas::decode_card_certificate(certificate);
  } catch (const schemas::DecodeError& e) {
    if (e.kind() == schemas::DecodeErrorKind::NewerFormat) refuse_token("TOKEN_NEWER_FORMAT", "format");
    refuse_token("TOKEN_MALFORMED", "format", {{"detail", e.what()}});
  }
  const auto at = now();
  const auto key = ctx_.trust->find(decoded->kid, schemas::TrustRole::CardCa, std::nullopt, at);
  if (!key) refuse_token("TOKEN_UNKNOWN_KID", "kid", {{"detail", "kid " + ledger::lower_hex(decoded->kid)}});
  const auto verdict = decoded->envelope.verify(
      [&](ByteView tbs, const crypto::EcSignature& sig) { return crypto::OpenSsl::verify(*key->key, tbs, sig); });
  if (!verdict.ok()) refuse_token("TOKEN_BAD_SIGNATURE", "signature");
  const auto& claims = decoded->claims;
  if (at < claims.not_before || at >= claims.not_after) {
    refuse_token("TOKEN_MALFORMED", "validity",
                 {{"detail", at < claims.not_before ? "card certificate not yet valid" : "card certificate expired"}});
  }

  ledger::NewCard card{claims.card_number, holder_of(citizen), claims.region, certificate};
  const auto status = ctx_.ledger->register_card(card, actor, at);
  const auto record = ctx_.ledger->card(claims.card_number);
  switch (status) {
    case ledger::CardStatus::Registered:
      return json_response(201, card_json(*record));
    case ledger::CardStatus::AlreadyRegisteredSame:
      return json_response(200, card_json(*record));
    default:
      bad_field("certificate", "card number already registered with another holder, region or certificate");
  }
}

Response Work::card_info() {
  require_empty_body();
  const auto number_text = std::string(segment(2));
  if (!is_card_number(number_text)) bad_field("number", "a card number of 10 digits");
  const auto card = ctx_.ledger->card(number_text);
  if (!card) refuse("CARD_UNKNOWN");
  return json_response(200, card_json(*card));
}

// Before a PIN reset: the card is at this counter (its proof over this terminal's nonce, used
// up and recorded with the clerk), it is active, and the citizen ID on the document the clerk
// checked is its holder's. The proof comes before the comparison, so that no terminal can test
// citizen IDs against card numbers without the card.
Response Work::card_holder_check() {
  static constexpr FieldRule rules[] = {{"citizen_id", Kind::String, true}, {"card_proof", Kind::Object, true}};
  const auto body = parse_object(request_.body, rules, false);
  static_cast<void>(actor_of(request_));  // Skillcard-Clerk: who checked the document
  const auto number_text = std::string(segment(2));
  if (!is_card_number(number_text)) bad_field("number", "a card number of 10 digits");
  const auto citizen = citizen_id(body, "citizen_id");
  const auto proof = parse_card_proof(body.at("card_proof"), "card_proof.");
  if (proof.card != number_text) bad_field("card_proof.card", "not the card named in the path");
  const auto card = active_card(number_text);
  (void)check_card_proof(proof, /*consume=*/true, "card.holder-check");
  require_holder(card, holder_of(citizen));
  return json_response(200, card_json(card));
}

Response Work::card_lost() {
  static constexpr FieldRule rules[] = {{"citizen_id", Kind::String, true}, {"replacement", Kind::String, false}};
  const auto body = parse_object(request_.body, rules, false);
  const auto actor = actor_of(request_);
  const auto number_text = std::string(segment(2));
  if (!is_card_number(number_text)) bad_field("number", "a card number of 10 digits");
  const auto citizen = citizen_id(body, "citizen_id");
  std::optional<std::string> replacement;
  if (body.contains("replacement")) replacement = card_number(body, "replacement");
  if (replacement == number_text) bad_field("replacement", "must be another card");

  const auto card = ctx_.ledger->card(number_text);
  if (!card) refuse("CARD_UNKNOWN");
  require_holder(*card, holder_of(citizen));
  if (replacement) {
    const auto next = ctx_.ledger->card(*replacement);
    if (!next) refuse("CARD_UNKNOWN", {}, {{"field", "replacement"}});
    require_holder(*next, card->holder);
    if (next->state != ledger::CardState::Active) refuse("CARD_REVOKED", {}, {{"field", "replacement"}});
  }
  // Every voucher that will move needs its bureau's signer: checked before anything is written.
  for (const auto& v : ctx_.ledger->holder_vouchers(card->holder)) {
    const bool moves =
        v.card == number_text && (v.state == ledger::VoucherState::Issued || v.state == ledger::VoucherState::Written);
    const auto signer = ctx_.voucher_signers.find(v.claims.issuer);
    if (replacement && moves && (signer == ctx_.voucher_signers.end() || !signer->second)) {
      refuse("SERVICE_UNAVAILABLE", {{"detail", "no voucher signer for bureau " + std::to_string(v.claims.issuer)}});
    }
  }
  const auto at = now();
  const auto lost = ctx_.ledger->mark_card_lost(number_text, actor, at);
  if (lost != ledger::CardStatus::Changed && lost != ledger::CardStatus::AlreadyInState) {
    refuse(ledger::refusal_code(lost));
  }
  json moved = json::array();
  if (replacement) {
    // Every unredeemed voucher moves under a new id signed by the bureau that issued it.
    const ledger::TokenMinter mint = [&](const schemas::VoucherClaims& claims) {
      const auto it = ctx_.voucher_signers.find(claims.issuer);
      if (it == ctx_.voucher_signers.end() || !it->second) {
        throw std::runtime_error("no voucher signer for bureau " + std::to_string(claims.issuer));
      }
      return minter(*it->second)(claims);
    };
    const auto outcome = ctx_.ledger->replace_card(number_text, *replacement, mint, actor, at);
    if (outcome.status != ledger::CardStatus::Changed && outcome.status != ledger::CardStatus::AlreadyInState) {
      refuse(ledger::refusal_code(outcome.status));
    }
    for (const auto& m : outcome.moved) {
      moved.push_back(json{{"from", ledger::lower_hex(m.from)},
                           {"voucher_id", ledger::lower_hex(m.to.id())},
                           {"token", base64url_encode(m.to.token)}});
    }
    if (outcome.moved.empty()) {
      // A repeat (the counter lost the first answer): the vouchers moved before, still to write.
      for (const auto& v : ctx_.ledger->holder_vouchers(card->holder)) {
        if (v.moved_from && v.card == *replacement && v.state == ledger::VoucherState::Issued) {
          moved.push_back(json{{"from", ledger::lower_hex(*v.moved_from)},
                               {"voucher_id", ledger::lower_hex(v.id())},
                               {"token", base64url_encode(v.token)}});
        }
      }
    }
  }
  json out{{"card", number_text}, {"state", "lost"}, {"moved", std::move(moved)}};
  if (replacement) out["replacement"] = *replacement;
  return json_response(200, out);
}

// --- e-portfolio ---------------------------------------------------------------------------

namespace {

// The signed digest over the holder's most recent certificates (design N-3: the card holds 11).
json signed_digest(const ServiceContext& ctx, const schemas::HolderRef& holder,
                   const std::vector<ledger::CertificateEntry>& entries, std::uint32_t version, std::uint64_t at) {
  if (entries.empty() || !ctx.portfolio_signer) return nullptr;
  std::vector<const ledger::CertificateEntry*> sorted;
  for (const auto& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  if (sorted.size() > schemas::kMaxPortfolioDigests) {
    sorted.erase(sorted.begin(), sorted.end() - static_cast<std::ptrdiff_t>(schemas::kMaxPortfolioDigests));
  }
  schemas::PortfolioDigestClaims claims;
  claims.holder = holder;
  claims.digest_version = version;
  for (const auto* e : sorted) claims.digests.push_back(crypto::OpenSsl::sha256(e->encoded));
  claims.issued_at = at;
  claims.expires_at = at + kPortfolioDigestLifetime;
  const auto& signer = *ctx.portfolio_signer;
  return base64url_encode(
      schemas::sign_portfolio_digest(claims, signer.kid(), [&](ByteView tbs) { return signer.sign(tbs); }));
}

}  // namespace

Response Work::certificates() {
  static constexpr FieldRule rules[] = {
      {"card", Kind::String, true},       {"citizen_id", Kind::String, true}, {"kind", Kind::Unsigned, true},
      {"occupation", Kind::String, true}, {"level", Kind::Unsigned, true},    {"issuer", Kind::String, true},
      {"number", Kind::String, true},     {"date", Kind::String, true},
  };
  const auto body = parse_object(request_.body, rules, false);
  const auto actor = actor_of(request_);
  const auto number_text = card_number(body, "card");
  const auto citizen = citizen_id(body, "citizen_id");
  schemas::CertificateRecord record;
  record.kind = static_cast<schemas::CertificateKind>(number(body, "kind", 1, 3));
  record.occupation = occupation(body, "occupation");
  record.level = static_cast<std::uint8_t>(number(body, "level", 1, 5));
  record.issuer = free_text(body, "issuer", 120);
  record.number = free_text(body, "number", 64);
  record.date_days = date_days(body, "date");
  if (!ctx_.portfolio_signer) refuse("SERVICE_UNAVAILABLE", {{"detail", "portfolio signer"}});

  const auto card = active_card(number_text);
  const auto holder = holder_of(citizen);
  require_holder(card, holder);
  record.salt.resize(kSaltBytes);
  ctx_.random(record.salt);
  try {
    schemas::check(record);
  } catch (const std::exception& e) {
    bad_field("body", e.what());
  }
  const auto encoded = schemas::encode(record);
  const auto at = now();
  const auto outcome = ctx_.ledger->record_certificate(holder, encoded, actor, at);
  if (outcome.status == ledger::CertificateStatus::Duplicate) {
    // The holder's own record (its salt included) goes back to its holder only.
    if (outcome.entry && outcome.entry->holder == holder) {
      // With the current signed digest: a counter whose first attempt lost its answer (or its
      // WRITE DIGEST) brings the card up to date from this refusal.
      Values extra{{"record", base64url_encode(outcome.entry->encoded)}};
      const auto version = ctx_.ledger->digest_version(holder);
      if (const auto digest = signed_digest(ctx_, holder, ctx_.ledger->certificates(holder), version, at);
          digest.is_string()) {
        extra.emplace("digest", digest.get<std::string>());
        extra.emplace("digest_version", std::to_string(version));
      }
      refuse("P14_CERTIFICATE_DUPLICATE", {}, extra);
    }
    refuse("P14_CERTIFICATE_DUPLICATE");
  }
  const auto entries = ctx_.ledger->certificates(holder);
  const auto version = ctx_.ledger->digest_version(holder);
  return json_response(201, json{{"record", base64url_encode(outcome.entry->encoded)},
                                 {"salt", ledger::lower_hex(record.salt)},
                                 {"digest", signed_digest(ctx_, holder, entries, version, at)},
                                 {"digest_version", version}});
}

schemas::HolderRef Work::proven_holder() const {
  require_empty_body();
  const auto holder = holder_ref_from_hex(segment(2), "ref");
  const auto it = request_.headers.find(kCardProofHeader);
  if (it == request_.headers.end()) refuse("CARD_PROOF_REQUIRED");
  const auto proof_text = base64url_decode(it->second);
  if (!proof_text) bad_field("Skillcard-Card-Proof", "not base64url without padding");
  const auto proof_json = parse_strict(
      std::string_view(reinterpret_cast<const char*>(proof_text->data()), proof_text->size()), "Skillcard-Card-Proof");
  if (!proof_json.is_object()) bad_field("Skillcard-Card-Proof", "must be a JSON object");
  const auto proof = parse_card_proof(proof_json, "Skillcard-Card-Proof.");
  if (request_.terminal.role == Role::Kiosk && !proof.pin_verified) {
    refuse("CARD_PROOF_INVALID", {}, {{"detail", "the PIN was not verified"}});
  }
  const auto card = check_card_proof(proof, /*consume=*/false, {});
  if (card.holder != holder) refuse("CARD_PROOF_INVALID", {}, {{"detail", "the card belongs to another holder"}});
  return holder;
}

Response Work::holder_vouchers() {
  const auto holder = proven_holder();
  json vouchers = json::array();
  for (const auto& v : ctx_.ledger->holder_vouchers(holder)) {
    json entry{{"voucher_id", ledger::lower_hex(v.id())},
               {"state", ledger::to_string(v.state)},
               {"token", base64url_encode(v.token)},
               {"voucher", voucher_json(v.claims)}};
    // A lost card's voucher moved here: an existing subsidy, which a counter never voids for a
    // failed write (it writes it again).
    if (v.moved_from) entry["moved_from"] = ledger::lower_hex(*v.moved_from);
    vouchers.push_back(std::move(entry));
  }
  return json_response(200, json{{"holder", ledger::lower_hex(holder)}, {"vouchers", std::move(vouchers)}});
}

Response Work::holder_portfolio() {
  const auto holder = proven_holder();
  const auto entries = ctx_.ledger->certificates(holder);
  const auto version = ctx_.ledger->digest_version(holder);
  json records = json::array();
  for (const auto& e : entries) {
    records.push_back(json{
        {"record", base64url_encode(e.encoded)}, {"digest_version", e.digest_version}, {"recorded_at", e.recorded_at}});
  }
  return json_response(200, json{{"holder", ledger::lower_hex(holder)},
                                 {"digest_version", version},
                                 {"digest", signed_digest(ctx_, holder, entries, version, now())},
                                 {"records", std::move(records)}});
}

}  // namespace skillcard::service::detail
