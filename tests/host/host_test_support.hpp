// Test pieces for the host tests: the trust list of the test PKI (root, card CA of the
// training_support card, a voucher signer, a portfolio signer), a channel decorator that counts
// exchanges and can cut power at a chosen command, and FakeService — a ServiceClient that
// follows contract v1 in memory (checks card proofs and receipts with the test card's keys,
// signs vouchers and digests), with switches for "down" and "nonce expired".
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "skillcard/card/card.hpp"
#include "skillcard/card/in_process_channel.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/host/card_key_source.hpp"
#include "skillcard/host/service_client.hpp"
#include "skillcard/host/trust.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::host::testing {

// 2026-01-02T00:00:00Z: the test card's certificate and the test tokens are valid then.
inline constexpr std::uint64_t kNow = 1'767'225'600 + 86'400;
inline constexpr std::uint32_t kSite = 10001;
inline constexpr std::uint32_t kRegion = 420100;
// A valid 18-character citizen ID (check character computed).
std::string citizen_id();

struct TestPki {
  crypto::OpenSsl::PrivateKey root = crypto::OpenSsl::PrivateKey::generate();
  crypto::OpenSsl::PrivateKey voucher_signer = crypto::OpenSsl::PrivateKey::generate();
  crypto::OpenSsl::PrivateKey portfolio_signer = crypto::OpenSsl::PrivateKey::generate();
  Bytes trust_list;  // signed by root; lists the card CA of training_support too
  TestPki();
  TrustAnchors anchors() const;
};
const TestPki& pki();

// A second personalised card of the same holder (number 4201000002, its own keys and
// certificate from the same test card CA): the replacement in the lost-card tests.
inline constexpr std::string_view kSecondCard = "4201000002";
std::unique_ptr<card::Card> make_second_card();
Bytes second_card_certificate();

// The site, counter or kiosk key source of the test card's masters.
std::unique_ptr<CardKeySource> key_source(crypto::CardRole role);

// Counts exchanges; can arm a power cut on the card when a command with INS `cut_ins` goes out
// (write index counted from that command's start).
class TestChannel final : public iso7816::CardChannel {
 public:
  explicit TestChannel(card::Card& card) : card_(&card), inner_(card) {}
  iso7816::ResponseApdu transmit(const iso7816::CommandApdu& command) override;
  Bytes atr() const override { return inner_.atr(); }
  void reset() override { inner_.reset(); }
  // Another card put into the same reader (powered on afresh).
  void swap_card(card::Card& other) {
    card_ = &other;
    inner_ = card::InProcessChannel(other);
    inner_.reset();
  }

  std::size_t exchanges = 0;
  std::map<std::uint8_t, std::size_t> by_ins;  // commands seen, by INS
  struct Cut {
    std::uint8_t ins;
    std::uint64_t write_index;
    card::CutMode mode;
  };
  std::optional<Cut> cut;  // consumed when it fires
  // Flips a bit in the answer to the next command with this INS (a line error after the card
  // ran it); consumed when it fires.
  std::optional<std::uint8_t> corrupt_answer_of;
  // The host dies (a std::runtime_error that is no card error) once the card has run the next
  // command with this INS and answered; consumed when it fires.
  std::optional<std::uint8_t> die_after_answer_of;
  // The card is out of the reader when the next command with this INS is sent (CardRemovedError:
  // it never reached the card); consumed when it fires.
  std::optional<std::uint8_t> absent_at;

 private:
  card::Card* card_;
  card::InProcessChannel inner_;
};

// Every call throws std::logic_error: tests override the calls they expect.
class UnexpectedService : public ServiceClient {
 public:
  NonceGrant create_nonce() override;
  CardRecord register_card(ByteView certificate, std::string_view citizen_id) override;
  CardRecord get_card(std::string_view number) override;
  CardRecord check_holder(std::string_view citizen_id, const CardProof& proof) override;
  IssuedVoucher issue_voucher(const IssueRequest& request) override;
  VoucherStateAnswer mark_written(const VoucherId& id) override;
  VoucherStateAnswer void_voucher(const VoucherId& id, std::string_view reason) override;
  VerifiedToken verify_token(ByteView token) override;
  RedemptionAnswer submit_redemption(const ReceiptSubmission& submission) override;
  std::vector<SyncItemResult> sync_redemptions(std::span<const ReceiptSubmission> items) override;
  RecordedCertificate record_certificate(const CertificateRequest& request) override;
  LostAnswer report_lost(const LostRequest& request) override;
  HolderVouchers holder_vouchers(const HolderRef& holder, const CardProof& proof) override;
  Portfolio holder_portfolio(const HolderRef& holder, const CardProof& proof) override;
  TrustListAnswer trust_list() override;
  Revocations revocations() override;
};

class FakeService final : public ServiceClient {
 public:
  FakeService();

  bool down = false;           // every call: ServiceUnavailable
  bool expire_nonces = false;  // redemptions with a server nonce: NONCE_EXPIRED
  bool forget_nonces = false;  // online redemptions: NONCE_UNKNOWN (the service failed over)
  bool refuse_sync = false;    // sync_redemptions: the whole request refused (TERMINAL_ROLE_FORBIDDEN)
  std::uint64_t now = kNow;
  std::uint32_t terminal_site = kSite;      // the site of the terminal that calls (its certificate)
  bool void_after_issue = false;            // an operator voids each voucher right after it is issued
  bool lose_issue_answer = false;           // a voucher is issued, then the answer is lost (ServiceUnavailable)
  std::function<void()> after_report_lost;  // runs once a loss report has moved the vouchers

  std::uint64_t sync_window_seconds = 0;  // P12 as the nonce answer says it (0: not said)
  NonceGrant create_nonce() override;
  CardRecord register_card(ByteView certificate, std::string_view citizen_id) override;
  CardRecord get_card(std::string_view number) override;
  CardRecord check_holder(std::string_view citizen_id, const CardProof& proof) override;
  IssuedVoucher issue_voucher(const IssueRequest& request) override;
  VoucherStateAnswer mark_written(const VoucherId& id) override;
  VoucherStateAnswer void_voucher(const VoucherId& id, std::string_view reason) override;
  VerifiedToken verify_token(ByteView token) override;
  RedemptionAnswer submit_redemption(const ReceiptSubmission& submission) override;
  std::vector<SyncItemResult> sync_redemptions(std::span<const ReceiptSubmission> items) override;
  RecordedCertificate record_certificate(const CertificateRequest& request) override;
  LostAnswer report_lost(const LostRequest& request) override;
  HolderVouchers holder_vouchers(const HolderRef& holder, const CardProof& proof) override;
  Portfolio holder_portfolio(const HolderRef& holder, const CardProof& proof) override;
  TrustListAnswer trust_list() override;
  Revocations revocations() override;

  // Ledger view for assertions.
  struct Voucher {
    schemas::VoucherClaims claims;
    Bytes token;
    std::string card;
    std::string state;                    // issued | written | voided | redeemed | moved
    std::optional<VoucherId> moved_from;  // moved here from a lost card
  };
  std::map<VoucherId, Voucher> vouchers;
  std::map<VoucherId, Redemption> redemptions;
  std::map<VoucherId, Bytes> receipts;
  std::vector<Bytes> record_bytes;  // certificate records, in order
  std::vector<std::uint32_t> record_versions;
  std::uint32_t digest_version = 0;
  Bytes current_digest;
  std::size_t submit_calls = 0;
  std::set<std::string> lost_cards;
  struct CardKeys {
    crypto::EcPublicKey auth;
    crypto::EcPublicKey receipt;
  };
  std::map<std::string, CardKeys> cards;  // registered: the test card from the start
  std::map<std::string, std::string> card_of_replacement;
  // Issues a voucher for the test holder directly (no card proof), for site/kiosk setups.
  IssuedVoucher issue_direct(std::vector<std::uint32_t> regions, std::vector<std::uint32_t> providers,
                             std::string card = "4201000001");

 private:
  void check_up() const;
  const CardKeys& keys_of_card(std::string_view card) const;
  void check_proof(const CardProof& proof, bool need_pin) const;
  Redemption record(const ReceiptSubmission& s, bool& created);
  std::uint64_t next_serial_ = 1;
  std::uint64_t seq_ = 0;
  std::map<Nonce, std::uint64_t> nonces_;  // nonce → expiry
  std::set<Nonce> used_nonces_;
  std::uint64_t nonce_counter_ = 0;
};

}  // namespace skillcard::host::testing
