// The verification service as the host sees it (/work/contract-v1.md, binding): every call of
// the contract as a typed method. A refusal (any 4xx/5xx with the catalogue body) throws
// ServiceRefusal; a service that cannot be reached or answers garbage throws
// ServiceUnavailable — the caller may queue (site) or retry, nothing was decided.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "skillcard/host/card_commands.hpp"
#include "skillcard/host/refusal.hpp"
#include "skillcard/host/trust.hpp"

namespace skillcard::host {

struct Message {
  std::string zh_cn;
  std::string en;
  const std::string& in(Lang lang) const noexcept { return lang == Lang::ZhCn ? zh_cn : en; }
};

struct Violation {
  std::string code;
  std::vector<std::string> rules;
  Message message;
};

class ServiceRefusal : public Refusal {
 public:
  // Members of the refusal body beyond the common ones, by name (e.g. P14's `record`, `digest`).
  using Extra = std::map<std::string, std::string, std::less<>>;
  ServiceRefusal(int http_status, std::string code, std::vector<std::string> rules, Message message,
                 std::vector<Violation> violations = {}, std::string field = {}, std::string detail = {},
                 Extra extra = {});
  int http_status() const noexcept { return http_status_; }
  // A text member of the body other than the common ones; nullptr when the service sent none.
  const std::string* extra(std::string_view name) const {
    const auto it = extra_.find(name);
    return it == extra_.end() ? nullptr : &it->second;
  }
  const std::vector<std::string>& rules() const noexcept { return rules_; }
  const std::vector<Violation>& violations() const noexcept { return violations_; }
  const std::string& field() const noexcept { return field_; }
  const std::string& detail() const noexcept { return detail_; }
  // The service's own text (what it filled the placeholders with).
  std::string message(Lang lang) const override {
    return message_.in(lang).empty() ? Refusal::message(lang) : message_.in(lang);
  }

 private:
  int http_status_;
  std::vector<std::string> rules_;
  Message message_;
  std::vector<Violation> violations_;
  std::string field_;
  std::string detail_;
  Extra extra_;
};

// Network failure, timeout, TLS failure, or an answer that is not the contract's.
class ServiceUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The service could not be heard while a write it may have made was on its way (an issue, a
// certificate, a loss report): unlike a plain ServiceUnavailable — a nonce or a read that failed
// before any write was asked for — the caller must not say that nothing changed.
class WriteAnswerLost : public ServiceUnavailable {
 public:
  using ServiceUnavailable::ServiceUnavailable;
};

struct NonceGrant {
  Nonce nonce{};
  std::uint64_t issued_at = 0;
  std::uint64_t expires_at = 0;
  std::uint64_t sync_window_seconds = 0;  // P12, the service's shortest; 0: not said (an older service)
};

struct CardRecord {
  std::string card;
  std::uint32_t region = 0;
  HolderRef holder{};
  std::string state;  // active | lost | replaced
  std::optional<std::string> replaced_by;
};

// VOUCHER of the contract.
struct VoucherInfo {
  VoucherId id{};
  std::uint32_t issuer = 0;
  HolderRef holder{};
  std::uint32_t programme = 0;
  std::string occupation;  // d-dd-dd-dd
  std::uint32_t level = 0;
  std::uint32_t fund = 0;
  std::uint64_t face_value_fen = 0;
  std::uint32_t planned_hours = 0;
  std::uint32_t planned_online_hours = 0;
  std::vector<std::uint32_t> eligible_regions;
  std::vector<std::uint32_t> eligible_providers;
  std::uint64_t issued_at = 0;
  std::uint64_t not_before = 0;
  std::uint64_t expires_at = 0;
};

struct IssueRequest {
  std::string card;
  std::string citizen_id;
  std::uint32_t programme = 0;
  std::string occupation;
  std::uint32_t level = 0;
  std::uint32_t fund = 0;
  std::uint32_t planned_hours = 0;
  std::uint32_t planned_online_hours = 0;
  std::optional<std::vector<std::uint32_t>> eligible_regions;
  std::optional<std::vector<std::uint32_t>> eligible_providers;
  CardProof card_proof;
};

struct IssuedVoucher {
  VoucherId voucher_id{};
  Bytes token;
  std::string state;
  VoucherInfo voucher;
};

struct VoucherStateAnswer {
  VoucherId voucher_id{};
  std::string state;
};

struct VerifiedToken {
  bool valid = false;
  std::string kid;
  std::string state;
  VoucherInfo voucher;
};

// R of the contract.
struct Redemption {
  std::uint64_t seq = 0;
  VoucherId voucher_id{};
  std::string card;
  std::uint32_t counter = 0;
  std::uint32_t site = 0;
  std::string nonce;
  std::uint64_t terminal_time = 0;
  std::uint64_t server_time = 0;
  std::uint32_t classroom_hours = 0;
  std::uint32_t online_hours = 0;
  std::uint64_t face_value_fen = 0;
  std::string receipt_id;
  std::optional<std::uint64_t> reversed_at;  // an operator reversed it: recorded, not paid
  std::string reversal_reason;
};

struct ReceiptSubmission {
  VoucherId voucher_id{};
  Bytes receipt;
  std::optional<std::string> card;
};

struct RedemptionAnswer {
  bool created = false;  // 201; false = 200, the identical receipt again
  Redemption redemption;
};

struct SyncItemResult {
  VoucherId voucher_id{};
  int status = 0;
  std::optional<Redemption> redemption;  // 200/201
  // 4xx: the refusal of this item.
  std::string error;
  std::vector<std::string> rules;
  Message message;
  bool accepted() const noexcept { return status == 200 || status == 201; }
};

struct CertificateRequest {
  std::string card;
  std::string citizen_id;
  std::uint32_t kind = 1;
  std::string occupation;
  std::uint32_t level = 0;
  std::string issuer;
  std::string number;
  std::string date;  // YYYY-MM-DD
};

struct RecordedCertificate {
  Bytes record;
  std::string salt;
  Bytes digest;
  std::uint32_t digest_version = 0;
};

struct LostRequest {
  std::string card;
  std::string citizen_id;
  std::optional<std::string> replacement;
};

struct MovedVoucher {
  VoucherId from{};
  VoucherId voucher_id{};
  Bytes token;
};

struct LostAnswer {
  std::string card;
  std::string state;
  std::optional<std::string> replacement;
  std::vector<MovedVoucher> moved;
};

struct HolderVoucher {
  VoucherId voucher_id{};
  std::string state;
  Bytes token;
  VoucherInfo voucher;
  std::optional<VoucherId> moved_from;  // a lost card's voucher moved here: never voided for a failed write
};

struct HolderVouchers {
  HolderRef holder{};
  std::vector<HolderVoucher> vouchers;
};

struct PortfolioRecord {
  Bytes record;
  std::uint32_t digest_version = 0;
  std::uint64_t recorded_at = 0;
};

struct Portfolio {
  HolderRef holder{};
  std::uint32_t digest_version = 0;
  std::optional<Bytes> digest;
  std::vector<PortfolioRecord> records;
};

struct TrustListAnswer {
  Bytes trust_list;
  std::uint64_t sequence = 0;
  std::uint64_t issued_at = 0;
  std::uint64_t next_update = 0;
};

struct Revocations {
  std::vector<VoucherId> vouchers;
  std::vector<std::string> cards;
  std::vector<std::string> terminals;
};

class ServiceClient {
 public:
  virtual ~ServiceClient() = default;
  virtual NonceGrant create_nonce() = 0;
  virtual CardRecord register_card(ByteView certificate, std::string_view citizen_id) = 0;
  virtual CardRecord get_card(std::string_view number) = 0;
  // POST /v1/cards/{number}/holder-check: the card is here (its proof, nonce used up), active,
  // and the citizen ID is its holder's (else ServiceRefusal CARD_UNKNOWN, CARD_REVOKED,
  // CARD_PROOF_INVALID, P13_REGISTRY_MISMATCH).
  virtual CardRecord check_holder(std::string_view citizen_id, const CardProof& proof) = 0;
  virtual IssuedVoucher issue_voucher(const IssueRequest& request) = 0;
  virtual VoucherStateAnswer mark_written(const VoucherId& id) = 0;
  virtual VoucherStateAnswer void_voucher(const VoucherId& id, std::string_view reason) = 0;
  virtual VerifiedToken verify_token(ByteView token) = 0;
  virtual RedemptionAnswer submit_redemption(const ReceiptSubmission& submission) = 0;
  // 1..100 items.
  virtual std::vector<SyncItemResult> sync_redemptions(std::span<const ReceiptSubmission> items) = 0;
  virtual RecordedCertificate record_certificate(const CertificateRequest& request) = 0;
  virtual LostAnswer report_lost(const LostRequest& request) = 0;
  virtual HolderVouchers holder_vouchers(const HolderRef& holder, const CardProof& proof) = 0;
  virtual Portfolio holder_portfolio(const HolderRef& holder, const CardProof& proof) = 0;
  virtual TrustListAnswer trust_list() = 0;
  virtual Revocations revocations() = 0;
};

// receipt_id of the contract: first 16 hex digits of SHA-256 over the receipt bytes.
std::string receipt_id(ByteView receipt);

}  // namespace skillcard::host
