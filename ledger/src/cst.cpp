#include "skillcard/ledger/cst.hpp"

namespace skillcard::ledger {

namespace {

// Howard Hinnant's civil calendar algorithms (proleptic Gregorian, days since 1970-01-01).
struct Civil {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

Civil civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                       // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;               // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                  // [1, 12]
  return {y + (m <= 2 ? 1 : 0), m, d};
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

Civil cst_civil(std::uint64_t utc_seconds) noexcept {
  const auto local = static_cast<std::int64_t>(utc_seconds) + kCstOffsetSeconds;
  return civil_from_days(local / 86400);
}

}  // namespace

int cst_year(std::uint64_t utc_seconds) noexcept { return static_cast<int>(cst_civil(utc_seconds).year); }

unsigned cst_month(std::uint64_t utc_seconds) noexcept { return cst_civil(utc_seconds).month; }

std::uint64_t cst_year_start(int year) noexcept {
  const std::int64_t local = days_from_civil(year, 1, 1) * 86400;
  return static_cast<std::uint64_t>(local - kCstOffsetSeconds);
}

}  // namespace skillcard::ledger
