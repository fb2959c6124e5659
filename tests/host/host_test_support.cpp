// Test PKI, TestChannel and FakeService (contract v1 in memory) for the host tests.
#include "host_test_support.hpp"

#include <algorithm>

#include "../card_applet_sim/training_support.hpp"
#include "skillcard/card/training_applet.hpp"
#include "skillcard/host/encoding.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/refusals.hpp"

namespace skillcard::host::testing {

using crypto::OpenSsl;
namespace ct = card::testing;

namespace {

schemas::SignFunction signer(const OpenSsl::PrivateKey& key) {
  return [&key](ByteView m) { return key.sign(m); };
}

schemas::TrustEntry entry(const crypto::EcPublicKey& key, schemas::TrustRole role, std::uint32_t region) {
  return {key.spki_der(), role, region, 0, kNow + 3650ull * 86'400};
}

[[noreturn]] void refuse(int status, const std::string& code) {
  const auto& r = schemas::refusal(code);
  std::vector<std::string> rules(r.rules.begin(), r.rules.end());
  throw ServiceRefusal(status, code, rules, {std::string(r.zh_cn), std::string(r.en)});
}

VoucherInfo info_of(const schemas::VoucherClaims& c) {
  VoucherInfo v;
  v.id = c.id;
  v.issuer = c.issuer;
  v.holder = c.holder;
  v.programme = static_cast<std::uint32_t>(c.programme);
  v.occupation = schemas::format_occupation(c.occupation);
  v.level = c.level;
  v.fund = static_cast<std::uint32_t>(c.fund);
  v.face_value_fen = c.face_value_fen;
  v.planned_hours = c.planned_hours;
  v.planned_online_hours = c.planned_online_hours;
  v.eligible_regions = c.eligible_regions;
  v.eligible_providers = c.eligible_providers;
  v.issued_at = c.issued_at;
  v.not_before = c.not_before;
  v.expires_at = c.expires_at;
  return v;
}

}  // namespace

namespace {
crypto::SecretBytes test_scalar(std::string_view label) {
  const auto d = OpenSsl::sha256(as_bytes(label));
  return crypto::SecretBytes(ByteView(d));
}
}  // namespace

Bytes second_card_certificate() {
  const auto ca = OpenSsl::PrivateKey::from_scalar(test_scalar("skillcard test card CA").view());
  schemas::CardCertificateClaims c;
  c.card_number = std::string(kSecondCard);
  c.region = kRegion;
  c.receipt_key = OpenSsl::PrivateKey::from_scalar(test_scalar("second receipt").view()).public_key().compressed();
  c.auth_key = OpenSsl::PrivateKey::from_scalar(test_scalar("second auth").view()).public_key().compressed();
  c.not_before = ct::kIssuedAt;
  c.not_after = ct::kIssuedAt + 10ull * 365 * 86'400;
  return schemas::sign_card_certificate(c, crypto::kid_of<OpenSsl>(ca.public_key()), signer(ca));
}

std::unique_ptr<card::Card> make_second_card() {
  auto p = ct::personalisation();
  p.card_number = std::string(kSecondCard);
  p.certificate = second_card_certificate();
  p.receipt_scalar = test_scalar("second receipt");
  p.auth_scalar = test_scalar("second auth");
  const ct::Role roles[] = {ct::Role::Counter, ct::Role::Site, ct::Role::Kiosk};
  const crypto::scp03::KeyType types[] = {crypto::scp03::KeyType::Enc, crypto::scp03::KeyType::Mac,
                                          crypto::scp03::KeyType::Dek};
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t t = 0; t < 3; ++t) p.keys[r][t] = ct::card_key(roles[r], types[t], kSecondCard);
  auto e = card::Eeprom::in_memory(card::training::kImagePages);
  card::PersistentMemory::format(e);
  card::PersistentMemory memory(std::move(e));
  memory.mount();
  card::training::personalise(memory, p);
  return ct::make_training_card(nullptr, memory.eeprom().clone());
}

std::string citizen_id() {
  const std::string first17 = "42010019900307001";
  return first17 + crypto::citizen_id_check_character(first17);
}

TestPki::TestPki() {
  schemas::TrustListClaims claims;
  claims.sequence = 1;
  claims.issued_at = kNow - 1000;
  claims.next_update = kNow + 90 * 86'400;
  const auto card_ca = ct::card_ca_public_key();
  claims.entries[crypto::kid_of<OpenSsl>(card_ca)] = entry(card_ca, schemas::TrustRole::CardCa, 420000);
  claims.entries[crypto::kid_of<OpenSsl>(voucher_signer.public_key())] =
      entry(voucher_signer.public_key(), schemas::TrustRole::Voucher, 420100);
  claims.entries[crypto::kid_of<OpenSsl>(portfolio_signer.public_key())] =
      entry(portfolio_signer.public_key(), schemas::TrustRole::Portfolio, 420000);
  trust_list = schemas::sign_trust_list(claims, crypto::kid_of<OpenSsl>(root.public_key()), signer(root));
}

TrustAnchors TestPki::anchors() const { return TrustAnchors::from_trust_list(trust_list, root.public_key()); }

const TestPki& pki() {
  static const TestPki instance;
  return instance;
}

std::unique_ptr<CardKeySource> key_source(crypto::CardRole role) {
  const auto r = role == crypto::CardRole::Counter ? ct::Role::Counter
                 : role == crypto::CardRole::Site  ? ct::Role::Site
                                                   : ct::Role::Kiosk;
  return std::make_unique<RoleMasterKeySource>(role, crypto::SecretBytes(ct::role_master(r)));
}

iso7816::ResponseApdu TestChannel::transmit(const iso7816::CommandApdu& command) {
  ++exchanges;
  ++by_ins[command.ins()];
  if (absent_at == command.ins()) {
    absent_at.reset();
    throw iso7816::CardRemovedError("no card in the reader");
  }
  if (cut && cut->ins == command.ins()) {
    card_->eeprom().arm(card::PowerCut{cut->write_index, cut->mode, 0x5EED});
    cut.reset();
  }
  auto answer = inner_.transmit(command);
  if (die_after_answer_of == command.ins()) {
    die_after_answer_of.reset();
    throw std::runtime_error("the terminal died with the card's answer unread");
  }
  if (corrupt_answer_of == command.ins() && !answer.data().empty()) {
    corrupt_answer_of.reset();
    Bytes data = answer.data();
    data.back() ^= 0x01;
    return iso7816::ResponseApdu(data, answer.sw());
  }
  return answer;
}

namespace {
[[noreturn]] void unexpected(const char* call) { throw std::logic_error(std::string("unexpected call ") + call); }
}  // namespace
NonceGrant UnexpectedService::create_nonce() { unexpected("create_nonce"); }
CardRecord UnexpectedService::register_card(ByteView, std::string_view) { unexpected("register_card"); }
CardRecord UnexpectedService::get_card(std::string_view) { unexpected("get_card"); }
IssuedVoucher UnexpectedService::issue_voucher(const IssueRequest&) { unexpected("issue_voucher"); }
VoucherStateAnswer UnexpectedService::mark_written(const VoucherId&) { unexpected("mark_written"); }
VoucherStateAnswer UnexpectedService::void_voucher(const VoucherId&, std::string_view) { unexpected("void_voucher"); }
VerifiedToken UnexpectedService::verify_token(ByteView) { unexpected("verify_token"); }
RedemptionAnswer UnexpectedService::submit_redemption(const ReceiptSubmission&) { unexpected("submit_redemption"); }
std::vector<SyncItemResult> UnexpectedService::sync_redemptions(std::span<const ReceiptSubmission>) {
  unexpected("sync_redemptions");
}
RecordedCertificate UnexpectedService::record_certificate(const CertificateRequest&) {
  unexpected("record_certificate");
}
LostAnswer UnexpectedService::report_lost(const LostRequest&) { unexpected("report_lost"); }
CardRecord UnexpectedService::check_holder(std::string_view, const CardProof&) { unexpected("check_holder"); }
HolderVouchers UnexpectedService::holder_vouchers(const HolderRef&, const CardProof&) { unexpected("holder_vouchers"); }
Portfolio UnexpectedService::holder_portfolio(const HolderRef&, const CardProof&) { unexpected("holder_portfolio"); }
TrustListAnswer UnexpectedService::trust_list() { unexpected("trust_list"); }
Revocations UnexpectedService::revocations() { unexpected("revocations"); }

FakeService::FakeService() {
  cards.emplace(std::string(ct::kCardNumber), CardKeys{ct::auth_public_key(), ct::receipt_public_key()});
}

const FakeService::CardKeys& FakeService::keys_of_card(std::string_view card) const {
  const auto it = cards.find(std::string(card));
  if (it == cards.end()) refuse(404, "CARD_UNKNOWN");
  return it->second;
}

void FakeService::check_up() const {
  if (down) throw ServiceUnavailable("connect 127.0.0.1:8443: Connection refused (test)");
}

NonceGrant FakeService::create_nonce() {
  check_up();
  NonceGrant g;
  g.nonce[0] = 0x01;
  OpenSsl::random_bytes(std::span<std::uint8_t>(g.nonce).subspan(1));
  g.issued_at = now;
  g.expires_at = now + 300;
  g.sync_window_seconds = sync_window_seconds;
  nonces_[g.nonce] = g.expires_at;
  return g;
}

CardRecord FakeService::register_card(ByteView certificate, std::string_view) {
  check_up();
  const auto decoded = schemas::decode_card_certificate(certificate);
  const auto ca = ct::card_ca_public_key();
  if (!decoded.envelope
           .verify([&](ByteView tbs, const crypto::EcSignature& sig) { return OpenSsl::verify(ca, tbs, sig); })
           .ok())
    refuse(422, "CARD_PROOF_INVALID");
  const auto& c = decoded.claims;
  cards.insert_or_assign(c.card_number, CardKeys{OpenSsl::decompress(c.auth_key), OpenSsl::decompress(c.receipt_key)});
  return get_card(c.card_number);
}

CardRecord FakeService::get_card(std::string_view number) {
  check_up();
  keys_of_card(number);
  return {std::string(number), kRegion, ct::holder_ref(), lost_cards.count(std::string(number)) ? "lost" : "active",
          std::nullopt};
}

// Every card of this fake belongs to the one holder of citizen_id().
CardRecord FakeService::check_holder(std::string_view citizen, const CardProof& proof) {
  check_up();
  if (!crypto::citizen_id_problem(citizen).empty()) refuse(400, "CITIZEN_ID_INVALID");
  auto card = get_card(proof.card);
  if (card.state != "active") refuse(403, "CARD_REVOKED");
  if (used_nonces_.count(proof.nonce)) refuse(422, "CARD_PROOF_INVALID");
  check_proof(proof, false);
  used_nonces_.insert(proof.nonce);  // used up, as the service does
  if (citizen != citizen_id()) refuse(422, "P13_REGISTRY_MISMATCH");
  return card;
}

void FakeService::check_proof(const CardProof& proof, bool need_pin) const {
  const auto keys = keys_of_card(proof.card);
  const auto it = nonces_.find(proof.nonce);
  if (it == nonces_.end() || it->second < now) refuse(422, "CARD_PROOF_INVALID");
  // contract v1 (and skillcard-server): kiosk reads need pin_verified = true, else 422.
  if (need_pin && !proof.pin_verified) refuse(422, "CARD_PROOF_INVALID");
  const auto m = auth_message(proof.card, proof.counter, proof.pin_verified, proof.nonce);
  if (!OpenSsl::verify(keys.auth, m, proof.signature)) refuse(422, "CARD_PROOF_INVALID");
  if (lost_cards.count(proof.card)) refuse(403, "CARD_REVOKED");
}

IssuedVoucher FakeService::issue_direct(std::vector<std::uint32_t> regions, std::vector<std::uint32_t> providers,
                                        std::string card) {
  schemas::VoucherClaims c;
  c.issuer = 420100;
  const auto serial = next_serial_++;
  for (std::size_t i = 0; i < 8; ++i) c.id[7 - i] = static_cast<std::uint8_t>(serial >> (8 * i));
  c.holder = ct::holder_ref();
  c.programme = schemas::Programme::KeyGroupEmploymentSkills;
  c.occupation = 4040505;
  c.level = 4;
  c.fund = schemas::FundSource::EmploymentSubsidyFund;
  c.face_value_fen = 180000;
  c.planned_hours = 120;
  c.planned_online_hours = 36;
  c.eligible_regions = std::move(regions);
  c.eligible_providers = std::move(providers);
  c.issued_at = now;
  c.not_before = now;
  c.expires_at = now + 90ull * 86'400;
  const auto token = schemas::sign_voucher(c, crypto::kid_of<OpenSsl>(pki().voucher_signer.public_key()),
                                           signer(pki().voucher_signer));
  vouchers[c.id] = {c, token, std::move(card), "issued", std::nullopt};
  return {c.id, token, "issued", info_of(c)};
}

IssuedVoucher FakeService::issue_voucher(const IssueRequest& r) {
  check_up();
  check_proof(r.card_proof, false);
  if (!crypto::citizen_id_problem(r.citizen_id).empty()) refuse(400, "CITIZEN_ID_INVALID");
  if (r.programme == 99) refuse(422, "P10_PROGRAMME_CLOSED");
  auto issued = issue_direct(r.eligible_regions.value_or(std::vector<std::uint32_t>{kRegion}),
                             r.eligible_providers.value_or(std::vector<std::uint32_t>{}), r.card);
  if (void_after_issue) vouchers.at(issued.voucher_id).state = "voided";
  if (lose_issue_answer) throw ServiceUnavailable("the connection dropped before the answer");
  return issued;
}

VoucherStateAnswer FakeService::mark_written(const VoucherId& id) {
  check_up();
  auto it = vouchers.find(id);
  if (it == vouchers.end()) refuse(404, "VOUCHER_UNKNOWN");
  if (it->second.state == "voided") refuse(409, "P15_VOUCHER_VOIDED");
  if (it->second.state == "issued") it->second.state = "written";
  return {id, it->second.state};
}

VoucherStateAnswer FakeService::void_voucher(const VoucherId& id, std::string_view) {
  check_up();
  auto it = vouchers.find(id);
  if (it == vouchers.end()) refuse(404, "VOUCHER_UNKNOWN");
  if (it->second.state == "redeemed") refuse(409, "P15_ALREADY_REDEEMED");
  it->second.state = "voided";
  return {id, "voided"};
}

VerifiedToken FakeService::verify_token(ByteView token) {
  check_up();
  const auto claims = verify_voucher_token(token, pki().anchors(), now);
  return {true, lower_hex(crypto::kid_of<OpenSsl>(pki().voucher_signer.public_key())), vouchers.at(claims.id).state,
          info_of(claims)};
}

Redemption FakeService::record(const ReceiptSubmission& s, bool& created) {
  schemas::Signed<schemas::ReceiptClaims> decoded;
  try {
    decoded = schemas::decode_receipt(s.receipt);
  } catch (const schemas::DecodeError&) {
    refuse(400, "TOKEN_MALFORMED");
  }
  const auto vit = vouchers.find(s.voucher_id);
  if (vit == vouchers.end()) refuse(404, "VOUCHER_UNKNOWN");
  const auto card = s.card.value_or(vit->second.card);
  const auto keys = keys_of_card(card);
  if (lost_cards.count(card)) refuse(403, "CARD_REVOKED");
  const auto verdict = decoded.envelope.verify(
      [&](ByteView tbs, const crypto::EcSignature& sig) { return OpenSsl::verify(keys.receipt, tbs, sig); });
  if (!verdict.ok()) refuse(422, "RECEIPT_BAD_SIGNATURE");
  const auto& c = decoded.claims;
  if (c.voucher != s.voucher_id) refuse(422, "RECEIPT_WRONG_VOUCHER");
  if (c.site != terminal_site) refuse(403, "RECEIPT_WRONG_SITE");
  if (const auto rit = receipts.find(s.voucher_id); rit != receipts.end()) {
    if (rit->second == s.receipt) {
      created = false;
      return redemptions.at(s.voucher_id);
    }
    refuse(409, "P15_ALREADY_REDEEMED");
  }
  if (c.nonce_kind() == schemas::NonceKind::Server) {
    if (expire_nonces) refuse(422, "NONCE_EXPIRED");
    if (forget_nonces) refuse(422, "NONCE_UNKNOWN");
    const auto nit = nonces_.find(c.nonce);
    if (nit == nonces_.end()) refuse(422, "NONCE_UNKNOWN");
    if (nit->second < now) refuse(422, "NONCE_EXPIRED");
    if (used_nonces_.count(c.nonce)) refuse(409, "NONCE_REUSED");
  } else if (c.terminal_time + 72 * 3600 < now) {
    refuse(422, "P12_SYNC_WINDOW");
  }
  for (const auto& [id, r] : redemptions)
    if (r.card == card && r.counter == c.counter) refuse(409, "COUNTER_REUSED");
  used_nonces_.insert(c.nonce);
  Redemption r;
  r.seq = ++seq_;
  r.voucher_id = c.voucher;
  r.card = card;
  r.counter = c.counter;
  r.site = c.site;
  r.nonce = lower_hex(c.nonce);
  r.terminal_time = c.terminal_time;
  r.server_time = now;
  r.classroom_hours = c.classroom_hours;
  r.online_hours = c.online_hours;
  r.face_value_fen = vit->second.claims.face_value_fen;
  r.receipt_id = receipt_id(s.receipt);
  redemptions[c.voucher] = r;
  receipts[c.voucher] = s.receipt;
  vit->second.state = "redeemed";
  created = true;
  return r;
}

RedemptionAnswer FakeService::submit_redemption(const ReceiptSubmission& s) {
  ++submit_calls;
  check_up();
  bool created = false;
  auto r = record(s, created);
  return {created, r};
}

std::vector<SyncItemResult> FakeService::sync_redemptions(std::span<const ReceiptSubmission> items) {
  check_up();
  if (refuse_sync) refuse(403, "TERMINAL_ROLE_FORBIDDEN");
  std::vector<SyncItemResult> out;
  // Sync items are offline receipts: an expired server nonce is judged by P12 there.
  const bool expire = expire_nonces;
  const bool forget = forget_nonces;
  expire_nonces = false;
  forget_nonces = false;
  for (const auto& s : items) {
    SyncItemResult item;
    item.voucher_id = s.voucher_id;
    try {
      bool created = false;
      item.redemption = record(s, created);
      item.status = created ? 201 : 200;
    } catch (const ServiceRefusal& e) {
      item.status = e.http_status();
      item.error = e.code();
      item.rules = e.rules();
      item.message = {e.message(Lang::ZhCn), e.message(Lang::En)};
    }
    out.push_back(std::move(item));
  }
  expire_nonces = expire;
  forget_nonces = forget;
  return out;
}

RecordedCertificate FakeService::record_certificate(const CertificateRequest& r) {
  check_up();
  keys_of_card(r.card);
  schemas::CertificateRecord rec;
  rec.kind = static_cast<schemas::CertificateKind>(r.kind);
  rec.occupation = schemas::parse_occupation(r.occupation);
  rec.level = static_cast<std::uint8_t>(r.level);
  rec.issuer = r.issuer;
  rec.number = r.number;
  rec.date_days = 20'000;
  rec.salt = Bytes(16);
  OpenSsl::random_bytes(rec.salt);
  const auto encoded = schemas::encode(rec);
  for (const auto& b : record_bytes) {
    if (schemas::decode_certificate_record(b).number != r.number) continue;
    // As the service: the holder's own record comes back with the current signed digest.
    const auto& c = schemas::refusal("P14_CERTIFICATE_DUPLICATE");
    throw ServiceRefusal(409, "P14_CERTIFICATE_DUPLICATE", {"P14"}, {std::string(c.zh_cn), std::string(c.en)}, {}, {},
                         {},
                         {{"record", base64url_encode(b)},
                          {"digest", base64url_encode(current_digest)},
                          {"digest_version", std::to_string(digest_version)}});
  }
  ++digest_version;
  record_bytes.push_back(encoded);
  record_versions.push_back(digest_version);
  schemas::PortfolioDigestClaims d;
  d.holder = ct::holder_ref();
  d.digest_version = digest_version;
  const auto first =
      record_bytes.size() > schemas::kMaxPortfolioDigests ? record_bytes.size() - schemas::kMaxPortfolioDigests : 0;
  for (std::size_t i = first; i < record_bytes.size(); ++i) d.digests.push_back(OpenSsl::sha256(record_bytes[i]));
  d.issued_at = now;
  d.expires_at = now + 3650ull * 86'400;
  current_digest = schemas::sign_portfolio_digest(d, crypto::kid_of<OpenSsl>(pki().portfolio_signer.public_key()),
                                                  signer(pki().portfolio_signer));
  return {encoded, lower_hex(rec.salt), current_digest, digest_version};
}

LostAnswer FakeService::report_lost(const LostRequest& r) {
  check_up();
  keys_of_card(r.card);
  if (r.replacement) keys_of_card(*r.replacement);
  lost_cards.insert(r.card);
  LostAnswer a{r.card, "lost", r.replacement, {}};
  if (!r.replacement) return a;
  std::vector<VoucherId> to_move;
  for (const auto& [id, v] : vouchers)
    if (v.card == r.card && (v.state == "issued" || v.state == "written")) to_move.push_back(id);
  for (const auto& from : to_move) {
    auto& old = vouchers.at(from);
    old.state = "moved";
    const auto moved = issue_direct(old.claims.eligible_regions, old.claims.eligible_providers, *r.replacement);
    vouchers.at(moved.voucher_id).moved_from = from;
    a.moved.push_back({from, moved.voucher_id, moved.token});
  }
  if (after_report_lost) after_report_lost();
  return a;
}

HolderVouchers FakeService::holder_vouchers(const HolderRef& holder, const CardProof& proof) {
  check_up();
  check_proof(proof, false);
  HolderVouchers h{holder, {}};
  for (const auto& [id, v] : vouchers)
    if (v.claims.holder == holder) h.vouchers.push_back({id, v.state, v.token, info_of(v.claims), v.moved_from});
  return h;
}

Portfolio FakeService::holder_portfolio(const HolderRef& holder, const CardProof& proof) {
  check_up();
  check_proof(proof, true);
  Portfolio p{holder, digest_version, std::nullopt, {}};
  if (!current_digest.empty()) p.digest = current_digest;
  for (std::size_t i = 0; i < record_bytes.size(); ++i) p.records.push_back({record_bytes[i], record_versions[i], now});
  return p;
}

TrustListAnswer FakeService::trust_list() {
  check_up();
  return {pki().trust_list, 1, kNow - 1000, kNow + 90 * 86'400};
}

Revocations FakeService::revocations() {
  check_up();
  return {};
}

}  // namespace skillcard::host::testing
