// The part of SqliteLedger and PgLedger that is the same: every Ledger member, forwarded to the
// backend-neutral engine (ledger/src/ledger_engine.hpp) that runs the ledger's SQL over the
// backend's connections. The backends add only what is theirs (opening, backup, statistics).
#pragma once

#include <memory>

#include "skillcard/ledger/ledger.hpp"

namespace skillcard::ledger {

struct CommitStats {
  std::uint64_t operations = 0;         // operations committed or failed
  std::uint64_t batches = 0;            // transactions
  std::uint64_t failed_operations = 0;  // rolled back to their savepoint (or lost with a failed commit)
  std::uint64_t largest_batch = 0;
  std::uint64_t batches_with_failures = 0;
};

class SqlLedger : public Ledger {
 public:
  ~SqlLedger() override;
  SqlLedger(const SqlLedger&) = delete;
  SqlLedger& operator=(const SqlLedger&) = delete;

  LedgerId ledger_id() override;
  int schema_version() override;
  CardStatus register_card(const NewCard& card, const Actor& actor, UtcSeconds now) override;
  std::optional<CardRecord> card(std::string_view number) override;
  CardStatus mark_card_lost(std::string_view number, const Actor& actor, UtcSeconds now) override;
  ReplaceOutcome replace_card(std::string_view old_number, std::string_view new_number, const TokenMinter& minter,
                              const Actor& actor, UtcSeconds now) override;
  BudgetStatus set_budget(FundSource fund, std::int64_t allocated_fen, const Actor& actor, UtcSeconds now) override;
  std::optional<Budget> budget(FundSource fund) override;
  IssueCounts read_issue_counts(const IssueQuery& query) override;
  IssueOutcome issue_voucher(const IssueRequest& request, const IssueDecision& decision, const TokenMinter& minter,
                             const Actor& actor, UtcSeconds now) override;
  VoucherOutcome mark_written(const VoucherId& id, const Actor& actor, UtcSeconds now) override;
  VoucherOutcome void_voucher(const VoucherId& id, std::string_view reason, const Actor& actor,
                              UtcSeconds now) override;
  std::size_t expire_vouchers(UtcSeconds cutoff, const Actor& actor, UtcSeconds now) override;
  std::optional<VoucherRecord> voucher(const VoucherId& id) override;
  std::optional<VoucherStanding> voucher_standing(const VoucherId& id) override;
  std::vector<VoucherRecord> holder_vouchers(const HolderRef& holder) override;
  Revocations revocations(UtcSeconds now) override;
  void for_each_voucher(const VoucherFilter& filter, const std::function<void(const VoucherRecord&)>& visit) override;
  void for_each_certificate(const CertificateFilter& filter,
                            const std::function<void(const CertificateEntry&)>& visit) override;
  void read_for_reports(const ReportVisitor& visit) override;
  std::vector<VoucherRecord> holder_history(const HolderRef& holder, int cst_year) override;
  NonceStatus issue_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds issued_at, UtcSeconds expires_at,
                          const Actor& actor) override;
  NonceStatus check_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds now) override;
  NonceStatus consume_nonce(const Nonce& nonce, std::string_view terminal, std::string_view used_by, const Actor& actor,
                            UtcSeconds now) override;
  RecordOutcome record_redemption(const RedemptionRequest& request) override;
  ReversalOutcome reverse_redemption(const VoucherId& id, std::string_view reason, const Actor& actor,
                                     UtcSeconds now) override;
  std::optional<RedemptionRecord> redemption(const VoucherId& id) override;
  std::optional<RedemptionRecord> redemption_by_counter(std::string_view card, std::uint32_t counter) override;
  ReceiptTimesAround receipt_times_around(std::string_view card, std::uint32_t counter) override;
  std::vector<RedemptionExportRow> list_redemptions(const RedemptionFilter& filter) override;
  std::vector<SettlementLine> settlement(const RedemptionFilter& filter) override;
  CertificateOutcome record_certificate(const HolderRef& holder, ByteView encoded_record, const Actor& actor,
                                        UtcSeconds now) override;
  std::vector<CertificateEntry> certificates(const HolderRef& holder) override;
  std::uint32_t digest_version(const HolderRef& holder) override;
  AuditHead audit_head() override;
  std::vector<AuditEntry> audit_entries(std::uint64_t from_seq, std::size_t limit) override;

  // The group committer's counters since open.
  virtual CommitStats commit_stats() const = 0;

 protected:
  SqlLedger();
  // The backend's engine (an engine::Engine<Store>); set once by the backend's open().
  void set_engine(std::unique_ptr<Ledger> engine);

 private:
  std::unique_ptr<Ledger> engine_;
};

}  // namespace skillcard::ledger
