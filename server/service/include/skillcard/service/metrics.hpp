// Counters for GET /metrics (Prometheus text format 0.0.4): requests by route and status,
// refusals by code, voucher verifications by outcome. Thread-safe; nothing here is shared
// between service instances (each is scraped on its own).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace skillcard::service {

class Metrics {
 public:
  void count_request(std::string_view route, int status, double seconds);
  void count_refusal(std::string_view code);
  void count_verification(bool ok);
  std::string render() const;  // Prometheus text exposition

  std::uint64_t requests(std::string_view route, int status) const;
  std::uint64_t refusals(std::string_view code) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t, std::less<>> requests_;
  std::map<std::string, double, std::less<>> seconds_by_route_;
  std::map<std::string, std::uint64_t, std::less<>> refusals_;
  std::uint64_t verifications_ok_ = 0;
  std::uint64_t verifications_refused_ = 0;
};

}  // namespace skillcard::service
