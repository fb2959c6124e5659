#include "skillcard/service/metrics.hpp"

#include <sstream>

namespace skillcard::service {

void Metrics::count_request(std::string_view route, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(route), status}];
  seconds_by_route_[std::string(route)] += seconds;
}

void Metrics::count_refusal(std::string_view code) {
  std::lock_guard lock(mutex_);
  ++refusals_[std::string(code)];
}

void Metrics::count_verification(bool ok) {
  std::lock_guard lock(mutex_);
  ++(ok ? verifications_ok_ : verifications_refused_);
}

std::uint64_t Metrics::requests(std::string_view route, int status) const {
  std::lock_guard lock(mutex_);
  const auto it = requests_.find(std::pair<std::string, int>{std::string(route), status});
  return it == requests_.end() ? 0 : it->second;
}

std::uint64_t Metrics::refusals(std::string_view code) const {
  std::lock_guard lock(mutex_);
  const auto it = refusals_.find(code);
  return it == refusals_.end() ? 0 : it->second;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP skillcard_requests_total HTTP requests by route and status.\n"
      << "# TYPE skillcard_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out << "skillcard_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  }
  out << "# HELP skillcard_request_seconds_total Time spent handling requests, by route.\n"
      << "# TYPE skillcard_request_seconds_total counter\n";
  for (const auto& [route, s] : seconds_by_route_) {
    out << "skillcard_request_seconds_total{route=\"" << route << "\"} " << s << "\n";
  }
  out << "# HELP skillcard_refusals_total Refusals by catalogue code.\n"
      << "# TYPE skillcard_refusals_total counter\n";
  for (const auto& [code, n] : refusals_) out << "skillcard_refusals_total{code=\"" << code << "\"} " << n << "\n";
  out << "# HELP skillcard_verifications_total Voucher token verifications by outcome.\n"
      << "# TYPE skillcard_verifications_total counter\n"
      << "skillcard_verifications_total{outcome=\"valid\"} " << verifications_ok_ << "\n"
      << "skillcard_verifications_total{outcome=\"refused\"} " << verifications_refused_ << "\n";
  return out.str();
}

}  // namespace skillcard::service
