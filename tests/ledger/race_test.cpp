// Races between PROCESSES, each with its own connection (and committer), and between threads
// through one committer: exactly one redemption per voucher, never over budget or a cap.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "fixtures.hpp"
#include "skillcard/ledger/audit.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;
using schemas::NonceKind;

namespace {

// Forks `n` children that wait for a common start, run `child(i)` and send back its numbers.
// The parent must hold no open ledger (no threads) when it calls this.
std::vector<std::vector<std::int64_t>> in_processes(int n, const std::function<std::vector<std::int64_t>(int)>& child) {
  int go[2];
  if (::pipe(go) != 0) throw std::runtime_error("pipe");
  std::vector<std::pair<pid_t, int>> children;
  for (int i = 0; i < n; ++i) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe");
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      ::close(out[0]);
      char c;
      while (::read(go[0], &c, 1) > 0) {
      }  // EOF: everyone was forked
      int code = 0;
      try {
        const auto values = child(i);
        const auto count = static_cast<std::int64_t>(values.size());
        if (::write(out[1], &count, sizeof count) != sizeof count) code = 4;
        for (auto v : values) {
          if (::write(out[1], &v, sizeof v) != sizeof v) code = 4;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", i, e.what());
        code = 3;
      }
      ::_exit(code);
    }
    ::close(out[1]);
    children.emplace_back(pid, out[0]);
  }
  ::close(go[0]);
  ::close(go[1]);  // start
  std::vector<std::vector<std::int64_t>> results;
  for (auto [pid, fd] : children) {
    std::vector<std::int64_t> values;
    std::int64_t count = 0;
    if (::read(fd, &count, sizeof count) == sizeof count) {
      values.resize(static_cast<std::size_t>(count));
      auto* p = reinterpret_cast<char*>(values.data());
      std::size_t want = values.size() * sizeof(std::int64_t);
      while (want > 0) {
        const auto got = ::read(fd, p, want);
        if (got <= 0) break;
        p += got;
        want -= static_cast<std::size_t>(got);
      }
    }
    ::close(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << pid << " failed: " << status;
    results.push_back(std::move(values));
  }
  return results;
}

crypto::OpenSsl::VerifyKey any_key() {
  return crypto::OpenSsl::VerifyKey::parse(crypto::OpenSsl::PrivateKey::generate().public_key());
}

constexpr int kProcesses = 4;

}  // namespace

TEST(Ledger, RedemptionIsExactlyOnceUnderRace) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  constexpr unsigned kVouchers = 60;
  std::vector<VoucherId> ids;
  std::string card;
  {
    auto s = seeded_ledger(file, 1);
    card = s.cards[0].number;
    for (unsigned v = 0; v < kVouchers; ++v) {
      ids.push_back(
          issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), card).id());
    }
  }
  // Every process records its OWN receipt (own counter, own nonce) for every voucher, in its
  // own order, from three threads over its own connection.
  const auto results = in_processes(kProcesses, [&](int p) {
    auto ledger = open_ledger(file);
    std::vector<unsigned> order(kVouchers);
    for (unsigned v = 0; v < kVouchers; ++v) order[v] = v;
    std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<unsigned>(p) + 1));
    std::vector<std::int64_t> status(kVouchers, -1);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        for (unsigned k = t; k < kVouchers; k += 3) {
          const unsigned v = order[k];
          const auto id = static_cast<std::uint64_t>(p) * 1000 + v;
          const auto out = ledger->record_redemption(redeem_request(
              receipt(ids[v], static_cast<std::uint32_t>(id + 1), nonce(NonceKind::Terminal, id)), card));
          status[v] = static_cast<std::int64_t>(out.status);
        }
      });
    }
    for (auto& th : threads) th.join();
    return status;
  });
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kProcesses));
  auto ledger = open_ledger(file);
  for (unsigned v = 0; v < kVouchers; ++v) {
    int recorded = 0;
    int winner = -1;
    for (int p = 0; p < kProcesses; ++p) {
      ASSERT_EQ(results[static_cast<std::size_t>(p)].size(), kVouchers);
      const auto status = static_cast<RecordStatus>(results[static_cast<std::size_t>(p)][v]);
      if (status == RecordStatus::Recorded) {
        ++recorded;
        winner = p;
      } else {
        EXPECT_EQ(status, RecordStatus::VoucherAlreadyRedeemed) << "voucher " << v << " process " << p;
      }
    }
    EXPECT_EQ(recorded, 1) << "voucher " << v;
    const auto r = ledger->redemption(ids[v]);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->counter, static_cast<std::uint32_t>(winner) * 1000 + v + 1) << "the winner's receipt is the one kept";
  }
  EXPECT_EQ(ledger->list_redemptions({}).size(), kVouchers);
  EXPECT_EQ(ledger->budget(FundSource::SpecialAccount)->spent_fen, kVouchers * 1000);
  EXPECT_EQ(ledger->budget(FundSource::SpecialAccount)->committed_fen, 0);
  EXPECT_TRUE(verify_audit(*ledger, {}, any_key()).ok()) << "the audit chain survived the race";
}

TEST(Ledger, CardCounterIsUsedOnceUnderRace) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  constexpr unsigned kVouchers = 40;
  constexpr unsigned kCounters = 10;  // four vouchers' receipts carry each counter of the card
  std::vector<VoucherId> ids;
  std::string card;
  {
    auto s = seeded_ledger(file, 1);
    card = s.cards[0].number;
    for (unsigned v = 0; v < kVouchers; ++v) {
      ids.push_back(
          issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), card).id());
    }
  }
  const auto results = in_processes(kProcesses, [&](int p) {
    auto ledger = open_ledger(file);
    std::vector<unsigned> order(kVouchers);
    for (unsigned v = 0; v < kVouchers; ++v) order[v] = v;
    std::shuffle(order.begin(), order.end(), std::mt19937(static_cast<unsigned>(p) + 7));
    std::vector<std::int64_t> status(kVouchers, -1);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (unsigned k = t; k < kVouchers; k += 2) {
          const unsigned v = order[k];
          const auto n = static_cast<std::uint64_t>(p) * 1000 + v;  // every receipt its own nonce
          const auto out = ledger->record_redemption(
              redeem_request(receipt(ids[v], v % kCounters + 1, nonce(NonceKind::Terminal, n)), card));
          status[v] = static_cast<std::int64_t>(out.status);
        }
      });
    }
    for (auto& th : threads) th.join();
    return status;
  });
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kProcesses));
  std::vector<int> recorded_per_counter(kCounters, 0);
  for (unsigned v = 0; v < kVouchers; ++v) {
    int recorded = 0;
    for (const auto& r : results) {
      ASSERT_EQ(r.size(), kVouchers);
      const auto status = static_cast<RecordStatus>(r[v]);
      if (status == RecordStatus::Recorded) {
        ++recorded;
        ++recorded_per_counter[v % kCounters];
      } else {
        EXPECT_TRUE(status == RecordStatus::CounterReused || status == RecordStatus::VoucherAlreadyRedeemed)
            << "voucher " << v << ": " << to_string(status);
      }
    }
    EXPECT_LE(recorded, 1) << "voucher " << v;
  }
  for (unsigned c = 0; c < kCounters; ++c) EXPECT_EQ(recorded_per_counter[c], 1) << "counter " << c + 1;
  auto ledger = open_ledger(file);
  const auto rows = ledger->list_redemptions({});
  ASSERT_EQ(rows.size(), kCounters);
  std::set<std::pair<std::string, std::uint32_t>> pairs;
  for (const auto& row : rows) pairs.insert({row.redemption.card, row.redemption.counter});
  EXPECT_EQ(pairs.size(), kCounters) << "no (card, counter) twice";
  for (unsigned c = 1; c <= kCounters; ++c) EXPECT_TRUE(ledger->redemption_by_counter(card, c)) << c;
  EXPECT_EQ(ledger->budget(FundSource::SpecialAccount)->spent_fen, kCounters * 1000);
  EXPECT_EQ(ledger->budget(FundSource::SpecialAccount)->committed_fen, (kVouchers - kCounters) * 1000);
  EXPECT_TRUE(verify_audit(*ledger, {}, any_key()).ok());
}

TEST(Ledger, IdenticalReceiptRacedByProcessesIsRecordedOnce) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  constexpr unsigned kVouchers = 20;
  std::vector<Bytes> receipts;
  std::string card;
  {
    auto s = seeded_ledger(file, 1);
    card = s.cards[0].number;
    for (unsigned v = 0; v < kVouchers; ++v) {
      const auto id =
          issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), card).id();
      receipts.push_back(receipt(id, v + 1, nonce(NonceKind::Terminal, v)));
    }
  }
  const auto results = in_processes(kProcesses, [&](int) {
    auto ledger = open_ledger(file);
    std::vector<std::int64_t> seqs;
    for (const auto& r : receipts) {
      const auto out = ledger->record_redemption(redeem_request(r, card));
      if (out.status != RecordStatus::Recorded && out.status != RecordStatus::AlreadyRecordedSame) {
        throw std::runtime_error(std::string("unexpected ") + std::string(to_string(out.status)));
      }
      seqs.push_back(static_cast<std::int64_t>(out.record->seq) * (out.status == RecordStatus::Recorded ? -1 : 1));
    }
    return seqs;
  });
  for (unsigned v = 0; v < kVouchers; ++v) {
    int recorded = 0;
    std::set<std::int64_t> seqs;
    for (const auto& r : results) {
      ASSERT_EQ(r.size(), kVouchers);
      if (r[v] < 0) ++recorded;
      seqs.insert(std::abs(r[v]));
    }
    EXPECT_EQ(recorded, 1) << v;
    EXPECT_EQ(seqs.size(), 1u) << "every process got the same record for voucher " << v;
  }
}

TEST(Ledger, RacingIssuesNeverExceedBudget) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  constexpr std::int64_t kFace = 10000;
  constexpr int kFits = 10;
  {
    auto s = seeded_ledger(file, 0);
    s.ledger->set_budget(FundSource::OtherDepartment, kFits * kFace, clerk(), kNow);
  }
  constexpr int kAttempts = 8;  // 4 × 8 = 32 attempts for 10 places
  const auto results = in_processes(kProcesses, [&](int p) {
    auto ledger = open_ledger(file);
    std::int64_t issued = 0, stale = 0;
    for (int a = 0; a < kAttempts; ++a) {
      const auto c = claims_for(holder(static_cast<unsigned>(p * 100 + a + 1)), FundSource::OtherDepartment,
                                static_cast<std::uint32_t>(kFace));
      for (;;) {  // the service's loop: decide on fresh counts until the decision holds or refuses
        const auto out = ledger->issue_voucher({c, ""}, policy(*ledger, c), fake_minter(), clerk(), kNow);
        if (out.status == IssueStatus::StaleDecision) {
          ++stale;
          continue;
        }
        if (out.status == IssueStatus::Issued) ++issued;
        break;
      }
    }
    return std::vector<std::int64_t>{issued, stale};
  });
  std::int64_t issued = 0;
  for (const auto& r : results) {
    ASSERT_EQ(r.size(), 2u);
    issued += r[0];
  }
  EXPECT_EQ(issued, kFits);
  auto ledger = open_ledger(file);
  const auto budget = *ledger->budget(FundSource::OtherDepartment);
  EXPECT_EQ(budget.committed_fen, kFits * kFace);
  EXPECT_LE(budget.committed_fen + budget.spent_fen, budget.allocated_fen);
  Raw raw(file);
  EXPECT_EQ(raw.number("SELECT count(*) FROM vouchers WHERE fund = 4"), kFits);
}

TEST(Ledger, RacingIssuesNeverExceedAnnualCap) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  {
    auto s = seeded_ledger(file, 1);
    issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 2000001));
    issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 2000002));
  }
  const auto results = in_processes(kProcesses, [&](int p) {
    auto ledger = open_ledger(file);
    std::int64_t issued = 0;
    for (unsigned a = 0; a < 3; ++a) {
      const auto c = claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow,
                                3000000 + static_cast<unsigned>(p) * 10 + a);  // distinct occupations: not P3
      for (;;) {
        const auto out = ledger->issue_voucher({c, ""}, policy(*ledger, c), fake_minter(), clerk(), kNow);
        if (out.status == IssueStatus::StaleDecision) continue;
        if (out.status == IssueStatus::Issued) ++issued;
        break;
      }
    }
    return std::vector<std::int64_t>{issued};
  });
  std::int64_t issued = 0;
  for (const auto& r : results) issued += r.at(0);
  EXPECT_EQ(issued, 1) << "the holder had 2 of 3";
  auto ledger = open_ledger(file);
  EXPECT_EQ(ledger->read_issue_counts({holder(1), 2026, FundSource::SpecialAccount, 0, 0}).holder_year, 3u);
}

TEST(Ledger, RacingIssuesNeverExceedEmploymentFundLimit) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  seeded_ledger(file, 1).ledger.reset();
  const auto results = in_processes(kProcesses, [&](int p) {
    auto ledger = open_ledger(file);
    std::int64_t issued = 0;
    for (unsigned a = 0; a < 2; ++a) {
      const auto c = claims_for(holder(1), FundSource::EmploymentSubsidyFund, 1000, kNow,
                                3000000 + static_cast<unsigned>(p) * 10 + a);
      for (;;) {
        const auto out = ledger->issue_voucher({c, ""}, policy(*ledger, c), fake_minter(), clerk(), kNow);
        if (out.status == IssueStatus::StaleDecision) continue;
        if (out.status == IssueStatus::Issued) ++issued;
        break;
      }
    }
    return std::vector<std::int64_t>{issued};
  });
  std::int64_t issued = 0;
  for (const auto& r : results) issued += r.at(0);
  EXPECT_EQ(issued, 1);
}

TEST(GroupCommit, ThreadsRecordingTheSameVouchersRedeemEachOnce) {
  TempDir dir;
  auto s = seeded_ledger(dir / "ledger.db", 1);
  const auto card = s.cards[0].number;
  constexpr unsigned kVouchers = 100;
  constexpr unsigned kThreads = 8;
  std::vector<VoucherId> ids;
  for (unsigned v = 0; v < kVouchers; ++v) {
    ids.push_back(
        issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), card).id());
  }
  const auto before = s.ledger->commit_stats();
  std::atomic<int> recorded{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (unsigned v = 0; v < kVouchers; ++v) {
        const auto id = t * 1000 + v;
        const auto out = s.ledger->record_redemption(
            redeem_request(receipt(ids[(v + t * 13) % kVouchers], id + 1, nonce(NonceKind::Terminal, id)), card));
        if (out.status == RecordStatus::Recorded) {
          ++recorded;
        } else if (out.status == RecordStatus::VoucherAlreadyRedeemed) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(recorded.load(), static_cast<int>(kVouchers));
  EXPECT_EQ(refused.load(), static_cast<int>(kVouchers * (kThreads - 1)));
  EXPECT_EQ(other.load(), 0);
  const auto after = s.ledger->commit_stats();
  EXPECT_EQ(after.operations - before.operations, kVouchers * kThreads);
  EXPECT_LT(after.batches - before.batches, after.operations - before.operations) << "writes were grouped";
  EXPECT_EQ(s.ledger->list_redemptions({}).size(), kVouchers);
}
