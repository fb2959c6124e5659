// A heap scanner for wipe tests: replaces the global operator new/delete so that, while a test
// arms it, every freed block is searched for given bytes (a PIN block) before it goes back to
// malloc. Include it in exactly one source file of a test binary of its own: the replacement is
// global.
#pragma once

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>

namespace skillcard::testing::heap_scan {

inline std::atomic<bool> scanning{false};
inline std::atomic<int> found{0};
inline const std::uint8_t* needle = nullptr;
inline std::size_t needle_size = 0;

inline void scan(void* block, std::size_t size) noexcept {
  if (block == nullptr || !scanning.load(std::memory_order_relaxed)) return;
  if (::memmem(block, size, needle, needle_size) != nullptr) found.fetch_add(1);
}

// How many heap blocks freed while `f` runs held `bytes`.
template <class F>
int freed_holding_during(std::span<const std::uint8_t> bytes, F&& f) {
  needle = bytes.data();
  needle_size = bytes.size();
  found = 0;
  scanning = true;
  f();
  scanning = false;
  return found.load();
}

}  // namespace skillcard::testing::heap_scan

void* operator new(std::size_t size) {
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept {
  skillcard::testing::heap_scan::scan(p, p ? ::malloc_usable_size(p) : 0);
  std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }
