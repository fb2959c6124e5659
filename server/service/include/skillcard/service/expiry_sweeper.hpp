// The ledger's expiry sweep, run by the service: a voucher that expired unredeemed stops
// counting towards P1, P2 and P3 and returns its face value to its fund's budget (P16), as
// POLICY.md says ("counts until it is voided or expires unredeemed").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "skillcard/ledger/ledger.hpp"
#include "skillcard/policy/config.hpp"

namespace skillcard::service {

class ExpirySweeper {
 public:
  // Sweeps at once, then every `interval`, the vouchers whose expiry is more than `grace` in
  // the past: a receipt made offline before expiry may arrive up to the P12 sync window later,
  // and must still find its voucher live. `clock` gives UTC seconds; `log` gets one line per
  // sweep that expired something, and any failure (the next sweep tries again).
  ExpirySweeper(ledger::Ledger& ledger, std::chrono::seconds grace, std::chrono::seconds interval,
                std::function<std::uint64_t()> clock, std::function<void(const std::string&)> log);
  ~ExpirySweeper();  // stops the thread; a sweep in progress finishes first
  ExpirySweeper(const ExpirySweeper&) = delete;
  ExpirySweeper& operator=(const ExpirySweeper&) = delete;

  // One sweep now, on the caller's thread; the number of vouchers it expired.
  std::size_t sweep();

  // The grace a policy asks for: the longest P12 sync window of its defaults and regions.
  static std::chrono::seconds grace_of(const policy::PolicyConfig* policy);

 private:
  void run();
  ledger::Ledger& ledger_;
  std::chrono::seconds grace_;
  std::chrono::seconds interval_;
  std::function<std::uint64_t()> clock_;
  std::function<void(const std::string&)> log_;
  std::mutex mutex_;  // one sweep at a time; guards stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace skillcard::service
