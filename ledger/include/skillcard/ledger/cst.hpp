// Calendar years in China Standard Time (docs/design.md, "Time"): UTC+8, a fixed offset, no
// DST. P1 and P2 count subsidies per CST calendar year of the voucher's issue time; P18 reports
// per CST month.
#pragma once

#include <cstdint>

namespace skillcard::ledger {

// The CST civil year of a UTC timestamp: 31 Dec 15:59:59 UTC is still that year, 16:00:00 UTC
// is already 1 January of the next.
int cst_year(std::uint64_t utc_seconds) noexcept;
// The CST month (1–12) of a UTC timestamp.
unsigned cst_month(std::uint64_t utc_seconds) noexcept;
// UTC seconds of 1 January 00:00:00 CST of `year` (= 31 December 16:00:00 UTC of year − 1);
// a year's timestamps are [cst_year_start(y), cst_year_start(y + 1)). Years 1971–9999.
std::uint64_t cst_year_start(int year) noexcept;

}  // namespace skillcard::ledger
