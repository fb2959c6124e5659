// The SQLite implementation of the ledger (docs/ledger.md): one file in WAL mode with
// synchronous=FULL, schema migrations at open, a group committer for writes (one writer
// connection, one durable transaction per batch, a savepoint per operation), a reader
// connection for queries, and online backup and restore.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>

#include "skillcard/ledger/ledger.hpp"

namespace skillcard::ledger {

// The newest schema this build knows (migrations 1..kSqliteSchemaVersion).
inline constexpr int kSqliteSchemaVersion = 1;

struct SqliteOptions {
  // Operations per transaction; 1 = one transaction per operation (the naive baseline).
  std::size_t max_batch = 512;
  // After the first operation of a batch, wait this long for the batch to fill to max_batch
  // (a fixed delay for tests and tuning; 0: off).
  std::chrono::microseconds batch_window{0};
  // Adaptive group commit: before a batch, wait at most this long until as many operations are
  // queued as were in flight around the previous batch (the callers just answered come back at
  // once). Without it N closed-loop writers alternate in batches of N/2. A lone writer never
  // waits. 0: off (take whatever is queued).
  std::chrono::microseconds adaptive_window{1000};
  // How long a writer waits for another process's write transaction.
  std::chrono::milliseconds busy_timeout{60000};
  // SQLite VFS name ("" = the default); tests register a power-cut shim.
  std::string vfs;
  // WAL pages before an automatic checkpoint (SQLite's default 1000; tests lower it so that
  // power cuts also land inside checkpoints).
  int wal_autocheckpoint = 1000;
  // Create the file if it does not exist.
  bool create = true;
};

struct CommitStats {
  std::uint64_t operations = 0;         // operations committed or failed
  std::uint64_t batches = 0;            // transactions
  std::uint64_t failed_operations = 0;  // rolled back to their savepoint (or lost with a failed commit)
  std::uint64_t largest_batch = 0;
  std::uint64_t batches_with_failures = 0;
};

class SqliteLedger final : public Ledger {
 public:
  // Opens (creating if allowed) and migrates. Throws SchemaError for a newer schema or another
  // application's database, StorageError when the file cannot be opened.
  static std::unique_ptr<SqliteLedger> open(const std::filesystem::path& path, const SqliteOptions& options = {});
  ~SqliteLedger() override;
  SqliteLedger(const SqliteLedger&) = delete;
  SqliteLedger& operator=(const SqliteLedger&) = delete;

  // Online backup (sqlite3_backup_*) of a consistent snapshot while writers go on; written to a
  // temporary file, synced, then renamed to `destination` (which must not exist).
  void backup_to(const std::filesystem::path& destination);
  // Copies a backup into `target` (through the backup API, so the target's WAL and locks are
  // handled) after checking that it is a ledger of a known schema and passes integrity_check.
  // Refuses an existing target unless `overwrite`. Stop the service before restoring.
  static void restore(const std::filesystem::path& backup, const std::filesystem::path& target, bool overwrite);

  CommitStats commit_stats() const;
  const std::filesystem::path& path() const noexcept;

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
  std::vector<VoucherRecord> holder_vouchers(const HolderRef& holder) override;
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
  std::vector<RedemptionExportRow> list_redemptions(const RedemptionFilter& filter) override;
  std::vector<SettlementLine> settlement(const RedemptionFilter& filter) override;
  CertificateOutcome record_certificate(const HolderRef& holder, ByteView encoded_record, const Actor& actor,
                                        UtcSeconds now) override;
  std::vector<CertificateEntry> certificates(const HolderRef& holder) override;
  std::uint32_t digest_version(const HolderRef& holder) override;
  void for_each_voucher(const VoucherFilter& filter, const std::function<void(const VoucherRecord&)>& visit) override;
  void for_each_certificate(const CertificateFilter& filter,
                            const std::function<void(const CertificateEntry&)>& visit) override;
  AuditHead audit_head() override;
  std::vector<AuditEntry> audit_entries(std::uint64_t from_seq, std::size_t limit) override;

  struct Impl;

 private:
  explicit SqliteLedger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skillcard::ledger
