// Private to the service's network layer: the HTTP/1.1 request parser that fills a session's
// Request (server.cpp), in a header of its own so that its fuzz target
// (tests/fuzz/service_http_request_fuzz.cpp) parses exactly what a session does.
#pragma once

#include <utility>  // before any Boost header (g++ 12, C++20: std::exchange in awaitable.hpp)

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <string>
#include <string_view>

#include "skillcard/service/handler.hpp"

namespace skillcard::service::detail {

namespace beast = boost::beast;
namespace http = beast::http;

// The prefix of the API's own header names (compared without regard to case).
constexpr beast::string_view kOwnPrefix{"skillcard-", 10};

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

// The development identity of a plain-HTTP terminal (Skillcard-Dev-Terminal-*): read by the
// network layer, never passed to the handler.
struct DevIdentity {
  std::string id, role, region, site;
  void clear() {
    id.clear();
    role.clear();
    region.clear();
    site.clear();
  }
};

// A request parser that writes straight into the session's Request: method, target, the API's
// own Skillcard-* headers and the body. Beast's basic_parser does the HTTP/1.1 framing
// (Content-Length, chunked, Connection, limits); the headers the handler never sees are not
// stored, and a keep-alive connection reuses its Request's buffers from one request to the next.
class RequestParser final : public http::basic_parser<true> {
 public:
  RequestParser(Request& into, DevIdentity& dev) : out_(into), dev_(dev) {
    out_.method.clear();
    out_.target.clear();
    out_.headers.clear();
    out_.body.clear();
    dev_.clear();
  }
  unsigned version() const noexcept { return version_; }
  // The first of the API's own headers that came more than once (lower case), or "".
  const std::string& repeated_header() const noexcept { return repeated_; }
  // The client asked for an interim "100 Continue" before it sends its body (RFC 9110 §10.1.1).
  bool expects_continue() const noexcept { return expect_continue_; }

 private:
  void on_request_impl(http::verb, beast::string_view method, beast::string_view target, int version,
                       beast::error_code&) override {
    out_.method.assign(method.data(), method.size());
    out_.target.assign(target.data(), target.size());
    version_ = static_cast<unsigned>(version);
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
    ec = http::error::bad_version;  // never called for a request parser
  }
  void on_field_impl(http::field field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    // Any other expectation is ignored, as RFC 9110 allows: the request is answered as usual.
    if (field == http::field::expect && beast::iequals(value, "100-continue")) expect_continue_ = true;
    if (name.size() <= kOwnPrefix.size() || !beast::iequals(name.substr(0, kOwnPrefix.size()), kOwnPrefix)) return;
    const auto rest = name.substr(kOwnPrefix.size());
    const std::string_view text(value.data(), value.size());
    constexpr beast::string_view dev{"dev-terminal-", 13};
    if (rest.size() > dev.size() && beast::iequals(rest.substr(0, dev.size()), dev)) {
      const auto which = rest.substr(dev.size());
      if (beast::iequals(which, "id")) dev_.id = text;
      if (beast::iequals(which, "role")) dev_.role = text;
      if (beast::iequals(which, "region")) dev_.region = text;
      if (beast::iequals(which, "site")) dev_.site = text;
      return;
    }
    // Given twice, which one names the clerk or the card proof is not ours to guess: the
    // request is refused naming the header (as a repeated JSON member is).
    auto key = lower(std::string_view(name.data(), name.size()));
    if (const auto [it, fresh] = out_.headers.try_emplace(key, text); !fresh && repeated_.empty()) {
      repeated_ = std::move(key);
    }
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code&) override {
    // basic_parser has already refused a length over the body limit.
    if (length) out_.body.reserve(static_cast<std::size_t>(*length));
  }
  std::size_t on_body_impl(beast::string_view data, beast::error_code&) override {
    out_.body.append(data.data(), data.size());
    return data.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data, beast::error_code&) override {
    out_.body.append(data.data(), data.size());
    return data.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  Request& out_;
  DevIdentity& dev_;
  unsigned version_ = 11;
  bool expect_continue_ = false;
  std::string repeated_;
};

}  // namespace skillcard::service::detail
