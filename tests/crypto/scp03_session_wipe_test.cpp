// HostSession::wrap leaves no unwiped copy of the plain command data (a PIN block) on the heap:
// this test binary replaces the global operator new/delete so that, while a test arms the
// scanner, every freed block is searched for the plain bytes before it goes back to malloc.
// Its own executable, because the replacement is global.
#include <malloc.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/scp03_session.hpp"

namespace {

// A 12-byte PIN block (digits, then FF) that no other data in these tests contains.
constexpr std::uint8_t kPinBlock[] = {'7', '3', '9', '1', '5', '8', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

std::atomic<bool> g_scanning{false};
std::atomic<int> g_freed_with_pin{0};

void scan(void* block, std::size_t size) noexcept {
  if (block == nullptr || !g_scanning.load(std::memory_order_relaxed)) return;
  if (::memmem(block, size, kPinBlock, sizeof kPinBlock) != nullptr) g_freed_with_pin.fetch_add(1);
}

// Counts freed heap blocks holding the PIN block while `f` runs.
template <class F>
int freed_with_pin_during(F&& f) {
  g_freed_with_pin = 0;
  g_scanning = true;
  f();
  g_scanning = false;
  return g_freed_with_pin.load();
}

}  // namespace

void* operator new(std::size_t size) {
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept {
  scan(p, p ? ::malloc_usable_size(p) : 0);
  std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }

namespace {

using namespace skillcard;
using namespace skillcard::crypto;
using namespace skillcard::crypto::scp03;
using iso7816::CommandApdu;

template <class B>
class Scp03Wipe : public ::testing::Test {};
using Backends = ::testing::Types<OpenSsl, MbedTls>;
TYPED_TEST_SUITE(Scp03Wipe, Backends);

// The scanner itself finds a plain copy that is freed unwiped (else the next test proves nothing).
TYPED_TEST(Scp03Wipe, TheScannerSeesAnUnwipedCopy) {
  const int found = freed_with_pin_during([] {
    auto* copy = new Bytes(std::begin(kPinBlock), std::end(kPinBlock));
    delete copy;
  });
  EXPECT_EQ(found, 1);
}

TYPED_TEST(Scp03Wipe, WrapLeavesNoPlainCopyOfAPinBlock) {
  using B = TypeParam;
  Bytes enc(16), mac(16);
  B::random_bytes(enc);
  B::random_bytes(mac);
  const Bytes aid = from_hex("F0736B696C6C636172640101");
  const Bytes diversification(10, 0x42);
  HostSession<B> host;
  CardSession<B> card;
  const auto iu = host.initialize_update(0x22);
  const auto answer =
      card.initialize_update(enc, mac, 0x22, 1, CardSession<B>::host_challenge_of(iu), aid, diversification);
  card.external_authenticate(
      host.external_authenticate(enc, mac, HostSession<B>::parse_initialize_update_response(answer), level::kFull));
  ASSERT_TRUE(host.is_open());
  ASSERT_TRUE(card.is_open());

  const CommandApdu verify(0x00, 0x20, 0x00, 0x81, ByteView(kPinBlock, sizeof kPinBlock), 256);
  std::optional<CommandApdu> wrapped;
  const int found = freed_with_pin_during([&] { wrapped = host.wrap(verify); });
  EXPECT_EQ(found, 0) << "wrap freed a heap block still holding the PIN block";
  // Not vacuous: the wrapped command carries the PIN block, encrypted, and the card recovers it.
  const Bytes wire = wrapped->encode();
  EXPECT_EQ(::memmem(wire.data(), wire.size(), kPinBlock, sizeof kPinBlock), nullptr);
  EXPECT_EQ(card.unwrap(*wrapped).data(), Bytes(std::begin(kPinBlock), std::end(kPinBlock)));
}

}  // namespace
