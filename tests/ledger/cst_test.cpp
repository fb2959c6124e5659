// CST calendar years (docs/design.md, "Time"): UTC+8 fixed, the year turns at 16:00 UTC on
// 31 December; vouchers count in the CST year of their issue time.
#include <gtest/gtest.h>

#include "fixtures.hpp"

using namespace skillcard::ledger;
using namespace skillcard::ledger::test;

TEST(Cst, YearTurnsAt1600UtcOn31December) {
  constexpr std::uint64_t k2025Dec31_1600Utc = 1767196800;  // = 2026-01-01 00:00:00 CST
  EXPECT_EQ(cst_year(k2025Dec31_1600Utc - 1), 2025);        // 31 Dec 15:59:59 UTC
  EXPECT_EQ(cst_year(k2025Dec31_1600Utc), 2026);            // 31 Dec 16:00:00 UTC
  EXPECT_EQ(cst_month(k2025Dec31_1600Utc - 1), 12u);
  EXPECT_EQ(cst_month(k2025Dec31_1600Utc), 1u);
  // The UTC year still says 2025 for the next eight hours: the naive answer is wrong.
  EXPECT_EQ(cst_year(1767225600 - 1), 2026);  // 2025-12-31 23:59:59 UTC
}

TEST(Cst, YearStartIs31December1600UtcOfThePreviousYear) {
  EXPECT_EQ(cst_year_start(2026), 1767196800u);
  EXPECT_EQ(cst_year_start(2025), 1735660800u);  // 2024-12-31 16:00:00 UTC
  for (int y = 1971; y <= 2400; ++y) {
    const auto start = cst_year_start(y);
    ASSERT_EQ(cst_year(start), y) << y;
    ASSERT_EQ(cst_year(start - 1), y - 1) << y;
    ASSERT_EQ(cst_month(start), 1u) << y;
    ASSERT_EQ(cst_month(start - 1), 12u) << y;
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    ASSERT_EQ(cst_year_start(y + 1) - start, (leap ? 366u : 365u) * 86400u) << y;
  }
}

TEST(Cst, MonthsTurnAt1600Utc) {
  // 2024-02-29 is a leap day: 29 Feb 16:00 UTC is 1 March CST.
  constexpr std::uint64_t k2024Feb29_1600Utc = 1709222400;
  EXPECT_EQ(cst_month(k2024Feb29_1600Utc - 1), 2u);
  EXPECT_EQ(cst_month(k2024Feb29_1600Utc), 3u);
}

TEST(Cst, VoucherCountsInTheCstYearOfItsIssueTime) {
  TempDir dir;
  auto s = seeded(dir / "ledger.db", 1);
  const auto h = holder(1);
  constexpr std::uint64_t kTurn = 1767196800;  // 2026-01-01 00:00 CST
  const auto before = issue_ok(*s.ledger, claims_for(h, FundSource::SpecialAccount, 1000, kTurn - 1));
  const auto after = issue_ok(*s.ledger, claims_for(h, FundSource::SpecialAccount, 1000, kTurn, 4040506));
  EXPECT_EQ(before.cst_year, 2025);
  EXPECT_EQ(after.cst_year, 2026);
  ASSERT_EQ(s.ledger->holder_history(h, 2025).size(), 1u);
  ASSERT_EQ(s.ledger->holder_history(h, 2026).size(), 1u);
  EXPECT_EQ(s.ledger->holder_history(h, 2026)[0].id(), after.id());
  EXPECT_EQ(s.ledger->read_issue_counts({h, 2026, FundSource::SpecialAccount, 1, 1}).holder_year, 1u);
}
