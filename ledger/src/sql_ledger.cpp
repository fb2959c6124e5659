// SqlLedger: the Ledger members both SQL backends share, forwarded to the backend's engine.
#include "skillcard/ledger/sql_ledger.hpp"

namespace skillcard::ledger {

SqlLedger::SqlLedger() = default;
SqlLedger::~SqlLedger() = default;
void SqlLedger::set_engine(std::unique_ptr<Ledger> engine) { engine_ = std::move(engine); }

LedgerId SqlLedger::ledger_id() { return engine_->ledger_id(); }
int SqlLedger::schema_version() { return engine_->schema_version(); }
CardStatus SqlLedger::register_card(const NewCard& card, const Actor& actor, UtcSeconds now) {
  return engine_->register_card(card, actor, now);
}
std::optional<CardRecord> SqlLedger::card(std::string_view number) { return engine_->card(number); }
CardStatus SqlLedger::mark_card_lost(std::string_view number, const Actor& actor, UtcSeconds now) {
  return engine_->mark_card_lost(number, actor, now);
}
ReplaceOutcome SqlLedger::replace_card(std::string_view old_number, std::string_view new_number,
                                       const TokenMinter& minter, const Actor& actor, UtcSeconds now) {
  return engine_->replace_card(old_number, new_number, minter, actor, now);
}
BudgetStatus SqlLedger::set_budget(FundSource fund, std::int64_t allocated_fen, const Actor& actor, UtcSeconds now) {
  return engine_->set_budget(fund, allocated_fen, actor, now);
}
std::optional<Budget> SqlLedger::budget(FundSource fund) { return engine_->budget(fund); }
IssueCounts SqlLedger::read_issue_counts(const IssueQuery& query) { return engine_->read_issue_counts(query); }
IssueOutcome SqlLedger::issue_voucher(const IssueRequest& request, const IssueDecision& decision,
                                      const TokenMinter& minter, const Actor& actor, UtcSeconds now) {
  return engine_->issue_voucher(request, decision, minter, actor, now);
}
VoucherOutcome SqlLedger::mark_written(const VoucherId& id, const Actor& actor, UtcSeconds now) {
  return engine_->mark_written(id, actor, now);
}
VoucherOutcome SqlLedger::void_voucher(const VoucherId& id, std::string_view reason, const Actor& actor,
                                       UtcSeconds now) {
  return engine_->void_voucher(id, reason, actor, now);
}
std::size_t SqlLedger::expire_vouchers(UtcSeconds cutoff, const Actor& actor, UtcSeconds now) {
  return engine_->expire_vouchers(cutoff, actor, now);
}
std::optional<VoucherRecord> SqlLedger::voucher(const VoucherId& id) { return engine_->voucher(id); }
std::optional<VoucherStanding> SqlLedger::voucher_standing(const VoucherId& id) {
  return engine_->voucher_standing(id);
}
std::vector<VoucherRecord> SqlLedger::holder_vouchers(const HolderRef& holder) {
  return engine_->holder_vouchers(holder);
}
Revocations SqlLedger::revocations(UtcSeconds now) { return engine_->revocations(now); }
void SqlLedger::for_each_voucher(const VoucherFilter& filter, const std::function<void(const VoucherRecord&)>& visit) {
  engine_->for_each_voucher(filter, visit);
}
void SqlLedger::for_each_certificate(const CertificateFilter& filter,
                                     const std::function<void(const CertificateEntry&)>& visit) {
  engine_->for_each_certificate(filter, visit);
}
void SqlLedger::read_for_reports(const ReportVisitor& visit) { engine_->read_for_reports(visit); }
std::vector<VoucherRecord> SqlLedger::holder_history(const HolderRef& holder, int cst_year) {
  return engine_->holder_history(holder, cst_year);
}
NonceStatus SqlLedger::issue_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds issued_at,
                                   UtcSeconds expires_at, const Actor& actor) {
  return engine_->issue_nonce(nonce, terminal, issued_at, expires_at, actor);
}
NonceStatus SqlLedger::check_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds now) {
  return engine_->check_nonce(nonce, terminal, now);
}
NonceStatus SqlLedger::consume_nonce(const Nonce& nonce, std::string_view terminal, std::string_view used_by,
                                     const Actor& actor, UtcSeconds now) {
  return engine_->consume_nonce(nonce, terminal, used_by, actor, now);
}
RecordOutcome SqlLedger::record_redemption(const RedemptionRequest& request) {
  return engine_->record_redemption(request);
}
ReversalOutcome SqlLedger::reverse_redemption(const VoucherId& id, std::string_view reason, const Actor& actor,
                                              UtcSeconds now) {
  return engine_->reverse_redemption(id, reason, actor, now);
}
std::optional<RedemptionRecord> SqlLedger::redemption(const VoucherId& id) { return engine_->redemption(id); }
std::optional<RedemptionRecord> SqlLedger::redemption_by_counter(std::string_view card, std::uint32_t counter) {
  return engine_->redemption_by_counter(card, counter);
}

ReceiptTimesAround SqlLedger::receipt_times_around(std::string_view card, std::uint32_t counter) {
  return engine_->receipt_times_around(card, counter);
}
std::vector<RedemptionExportRow> SqlLedger::list_redemptions(const RedemptionFilter& filter) {
  return engine_->list_redemptions(filter);
}
std::vector<SettlementLine> SqlLedger::settlement(const RedemptionFilter& filter) {
  return engine_->settlement(filter);
}
CertificateOutcome SqlLedger::record_certificate(const HolderRef& holder, ByteView encoded_record, const Actor& actor,
                                                 UtcSeconds now) {
  return engine_->record_certificate(holder, encoded_record, actor, now);
}
std::vector<CertificateEntry> SqlLedger::certificates(const HolderRef& holder) { return engine_->certificates(holder); }
std::uint32_t SqlLedger::digest_version(const HolderRef& holder) { return engine_->digest_version(holder); }
AuditHead SqlLedger::audit_head() { return engine_->audit_head(); }
std::vector<AuditEntry> SqlLedger::audit_entries(std::uint64_t from_seq, std::size_t limit) {
  return engine_->audit_entries(from_seq, limit);
}

}  // namespace skillcard::ledger
