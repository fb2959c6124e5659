// The ledger's value types (docs/ledger.md): records, the policy engine's decision, typed
// outcomes of every write, and the storage errors. Backend-neutral: nothing here names SQLite
// or libpq, so both implementations answer with the same types.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "skillcard/crypto/types.hpp"
#include "skillcard/iso7816/call_site.hpp"
#include "skillcard/schemas/common.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::ledger {

using schemas::FundSource;
using schemas::HolderRef;
using schemas::Nonce;
using schemas::VoucherId;

using UtcSeconds = std::uint64_t;  // service clock, UTC seconds since the epoch (docs/design.md, "Time")

// 16 random bytes chosen when the ledger file (or database) is created; checkpoints name it.
using LedgerId = std::array<std::uint8_t, 16>;

// ---------------------------------------------------------------------------------------------
// Errors. Domain refusals are typed outcomes (below), never exceptions; these are for storage
// that cannot do what was asked.

enum class StorageErrorKind {
  Busy,            // another writer held the database longer than the busy timeout
  Constraint,      // a constraint the ledger's own checks should have caught (a bug, or tampering)
  Corrupt,         // the file is damaged
  NotADatabase,    // not a database file at all
  IoError,         // the disk failed (or, in tests, the power went)
  Full,            // disk full
  ReadOnly,        // opened or mounted read-only
  CantOpen,        // file or folder missing, permissions
  Misuse,          // API misuse (a bug)
  OutcomeUnknown,  // the connection went while COMMIT was on its way, and the server could not say
  Other,
};
std::string_view to_string(StorageErrorKind kind) noexcept;

// A failed storage call: what was called, the backend's own code and message, and where in our
// code the call was made.
class StorageError : public std::runtime_error {
 public:
  StorageError(StorageErrorKind kind, int backend_code, const std::string& what, CallSite where);
  StorageErrorKind kind() const noexcept { return kind_; }
  int backend_code() const noexcept { return backend_code_; }  // e.g. SQLite's extended result code
  const CallSite& where() const noexcept { return where_; }

 private:
  StorageErrorKind kind_;
  int backend_code_;
  CallSite where_;
};

// The file or database is not a ledger this software can use.
class SchemaError : public std::runtime_error {
 public:
  enum class Reason {
    NewerVersion,     // written by a newer release: refused, never downgraded
    NotALedger,       // another application's database
    MigrationFailed,  // a migration step failed and was rolled back
    Damaged,          // integrity check failed (restore)
  };
  SchemaError(Reason reason, const std::string& what, int found_version = 0, int supported_version = 0);
  Reason reason() const noexcept { return reason_; }
  int found_version() const noexcept { return found_; }
  int supported_version() const noexcept { return supported_; }

 private:
  Reason reason_;
  int found_;
  int supported_;
};

// ---------------------------------------------------------------------------------------------
// Ids and who did it.

// Voucher ids are the ledger's sequential serial, big-endian in 8 bytes (token claim cti).
std::uint64_t serial_of(const VoucherId& id) noexcept;
VoucherId voucher_id(std::uint64_t serial) noexcept;
std::string lower_hex(ByteView bytes);  // ids in JSON and audit subjects: lower-case hex

// Every write names the terminal (its certificate CN) and the clerk (the operator logged in at
// it); both go into the audit row. Empty names are refused with std::invalid_argument.
struct Actor {
  std::string terminal;
  std::string clerk;
  bool operator==(const Actor&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Cards.

enum class CardState : std::uint8_t { Active = 1, Lost = 2, Replaced = 3 };
std::string_view to_string(CardState state) noexcept;

struct NewCard {
  std::string number;  // 10 ASCII digits
  HolderRef holder{};
  std::uint32_t region = 0;
  Bytes certificate;  // the card certificate (COSE_Sign1) exactly as the card holds it
};

struct CardRecord {
  std::string number;
  HolderRef holder{};
  std::uint32_t region = 0;
  Bytes certificate;
  CardState state = CardState::Active;
  std::optional<std::string> replaced_by;  // the replacement card's number
  UtcSeconds registered_at = 0;
  UtcSeconds state_changed_at = 0;
  bool operator==(const CardRecord&) const = default;
};

enum class CardStatus {
  Registered,                  // new card recorded
  AlreadyRegisteredSame,       // the same card again: idempotent
  NumberTaken,                 // another card (holder, region or certificate) under this number
  Changed,                     // lost / replaced as asked
  AlreadyInState,              // e.g. reported lost twice: idempotent
  CardUnknown,                 // CARD_UNKNOWN
  CardNotActive,               // a lost or replaced card cannot be replaced again
  ReplacementUnknown,          // the replacement must be registered first
  ReplacementNotActive,        //
  ReplacementOfAnotherHolder,  // a replacement belongs to the same holder reference
};
std::string_view to_string(CardStatus status) noexcept;

// ---------------------------------------------------------------------------------------------
// Vouchers.

// issued → written → redeemed; issued|written → voided | expired | moved. A moved voucher is
// the same subsidy under a new id on the holder's replacement card (its successor counts, it
// does not). A reversed redemption voids its voucher (the subsidy is withdrawn).
enum class VoucherState : std::uint8_t { Issued = 1, Written = 2, Redeemed = 3, Voided = 4, Expired = 5, Moved = 6 };
std::string_view to_string(VoucherState state) noexcept;
// Whether a voucher in this state is a subsidy the holder has (P1, P2, P3 counts): issued,
// written, redeemed.
bool counts_as_subsidy(VoucherState state) noexcept;

// What checking a presented token needs from the ledger: the voucher's state and the token it
// was issued as (the service's verify reads this, not the whole record, on every request).
struct VoucherStanding {
  VoucherState state = VoucherState::Issued;
  Bytes token;
};

struct VoucherRecord {
  schemas::VoucherClaims claims;  // exactly the token's claims; claims.id is the voucher id
  crypto::Kid signer{};           // kid in the token's protected header
  Bytes token;                    // the signed token as issued
  std::string card;               // the card it was issued for ("" if none named)
  VoucherState state = VoucherState::Issued;
  UtcSeconds state_changed_at = 0;
  int cst_year = 0;  // CST year the subsidy counts in (P1, P2): of issued_at, kept across moves
  std::optional<VoucherId> moved_from;
  std::optional<VoucherId> moved_to;
  std::string void_reason;
  // The region of the counter that issued it, whose policy settings it was issued under (and is
  // redeemed under): a county's counter may issue under its city's signer. 0: issued before
  // schema version 4 (PostgreSQL 5), when the issuer's settings apply. Kept across moves.
  std::uint32_t issuing_region = 0;
  const VoucherId& id() const noexcept { return claims.id; }
  bool operator==(const VoucherRecord&) const = default;
};

enum class VoucherStatus {
  Changed,         // the state changed as asked
  AlreadyInState,  // idempotent repeat (e.g. written twice)
  VoucherUnknown,  // VOUCHER_UNKNOWN
  WrongState,      // e.g. void of a redeemed voucher (use a reversal)
};
std::string_view to_string(VoucherStatus status) noexcept;
struct VoucherOutcome {
  VoucherStatus status = VoucherStatus::VoucherUnknown;
  std::optional<VoucherRecord> voucher;  // the record after the call, when it exists
};

// ---------------------------------------------------------------------------------------------
// Issuing: the policy engine's decision (#9) applied atomically (P1, P2, P3, P16).

// What this ledger holds for a holder, as the policy engine reads it before deciding and as the
// ledger re-reads it inside the transaction that records the issue.
struct IssueQuery {
  HolderRef holder{};
  int cst_year = 0;  // cst_year(claims.issued_at)
  FundSource fund = FundSource::SpecialAccount;
  std::uint32_t occupation = 0;
  std::uint8_t level = 0;
};
struct IssueCounts {
  std::uint32_t holder_year = 0;                  // P1: subsidies of the holder in the CST year
  std::uint32_t holder_employment_fund_year = 0;  // P2: of those, from the employment subsidy fund
  std::uint32_t same_occupation_level = 0;        // P3: ever, same occupation and level
  std::int64_t fund_remaining_fen = 0;            // P16: allocated − committed − spent (0 if no budget)
  bool operator==(const IssueCounts&) const = default;
};

// Subsidies the registry of record knows from other systems (#9, P13): they are added to this
// ledger's counts in the atomic check. The hook through which the registry's history enters.
struct ExternalCounts {
  std::uint32_t holder_year = 0;
  std::uint32_t holder_employment_fund_year = 0;
  std::uint32_t same_occupation_level = 0;
  bool operator==(const ExternalCounts&) const = default;
};
class SubsidyHistorySource {  // implemented by #9's registry
 public:
  virtual ~SubsidyHistorySource() = default;
  virtual ExternalCounts counts(const IssueQuery& query) = 0;
};

// The policy engine's "allow" for one issue, with the counts it decided on and the limits it
// applied. The ledger re-reads its counts in the write transaction: if they moved so that the
// limits no longer hold, the issue is refused as stale (re-decide with the fresh counts).
struct IssueDecision {
  IssueCounts ledger_counts;                      // as returned by Ledger::read_issue_counts
  ExternalCounts external;                        // from the registry of record
  std::uint32_t annual_limit = 3;                 // P1
  std::uint32_t employment_fund_limit = 1;        // P2
  std::uint32_t same_occupation_level_limit = 1;  // P3: once, ever
};

struct ReceiptTimesAround {
  std::optional<UtcSeconds> latest_below;    // max terminal_time with a lower counter
  std::optional<UtcSeconds> earliest_above;  // min terminal_time with a higher counter
  bool operator==(const ReceiptTimesAround&) const = default;
};

struct IssueRequest {
  schemas::VoucherClaims claims;     // everything but claims.id, which the ledger allocates
  std::string card;                  // the card it is issued for (must be active and the holder's), or ""
  std::uint32_t issuing_region = 0;  // the issuing counter's region (VoucherRecord::issuing_region); 0: none
};

// Signs the claims (with the id the ledger allocated) into a voucher token; called inside the
// write transaction. A Signer, an HSM, or in tests a fake. An exception fails this issue only.
using TokenMinter = std::function<Bytes(const schemas::VoucherClaims& claims)>;

enum class IssueStatus {
  Issued,
  StaleDecision,  // the counts moved since the decision and a limit no longer holds: re-decide
  Refused,        // the decision's own counts already break a limit (the ledger's guard)
  CardUnknown,
  CardNotActive,
  CardOfAnotherHolder,
};
std::string_view to_string(IssueStatus status) noexcept;
struct IssueOutcome {
  IssueStatus status = IssueStatus::Refused;
  std::optional<VoucherRecord> voucher;    // Issued
  IssueCounts fresh;                       // the counts read inside the transaction
  std::vector<std::string_view> violated;  // refusal codes: P1_ANNUAL_LIMIT, P2_…, P3_…, P16_…
};

// ---------------------------------------------------------------------------------------------
// Budgets (P16): integer fen. remaining = allocated − committed − spent, never negative.

struct Budget {
  FundSource fund = FundSource::SpecialAccount;
  std::int64_t allocated_fen = 0;
  std::int64_t committed_fen = 0;  // face value of issued and written vouchers
  std::int64_t spent_fen = 0;      // face value of redeemed vouchers (reversals give it back)
  std::int64_t remaining_fen() const noexcept { return allocated_fen - committed_fen - spent_fen; }
  bool operator==(const Budget&) const = default;
};
enum class BudgetStatus { Set, BelowCommitted };
std::string_view to_string(BudgetStatus status) noexcept;

// ---------------------------------------------------------------------------------------------
// Nonces (server-issued, single use for redemptions; shared by every service instance).

enum class NonceStatus {
  Ok,         // issued / live / consumed
  Duplicate,  // issue_nonce: this value exists already
  Unknown,    // never issued, or issued to another terminal (NONCE_UNKNOWN)
  Expired,    // NONCE_EXPIRED
  Used,       // NONCE_REUSED
};
std::string_view to_string(NonceStatus status) noexcept;

// ---------------------------------------------------------------------------------------------
// Redemptions: exactly once per voucher and per (card, counter).

enum class NonceRule {
  Live,    // online: a server nonce issued to this terminal, unexpired, unused; consumed here
  Unseen,  // sync (offline, recovered receipts): the nonce never used by another redemption
};

struct RedemptionRequest {
  Bytes receipt;     // the card-signed receipt, exactly as received (already verified by #8)
  std::string card;  // the card whose certificate verified the receipt
  UtcSeconds server_time = 0;
  Actor actor;
  NonceRule nonce_rule = NonceRule::Live;
};

struct RedemptionRecord {
  std::uint64_t seq = 0;  // sequential ledger key
  VoucherId voucher{};
  std::string card;
  std::uint32_t counter = 0;
  Bytes receipt;
  std::uint32_t site = 0;  // training provider / site id
  Nonce nonce{};
  UtcSeconds terminal_time = 0;
  UtcSeconds server_time = 0;
  std::uint16_t classroom_hours = 0;
  std::uint16_t online_hours = 0;
  Actor actor;
  std::optional<UtcSeconds> reversed_at;
  std::string reversal_reason;
  bool operator==(const RedemptionRecord&) const = default;
};

enum class RecordStatus {
  Recorded,
  AlreadyRecordedSame,     // the identical receipt again: the same record (idempotent)
  VoucherAlreadyRedeemed,  // another receipt for a redeemed voucher (P15_ALREADY_REDEEMED)
  CounterReused,           // (card, counter) already used (COUNTER_REUSED)
  NonceReused,
  NonceUnknown,
  NonceExpired,
  VoucherUnknown,
  VoucherVoided,
  VoucherExpired,
  VoucherMoved,  // its successor on the replacement card is the one to redeem
  CardUnknown,
  CardRevoked,
  CardOfAnotherHolder,  // the receipt's card is not the voucher holder's
  ReceiptMalformed,     // the receipt does not decode (strict decoder)
};
std::string_view to_string(RecordStatus status) noexcept;
struct RecordOutcome {
  RecordStatus status = RecordStatus::VoucherUnknown;
  // Recorded / AlreadyRecordedSame: the record; VoucherAlreadyRedeemed: the existing one.
  std::optional<RedemptionRecord> record;
};

enum class ReversalStatus { Reversed, AlreadyReversed, NotRedeemed };
std::string_view to_string(ReversalStatus status) noexcept;
struct ReversalOutcome {
  ReversalStatus status = ReversalStatus::NotRedeemed;
  std::optional<RedemptionRecord> record;
};

// ---------------------------------------------------------------------------------------------
// Certificates (P14) and the holder's portfolio digest version.

struct CertificateEntry {
  std::uint64_t seq = 0;
  HolderRef holder{};
  schemas::CertificateRecord record;
  Bytes encoded;                     // exact CBOR bytes (their SHA-256 goes in the digest)
  std::uint32_t digest_version = 0;  // the holder's digest version this record first appeared in
  UtcSeconds recorded_at = 0;
  Actor actor;
  bool operator==(const CertificateEntry&) const = default;
};
enum class CertificateStatus { Recorded, Duplicate /* P14_CERTIFICATE_DUPLICATE */ };
std::string_view to_string(CertificateStatus status) noexcept;
struct CertificateOutcome {
  CertificateStatus status = CertificateStatus::Duplicate;
  std::optional<CertificateEntry> entry;  // the new entry, or the one recorded before
};

// ---------------------------------------------------------------------------------------------
// Card replacement: unredeemed vouchers move to the replacement card under new ids.

struct MovedVoucher {
  VoucherId from{};
  VoucherRecord to;
};
struct ReplaceOutcome {
  CardStatus status = CardStatus::CardUnknown;
  std::vector<MovedVoucher> moved;
};

// What offline terminals must refuse (GET /v1/revocations): voided or moved vouchers that have
// not expired yet, and lost cards.
struct Revocations {
  std::vector<VoucherId> vouchers;  // by serial
  std::vector<std::string> cards;   // by number
  bool operator==(const Revocations&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Export and settlement (per training provider and fund).

struct RedemptionFilter {
  std::optional<std::uint32_t> provider;  // site id
  std::optional<FundSource> fund;
  UtcSeconds from = 0;                                       // server time ≥ from
  UtcSeconds to = std::numeric_limits<std::int64_t>::max();  // server time < to
};
struct RedemptionExportRow {
  RedemptionRecord redemption;
  FundSource fund = FundSource::SpecialAccount;
  schemas::Programme programme = schemas::Programme::KeyGroupEmploymentSkills;
  std::uint32_t occupation = 0;
  std::uint8_t level = 0;
  std::uint32_t face_value_fen = 0;
  std::uint32_t issuer = 0;
  bool operator==(const RedemptionExportRow&) const = default;
};
// What is owed for a period, per provider and fund. A period's settlement never changes once
// the period is over: a reversal after its end is recovered in the period of the reversal.
struct SettlementLine {
  std::uint32_t provider = 0;
  FundSource fund = FundSource::SpecialAccount;
  std::uint64_t count = 0;  // redeemed in the period and not reversed by its end
  std::int64_t total_fen = 0;
  std::uint64_t recovered_count = 0;  // redeemed before the period, reversed in it: paid, to take back
  std::int64_t recovered_fen = 0;
  std::int64_t net_fen() const noexcept { return total_fen - recovered_fen; }
  bool operator==(const SettlementLine&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Listings for statistics and reconciliation (#9): every row that matches, streamed.

struct VoucherFilter {
  UtcSeconds issued_from = 0;                                       // issued_at ≥ issued_from
  UtcSeconds issued_to = std::numeric_limits<std::int64_t>::max();  // issued_at < issued_to
  std::optional<VoucherState> state;
  std::optional<FundSource> fund;
};
struct CertificateFilter {
  std::uint32_t from_days = 0;                                        // record.date_days ≥ from_days
  std::uint32_t to_days = std::numeric_limits<std::uint32_t>::max();  // record.date_days < to_days
};

// ---------------------------------------------------------------------------------------------
// Audit log rows.

using AuditHash = std::array<std::uint8_t, 32>;
struct AuditEntry {
  std::uint64_t seq = 0;  // 1, 2, 3 … without gaps
  UtcSeconds at = 0;
  std::string terminal;
  std::string clerk;
  std::string action;   // e.g. "redemption.record"
  std::string subject;  // e.g. "voucher:0000000000000001"
  std::string outcome;  // "ok", "duplicate", or a refusal code
  AuditHash prev_hash{};
  AuditHash hash{};
  bool operator==(const AuditEntry&) const = default;
};
struct AuditHead {
  std::uint64_t count = 0;  // = seq of the last row
  AuditHash hash{};         // its hash; all zero for an empty log
  bool operator==(const AuditHead&) const = default;
};

// ---------------------------------------------------------------------------------------------
// The refusal catalogue code (docs/design.md, "Refusal catalogue") a service answers for an
// outcome; "" when the outcome is not a refusal. Every code is in schemas::refusal_catalogue().

std::string_view refusal_code(RecordStatus status) noexcept;
std::string_view refusal_code(NonceStatus status) noexcept;
std::string_view refusal_code(CardStatus status) noexcept;

// Text the ledger stores is UTF-8 (PostgreSQL refuses anything else, SQLite would keep it):
// the length of the well-formed sequence at s[i] (0: none there), and whether all of s is.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept;
bool well_formed_utf8(std::string_view s) noexcept;

}  // namespace skillcard::ledger
