// Atomic issue decisions: the ledger re-reads the counts and the budget in the transaction that
// records the voucher and refuses a decision that no longer holds (P1, P2, P3, P16).
#include <gtest/gtest.h>

#include "fixtures.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;

namespace {

struct LedgerIssue : ::testing::Test {
  void SetUp() override { s = seeded_ledger(dir / "ledger.db", 2, 1'000'000); }
  IssueOutcome issue(const schemas::VoucherClaims& c, const IssueDecision& d) {
    return s.ledger->issue_voucher({c, ""}, d, fake_minter(), clerk(), kNow);
  }
  schemas::VoucherClaims occupation(unsigned i, FundSource fund = FundSource::SpecialAccount,
                                    std::uint32_t face = 10000) {
    return claims_for(holder(1), fund, face, kNow, 1000000 + i);
  }
  TempDir dir;
  SeededLedger s;
};

}  // namespace

TEST_F(LedgerIssue, P1_ThreeSubsidiesPerCstYear) {
  for (unsigned i = 1; i <= 3; ++i) {
    const auto out = issue(occupation(i), policy(*s.ledger, occupation(i)));
    ASSERT_EQ(out.status, IssueStatus::Issued) << i;
    EXPECT_EQ(out.fresh.holder_year, i - 1);
  }
  const auto fourth = issue(occupation(4), policy(*s.ledger, occupation(4)));
  EXPECT_EQ(fourth.status, IssueStatus::Refused);
  EXPECT_EQ(fourth.violated, std::vector<std::string_view>{"P1_ANNUAL_LIMIT"});
  EXPECT_EQ(fourth.fresh.holder_year, 3u);
  // Next CST year is a new count.
  auto next_year = occupation(5);
  next_year.issued_at = next_year.not_before = cst_year_start(2027);
  next_year.expires_at = next_year.issued_at + 86400;
  EXPECT_EQ(issue(next_year, policy(*s.ledger, next_year)).status, IssueStatus::Issued);
}

TEST_F(LedgerIssue, StaleDecisionIsRefusedWithFreshCounts) {
  const auto decided = policy(*s.ledger, occupation(1));  // read while the holder had 0
  issue_ok(*s.ledger, occupation(2));
  issue_ok(*s.ledger, occupation(3));
  issue_ok(*s.ledger, occupation(4));  // meanwhile three more were issued elsewhere
  const auto out = issue(occupation(1), decided);
  EXPECT_EQ(out.status, IssueStatus::StaleDecision);
  EXPECT_EQ(out.violated, std::vector<std::string_view>{"P1_ANNUAL_LIMIT"});
  EXPECT_EQ(out.fresh.holder_year, 3u);
  EXPECT_NE(out.fresh, decided.ledger_counts);
  EXPECT_EQ(s.ledger->holder_vouchers(holder(1)).size(), 3u);
  const auto audit = s.ledger->audit_entries(s.ledger->audit_head().count, 1);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "voucher.issue");
  EXPECT_EQ(audit[0].outcome, "stale-decision:P1_ANNUAL_LIMIT");
  EXPECT_EQ(audit[0].subject, "holder:" + lower_hex(holder(1)) + " year:2026");
}

TEST_F(LedgerIssue, MovedCountsThatStillHoldDoNotRefuse) {
  const auto decided = policy(*s.ledger, occupation(1));
  issue_ok(*s.ledger, occupation(2));  // one more elsewhere: 2 of 3 after this issue
  const auto out = issue(occupation(1), decided);
  EXPECT_EQ(out.status, IssueStatus::Issued);
  EXPECT_EQ(out.fresh.holder_year, 1u);
}

TEST_F(LedgerIssue, ExternalCountsFromTheRegistryAreAdded) {
  auto d = policy(*s.ledger, occupation(1));
  d.external.holder_year = 3;  // three subsidies from the other business system
  const auto out = issue(occupation(1), d);
  EXPECT_EQ(out.status, IssueStatus::Refused);
  EXPECT_EQ(out.violated, std::vector<std::string_view>{"P1_ANNUAL_LIMIT"});
  d.external.holder_year = 2;
  EXPECT_EQ(issue(occupation(1), d).status, IssueStatus::Issued);
}

TEST_F(LedgerIssue, P2_OneEmploymentFundSubsidyPerYear) {
  const auto first = occupation(1, FundSource::EmploymentSubsidyFund);
  ASSERT_EQ(issue(first, policy(*s.ledger, first)).status, IssueStatus::Issued);
  const auto second = occupation(2, FundSource::EmploymentSubsidyFund);
  const auto out = issue(second, policy(*s.ledger, second));
  EXPECT_EQ(out.status, IssueStatus::Refused);
  EXPECT_EQ(out.violated, std::vector<std::string_view>{"P2_EMPLOYMENT_FUND_LIMIT"});
  const auto other_fund = occupation(3, FundSource::SpecialAccount);
  EXPECT_EQ(issue(other_fund, policy(*s.ledger, other_fund)).status, IssueStatus::Issued);
}

TEST_F(LedgerIssue, P3_SameOccupationAndLevelOnce) {
  ASSERT_EQ(issue(occupation(1), policy(*s.ledger, occupation(1))).status, IssueStatus::Issued);
  auto same = occupation(1);
  auto out = issue(same, policy(*s.ledger, same));
  EXPECT_EQ(out.violated, std::vector<std::string_view>{"P3_SAME_OCCUPATION_LEVEL"});
  same.level = 3;  // the next level is another subsidy
  EXPECT_EQ(issue(same, policy(*s.ledger, same)).status, IssueStatus::Issued);
}

TEST_F(LedgerIssue, P16_BudgetIsNeverOverspent) {
  s.ledger->set_budget(FundSource::OtherDepartment, 25000, clerk(), kNow);
  ASSERT_EQ(issue(occupation(1, FundSource::OtherDepartment), policy(*s.ledger, occupation(1))).status,
            IssueStatus::Issued);
  ASSERT_EQ(issue(occupation(2, FundSource::OtherDepartment), policy(*s.ledger, occupation(2))).status,
            IssueStatus::Issued);
  const auto third = occupation(3, FundSource::OtherDepartment);
  const auto out = issue(third, policy(*s.ledger, third));
  EXPECT_EQ(out.status, IssueStatus::Refused);
  EXPECT_EQ(out.violated, std::vector<std::string_view>{"P16_BUDGET_EXHAUSTED"});
  EXPECT_EQ(out.fresh.fund_remaining_fen, 5000);
  EXPECT_EQ(s.ledger->budget(FundSource::OtherDepartment)->committed_fen, 20000);
}

TEST_F(LedgerIssue, NoBudgetMeansNothingToSpend) {
  TempDir other;
  auto ledger = open_ledger(other / "empty.db");
  const auto c = claims_for(holder(1));
  const auto out = ledger->issue_voucher({c, ""}, policy(*ledger, c), fake_minter(), clerk(), kNow);
  EXPECT_EQ(out.status, IssueStatus::Refused);
  EXPECT_EQ(out.violated, std::vector<std::string_view>{"P16_BUDGET_EXHAUSTED"});
}

TEST_F(LedgerIssue, EveryViolatedLimitIsNamed) {
  const auto emp = occupation(1, FundSource::EmploymentSubsidyFund);
  issue_ok(*s.ledger, emp);
  issue_ok(*s.ledger, occupation(2));
  issue_ok(*s.ledger, occupation(3));
  s.ledger->set_budget(FundSource::EmploymentSubsidyFund, 10000, clerk(), kNow);
  const auto out = issue(emp, policy(*s.ledger, emp));
  EXPECT_EQ(out.violated, (std::vector<std::string_view>{"P1_ANNUAL_LIMIT", "P2_EMPLOYMENT_FUND_LIMIT",
                                                         "P3_SAME_OCCUPATION_LEVEL", "P16_BUDGET_EXHAUSTED"}));
}

TEST_F(LedgerIssue, VoidedExpiredAndMovedVouchersDoNotCount) {
  const auto a = issue_ok(*s.ledger, occupation(1));
  const auto b = issue_ok(*s.ledger, occupation(2));
  auto later = occupation(3);
  later.expires_at += 86400;
  issue_ok(*s.ledger, later);
  s.ledger->void_voucher(a.id(), "not written", clerk(), kNow);
  s.ledger->expire_vouchers(b.claims.expires_at + 1, clerk(), kNow);
  const auto counts = s.ledger->read_issue_counts({holder(1), 2026, FundSource::SpecialAccount, 1000001, 4});
  EXPECT_EQ(counts.holder_year, 1u);
  EXPECT_EQ(counts.same_occupation_level, 0u);
  EXPECT_EQ(issue(occupation(1), policy(*s.ledger, occupation(1))).status, IssueStatus::Issued);
  EXPECT_EQ(s.ledger->holder_history(holder(1), 2026).size(), 2u);
}
