// The service's periodic expiry sweep over the ledger (P1, P2, P3, P16; grace: the P12 window).
#include "skillcard/service/expiry_sweeper.hpp"

#include <algorithm>
#include <exception>

namespace skillcard::service {

ExpirySweeper::ExpirySweeper(ledger::Ledger& ledger, std::chrono::seconds grace, std::chrono::seconds interval,
                             std::function<std::uint64_t()> clock, std::function<void(const std::string&)> log)
    : ledger_(ledger),
      grace_(grace),
      interval_(interval),
      clock_(std::move(clock)),
      log_(std::move(log)),
      thread_([this] { run(); }) {}

ExpirySweeper::~ExpirySweeper() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::size_t ExpirySweeper::sweep() {
  const auto now = clock_();
  const auto grace = static_cast<std::uint64_t>(grace_.count());
  if (now <= grace) return 0;
  // The service's own actor: the audit log names the sweep as the writer of each expiry.
  const ledger::Actor actor{"service", "expiry-sweep"};
  const auto expired = ledger_.expire_vouchers(static_cast<ledger::UtcSeconds>(now - grace), actor,
                                               static_cast<ledger::UtcSeconds>(now));
  if (expired > 0 && log_) log_("expiry sweep: " + std::to_string(expired) + " voucher(s) expired unredeemed");
  return expired;
}

std::chrono::seconds ExpirySweeper::grace_of(const policy::PolicyConfig* policy) {
  int hours = policy::RegionRules{}.sync_window_hours;
  if (policy != nullptr) {
    hours = policy->defaults.sync_window_hours;
    for (const auto& [code, rules] : policy->regions) hours = std::max(hours, rules.sync_window_hours);
  }
  return std::chrono::hours(hours);
}

void ExpirySweeper::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    try {
      sweep();
    } catch (const std::exception& e) {
      if (log_) log_(std::string("expiry sweep failed (tried again at the next one): ") + e.what());
    }
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace skillcard::service
