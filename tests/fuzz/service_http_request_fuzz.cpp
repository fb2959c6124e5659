// Fuzz target for the service's HTTP/1.1 framing: the request parser of its network layer
// (server/service/src/request_parser.hpp, Beast's basic_parser underneath) with the limits a
// session sets, fed one keep-alive connection's bytes in pieces whose sizes the first byte
// picks. Every request it completes must carry a method and a target, and a body within the
// limit; a refusal is an error code (a session answers 400), never an exception or a crash.
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "request_parser.hpp"

using namespace skillcard::service;

namespace {

constexpr std::size_t kBodyLimit = kMaxBody;  // ServerOptions::max_body's default
constexpr std::size_t kHeaderLimit = 16 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 64;  // how the bytes arrive from the socket
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Request request;
  detail::DevIdentity dev;
  std::string buffered;  // what the session's flat_buffer holds and the parser has not consumed
  while (!input.empty() || !buffered.empty()) {
    detail::RequestParser parser(request, dev);  // a fresh parser per request, as a session does
    parser.body_limit(kBodyLimit);
    parser.header_limit(kHeaderLimit);
    boost::beast::error_code ec;
    bool progressed = false;
    while (!parser.is_done()) {
      if (buffered.empty() || ec == boost::beast::http::error::need_more) {
        if (input.empty()) return 0;  // the connection ends mid-request
        const auto n = std::min(piece, input.size());
        buffered.append(input.substr(0, n));
        input.remove_prefix(n);
      }
      ec = {};
      const auto used = parser.put(boost::asio::buffer(buffered.data(), buffered.size()), ec);
      buffered.erase(0, used);
      progressed = progressed || used > 0;
      if (ec && ec != boost::beast::http::error::need_more) return 0;  // the session answers 400 and closes
    }
    if (request.method.empty() || request.target.empty() || request.body.size() > kBodyLimit) std::abort();
    if (!parser.keep_alive() || !progressed) return 0;
  }
  return 0;
}
