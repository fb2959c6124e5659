// The site's durable queue of card-signed receipts the service has not acknowledged yet
// (docs/design.md, "Site redemption"; P12): one SQLite file in WAL mode with synchronous=FULL,
// so a receipt enqueued is on disk before enqueue() returns and survives a kill or power loss.
// sync() removes only what the service acknowledged (201 recorded / 200 the same receipt
// again); a refused receipt stays, marked with its refusal — never silently dropped.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "skillcard/host/service_client.hpp"

namespace skillcard::host {

// P12's default window for offline receipts.
inline constexpr std::uint64_t kSyncWindowSeconds = 72 * 3600;
// Receipts per POST /v1/redemptions/sync (the service's own limit is the same).
inline constexpr std::size_t kSyncBatch = 100;

struct QueuedReceipt {
  std::int64_t id = 0;
  VoucherId voucher_id{};
  std::string card;
  Bytes receipt;
  std::uint64_t made_at = 0;  // the receipt's terminal time
  std::uint32_t attempts = 0;
  std::optional<std::string> last_error;  // catalogue code or network failure text
  bool refused = false;                   // the service refused it: kept for the operator
  std::vector<std::string> rules;         // of the refusal
  Message message;                        // the service's words for it (placeholders filled); empty if unknown
  std::uint64_t seconds_left = 0;         // until the P12 window closes (0: closed)
};

// A REDEEM whose answer was lost (the card went away mid-command): what the next tap of that
// card needs to recover its receipt by counter (docs/design.md, "Site redemption"). Kept in the
// same file, so a host restart between the two taps loses nothing.
struct InDoubt {
  std::string card;
  VoucherId voucher{};
  std::uint32_t counter_before = 0;  // LIST's redemption counter before the REDEEM
  std::uint64_t since = 0;           // the REDEEM's terminal time (0: a record older than this field)
};

struct SyncReport {
  std::size_t acknowledged = 0;  // removed from the queue
  std::size_t refused = 0;       // kept, marked
  std::size_t remaining = 0;     // still waiting (refused included)
  std::size_t undecided = 0;     // answered, but not decided yet (5xx, policy not set up, no answer)
  bool service_unavailable = false;
};

class OfflineQueue {
 public:
  // Opens the file, or creates it when there is none. Throws std::runtime_error naming the
  // SQLite failure, and for a file that is not a queue (another database named by mistake, a
  // file truncated to nothing): opening it as a new queue would lose the receipts it held.
  explicit OfflineQueue(const std::filesystem::path& path, std::uint64_t window_seconds = kSyncWindowSeconds);
  ~OfflineQueue();
  OfflineQueue(const OfflineQueue&) = delete;
  OfflineQueue& operator=(const OfflineQueue&) = delete;

  // Durable when it returns. The same receipt bytes twice are stored once (returns false).
  bool enqueue(const VoucherId& voucher_id, std::string_view card, ByteView receipt, std::uint64_t made_at);
  // Receipts waiting (refused ones included), oldest first, with time left at `now`.
  std::vector<QueuedReceipt> pending(std::uint64_t now) const;
  std::size_t size() const;
  // Posts the waiting (not refused) receipts, oldest first and at most `limit` of them, in
  // batches of at most kSyncBatch via /v1/redemptions/sync. Stops at the first
  // ServiceUnavailable (attempts and the error are recorded).
  SyncReport sync(ServiceClient& service, std::size_t limit = static_cast<std::size_t>(-1));
  // Redemptions in doubt, one per card at most (a card is redeemed one tap at a time).
  void remember_in_doubt(const InDoubt& pending);
  std::optional<InDoubt> in_doubt(std::string_view card) const;
  std::vector<InDoubt> all_in_doubt() const;
  void forget_in_doubt(std::string_view card);
  // The last online contact: the terminal's clock and the service's then (docs/design.md,
  // "Time": the offline bounds are judged against it).
  struct Contact {
    std::uint64_t local_time = 0;
    std::uint64_t service_time = 0;
    std::uint64_t sync_window_seconds = 0;  // P12 as the service said then; 0: not said
  };
  void record_contact(const Contact& contact);
  std::optional<Contact> last_contact() const;
  // P12's window for this terminal's receipts: the service's at the last contact, else the one
  // the queue was opened with.
  std::uint64_t window() const;
  // Removes a receipt the service acknowledged outside sync (online submission).
  void remove(ByteView receipt);
  // Marks a receipt as refused outside sync (the online submission was refused).
  void mark_refused(ByteView receipt, const std::string& code, const std::vector<std::string>& rules,
                    const Message& message = {});

 private:
  struct Db;
  std::unique_ptr<Db> db_;
  std::uint64_t window_;
};

}  // namespace skillcard::host
