// The ledger's storage interface (docs/ledger.md): one abstract class, implemented for SQLite
// (SqliteLedger) and, in part 2 of #7, for PostgreSQL over libpq. The verification service (#8)
// and the policy engine (#9) use only this interface.
//
// Rules every implementation keeps:
// - Exactly once is enforced by the database (unique keys, INSERT … ON CONFLICT, one
//   transaction per decision), never by process memory: several processes or service instances
//   may use one ledger.
// - Every write is durable when the call returns (an acknowledged write survives power loss),
//   and is audited in the same transaction: the audit row names the actor, the action, the
//   subject and the outcome — refusals included.
// - Domain refusals are typed outcomes; exceptions mean the storage failed (StorageError), the
//   schema is unusable (SchemaError) or the caller broke a precondition (std::invalid_argument).
// - Every member function is safe to call from many threads at once; concurrent writes are
//   group-committed (many operations, one durable transaction; each in its own savepoint, so a
//   failing one never takes the others with it).
#pragma once

#include <functional>
#include <memory>
#include <span>

#include "skillcard/ledger/types.hpp"

namespace skillcard::ledger {

class Ledger {
 public:
  virtual ~Ledger() = default;

  virtual LedgerId ledger_id() = 0;
  virtual int schema_version() = 0;

  // --- cards --------------------------------------------------------------------------------
  virtual CardStatus register_card(const NewCard& card, const Actor& actor, UtcSeconds now) = 0;
  virtual std::optional<CardRecord> card(std::string_view number) = 0;
  // Revokes the card (its receipts are refused from now on).
  virtual CardStatus mark_card_lost(std::string_view number, const Actor& actor, UtcSeconds now) = 0;
  // The holder's new card replaces `old_number` (active → replaced; a lost card stays lost) and
  // every unredeemed voucher of the old card moves to it: the same subsidy (claims, CST year,
  // budget commitment) under a new id and token from `minter`; the old one becomes `moved`.
  // Not a new issue: no P1/P3 check. All or nothing.
  virtual ReplaceOutcome replace_card(std::string_view old_number, std::string_view new_number,
                                      const TokenMinter& minter, const Actor& actor, UtcSeconds now) = 0;

  // --- budgets (P16) ------------------------------------------------------------------------
  // Sets the allocation; refused if below what is already committed and spent.
  virtual BudgetStatus set_budget(FundSource fund, std::int64_t allocated_fen, const Actor& actor, UtcSeconds now) = 0;
  virtual std::optional<Budget> budget(FundSource fund) = 0;

  // --- vouchers -----------------------------------------------------------------------------
  // The counts the policy engine decides on (P1, P2, P3 from this ledger; P16).
  virtual IssueCounts read_issue_counts(const IssueQuery& query) = 0;
  // Applies the engine's decision atomically: one write transaction re-reads the counts and the
  // budget, checks the limits, allocates the next serial as the voucher id, has `minter` sign
  // the token, records it as issued and commits its face value against the fund's budget.
  // Racing issues can never together exceed P1, P2, P3 or P16.
  virtual IssueOutcome issue_voucher(const IssueRequest& request, const IssueDecision& decision,
                                     const TokenMinter& minter, const Actor& actor, UtcSeconds now) = 0;
  virtual VoucherOutcome mark_written(const VoucherId& id, const Actor& actor, UtcSeconds now) = 0;
  // issued|written → voided; gives the face value back to the budget.
  virtual VoucherOutcome void_voucher(const VoucherId& id, std::string_view reason, const Actor& actor,
                                      UtcSeconds now) = 0;
  // issued|written vouchers with expires_at < cutoff → expired (the caller passes now minus the
  // P12 sync window, so offline receipts made before expiry can still arrive). Returns how many.
  virtual std::size_t expire_vouchers(UtcSeconds cutoff, const Actor& actor, UtcSeconds now) = 0;
  virtual std::optional<VoucherRecord> voucher(const VoucherId& id) = 0;
  // The state and issued token of voucher(id), without the rest of the record.
  virtual std::optional<VoucherStanding> voucher_standing(const VoucherId& id) = 0;
  virtual std::vector<VoucherRecord> holder_vouchers(const HolderRef& holder) = 0;
  // The holder's subsidies in a CST year held by this ledger (states that count for P1). The
  // registry of record's history from other systems comes from #9 (SubsidyHistorySource).
  virtual std::vector<VoucherRecord> holder_history(const HolderRef& holder, int cst_year) = 0;
  // Voided and moved vouchers with expires_at > now, and lost cards.
  virtual Revocations revocations(UtcSeconds now) = 0;

  // --- nonces -------------------------------------------------------------------------------
  // Stores a server nonce (the service draws it from its CSPRNG) bound to `terminal`.
  virtual NonceStatus issue_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds issued_at,
                                  UtcSeconds expires_at, const Actor& actor) = 0;
  // Read-only: is it live for this terminal (kiosk card proofs, which do not consume it)?
  virtual NonceStatus check_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds now) = 0;
  // Consumes it: one atomic UPDATE … WHERE used_at IS NULL; `used_by` says what used it.
  virtual NonceStatus consume_nonce(const Nonce& nonce, std::string_view terminal, std::string_view used_by,
                                    const Actor& actor, UtcSeconds now) = 0;

  // --- redemptions --------------------------------------------------------------------------
  virtual RecordOutcome record_redemption(const RedemptionRequest& request) = 0;
  // Never a delete: the redemption is marked reversed with the reason, its voucher voided, its
  // face value returned to the budget; the voucher can never be redeemed again.
  virtual ReversalOutcome reverse_redemption(const VoucherId& id, std::string_view reason, const Actor& actor,
                                             UtcSeconds now) = 0;
  virtual std::optional<RedemptionRecord> redemption(const VoucherId& id) = 0;
  virtual std::optional<RedemptionRecord> redemption_by_counter(std::string_view card, std::uint32_t counter) = 0;
  // The card's recorded receipts around `counter` (reversed ones too: the card made them): the
  // latest terminal time of a lower counter and the earliest of a higher one, for the P12 order
  // check of a receipt that arrives late or out of order.
  virtual ReceiptTimesAround receipt_times_around(std::string_view card, std::uint32_t counter) = 0;
  // Sorted by provider, fund, then seq; reversed ones included (marked).
  virtual std::vector<RedemptionExportRow> list_redemptions(const RedemptionFilter& filter) = 0;
  // Per provider and fund, redemptions not reversed.
  virtual std::vector<SettlementLine> settlement(const RedemptionFilter& filter) = 0;

  // --- certificates (P14) -------------------------------------------------------------------
  // Records an encoded certificate record (schemas::encode(CertificateRecord)) once, ever:
  // (kind, issuer, number) is unique. Each new record raises the holder's digest version.
  virtual CertificateOutcome record_certificate(const HolderRef& holder, ByteView encoded_record, const Actor& actor,
                                                UtcSeconds now) = 0;
  virtual std::vector<CertificateEntry> certificates(const HolderRef& holder) = 0;
  virtual std::uint32_t digest_version(const HolderRef& holder) = 0;

  // --- listings (#9: statistics, settlement, reconciliation) -------------------------------
  // Streams every matching voucher in serial order from one consistent snapshot, without holding
  // them all in memory. `visit` must not call back into the ledger (the snapshot holds the
  // reader); an exception from it ends the scan and propagates.
  virtual void for_each_voucher(const VoucherFilter& filter,
                                const std::function<void(const VoucherRecord&)>& visit) = 0;
  // The same for certificate records (P14, P18's new technician certificates), in seq order.
  virtual void for_each_certificate(const CertificateFilter& filter,
                                    const std::function<void(const CertificateEntry&)>& visit) = 0;
  // What the reports read (#9) — every voucher, redemption (as list_redemptions) and
  // certificate record, and the budgets that exist — from one consistent snapshot, so that a
  // reconciliation (P17) run while the service writes never sees a redemption without its
  // voucher's state, or budgets of another moment. The visitors must not call back into the
  // ledger. The default reads them one after another, without a snapshot (test doubles).
  struct ReportVisitor {
    std::function<void(const VoucherRecord&)> voucher;
    std::function<void(const RedemptionExportRow&)> redemption;
    std::function<void(const CertificateEntry&)> certificate;
    std::function<void(const Budget&)> budget;
  };
  virtual void read_for_reports(const ReportVisitor& visit);

  // --- audit --------------------------------------------------------------------------------
  virtual AuditHead audit_head() = 0;
  // Rows with seq ≥ from_seq in seq order, at most `limit`.
  virtual std::vector<AuditEntry> audit_entries(std::uint64_t from_seq, std::size_t limit) = 0;
};

}  // namespace skillcard::ledger
