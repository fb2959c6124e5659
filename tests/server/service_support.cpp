#include "service_support.hpp"

#include "skillcard/crypto/backend.hpp"
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/x509.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/service/encoding.hpp"

namespace skillcard::service::testing {

using namespace skillcard::ledger;

namespace {
[[noreturn]] void unused(const char* what) { throw std::logic_error(std::string("FakeLedger: ") + what); }
}  // namespace

void FakeLedger::storage() const {
  if (fail_storage) throw StorageError(fail_kind, 10, "fake disk failure", CallSite::current());
}

void FakeLedger::put(const schemas::VoucherClaims& claims, const Bytes& token, VoucherState state) {
  VoucherRecord r;
  r.claims = claims;
  r.token = token;
  r.state = state;
  vouchers[claims.id] = r;
}

CardStatus FakeLedger::register_card(const NewCard&, const Actor&, UtcSeconds) { unused("register_card"); }
std::optional<CardRecord> FakeLedger::card(std::string_view) {
  storage();
  return std::nullopt;  // no cards: the write paths are tested on SqliteLedger (handler_flows_test)
}
CardStatus FakeLedger::mark_card_lost(std::string_view, const Actor&, UtcSeconds) { unused("mark_card_lost"); }
ReplaceOutcome FakeLedger::replace_card(std::string_view, std::string_view, const TokenMinter&, const Actor&,
                                        UtcSeconds) {
  unused("replace_card");
}
BudgetStatus FakeLedger::set_budget(FundSource, std::int64_t, const Actor&, UtcSeconds) { unused("set_budget"); }
std::optional<Budget> FakeLedger::budget(FundSource) {
  storage();
  return std::nullopt;
}
IssueCounts FakeLedger::read_issue_counts(const IssueQuery&) { unused("read_issue_counts"); }
IssueOutcome FakeLedger::issue_voucher(const IssueRequest&, const IssueDecision&, const TokenMinter&, const Actor&,
                                       UtcSeconds) {
  unused("issue_voucher");
}
VoucherOutcome FakeLedger::mark_written(const VoucherId& id, const Actor&, UtcSeconds) {
  auto record = voucher(id);
  return {record ? VoucherStatus::WrongState : VoucherStatus::VoucherUnknown, record};
}
VoucherOutcome FakeLedger::void_voucher(const VoucherId& id, std::string_view, const Actor&, UtcSeconds) {
  auto record = voucher(id);
  return {record ? VoucherStatus::WrongState : VoucherStatus::VoucherUnknown, record};
}
std::size_t FakeLedger::expire_vouchers(UtcSeconds, const Actor&, UtcSeconds) { unused("expire_vouchers"); }
std::optional<VoucherRecord> FakeLedger::voucher(const VoucherId& id) {
  storage();
  std::lock_guard lock(mutex_);
  const auto it = vouchers.find(id);
  if (it == vouchers.end()) return std::nullopt;
  return it->second;
}
std::optional<VoucherStanding> FakeLedger::voucher_standing(const VoucherId& id) {
  const auto record = voucher(id);
  if (!record) return std::nullopt;
  return VoucherStanding{record->state, record->token};
}
std::vector<VoucherRecord> FakeLedger::holder_vouchers(const HolderRef&) { unused("holder_vouchers"); }
std::vector<VoucherRecord> FakeLedger::holder_history(const HolderRef&, int) { unused("holder_history"); }
Revocations FakeLedger::revocations(UtcSeconds) {
  storage();
  return {};
}
NonceStatus FakeLedger::issue_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds issued_at,
                                    UtcSeconds expires_at, const Actor& actor) {
  storage();
  if (actor.terminal.empty() || actor.clerk.empty()) throw std::invalid_argument("empty actor");
  std::lock_guard lock(mutex_);
  const bool fresh = nonces.emplace(nonce, NonceRow{std::string(terminal), issued_at, expires_at, actor}).second;
  return fresh ? NonceStatus::Ok : NonceStatus::Duplicate;
}
NonceStatus FakeLedger::check_nonce(const Nonce&, std::string_view, UtcSeconds) { unused("check_nonce"); }
NonceStatus FakeLedger::consume_nonce(const Nonce&, std::string_view, std::string_view, const Actor&, UtcSeconds) {
  unused("consume_nonce");
}
RecordOutcome FakeLedger::record_redemption(const RedemptionRequest&) { unused("record_redemption"); }
ReversalOutcome FakeLedger::reverse_redemption(const VoucherId&, std::string_view, const Actor&, UtcSeconds) {
  unused("reverse_redemption");
}
std::optional<RedemptionRecord> FakeLedger::redemption(const VoucherId&) { unused("redemption"); }
ledger::ReceiptTimesAround FakeLedger::receipt_times_around(std::string_view, std::uint32_t) {
  unused("receipt_times_around");
}

std::optional<RedemptionRecord> FakeLedger::redemption_by_counter(std::string_view, std::uint32_t) {
  unused("redemption_by_counter");
}
std::vector<RedemptionExportRow> FakeLedger::list_redemptions(const RedemptionFilter&) {
  storage();
  return {};  // no redemptions
}
std::vector<SettlementLine> FakeLedger::settlement(const RedemptionFilter&) { unused("settlement"); }
CertificateOutcome FakeLedger::record_certificate(const HolderRef&, ByteView, const Actor&, UtcSeconds) {
  unused("record_certificate");
}
std::vector<CertificateEntry> FakeLedger::certificates(const HolderRef&) { unused("certificates"); }
std::uint32_t FakeLedger::digest_version(const HolderRef&) { unused("digest_version"); }
void FakeLedger::for_each_voucher(const VoucherFilter&, const std::function<void(const VoucherRecord&)>& visit) {
  storage();
  for (const auto& [id, v] : vouchers) visit(v);
}
void FakeLedger::for_each_certificate(const CertificateFilter&, const std::function<void(const CertificateEntry&)>&) {
  storage();  // no certificates
}
AuditHead FakeLedger::audit_head() { unused("audit_head"); }
std::vector<AuditEntry> FakeLedger::audit_entries(std::uint64_t, std::size_t) { unused("audit_entries"); }

crypto::Kid kid(const crypto::OpenSsl::PrivateKey& key) { return crypto::kid_of<crypto::OpenSsl>(key.public_key()); }

std::unique_ptr<TrustStore> KeySet::trust_store() const {
  return TrustStore::from_signed_list(signed_list(), root.public_key());
}

ServiceContext base_context(ledger::Ledger& ledger, const TrustStore& trust, std::function<std::uint64_t()> clock,
                            Metrics* metrics) {
  ServiceContext ctx;
  ctx.ledger = &ledger;
  ctx.trust = &trust;
  ctx.metrics = metrics;
  ctx.clock = std::move(clock);
  return ctx;
}

Bytes KeySet::signed_list() const {
  schemas::TrustListClaims claims;
  claims.sequence = 7;
  claims.issued_at = kNow - 86400;
  claims.next_update = kNow + 90 * 86400;
  auto add = [&](const crypto::OpenSsl::PrivateKey& key, schemas::TrustRole role, std::uint32_t region) {
    claims.entries.emplace(
        kid(key), schemas::TrustEntry{key.public_key().spki_der(), role, region, kNow - 86400, kNow + 3650 * 86400ULL});
  };
  add(voucher, schemas::TrustRole::Voucher, kBureau);
  add(other_bureau, schemas::TrustRole::Voucher, 420200);
  add(portfolio, schemas::TrustRole::Portfolio, kProvince);
  add(card_ca, schemas::TrustRole::CardCa, kProvince);
  return schemas::sign_trust_list(claims, kid(root), [&](ByteView tbs) { return root.sign(tbs); });
}

schemas::VoucherClaims sample_claims(std::uint64_t serial) {
  schemas::VoucherClaims c;
  c.issuer = kBureau;
  c.id = voucher_id(serial);
  c.holder = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x10};
  c.programme = schemas::Programme::KeyGroupEmploymentSkills;
  c.occupation = 4040505;
  c.level = 4;
  c.fund = schemas::FundSource::EmploymentSubsidyFund;
  c.face_value_fen = 180000;
  c.planned_hours = 120;
  c.planned_online_hours = 36;
  c.eligible_regions = {kBureau};
  c.eligible_providers = {10001};
  c.issued_at = kNow - 3600;
  c.not_before = kNow - 3600;
  c.expires_at = kNow + 90 * 86400;
  return c;
}

Bytes sign_token(const schemas::VoucherClaims& claims, const crypto::OpenSsl::PrivateKey& key) {
  return schemas::sign_voucher(claims, kid(key), [&](ByteView tbs) { return key.sign(tbs); });
}

void write_key_folder(const std::filesystem::path& dir, const KeySet& keys) {
  std::filesystem::create_directories(dir);
  crypto::CertificateSpec spec;
  spec.subject = {"skillcard province root 420000", "skillcard", "", "420000", ""};
  spec.usage = crypto::CertificateUsage::Ca;
  spec.validity = std::chrono::days(7300);
  spec.path_length = 1;
  const auto root = crypto::Certificate::issue(spec, keys.root.public_key(), keys.root, nullptr);
  crypto::write_private_key(dir / "province-root.key.pem", keys.root);
  crypto::write_new_file(dir / "province-root.cert.pem", root.to_pem(), 0644);
  crypto::write_public_key(dir / "voucher-signer-420100.pub.pem", keys.voucher.public_key());
  crypto::write_public_key(dir / "voucher-signer-420200.pub.pem", keys.other_bureau.public_key());
  crypto::write_public_key(dir / "portfolio-signer.pub.pem", keys.portfolio.public_key());
}

registry::Person registered_person(const std::string& citizen_id) {
  registry::Person p;
  p.citizen_id = citizen_id;
  p.name = "测试";
  p.region = kBureau;
  p.facts.known = true;
  p.facts.date_of_birth = std::chrono::year{1990} / 1 / 1;
  p.facts.insured = true;
  p.facts.key_groups = {policy::KeyGroup::RegisteredUnemployed};
  return p;
}

std::string citizen(std::string_view first17) {
  return std::string(first17) + crypto::citizen_id_check_character(first17);
}

crypto::HolderRef holder_of(std::string_view id) {
  const auto digest = crypto::OpenSsl::sha256(Bytes(id.begin(), id.end()));
  crypto::HolderRef ref{};
  std::copy_n(digest.begin(), ref.size(), ref.begin());
  return ref;
}

schemas::Nonce nonce_from_hex(const std::string& hex) {
  schemas::Nonce n{};
  for (std::size_t i = 0; i < n.size(); ++i)
    n[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  return n;
}

schemas::VoucherId voucher_id_from_hex(const std::string& hex) {
  schemas::VoucherId id{};
  for (std::size_t i = 0; i < id.size(); ++i)
    id[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  return id;
}

const Bytes& TestCard::certificate(const crypto::OpenSsl::PrivateKey& card_ca, std::uint64_t now) {
  if (!cert.empty()) return cert;
  schemas::CardCertificateClaims c;
  c.card_number = number;
  c.region = kBureau;
  c.receipt_key = receipt_key.public_key().compressed();
  c.auth_key = auth_key.public_key().compressed();
  c.not_before = now - 86400;
  c.not_after = now + 3650 * 86400ULL;
  cert = schemas::sign_card_certificate(c, kid(card_ca), [&](ByteView tbs) { return card_ca.sign(tbs); });
  return cert;
}

std::string TestCard::proof(const std::string& nonce_hex, bool pin_verified) {
  const auto nonce = nonce_from_hex(nonce_hex);
  ++auth_counter;
  const std::string_view label = "skillcard/card-auth/v1";
  Bytes m(label.begin(), label.end());
  m.push_back(0);
  m.insert(m.end(), number.begin(), number.end());
  for (int shift = 24; shift >= 0; shift -= 8) m.push_back(static_cast<std::uint8_t>(auth_counter >> shift));
  m.push_back(pin_verified ? 1 : 0);
  m.insert(m.end(), nonce.begin(), nonce.end());
  return "{\"card\":\"" + number + "\",\"nonce\":\"" + nonce_hex + "\",\"counter\":" + std::to_string(auth_counter) +
         ",\"pin_verified\":" + (pin_verified ? "true" : "false") + ",\"signature\":\"" +
         base64url_encode(auth_key.sign(m)) + "\"}";
}

Bytes TestCard::receipt(const std::string& voucher_hex, const schemas::Nonce& nonce, std::uint64_t time,
                        std::uint32_t site, std::uint16_t classroom, std::uint16_t online) {
  schemas::ReceiptClaims c;
  c.voucher = voucher_id_from_hex(voucher_hex);
  c.site = site;
  c.nonce = nonce;
  c.counter = ++redemption_counter;
  c.terminal_time = time;
  c.classroom_hours = classroom;
  c.online_hours = online;
  const auto receipt_kid = crypto::kid_of<crypto::OpenSsl>(receipt_key.public_key());
  return schemas::sign_receipt(c, receipt_kid, [&](ByteView tbs) { return receipt_key.sign(tbs); });
}

}  // namespace skillcard::service::testing
