// The terminal workflows of issue #10 as pure host logic over CardSession and ServiceClient
// (docs/design.md, "APDU flows"): the counter (genuineness, issue and write, settle an unknown
// write, certificates, PINs, lost card, purge), the training site (redeem within 5 exchanges
// after SELECT, recovery by GET RECEIPT, offline queue) and the kiosk (read-only lookup with the
// card-signed digest checked against every record the service returns).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "skillcard/host/card_session.hpp"
#include "skillcard/host/offline_queue.hpp"
#include "skillcard/host/service_client.hpp"
#include "skillcard/host/trust.hpp"
#include "skillcard/schemas/portfolio.hpp"

namespace skillcard::host {

// UTC seconds now (injected, so tests and offline checks do not read the wall clock).
using Clock = std::function<std::uint64_t()>;

// ---------------------------------------------------------------------------------- counter

struct GenuineCard {
  VerifiedCard card;
  CardProof proof;  // over a fresh server nonce, pin_verified = false
};

// What the counter sees when a card is put down.
struct CardReading {
  GenuineCard genuine;
  CardRecord at_service;  // GET /v1/cards/{number}: registered holder, active / lost / replaced
  VoucherList on_card;    // LIST VOUCHERS (00) in a counter session: every slot
};

struct IssueInput {
  std::string citizen_id;
  std::uint32_t programme = 0;
  std::string occupation;  // d-dd-dd-dd
  std::uint32_t level = 0;
  std::uint32_t fund = 0;
  std::uint32_t planned_hours = 0;
  std::uint32_t planned_online_hours = 0;
  std::optional<std::vector<std::uint32_t>> eligible_regions;
  std::optional<std::vector<std::uint32_t>> eligible_providers;
};

enum class WriteState {
  Written,  // on the card and confirmed at the service
  Voided,   // the write failed definitively; voided at the service
  Unknown,  // outcome unknown (card pulled mid-STORE, service gone): settle() on the next tap
  // A lost card's voucher moved here (an existing subsidy) whose write failed definitively: it
  // stays issued at the service, never voided; `counter settle` writes it once the card can
  // take it (back in the reader, a slot purged).
  NotWritten,
};
std::string_view to_string(WriteState state) noexcept;

struct IssueOutcome {
  VoucherId voucher_id{};
  Bytes token;
  VoucherInfo voucher;
  WriteState state = WriteState::Unknown;
  std::string problem;          // why not Written (code or text)
  Placeholders problem_values;  // the values of its catalogue message (e.g. CARD_ERROR's {sw})
};

struct LostOutcome {
  LostAnswer answer;
  std::vector<IssueOutcome> moved;  // one per moved voucher, written onto the replacement
};

class CounterWorkflow {
 public:
  CounterWorkflow(CardSession& card, ServiceClient& service, const TrustAnchors& trust, Clock clock);

  // SELECT, GET DATA 01 03 (certificate checked against the trust list), a server nonce, plain
  // INTERNAL AUTHENTICATE checked with the certificate's auth key. HostRefusal if not genuine.
  GenuineCard prove_genuine();
  // Genuineness (2 exchanges), GET /v1/cards/{number}, IU, EA, LIST (00): 5 exchanges.
  CardReading read_card();
  // Genuineness, POST /v1/vouchers, counter session, STORE VOUCHER, then …/written; a definitive
  // write failure voids the voucher; an unknown one returns WriteState::Unknown. With
  // `settled_first`, the holder's vouchers issued but not yet on the card (an earlier issue whose
  // answer was lost) are written first, as settle_unwritten() does, on the same proof of the card,
  // and their outcomes appended there — before the issue, so also when the issue is refused (a
  // retry of the lost issue is refused P3 once its voucher is on the card).
  IssueOutcome issue(const IssueInput& input, std::vector<IssueOutcome>* settled_first = nullptr);
  // The next tap after WriteState::Unknown: genuineness, the card's holder must hold the voucher
  // at the service (else HostRefusal CARD_OF_ANOTHER_HOLDER, nothing changed), then a counter
  // session's LIST says whether the voucher is on the card; then …/written or …/void — a moved
  // voucher (a lost card's, the same subsidy) not on the card is written now instead of voided.
  WriteState settle(const VoucherId& voucher_id);
  // After an issue whose answer never came back (the service may have issued a voucher this
  // counter never saw, which would count towards P1 and make P3 refuse the retry): genuineness,
  // then every voucher the service holds as issued-not-written for this card's holder — on the
  // card already: …/written; not on it: STOREd now and …/written (voided if the card refuses it).
  // One outcome per voucher settled; none when there was nothing to settle.
  std::vector<IssueOutcome> settle_unwritten();
  // POST /v1/certificates, then WRITE DIGEST of the new signed digest (card number from the card).
  // Refused P14_CERTIFICATE_DUPLICATE (recorded before, e.g. by a first attempt whose answer or
  // WRITE DIGEST was lost): the refusal's current digest, verified, is written when the card's
  // own is older; then the refusal is thrown as ever.
  RecordedCertificate record_certificate(CertificateRequest request);
  void change_pin(const Pin& old_pin, const Pin& new_pin);
  // After the clerk has checked the holder's identity document: genuineness, the document's
  // citizen ID checked against the card's holder at the service with the card's proof
  // (POST …/holder-check), then RESET RETRY COUNTER on that same card (another card in the
  // reader by then: HostRefusal CARD_REMOVED). Returns the card as the service holds it.
  CardRecord reset_pin(std::string_view citizen_id, const Pin& new_pin);
  // The same, asking for the new PIN only once the service has confirmed the holder.
  CardRecord reset_pin(std::string_view citizen_id, const std::function<Pin()>& ask_new_pin);
  // The card in the reader is the replacement (registered before): the service moves the lost
  // card's unredeemed vouchers; each is STOREd here and confirmed written.
  LostOutcome replace_lost_card(const std::string& lost_card, const std::string& citizen_id);
  // Purges (PURGE) the card's redeemed slots whose vouchers the service reports redeemed.
  std::vector<VoucherId> purge_redeemed();

 private:
  // STORE on the card proven genuine (another card in the reader meanwhile: not written), then
  // …/written; a definitive failure voids a new voucher and leaves a moved one NotWritten.
  IssueOutcome write_voucher(const GenuineCard& genuine, const VoucherId& id, Bytes token, VoucherInfo info,
                             bool moved);
  void open_counter_session(const GenuineCard& genuine);
  void settle_unwritten_of(const GenuineCard& genuine, std::vector<IssueOutcome>& out);
  void update_digest_from(const GenuineCard& genuine, const ServiceRefusal& duplicate);
  CardRecord after_holder_check(std::string_view citizen_id, const std::function<void(const GenuineCard&)>& reset);
  CardSession* card_;
  ServiceClient* service_;
  const TrustAnchors* trust_;
  Clock clock_;
};

// ------------------------------------------------------------------------------------- site

struct SiteConfig {
  std::uint32_t site_id = 0;  // = provider id and the receipt's site
  std::uint32_t region = 0;   // the terminal's GB/T 2260 region
};

// The nonce fetched before the tap (valid 5 min), or an offline one 02 ‖ 16 random bytes.
struct PreparedNonce {
  Nonce nonce{};
  bool offline = false;
  std::uint64_t expires_at = 0;
  // Online: the service's clock minus this terminal's when the nonce was issued (seconds). The
  // redemption's time is this terminal's clock corrected by it, so that a terminal clock that
  // is off never puts a receipt ahead of the service (RECEIPT_TIME_IN_FUTURE, after the card
  // has signed) nor raises the card's time mark past the truth. Offline: 0 (the offline checks
  // bound the skew to 5 min instead).
  std::int64_t clock_correction = 0;
};

// Thrown when the card went away during REDEEM: the redemption may have happened. `pending` is
// already in the offline queue's file; the next tap of that card recovers it.
class RedemptionInDoubt : public HostRefusal {
 public:
  explicit RedemptionInDoubt(InDoubt pending);
  const InDoubt& pending() const noexcept { return pending_; }

 private:
  InDoubt pending_;
};

enum class RedeemStatus {
  Recorded,         // 201: the service recorded it
  AlreadyRecorded,  // 200: the same receipt was recorded before
  Queued,           // service unreachable or nonce expired: in the offline queue
};
std::string_view to_string(RedeemStatus status) noexcept;

struct RedeemOutcome {
  RedeemStatus status = RedeemStatus::Queued;
  std::string card;
  VoucherId voucher_id{};
  Bytes receipt;           // the card-signed receipt, byte for byte
  std::string receipt_id;  // first 16 hex of SHA-256(receipt): printable offline too
  std::uint32_t counter = 0;
  std::uint64_t terminal_time = 0;
  std::optional<Redemption> redemption;  // when the service answered
  bool recovered = false;                // from GET RECEIPT after an unknown outcome
  std::string queued_because;
  // The service answered this receipt, so the receipts an earlier offline spell left waiting were
  // sent behind it (what that sync did), or why they could not be ("" when nothing was waiting).
  std::optional<SyncReport> synced;
  std::string sync_problem;
};

// The card redeemed the voucher and signed its receipt, then the service refused the receipt
// (e.g. hours over the plan, P8): the voucher is used up on the card, and the receipt stays in
// the offline queue marked refused (site queue) for the bureau to resolve. Thrown by redeem()
// and submit() with the outcome, so that the clerk is told which voucher and receipt.
class ReceiptRefused : public ServiceRefusal {
 public:
  ReceiptRefused(const ServiceRefusal& refusal, RedeemOutcome outcome)
      : ServiceRefusal(refusal), outcome_(std::move(outcome)) {}
  const RedeemOutcome& outcome() const noexcept { return outcome_; }

 private:
  RedeemOutcome outcome_;
};

class SiteWorkflow {
 public:
  SiteWorkflow(CardSession& card, ServiceClient& service, OfflineQueue& queue, SiteConfig config, Clock clock);

  // POST /v1/nonces (recording the contact: terminal and service time); unreachable service →
  // an offline nonce, only within the offline bounds of docs/design.md "Time": a last contact
  // ≤ 72 h ago, the clock then within 5 min of the service's, and not earlier now than then —
  // else HostRefusal OFFLINE_NOT_ALLOWED.
  PreparedNonce prepare();
  // One tap: IU, EA, VERIFY, LIST (stored), then REDEEM — or, for a card with a REDEEM in
  // doubt whose counter moved, GET RECEIPT instead (never a second REDEEM): ≤ 5 exchanges
  // after SELECT. `voucher`: the holder's choice, else the first usable here; a terminal time
  // more than 10 min before the card's time mark is refused before REDEEM
  // (CARD_TIME_REGRESSION). Then
  // POST /v1/redemptions; unreachable or NONCE_EXPIRED → offline queue. A refusal by the
  // service is kept in the queue marked refused and rethrown as ServiceRefusal.
  RedeemOutcome redeem(const PreparedNonce& nonce, const Pin& pin, std::uint16_t classroom_hours,
                       std::uint16_t online_hours, std::optional<VoucherId> voucher = std::nullopt);
  // Slots usable at this site at `now`.
  std::vector<SlotSummary> usable(const VoucherList& list, std::uint64_t now) const;
  // The holder's choice during the tap, when redeem() was given no voucher: called with the
  // slots usable here (at least one) and returns one of their ids. Unset: the first.
  using Chooser = std::function<VoucherId(const std::vector<SlotSummary>& usable)>;
  void set_chooser(Chooser choose) { choose_ = std::move(choose); }

 private:
  RedeemOutcome submit(RedeemOutcome outcome);
  CardSession* card_;
  ServiceClient* service_;
  OfflineQueue* queue_;
  SiteConfig config_;
  Clock clock_;
  Chooser choose_;
};

// ------------------------------------------------------------------------------------ kiosk

// How a record the service returned relates to the card's signed digest (design.md N-3).
enum class RecordCheck {
  OnCard,         // its SHA-256 is in the card's digest
  NewerThanCard,  // recorded after the card's digest was written: "card digest out of date"
  OlderThanCard,  // among the records beyond the 11 the digest holds: "not on the card's digest"
  Mismatch,       // should be on the digest and is not: altered or not this holder's
  NoCardDigest,   // the card holds no digest
};
std::string_view to_string(RecordCheck check) noexcept;

struct KioskRecord {
  PortfolioRecord raw;
  std::optional<schemas::CertificateRecord> record;  // nullopt: did not decode
  RecordCheck check = RecordCheck::Mismatch;
};

struct KioskVoucher {
  HolderVoucher service;
  std::optional<SlotState> on_card;  // the card's slot state, if on this card
  bool token_verified = false;       // signed by its bureau's voucher key, for this holder
  std::string problem;
};

struct KioskView {
  std::string card;
  HolderRef holder{};
  std::optional<schemas::PortfolioDigestClaims> card_digest;
  bool card_digest_out_of_date = false;  // the service has a newer digest version
  std::vector<KioskVoucher> vouchers;
  std::vector<KioskRecord> records;
};

class KioskWorkflow {
 public:
  KioskWorkflow(CardSession& card, ServiceClient& service, const TrustAnchors& trust, Clock clock);
  // Nonce, then the tap: IU, EA, VERIFY, INTERNAL AUTHENTICATE, LIST, READ DIGEST (6 after
  // SELECT); then the GETs with the card proof. Only what the holder asked for is fetched.
  KioskView lookup(const Pin& pin, bool vouchers = true, bool portfolio = true);

 private:
  CardSession* card_;
  ServiceClient* service_;
  const TrustAnchors* trust_;
  Clock clock_;
};

// Classifies the service's records against a verified card digest (nullopt: none on the card).
std::vector<KioskRecord> check_records(const std::vector<PortfolioRecord>& records,
                                       const std::optional<schemas::PortfolioDigestClaims>& card_digest);

}  // namespace skillcard::host
