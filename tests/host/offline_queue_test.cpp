// The offline queue: idempotent enqueue, time left in the P12 window, sync removing only what
// the service acknowledged, refusals kept and marked, batches of 100, and survival of SIGKILL
// in the middle of enqueue and of sync (a fork()ed child killed while it works).
#include "skillcard/host/offline_queue.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "host_test_support.hpp"

namespace skillcard::host {
namespace {

using testing::UnexpectedService;

VoucherId vid(std::uint32_t i) {
  VoucherId id{};
  for (std::size_t k = 0; k < 4; ++k) id[7 - k] = static_cast<std::uint8_t>(i >> (8 * k));
  return id;
}

Bytes receipt_bytes(std::uint32_t i) {
  Bytes r(140, 0xD2);
  for (std::size_t k = 0; k < 4; ++k) r[k] = static_cast<std::uint8_t>(i >> (8 * k));
  return r;
}

std::uint32_t index_of(const VoucherId& id) {
  std::uint32_t i = 0;
  for (std::size_t k = 4; k < 8; ++k) i = (i << 8) | id[k];
  return i;
}

// Answers sync from a callback per item; counts the calls.
class SyncService final : public UnexpectedService {
 public:
  std::function<SyncItemResult(const ReceiptSubmission&)> answer;
  std::function<void(std::span<const ReceiptSubmission>)> after;
  std::vector<std::size_t> batch_sizes;
  std::vector<SyncItemResult> sync_redemptions(std::span<const ReceiptSubmission> items) override {
    batch_sizes.push_back(items.size());
    std::vector<SyncItemResult> out;
    for (const auto& s : items) out.push_back(answer(s));
    if (after) after(items);
    return out;
  }
};

SyncItemResult accept(const ReceiptSubmission& s) {
  SyncItemResult r;
  r.voucher_id = s.voucher_id;
  r.status = 201;
  r.redemption = Redemption{};
  return r;
}

// A service that answers every item with this status and code.
std::function<SyncItemResult(const ReceiptSubmission&)> answering(int status, std::string code) {
  return [status, code](const ReceiptSubmission& s) {
    SyncItemResult r;
    r.voucher_id = s.voucher_id;
    r.status = status;
    r.error = code;
    return r;
  };
}

// The receipts table as queues made before the service's messages were kept have it.
constexpr const char* kReceiptsBeforeMessages =
    "CREATE TABLE receipts (id INTEGER PRIMARY KEY AUTOINCREMENT, voucher_id TEXT NOT NULL, card TEXT NOT NULL, "
    "receipt BLOB NOT NULL UNIQUE, made_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, "
    "refused INTEGER NOT NULL DEFAULT 0, rules TEXT NOT NULL DEFAULT '');";

// A queue file as an older release left it: `sql` run on a new file. "" or SQLite's error.
std::string make_file(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string error;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) error = "cannot open";
  char* message = nullptr;
  if (error.empty() && sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    error = message ? message : "exec failed";
  }
  sqlite3_free(message);
  sqlite3_close(db);
  return error;
}

class OfflineQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("skillcard_host_queue_" + std::to_string(::getpid()) + "_" +
                                                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    path = dir / "queue.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  std::filesystem::path path;
};

TEST_F(OfflineQueueTest, P12EnqueueIsDurableIdempotentAndShowsTimeLeftInTheWindow) {
  {
    OfflineQueue q(path);
    EXPECT_TRUE(q.enqueue(vid(1), "4201000001", receipt_bytes(1), 1000));
    EXPECT_FALSE(q.enqueue(vid(1), "4201000001", receipt_bytes(1), 1000));
    EXPECT_TRUE(q.enqueue(vid(2), "4201000001", receipt_bytes(2), 2000));
  }
  OfflineQueue reopened(path);
  const auto p = reopened.pending(1000 + 3600);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].voucher_id, vid(1));
  EXPECT_EQ(p[0].receipt, receipt_bytes(1));
  EXPECT_EQ(p[0].card, "4201000001");
  EXPECT_EQ(p[0].seconds_left, kSyncWindowSeconds - 3600);
  EXPECT_EQ(p[1].seconds_left, kSyncWindowSeconds - 3600 + 1000);
  EXPECT_EQ(reopened.pending(1000 + kSyncWindowSeconds + 1)[0].seconds_left, 0u);
  // A shorter configured window.
  OfflineQueue short_window(path, 3600);
  EXPECT_EQ(short_window.pending(1000)[0].seconds_left, 3600u);
}

TEST_F(OfflineQueueTest, SyncRemovesOnlyAcknowledgedAndKeepsRefusalsMarked) {
  OfflineQueue q(path);
  for (std::uint32_t i = 1; i <= 3; ++i) q.enqueue(vid(i), "4201000001", receipt_bytes(i), 1000);
  SyncService service;
  service.answer = [](const ReceiptSubmission& s) {
    if (index_of(s.voucher_id) != 2) return accept(s);
    SyncItemResult r;
    r.voucher_id = s.voucher_id;
    r.status = 422;
    r.error = "P12_SYNC_WINDOW";
    r.rules = {"P12"};
    r.message = {"离线核销记录已超过72小时上传时限，不得事后补录。", "Older than the 72 h sync window."};
    return r;
  };
  const auto report = q.sync(service);
  EXPECT_EQ(report.acknowledged, 2u);
  EXPECT_EQ(report.refused, 1u);
  EXPECT_EQ(report.remaining, 1u);
  const auto left = q.pending(1000);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].voucher_id, vid(2));
  EXPECT_TRUE(left[0].refused);
  EXPECT_EQ(left[0].last_error, "P12_SYNC_WINDOW");
  EXPECT_EQ(left[0].rules, std::vector<std::string>{"P12"});
  EXPECT_EQ(left[0].message.en, "Older than the 72 h sync window.");  // the service's words, kept
  // A refused receipt is not resent by later syncs, and never dropped.
  const auto again = q.sync(service);
  EXPECT_EQ(again.acknowledged, 0u);
  EXPECT_EQ(service.batch_sizes.size(), 1u);
  EXPECT_EQ(q.size(), 1u);
}

TEST_F(OfflineQueueTest, AnItemWithoutAnswerStaysWaiting) {
  OfflineQueue q(path);
  q.enqueue(vid(1), "4201000001", receipt_bytes(1), 1000);
  q.enqueue(vid(2), "4201000001", receipt_bytes(2), 1000);
  class Partial final : public UnexpectedService {
   public:
    std::vector<SyncItemResult> sync_redemptions(std::span<const ReceiptSubmission> items) override {
      return {accept(items[0])};
    }
  } service;
  const auto report = q.sync(service);
  EXPECT_EQ(report.acknowledged, 1u);
  const auto left = q.pending(1000);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].voucher_id, vid(2));
  EXPECT_EQ(left[0].attempts, 1u);
  EXPECT_FALSE(left[0].refused);
}

// An item the service could not decide now is not a refusal: it stays waiting and goes again with
// the next sync — a 5xx (storage or registry busy), or POLICY_NOT_CONFIGURED (on New Year's
// morning the new year's policy may not be loaded yet; marked refused it would be lost to the P12
// window).
TEST_F(OfflineQueueTest, AnItemTheServiceCouldNotDecideYetStaysWaitingAndGoesAgain) {
  for (const auto& [status, code] : {std::pair{503, "SERVICE_UNAVAILABLE"}, std::pair{422, "POLICY_NOT_CONFIGURED"}}) {
    OfflineQueue q(dir / (std::string(code) + ".db"));
    q.enqueue(vid(1), "4201000001", receipt_bytes(1), 1000);
    SyncService service;
    service.answer = answering(status, code);
    const auto report = q.sync(service);
    EXPECT_EQ(report.refused, 0u) << code;
    EXPECT_EQ(report.acknowledged, 0u) << code;
    EXPECT_EQ(report.undecided, 1u) << code;  // so `site sync` exits 4: to be sent again
    auto left = q.pending(1000);
    ASSERT_EQ(left.size(), 1u) << code;
    EXPECT_FALSE(left[0].refused) << code;
    EXPECT_EQ(left[0].attempts, 1u) << code;
    service.answer = accept;
    EXPECT_EQ(q.sync(service).acknowledged, 1u) << code;
    EXPECT_EQ(q.size(), 0u) << code;
  }
}

TEST_F(OfflineQueueTest, SyncSendsBatchesOfAtMostOneHundred) {
  OfflineQueue q(path);
  for (std::uint32_t i = 1; i <= 250; ++i) q.enqueue(vid(i), "4201000001", receipt_bytes(i), 1000);
  SyncService service;
  service.answer = accept;
  const auto report = q.sync(service);
  EXPECT_EQ(service.batch_sizes, (std::vector<std::size_t>{100, 100, 50}));
  EXPECT_EQ(report.acknowledged, 250u);
  EXPECT_EQ(q.size(), 0u);
}

// A sync with a limit (the one behind an online redemption) sends the oldest receipts only, and
// says how many are left for the next.
TEST_F(OfflineQueueTest, ALimitedSyncSendsTheOldestAndLeavesTheRest) {
  OfflineQueue q(path);
  for (std::uint32_t i = 1; i <= 130; ++i) q.enqueue(vid(i), "4201000001", receipt_bytes(i), 1000 + i);
  SyncService service;
  std::vector<std::uint32_t> sent;
  service.answer = [&](const ReceiptSubmission& s) {
    sent.push_back(index_of(s.voucher_id));
    return accept(s);
  };
  const auto report = q.sync(service, kSyncBatch);
  EXPECT_EQ(service.batch_sizes, (std::vector<std::size_t>{100}));
  EXPECT_EQ(report.acknowledged, 100u);
  EXPECT_EQ(report.remaining, 30u);
  ASSERT_EQ(sent.size(), 100u);
  EXPECT_EQ(sent.front(), 1u);
  EXPECT_EQ(sent.back(), 100u);
  EXPECT_EQ(q.sync(service).acknowledged, 30u);
  EXPECT_EQ(q.size(), 0u);
}

// Reads uint32 indices written by the child until `want` arrived (or the pipe closed).
std::vector<std::uint32_t> read_indices(int fd, std::size_t want) {
  std::vector<std::uint32_t> out;
  std::uint32_t v = 0;
  while (out.size() < want && ::read(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) out.push_back(v);
  return out;
}

void drain(int fd, std::vector<std::uint32_t>& out) {
  std::uint32_t v = 0;
  while (::read(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) out.push_back(v);
}

TEST_F(OfflineQueueTest, SurvivesSigkillInTheMiddleOfEnqueue) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    OfflineQueue q(path);
    for (std::uint32_t i = 0;; ++i) {
      q.enqueue(vid(i), "4201000001", receipt_bytes(i), 1000);
      // Reported only after enqueue returned: these must survive.
      if (::write(fds[1], &i, sizeof i) != static_cast<ssize_t>(sizeof i)) ::_exit(2);
    }
  }
  ::close(fds[1]);
  auto reported = read_indices(fds[0], 40);
  ASSERT_EQ(reported.size(), 40u);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  drain(fds[0], reported);
  ::close(fds[0]);

  OfflineQueue q(path);
  std::set<std::uint32_t> present;
  for (const auto& r : q.pending(1000)) {
    EXPECT_EQ(r.receipt, receipt_bytes(index_of(r.voucher_id)));  // no torn rows
    present.insert(index_of(r.voucher_id));
  }
  for (const auto i : reported) EXPECT_TRUE(present.count(i)) << "receipt " << i << " lost";
  EXPECT_GE(present.size(), reported.size());
  EXPECT_LE(present.size(), reported.size() + 1);  // at most the one in flight
  EXPECT_TRUE(q.enqueue(vid(100000), "4201000001", receipt_bytes(100000), 1000));
}

TEST_F(OfflineQueueTest, SurvivesSigkillInTheMiddleOfSync) {
  constexpr std::uint32_t kCount = 400;
  {
    OfflineQueue q(path);
    for (std::uint32_t i = 0; i < kCount; ++i) q.enqueue(vid(i), "4201000001", receipt_bytes(i), 1000);
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    OfflineQueue q(path);
    SyncService service;
    service.answer = accept;
    // The service has recorded these when it answers: report them before the queue hears back.
    service.after = [&](std::span<const ReceiptSubmission> items) {
      for (const auto& s : items) {
        const auto i = index_of(s.voucher_id);
        if (::write(fds[1], &i, sizeof i) != static_cast<ssize_t>(sizeof i)) ::_exit(2);
      }
    };
    for (;;) q.sync(service);
  }
  ::close(fds[1]);
  auto acknowledged = read_indices(fds[0], 150);
  ASSERT_EQ(acknowledged.size(), 150u);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  drain(fds[0], acknowledged);
  ::close(fds[0]);

  OfflineQueue q(path);
  std::set<std::uint32_t> kept;
  for (const auto& r : q.pending(1000)) kept.insert(index_of(r.voucher_id));
  const std::set<std::uint32_t> acked(acknowledged.begin(), acknowledged.end());
  // Nothing lost: every receipt is still queued or was acknowledged by the service.
  for (std::uint32_t i = 0; i < kCount; ++i)
    EXPECT_TRUE(kept.count(i) || acked.count(i)) << "receipt " << i << " neither queued nor acknowledged";
  // Only acknowledged receipts ever left.
  EXPECT_GE(kept.size(), kCount - acked.size());
  // The survivor syncs the rest.
  SyncService service;
  service.answer = accept;
  q.sync(service);
  EXPECT_EQ(q.size(), 0u);
}

// P12: the window is the service's, as it said at the last contact (the nonce answer): a region's
// 24 hours, not the terminal's 72, sets the time left; kept across a restart.
TEST_F(OfflineQueueTest, P12_TheServicesWindowFromTheLastContactSetsTheTimeLeft) {
  {
    OfflineQueue q(path);
    EXPECT_EQ(q.window(), kSyncWindowSeconds);  // no contact yet: the default
    q.enqueue(vid(1), "4201000001", receipt_bytes(1), 1000);
    q.record_contact({900, 900, 24 * 3600});
    EXPECT_EQ(q.window(), 24u * 3600);
  }
  OfflineQueue reopened(path);
  EXPECT_EQ(reopened.window(), 24u * 3600);
  EXPECT_EQ(reopened.pending(1000 + 3600)[0].seconds_left, 23u * 3600);
  reopened.record_contact({2000, 2000, 0});  // an older service says nothing: the default again
  EXPECT_EQ(reopened.window(), kSyncWindowSeconds);
}

// A file that is not a queue is refused and left as it was: an empty one (truncated: opening it
// as a new queue would hide the receipts it held) and another database named by mistake.
TEST_F(OfflineQueueTest, AFileThatIsNotAQueueIsRefusedAndLeftAsItWas) {
  { std::ofstream(dir / "empty.db"); }
  try {
    OfflineQueue q(dir / "empty.db");
    ADD_FAILURE() << "an empty file was opened as a queue";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is empty"), std::string::npos) << e.what();
  }
  EXPECT_EQ(std::filesystem::file_size(dir / "empty.db"), 0u);
  ASSERT_EQ(make_file(dir / "ledger.db", "CREATE TABLE vouchers (serial INTEGER PRIMARY KEY);"), "");
  const auto size = std::filesystem::file_size(dir / "ledger.db");
  try {
    OfflineQueue q(dir / "ledger.db");
    ADD_FAILURE() << "another database was opened as a queue";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a queue file"), std::string::npos) << e.what();
  }
  EXPECT_EQ(std::filesystem::file_size(dir / "ledger.db"), size);
  // A new queue, and the same reopened, are fine.
  { OfflineQueue created(path); }
  EXPECT_NO_THROW(OfflineQueue{path});
}

// A queue file made before the service's words were kept opens, keeps its receipts and gains
// the message columns.
TEST_F(OfflineQueueTest, AQueueFromBeforeMessagesWereKeptOpensAndKeepsItsReceipts) {
  ASSERT_EQ(make_file(path, std::string(kReceiptsBeforeMessages) +
                                "INSERT INTO receipts (voucher_id, card, receipt, made_at) VALUES "
                                "('0000000000000007', '4201000001', x'D2D2', 1000);"),
            "");
  OfflineQueue q(path);
  ASSERT_EQ(q.size(), 1u);
  q.mark_refused(Bytes{0xD2, 0xD2}, "P12_SYNC_WINDOW", {"P12"}, {"超过72小时", "over 72 h"});
  const auto left = q.pending(1000);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].voucher_id, vid(7));
  EXPECT_EQ(left[0].message.zh_cn, "超过72小时");
  EXPECT_EQ(OfflineQueue(path).pending(1000).at(0).message.en, "over 72 h");  // reopened: no second ALTER
}

// A queue made before a doubt's time was kept: it opens, its doubt reads as time 0 (unknown),
// and a new doubt keeps its time.
TEST_F(OfflineQueueTest, AnOldInDoubtRecordOpensWithoutItsTime) {
  ASSERT_EQ(make_file(path,
                      "CREATE TABLE in_doubt (card TEXT PRIMARY KEY, voucher_id TEXT NOT NULL, counter_before "
                      "INTEGER NOT NULL); INSERT INTO in_doubt VALUES ('4201000001', '0000000000000007', 3);"),
            "");
  OfflineQueue q(path);
  const auto old = q.in_doubt("4201000001");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->voucher, vid(7));
  EXPECT_EQ(old->counter_before, 3u);
  EXPECT_EQ(old->since, 0u);
  q.remember_in_doubt({"4201000002", vid(8), 5, 1234});
  EXPECT_EQ(OfflineQueue(path).in_doubt("4201000002")->since, 1234u);
}

// Two processes of one terminal (a sync and a redemption, say) opening the same queue at once:
// a new file is switched to WAL once, an old one gains its columns once; neither open fails.
TEST_F(OfflineQueueTest, ConcurrentOpensOfANewOrAnOldQueueAllSucceed) {
  const auto open_together = [&](const std::filesystem::path& file) {
    std::vector<std::string> errors(4);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < errors.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          OfflineQueue q(file);
          q.enqueue(vid(static_cast<std::uint32_t>(i)), "4201000001", receipt_bytes(static_cast<std::uint32_t>(i)),
                    1000);
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& e : errors) EXPECT_EQ(e, "") << file;
    EXPECT_EQ(OfflineQueue(file).size(), errors.size()) << file;
  };
  for (int round = 0; round < 20; ++round) {
    const auto fresh = dir / ("new-" + std::to_string(round) + ".db");
    open_together(fresh);
    const auto old = dir / ("old-" + std::to_string(round) + ".db");
    ASSERT_EQ(make_file(old, std::string("PRAGMA journal_mode=WAL;") + kReceiptsBeforeMessages), "");
    open_together(old);
  }
}

}  // namespace
}  // namespace skillcard::host
