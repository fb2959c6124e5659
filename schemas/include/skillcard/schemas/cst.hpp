// China Standard Time calendar (UTC+8, no daylight saving) for the rules that count by year or
// month (P1, P2, P18) and for dates of birth and expiry: every timestamp is UTC seconds, every
// calendar question is asked in CST (docs/design.md, "Time"). Built on <chrono>'s calendar.
#pragma once

#include <chrono>
#include <cstdint>

namespace skillcard::schemas {

inline constexpr std::int64_t kCstOffsetSeconds = 8 * 3600;

// The CST calendar date of a UTC instant.
inline std::chrono::year_month_day cst_date(std::uint64_t utc_seconds) {
  const auto local =
      std::chrono::sys_seconds{std::chrono::seconds{static_cast<std::int64_t>(utc_seconds) + kCstOffsetSeconds}};
  return std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(local)};
}

inline int cst_year(std::uint64_t utc_seconds) { return static_cast<int>(cst_date(utc_seconds).year()); }

// The UTC instant at which a CST date begins (00:00 CST).
inline std::uint64_t cst_start_of(std::chrono::year_month_day date) {
  const auto days = std::chrono::sys_days{date}.time_since_epoch();
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(days).count() - kCstOffsetSeconds);
}

// `months` calendar months after a UTC instant, in CST: the same day of the month, or the
// month's last day when it has no such day (30 Nov + 3 months = 28/29 Feb), same time of day.
inline std::uint64_t add_cst_months(std::uint64_t utc_seconds, int months) {
  const auto date = cst_date(utc_seconds);
  const auto time_of_day = (static_cast<std::int64_t>(utc_seconds) + kCstOffsetSeconds) % 86400;
  auto target = date.year() / date.month() / date.day() + std::chrono::months{months};
  if (!target.ok()) target = target.year() / target.month() / std::chrono::last;
  return cst_start_of(std::chrono::year_month_day{target}) + static_cast<std::uint64_t>(time_of_day);
}

// Completed years of age on a date (a birthday on 29 Feb counts from 1 Mar in common years).
inline int age_on(std::chrono::year_month_day birth, std::chrono::year_month_day on) {
  int age = static_cast<int>(on.year()) - static_cast<int>(birth.year());
  if (on.month() < birth.month() || (on.month() == birth.month() && on.day() < birth.day())) --age;
  return age;
}

}  // namespace skillcard::schemas
