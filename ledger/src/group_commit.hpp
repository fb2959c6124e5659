// Private to the ledger: the group committer. Callers on many threads hand it operations; one
// committer thread runs them in batches, each batch in ONE transaction (one durable sync) and
// each operation inside its own savepoint, so that an operation that throws is rolled back alone
// while the rest of its batch commits. A caller returns only after its batch committed. The
// transaction begins as soon as an operation is queued and each runs as it arrives, so waiting
// for the rest of a batch overlaps with running the first.
// Backend-neutral: the transaction verbs come from TransactionControl (SQLite now; the same
// SAVEPOINT/RELEASE/ROLLBACK TO statements work on PostgreSQL).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <semaphore>
#include <thread>
#include <vector>

#include "skillcard/ledger/sql_ledger.hpp"

namespace skillcard::ledger {

// A statement of operation `index` (of the batch) failed; the transaction is aborted from there.
struct OperationFailure {
  std::size_t index = 0;
  std::exception_ptr error;
};

class TransactionControl {
 public:
  virtual ~TransactionControl() = default;
  virtual void begin() = 0;   // a write transaction (waits for other writers)
  virtual void commit() = 0;  // durable when it returns
  virtual void rollback() noexcept = 0;
  virtual void savepoint() = 0;
  virtual void release() = 0;
  // Undoes the changes since the innermost open savepoint and releases it: the operation's, or,
  // after an earlier operation's failure found late (below), that operation's.
  virtual void rollback_to() = 0;

  // Pipelining backends (PostgreSQL) may leave an operation's last statements in flight after
  // release(), to travel with the next operation's first round trip: then a failure found there
  // (or by settle()) can be an earlier operation's. The committer tags each operation with its
  // index; failed_operation() names (once) whose statement failed first, and the committer fails
  // that one and runs the operations after it again. A backend that collects every operation's
  // results before release() returns needs none of this (the defaults).
  virtual void operation(std::size_t /*index*/) noexcept {}
  virtual std::optional<OperationFailure> failed_operation() noexcept { return std::nullopt; }
  virtual void settle() {}  // collects what is in flight; throws its failure
};

class GroupCommitter {
 public:
  // window: after the first operation, wait up to this for the batch to fill to max_batch (a
  // fixed delay, for tests and tuning). adaptive_window: wait up to this for as many operations
  // as were in flight around the previous batch — the callers it just answered come straight
  // back, and without the wait batches would alternate between them and the rest (with N
  // closed-loop callers, batches of N/2 instead of N). 0 turns either off.
  GroupCommitter(TransactionControl& tx, std::size_t max_batch, std::chrono::microseconds window,
                 std::chrono::microseconds adaptive_window = std::chrono::microseconds(0));
  ~GroupCommitter();  // finishes what is queued, then stops
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Runs `op` on the committer thread inside a batch; returns when the batch committed, or
  // rethrows what `op` threw, or the commit's failure (then nothing of `op` is durable). `op` may
  // run more than once in its batch (after an earlier operation's late failure, its statements
  // are rolled back and it runs again): it must set its outcome on every run, not accumulate.
  void run(const std::function<void()>& op);
  CommitStats stats() const;

 private:
  struct Op {
    const std::function<void()>* fn = nullptr;
    std::exception_ptr error;
    std::binary_semaphore done{0};  // released once its batch is over: wakes this caller only
  };
  void loop();
  // Runs batch[from…] in order, each in its savepoint; on a broken connection sets `failure`
  // (then the rest of the batch is not run).
  void run_ops(std::vector<Op*>& batch, std::size_t from, std::exception_ptr& failure);
  // After a failure found while operation `current` ran (or at settle(), current = size): rolls
  // back and returns the index to go on from — `current` (+1) when it is its own failure, the
  // failed earlier operation's + 1 otherwise (that one fails; those after it run again).
  std::size_t recover(std::vector<Op*>& batch, std::size_t current, const std::exception_ptr& error,
                      std::exception_ptr& failure, std::optional<OperationFailure> known = std::nullopt);
  // Commits the batch, or rolls it back after `failure`; records each operation's error.
  void finish(std::vector<Op*>& batch, bool begun, std::exception_ptr failure);

  TransactionControl& tx_;
  const std::size_t max_batch_;
  const std::chrono::microseconds window_;
  const std::chrono::microseconds adaptive_window_;
  std::size_t expected_ = 1;  // operations in flight around the last batch
  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::deque<Op*> queue_;
  bool stopping_ = false;
  CommitStats stats_;
  std::thread thread_;  // last: started when everything else exists
};

}  // namespace skillcard::ledger
