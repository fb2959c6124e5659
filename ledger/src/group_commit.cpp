#include "group_commit.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace skillcard::ledger {

GroupCommitter::GroupCommitter(TransactionControl& tx, std::size_t max_batch, std::chrono::microseconds window,
                               std::chrono::microseconds adaptive_window)
    : tx_(tx),
      max_batch_(std::max<std::size_t>(1, max_batch)),
      window_(window),
      adaptive_window_(adaptive_window),
      thread_([this] { loop(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  thread_.join();
}

void GroupCommitter::run(const std::function<void()>& op) {
  Op item;
  item.fn = &op;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw std::logic_error("ledger is closing");
    queue_.push_back(&item);
  }
  work_.notify_one();
  item.done.acquire();
  if (item.error) std::rethrow_exception(item.error);
}

CommitStats GroupCommitter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void GroupCommitter::loop() {
  using Clock = std::chrono::steady_clock;
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    const std::size_t want = std::min(max_batch_, expected_);
    const auto started = Clock::now();
    std::vector<Op*> batch;
    batch.reserve(std::min<std::size_t>(max_batch_, 64));
    // The transaction begins at once and each operation runs as soon as it is queued: the
    // callers answered last time are still coming back (waking a thread, building its request)
    // while the ones already here run, instead of the transaction waiting for all of them.
    lock.unlock();
    bool begun = false;
    std::exception_ptr failure;  // the transaction could not begin, or the connection broke
    try {
      tx_.begin();
      begun = true;
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    for (;;) {
      // After a failed BEGIN the operations queued now share its error (as they would have
      // shared the transaction); after a broken connection the rest wait for the next batch.
      while ((!failure || !begun) && !queue_.empty() && batch.size() < max_batch_) {
        Op* op = queue_.front();
        queue_.pop_front();
        batch.push_back(op);
        lock.unlock();
        run_ops(batch, batch.size() - 1, failure);
        lock.lock();
      }
      if (failure || stopping_ || batch.size() >= max_batch_) break;
      // Wait for more: up to the fixed window for a full batch, and up to the adaptive window
      // for as many operations as were in flight around the previous batch.
      std::optional<Clock::time_point> until;
      if (window_.count() > 0) until = started + window_;
      if (adaptive_window_.count() > 0 && batch.size() < want) {
        until = std::max(until.value_or(started), started + adaptive_window_);
      }
      if (!until || !work_.wait_until(lock, *until, [&] { return stopping_ || !queue_.empty(); })) break;
    }
    // Operations that came too late for this batch wait for the next (not in `batch`).
    lock.unlock();
    finish(batch, begun, failure);
    lock.lock();
    expected_ = batch.size() + queue_.size();
    ++stats_.batches;
    stats_.operations += batch.size();
    stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, batch.size());
    std::uint64_t failed = 0;
    for (Op* op : batch) {
      if (op->error) ++failed;
    }
    stats_.failed_operations += failed;
    if (failed > 0) ++stats_.batches_with_failures;
    for (Op* op : batch) op->done.release();  // after this the Op may be gone
  }
}

void GroupCommitter::run_ops(std::vector<Op*>& batch, std::size_t from, std::exception_ptr& failure) {
  for (std::size_t i = from; i < batch.size();) {
    Op& op = *batch[i];
    op.error = nullptr;  // it may run again after an earlier operation's late failure
    if (failure) {
      op.error = failure;
      ++i;
      continue;
    }
    tx_.operation(i);
    try {
      tx_.savepoint();
    } catch (...) {
      i = recover(batch, i, std::current_exception(), failure);
      continue;
    }
    try {
      (*op.fn)();
      // A failure collected quietly while the operation ran (a savepoint's rollback): if it is
      // an earlier operation's, deal with it before releasing this one. Its own was undone by
      // that rollback, and the operation decided with it (as without pipelining).
      if (auto earlier = tx_.failed_operation(); earlier && earlier->index < i) {
        i = recover(batch, i, earlier->error, failure, earlier);
        continue;
      }
      tx_.release();
      ++i;
    } catch (...) {
      i = recover(batch, i, std::current_exception(), failure);
    }
  }
}

std::size_t GroupCommitter::recover(std::vector<Op*>& batch, std::size_t current, const std::exception_ptr& error,
                                    std::exception_ptr& failure, std::optional<OperationFailure> known) {
  try {
    tx_.rollback_to();
  } catch (...) {
    // The connection failed under the operation (its savepoint cannot even be rolled back):
    // the whole batch is given up and every caller gets that failure.
    failure = std::current_exception();
    if (current < batch.size()) batch[current]->error = failure;
    return current + 1;
  }
  auto late = tx_.failed_operation();
  if (known) late = std::move(known);  // taken before the rollback
  if (late && late->index < current) {
    // An earlier operation's statement failed (found only now, in this one's round trip): its
    // savepoint was the one rolled back, with everything after it. It fails; the rest run again.
    batch[late->index]->error = late->error ? late->error : error;
    return late->index + 1;
  }
  if (current < batch.size()) batch[current]->error = error;
  return current + 1;
}

void GroupCommitter::finish(std::vector<Op*>& batch, bool begun, std::exception_ptr failure) {
  // What the last operations left in flight: a failure there is one of theirs (found late).
  while (!failure) {
    try {
      tx_.settle();
      break;
    } catch (...) {
      const auto error = std::current_exception();
      const auto next = recover(batch, batch.size(), error, failure);
      if (next > batch.size()) {
        if (!failure) failure = error;  // nobody's in particular: the batch fails
        break;
      }
      run_ops(batch, next, failure);
    }
  }
  if (failure) {
    if (begun) tx_.rollback();
    for (Op* op : batch) op->error = op->error ? op->error : failure;
    return;
  }
  try {
    tx_.commit();
  } catch (...) {
    const auto error = std::current_exception();
    tx_.rollback();
    for (Op* op : batch) {
      if (!op->error) op->error = error;  // nothing of this batch is durable
    }
  }
}

}  // namespace skillcard::ledger
