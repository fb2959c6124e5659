// The ledger's CST calendar: the shared helpers of schemas/cst.hpp (<chrono>), under the names
// the ledger's queries use.
#include "skillcard/ledger/cst.hpp"

#include "skillcard/schemas/cst.hpp"

namespace skillcard::ledger {

int cst_year(std::uint64_t utc_seconds) noexcept { return schemas::cst_year(utc_seconds); }

unsigned cst_month(std::uint64_t utc_seconds) noexcept {
  return static_cast<unsigned>(schemas::cst_date(utc_seconds).month());
}

std::uint64_t cst_year_start(int year) noexcept {
  return schemas::cst_start_of(std::chrono::year{year} / std::chrono::January / 1);
}

}  // namespace skillcard::ledger
