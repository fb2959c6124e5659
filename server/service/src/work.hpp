// Internal to the handler: one request's work, split by area over work_*.cpp. Each endpoint
// runs its checks in the order docs/api.yaml lists them and throws Refused (request.hpp) at
// the first that fails; storage trouble escapes as ledger::StorageError (503).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "json_writer.hpp"
#include "request.hpp"
#include "skillcard/ledger/ledger.hpp"
#include "skillcard/policy/policy.hpp"
#include "skillcard/schemas/card_certificate.hpp"

namespace skillcard::service::detail {

enum class Endpoint {
  Healthz,
  Metrics,
  TrustList,
  Revocations,
  Nonces,
  Verify,
  Issue,
  Written,
  Void,
  Redemptions,
  RedemptionSync,
  Certificates,
  RegisterCard,
  CardInfo,
  CardLost,
  CardHolderCheck,
  Budget,
  HolderVouchers,
  HolderPortfolio,
  Report,
};

// The card proof of docs/design.md, "Card proof and nonces".
struct CardProof {
  std::string card;
  schemas::Nonce nonce{};
  std::uint32_t counter = 0;
  bool pin_verified = false;
  crypto::EcSignature signature{};
};

json voucher_json(const schemas::VoucherClaims& claims);
// The same members, written straight into an answer (the verify path).
void write_voucher(JsonWriter& out, const schemas::VoucherClaims& claims);

class Work {
 public:
  Work(const ServiceContext& ctx, const Request& request) : ctx_(ctx), request_(request) {}
  Response run(Endpoint endpoint);

 private:
  // work_general.cpp
  Response healthz();
  Response metrics();
  Response trust_list();
  Response revocations();
  Response nonces();
  Response verify();
  Response budget();
  // work_vouchers.cpp
  Response issue();
  Response written();
  Response void_voucher();
  // work_redemptions.cpp
  Response redemptions();
  Response sync();
  // One receipt through every check, online or by sync; the 201/200 answer or a refusal.
  Response redeem_one(const json& item, bool by_sync, std::string_view path);
  // work_reports.cpp (operator)
  Response report();
  // work_cards.cpp
  Response register_card();
  Response card_info();
  Response card_lost();
  Response card_holder_check();
  Response certificates();
  Response holder_vouchers();
  Response holder_portfolio();
  // The holder {ref} of a holder read, once the Skillcard-Card-Proof header proves its card is
  // present (and, at a kiosk, its PIN verified): CARD_PROOF_REQUIRED / CARD_PROOF_INVALID.
  schemas::HolderRef proven_holder() const;

  // Shared checks and lookups (work_general.cpp, work_cards.cpp).
  std::uint64_t now() const { return ctx_.clock(); }
  std::string_view segment(std::size_t index) const;  // the path's index-th segment ("v1" is 0)
  void require_empty_body() const;
  // The query string's parameters, each allowed at most once (BAD_REQUEST_FIELD otherwise).
  std::map<std::string, std::string, std::less<>> query(const std::vector<std::string_view>& allowed) const;
  static std::uint64_t query_number(const std::map<std::string, std::string, std::less<>>& params,
                                    std::string_view name, std::uint64_t min, std::uint64_t max);
  void require_policy() const;
  [[noreturn]] void refuse_token(std::string_view code, std::string_view check, const Values& values = {}) const;
  [[noreturn]] void refuse_violations(const std::vector<policy::Violation>& violations) const;
  ledger::CardRecord active_card(std::string_view number) const;  // CARD_UNKNOWN, CARD_REVOKED
  schemas::HolderRef holder_of(std::string_view citizen_id) const;
  // The registered card's holder must be the person at the counter (P13).
  void require_holder(const ledger::CardRecord& card, const schemas::HolderRef& holder) const;
  static schemas::CardCertificateClaims certificate_claims(const ledger::CardRecord& card);
  CardProof parse_card_proof(const json& object, std::string_view path) const;
  // The proof verifies against the card's AUTH key and a live nonce issued to this terminal;
  // `consume` uses the nonce up (a write), otherwise it stays live (kiosk reads). Returns the card.
  ledger::CardRecord check_card_proof(const CardProof& proof, bool consume, std::string_view used_by) const;
  // Uses up the nonce of a proof check_card_proof accepted without consuming it (CARD_PROOF_INVALID
  // when another request used it meanwhile).
  void consume_proof_nonce(const CardProof& proof, std::string_view used_by) const;
  // Ours from the ledger and the registry of record's from other systems (P1-P4, P13).
  std::vector<policy::SubsidyRecord> history(const schemas::HolderRef& holder) const;
  const crypto::Signer& voucher_signer(std::uint32_t region, std::uint32_t* bureau) const;
  ledger::TokenMinter minter(const crypto::Signer& signer) const;

  const ServiceContext& ctx_;
  const Request& request_;
};

}  // namespace skillcard::service::detail
