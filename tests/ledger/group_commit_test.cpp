// The group committer: many callers, one transaction per batch, a savepoint per operation, each
// caller answered only after its batch committed, and a failing operation rolled back alone.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <thread>
#include <utility>

#include "fixtures.hpp"
#include "group_commit.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;

namespace {

// Records the transaction verbs in order; can delay or fail the commit.
struct FakeTransactions final : TransactionControl {
  void begin() override { log("begin"); }
  void commit() override {
    std::this_thread::sleep_for(commit_delay);
    if (fail_commit) {
      log("commit-failed");
      throw std::runtime_error("disk full");
    }
    committed_batches.fetch_add(1);
    log("commit");
  }
  void rollback() noexcept override { log("rollback"); }
  void savepoint() override { log("savepoint"); }
  void release() override { log("release"); }
  void rollback_to() override { log("rollback_to"); }
  void log(const std::string& s) {
    std::lock_guard lock(mutex);
    calls.push_back(s);
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mutex);
    return calls;
  }
  std::mutex mutex;
  std::vector<std::string> calls;
  std::chrono::milliseconds commit_delay{0};
  bool fail_commit = false;
  std::atomic<int> committed_batches{0};
};

// Runs `op(i)` from n threads released together; returns what each threw ("" if nothing).
std::vector<std::string> from_threads(GroupCommitter& committer, int n, const std::function<void(int)>& op) {
  std::latch start(n);
  std::vector<std::string> errors(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        committer.run([&] { op(i); });
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

}  // namespace

TEST(GroupCommit, OperationsShareOneTransactionEachInItsSavepoint) {
  FakeTransactions tx;
  GroupCommitter committer(tx, 5, std::chrono::milliseconds(10000));  // closes at max_batch
  const auto errors = from_threads(committer, 5, [&](int) { tx.log("op"); });
  for (const auto& e : errors) EXPECT_EQ(e, "");
  std::vector<std::string> expected = {"begin"};
  for (int i = 0; i < 5; ++i) expected.insert(expected.end(), {"savepoint", "op", "release"});
  expected.push_back("commit");
  EXPECT_EQ(tx.snapshot(), expected);
  const auto stats = committer.stats();
  EXPECT_EQ(stats.batches, 1u);
  EXPECT_EQ(stats.operations, 5u);
  EXPECT_EQ(stats.largest_batch, 5u);
}

TEST(GroupCommit, ThrowingOperationIsRolledBackAloneAndRethrownToItsCaller) {
  FakeTransactions tx;
  GroupCommitter committer(tx, 4, std::chrono::milliseconds(10000));  // closes at max_batch
  const auto errors = from_threads(committer, 4, [&](int i) {
    tx.log("op");
    if (i == 2) throw std::runtime_error("operation 2 failed");
  });
  for (int i = 0; i < 4; ++i) EXPECT_EQ(errors[static_cast<std::size_t>(i)], i == 2 ? "operation 2 failed" : "");
  const auto calls = tx.snapshot();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "rollback_to"), 1);
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "release"), 3);
  EXPECT_EQ(calls.back(), "commit");
  EXPECT_EQ(committer.stats().failed_operations, 1u);
  EXPECT_EQ(committer.stats().batches_with_failures, 1u);
}

TEST(GroupCommit, CommitFailureFailsEveryCallerOfTheBatch) {
  FakeTransactions tx;
  tx.fail_commit = true;
  GroupCommitter committer(tx, 3, std::chrono::milliseconds(10000));  // closes at max_batch
  const auto errors = from_threads(committer, 3, [&](int) {});
  for (const auto& e : errors) EXPECT_EQ(e, "disk full");
  const auto calls = tx.snapshot();
  EXPECT_EQ(calls.back(), "rollback");
}

TEST(GroupCommit, CallerReturnsOnlyAfterItsBatchCommitted) {
  FakeTransactions tx;
  tx.commit_delay = std::chrono::milliseconds(100);
  GroupCommitter committer(tx, 64, std::chrono::microseconds(0));
  std::atomic<int> early{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 3; ++k) {
        const int before = tx.committed_batches.load();
        committer.run([] {});
        if (tx.committed_batches.load() <= before) ++early;  // answered before a commit finished
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(early.load(), 0);
  EXPECT_LT(committer.stats().batches, 18u) << "callers arriving during a commit share the next one";
}

// A pipelining backend finds an operation's failure late, in a later operation's round trip
// (PgLedger): that earlier operation fails, the ones after it run again, the batch commits.
TEST(GroupCommit, LateFailureOfAnEarlierOperationFailsItAndRunsTheRestAgain) {
  struct LateTransactions final : TransactionControl {
    void begin() override { calls.push_back("begin"); }
    void commit() override { calls.push_back("commit"); }
    void rollback() noexcept override { calls.push_back("rollback"); }
    void savepoint() override { calls.push_back("savepoint"); }
    void release() override { calls.push_back("release"); }
    void rollback_to() override { calls.push_back("rollback_to"); }
    void operation(std::size_t index) noexcept override { current = index; }
    std::optional<OperationFailure> failed_operation() noexcept override { return std::exchange(late, std::nullopt); }
    void settle() override { calls.push_back("settle"); }
    std::vector<std::string> calls;  // the committer thread's only
    std::size_t current = 0;
    std::optional<OperationFailure> late;
  } tx;
  GroupCommitter committer(tx, 4, std::chrono::milliseconds(10000));  // closes at max_batch
  std::vector<int> ran_at(4, -1);                                     // batch index → caller, as last run
  int runs = 0;
  bool fired = false;
  const auto errors = from_threads(committer, 4, [&](int caller) {
    ++runs;
    ran_at[tx.current] = caller;
    if (tx.current == 3 && !fired) {
      fired = true;  // operation 1's statement failed; found in operation 3's round trip
      tx.late = OperationFailure{1, std::make_exception_ptr(std::runtime_error("late failure"))};
      throw std::runtime_error("pipeline aborted");
    }
  });
  EXPECT_EQ(runs, 4 + 2) << "operations 2 and 3 ran again";
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(errors[static_cast<std::size_t>(i)], i == ran_at[1] ? "late failure" : "") << i;
  }
  EXPECT_EQ(std::count(tx.calls.begin(), tx.calls.end(), "rollback_to"), 1);
  EXPECT_EQ(std::count(tx.calls.begin(), tx.calls.end(), "release"), 4 + 1) << "0, 1, 2, then 2 and 3 again";
  ASSERT_GE(tx.calls.size(), 2u);
  EXPECT_EQ(tx.calls[tx.calls.size() - 2], "settle");
  EXPECT_EQ(tx.calls.back(), "commit");
  EXPECT_EQ(committer.stats().failed_operations, 1u);
}

TEST(GroupCommit, MaxBatchOfOneIsOneTransactionPerOperation) {
  FakeTransactions tx;
  GroupCommitter committer(tx, 1, std::chrono::milliseconds(50));
  from_threads(committer, 4, [](int) {});
  EXPECT_EQ(committer.stats().batches, 4u);
  EXPECT_EQ(committer.stats().largest_batch, 1u);
}

TEST(GroupCommit, FailingIssueDoesNotLoseTheRestOfItsBatch) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  seeded(file, 8).ledger.reset();
  SqliteOptions options;
  options.batch_window = std::chrono::milliseconds(10000);  // the eight wait for each other (closes at max_batch)
  options.max_batch = 8;
  {
    Seeded s{SqliteLedger::open(file, options), {}};
    const auto before = s.ledger->commit_stats();
    std::latch start(8);
    std::vector<std::string> outcome(8);
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        const auto c = claims_for(holder(i + 1));
        const TokenMinter minter =
            i == 3
                ? TokenMinter([](const schemas::VoucherClaims&) -> Bytes { throw std::runtime_error("signer failed"); })
                : fake_minter();
        const auto decision = generous(*s.ledger, c);
        start.arrive_and_wait();
        try {
          outcome[i] = to_string(s.ledger->issue_voucher({c, ""}, decision, minter, clerk(), kNow).status);
        } catch (const std::exception& e) {
          outcome[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    const auto after = s.ledger->commit_stats();
    EXPECT_EQ(after.batches - before.batches, 1u) << "all eight in one transaction";
    EXPECT_EQ(after.batches_with_failures - before.batches_with_failures, 1u);
    for (unsigned i = 0; i < 8; ++i) EXPECT_EQ(outcome[i], i == 3 ? "signer failed" : "issued") << i;
  }
  auto reopened = SqliteLedger::open(file);
  for (unsigned i = 0; i < 8; ++i) {
    EXPECT_EQ(reopened->holder_vouchers(holder(i + 1)).size(), i == 3 ? 0u : 1u) << i;
  }
}
