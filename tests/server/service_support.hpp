// Test support for the service: an in-memory ledger (only what the handler uses so far), a
// province key set made in-process, and voucher tokens signed by it.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/types.hpp"
#include "skillcard/ledger/ledger.hpp"
#include "skillcard/registry/registry.hpp"
#include "skillcard/schemas/voucher.hpp"
#include "skillcard/service/handler.hpp"
#include "skillcard/service/trust_store.hpp"

namespace skillcard::service::testing {

// Nonces and voucher records in maps; every other call throws std::logic_error (the handler
// must not reach it yet). fail_storage makes every call throw StorageError.
class FakeLedger final : public ledger::Ledger {
 public:
  struct NonceRow {
    std::string terminal;
    ledger::UtcSeconds issued_at = 0;
    ledger::UtcSeconds expires_at = 0;
    ledger::Actor actor;
  };
  std::map<schemas::Nonce, NonceRow> nonces;
  std::map<schemas::VoucherId, ledger::VoucherRecord> vouchers;
  bool fail_storage = false;
  ledger::StorageErrorKind fail_kind = ledger::StorageErrorKind::IoError;  // what fail_storage throws

  void put(const schemas::VoucherClaims& claims, const Bytes& token, ledger::VoucherState state);

  ledger::LedgerId ledger_id() override { return {}; }
  int schema_version() override { return 1; }
  ledger::CardStatus register_card(const ledger::NewCard&, const ledger::Actor&, ledger::UtcSeconds) override;
  std::optional<ledger::CardRecord> card(std::string_view) override;
  ledger::CardStatus mark_card_lost(std::string_view, const ledger::Actor&, ledger::UtcSeconds) override;
  ledger::ReplaceOutcome replace_card(std::string_view, std::string_view, const ledger::TokenMinter&,
                                      const ledger::Actor&, ledger::UtcSeconds) override;
  ledger::BudgetStatus set_budget(ledger::FundSource, std::int64_t, const ledger::Actor&, ledger::UtcSeconds) override;
  std::optional<ledger::Budget> budget(ledger::FundSource) override;
  ledger::IssueCounts read_issue_counts(const ledger::IssueQuery&) override;
  ledger::IssueOutcome issue_voucher(const ledger::IssueRequest&, const ledger::IssueDecision&,
                                     const ledger::TokenMinter&, const ledger::Actor&, ledger::UtcSeconds) override;
  ledger::VoucherOutcome mark_written(const ledger::VoucherId&, const ledger::Actor&, ledger::UtcSeconds) override;
  ledger::VoucherOutcome void_voucher(const ledger::VoucherId&, std::string_view, const ledger::Actor&,
                                      ledger::UtcSeconds) override;
  std::size_t expire_vouchers(ledger::UtcSeconds, const ledger::Actor&, ledger::UtcSeconds) override;
  std::optional<ledger::VoucherRecord> voucher(const ledger::VoucherId& id) override;
  std::optional<ledger::VoucherStanding> voucher_standing(const ledger::VoucherId& id) override;
  std::vector<ledger::VoucherRecord> holder_vouchers(const ledger::HolderRef&) override;
  std::vector<ledger::VoucherRecord> holder_history(const ledger::HolderRef&, int) override;
  ledger::Revocations revocations(ledger::UtcSeconds) override;
  ledger::NonceStatus issue_nonce(const ledger::Nonce& nonce, std::string_view terminal, ledger::UtcSeconds issued_at,
                                  ledger::UtcSeconds expires_at, const ledger::Actor& actor) override;
  ledger::NonceStatus check_nonce(const ledger::Nonce&, std::string_view, ledger::UtcSeconds) override;
  ledger::NonceStatus consume_nonce(const ledger::Nonce&, std::string_view, std::string_view, const ledger::Actor&,
                                    ledger::UtcSeconds) override;
  ledger::RecordOutcome record_redemption(const ledger::RedemptionRequest&) override;
  ledger::ReversalOutcome reverse_redemption(const ledger::VoucherId&, std::string_view, const ledger::Actor&,
                                             ledger::UtcSeconds) override;
  std::optional<ledger::RedemptionRecord> redemption(const ledger::VoucherId&) override;
  std::optional<ledger::RedemptionRecord> redemption_by_counter(std::string_view, std::uint32_t) override;
  ledger::ReceiptTimesAround receipt_times_around(std::string_view, std::uint32_t) override;
  std::vector<ledger::RedemptionExportRow> list_redemptions(const ledger::RedemptionFilter&) override;
  std::vector<ledger::SettlementLine> settlement(const ledger::RedemptionFilter&) override;
  ledger::CertificateOutcome record_certificate(const ledger::HolderRef&, ByteView, const ledger::Actor&,
                                                ledger::UtcSeconds) override;
  std::vector<ledger::CertificateEntry> certificates(const ledger::HolderRef&) override;
  std::uint32_t digest_version(const ledger::HolderRef&) override;
  void for_each_voucher(const ledger::VoucherFilter&,
                        const std::function<void(const ledger::VoucherRecord&)>&) override;
  void for_each_certificate(const ledger::CertificateFilter&,
                            const std::function<void(const ledger::CertificateEntry&)>&) override;
  ledger::AuditHead audit_head() override;
  std::vector<ledger::AuditEntry> audit_entries(std::uint64_t, std::size_t) override;

 private:
  void storage() const;
  std::mutex mutex_;
};

inline constexpr std::uint32_t kBureau = 420100;
inline constexpr std::uint32_t kProvince = 420000;
inline constexpr std::uint64_t kNow = 1'750'000'000;  // the tests' service clock

// The province's keys, in memory, and the trust list the root signs over them.
struct KeySet {
  crypto::OpenSsl::PrivateKey root = crypto::OpenSsl::PrivateKey::generate();
  crypto::OpenSsl::PrivateKey voucher = crypto::OpenSsl::PrivateKey::generate();       // bureau 420100
  crypto::OpenSsl::PrivateKey other_bureau = crypto::OpenSsl::PrivateKey::generate();  // bureau 420200
  crypto::OpenSsl::PrivateKey portfolio = crypto::OpenSsl::PrivateKey::generate();     // role portfolio
  crypto::OpenSsl::PrivateKey unlisted = crypto::OpenSsl::PrivateKey::generate();      // not on the list
  crypto::OpenSsl::PrivateKey card_ca = crypto::OpenSsl::PrivateKey::generate();       // role card-ca
  Bytes signed_list() const;
  // The trust store the service would load from signed_list().
  std::unique_ptr<TrustStore> trust_store() const;
};

// The handler's context over a ledger and a trust store, with the given clock and optional
// metrics; callers add the policy, registry and signers where they need them.
ServiceContext base_context(ledger::Ledger& ledger, const TrustStore& trust, std::function<std::uint64_t()> clock,
                            Metrics* metrics = nullptr);

schemas::VoucherClaims sample_claims(std::uint64_t serial);
Bytes sign_token(const schemas::VoucherClaims& claims, const crypto::OpenSsl::PrivateKey& key);
crypto::Kid kid(const crypto::OpenSsl::PrivateKey& key);

inline constexpr std::uint32_t kSite = 10001;

// A person the registry of record knows: region 420100, born 1990, insured, registered
// unemployed (a P5 key group).
registry::Person registered_person(const std::string& citizen_id);

// An 18-character citizen ID from its first 17 digits (the check character computed).
std::string citizen(std::string_view first17);
// The tests' holder reference of a citizen ID (the service's comes from the master key store).
crypto::HolderRef holder_of(std::string_view citizen_id);

// A card as the service sees it: a certificate from the card CA over its RECEIPT and AUTH
// keys, the card proof (INTERNAL AUTHENTICATE) and receipts (REDEEM) it makes.
struct TestCard {
  std::string number;
  crypto::OpenSsl::PrivateKey receipt_key = crypto::OpenSsl::PrivateKey::generate();
  crypto::OpenSsl::PrivateKey auth_key = crypto::OpenSsl::PrivateKey::generate();
  std::uint32_t auth_counter = 0;
  std::uint32_t redemption_counter = 0;
  Bytes cert;

  // Signed once: the card holds one certificate (ECDSA signatures differ each time).
  const Bytes& certificate(const crypto::OpenSsl::PrivateKey& card_ca, std::uint64_t now = kNow);
  const Bytes& certificate(const KeySet& keys) { return certificate(keys.card_ca); }
  // INTERNAL AUTHENTICATE's answer as the card proof JSON text (docs/design.md, "Card proof").
  std::string proof(const std::string& nonce_hex, bool pin_verified);
  Bytes receipt(const std::string& voucher_hex, const schemas::Nonce& nonce, std::uint64_t time,
                std::uint32_t site = kSite, std::uint16_t classroom = 84, std::uint16_t online = 36);
};
schemas::Nonce nonce_from_hex(const std::string& hex);
schemas::VoucherId voucher_id_from_hex(const std::string& hex);

// Writes the files of `skillcard-keytool init` that the service reads (for TrustStore tests).
void write_key_folder(const std::filesystem::path& dir, const KeySet& keys);

}  // namespace skillcard::service::testing
