// CST calendar: year boundaries in UTC+8, month arithmetic, ages.
#include "skillcard/schemas/cst.hpp"

#include <gtest/gtest.h>

using namespace skillcard::schemas;
using namespace std::chrono;

TEST(Cst, NewYearIsAtSixteenHundredUtc) {
  // 2026-12-31 15:59:59 UTC is 23:59:59 CST on 31 Dec; one second later it is 2027 in CST.
  const std::uint64_t last = 1798732799;
  EXPECT_EQ(cst_year(last), 2026);
  EXPECT_EQ(cst_year(last + 1), 2027);
  EXPECT_EQ(cst_date(last + 1), 2027y / January / 1);
  EXPECT_EQ(cst_start_of(2027y / January / 1), last + 1);
}

TEST(Cst, AddMonthsClampsToTheMonthsLastDay) {
  const auto nov30 = cst_start_of(2026y / November / 30) + 3600;
  EXPECT_EQ(cst_date(add_cst_months(nov30, 3)), 2027y / February / 28);
  EXPECT_EQ(cst_date(add_cst_months(cst_start_of(2027y / November / 30), 3)), 2028y / February / 29);
  EXPECT_EQ(add_cst_months(nov30, 3) % 86400, nov30 % 86400);  // same time of day
  EXPECT_EQ(cst_date(add_cst_months(cst_start_of(2026y / January / 15), 3)), 2026y / April / 15);
}

TEST(Cst, AgeOnADate) {
  EXPECT_EQ(age_on(2010y / May / 1, 2026y / April / 30), 15);
  EXPECT_EQ(age_on(2010y / May / 1, 2026y / May / 1), 16);
  EXPECT_EQ(age_on(2008y / February / 29, 2026y / February / 28), 17);
  EXPECT_EQ(age_on(2008y / February / 29, 2026y / March / 1), 18);
}
