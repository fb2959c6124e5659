#include "group_commit.hpp"

#include <algorithm>

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
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    const std::size_t want = std::min(max_batch_, expected_);
    if (adaptive_window_.count() > 0 && queue_.size() < want && !stopping_) {
      // The callers answered last time are on their way back: let them join this batch.
      work_.wait_for(lock, adaptive_window_, [&] { return stopping_ || queue_.size() >= want; });
    }
    if (window_.count() > 0 && queue_.size() < max_batch_ && !stopping_) {
      work_.wait_for(lock, window_, [&] { return stopping_ || queue_.size() >= max_batch_; });
    }
    std::deque<Op*> batch;
    while (!queue_.empty() && batch.size() < max_batch_) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    execute(batch);
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

void GroupCommitter::execute(std::deque<Op*>& batch) {
  try {
    tx_.begin();
  } catch (...) {
    for (Op* op : batch) op->error = std::current_exception();
    return;
  }
  // When the connection fails under an operation (its savepoint cannot even be rolled back),
  // the whole batch is given up and every caller gets that failure.
  std::exception_ptr broken;
  for (Op* op : batch) {
    if (broken) {
      op->error = broken;
      continue;
    }
    try {
      tx_.savepoint();
    } catch (...) {
      op->error = broken = std::current_exception();
      continue;
    }
    try {
      (*op->fn)();
      tx_.release();
    } catch (...) {
      op->error = std::current_exception();
      try {
        tx_.rollback_to();
      } catch (...) {
        broken = std::current_exception();
      }
    }
  }
  if (broken) {
    tx_.rollback();
    for (Op* op : batch) op->error = op->error ? op->error : broken;
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
