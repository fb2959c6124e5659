// Private to the ledger: what the SQLite and the PostgreSQL Query have in common (CRTP): the
// narrower integers and the strings forwarded to the backend's bind(int64) / bind(string_view),
// args() binding ?1, ?2, … in order, and fixed<N>() reading a blob of exactly N bytes.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "skillcard/ledger/types.hpp"

namespace skillcard::ledger {

template <class Q>
class QueryBinding {
 public:
  Q& bind(int index, std::uint32_t value) { return self().bind(index, static_cast<std::int64_t>(value)); }
  Q& bind(int index, int value) { return self().bind(index, static_cast<std::int64_t>(value)); }
  Q& bind(int index, const std::string& text) { return self().bind(index, std::string_view(text)); }
  Q& bind(int index, const char* text) { return self().bind(index, std::string_view(text)); }

  // Binds the arguments to ?1, ?2, … in order.
  template <class... A>
  Q& args(const A&... a) {
    int i = 0;
    (self().bind(++i, a), ...);
    return self();
  }

  template <std::size_t N>
  std::array<std::uint8_t, N> fixed(int col) const {  // a blob of exactly N bytes
    const Bytes b = self().blob(col);
    if (b.size() != N) self().corrupt(col, "a blob of the wrong size");
    std::array<std::uint8_t, N> out{};
    std::copy(b.begin(), b.end(), out.begin());
    return out;
  }

 private:
  Q& self() { return static_cast<Q&>(*this); }
  const Q& self() const { return static_cast<const Q&>(*this); }
};

}  // namespace skillcard::ledger
