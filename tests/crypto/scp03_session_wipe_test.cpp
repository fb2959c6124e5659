// HostSession::wrap and CardSession::unwrap leave no unwiped copy of the plain command data (a
// PIN block) on the heap (tests/support/heap_scanner.hpp). Its own executable, because the
// scanner replaces the global operator new/delete.
#include <gtest/gtest.h>

#include <optional>

#include "../support/heap_scanner.hpp"
#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/scp03_session.hpp"

namespace {

// A 12-byte PIN block (digits, then FF) that no other data in these tests contains.
constexpr std::uint8_t kPinBlock[] = {'7', '3', '9', '1', '5', '8', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

// Counts freed heap blocks holding the PIN block while `f` runs.
template <class F>
int freed_with_pin_during(F&& f) {
  return skillcard::testing::heap_scan::freed_holding_during(kPinBlock, std::forward<F>(f));
}

}  // namespace

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

// The card's side: unwrapping leaves the PIN block only in the command it returns (the applet
// wipes that one after use).
TYPED_TEST(Scp03Wipe, UnwrapLeavesNoPlainCopyButTheCommandItReturns) {
  using B = TypeParam;
  Bytes enc(16), mac(16);
  B::random_bytes(enc);
  B::random_bytes(mac);
  HostSession<B> host;
  CardSession<B> card;
  const auto iu = host.initialize_update(0x22);
  const auto answer = card.initialize_update(enc, mac, 0x22, 1, CardSession<B>::host_challenge_of(iu),
                                             from_hex("F0736B696C6C636172640101"), Bytes(10, 0x42));
  card.external_authenticate(
      host.external_authenticate(enc, mac, HostSession<B>::parse_initialize_update_response(answer), level::kFull));
  const auto wrapped = host.wrap(CommandApdu(0x00, 0x20, 0x00, 0x81, ByteView(kPinBlock, sizeof kPinBlock), 256));
  std::optional<CommandApdu> plain;
  EXPECT_EQ(freed_with_pin_during([&] { plain = card.unwrap(wrapped); }), 0)
      << "unwrap freed a heap block still holding the PIN block";
  EXPECT_EQ(plain->data(), Bytes(std::begin(kPinBlock), std::end(kPinBlock)));
  EXPECT_EQ(freed_with_pin_during([&] { plain.reset(); }), 1);  // the scanner sees the one left
}

// A command whose MAC was right but whose decrypted data is not padded (80 00..) is refused; the
// decrypted data — a PIN block — is wiped before it goes back to the heap.
TEST(Scp03WipeUnpad, RefusedPaddingLeavesNoPlainCopy) {
  Bytes decrypted(std::begin(kPinBlock), std::end(kPinBlock));
  decrypted.resize(16, 0x00);  // zeros without the 80 before them
  const int found =
      freed_with_pin_during([&] { EXPECT_THROW((void)detail::unpad(std::move(decrypted)), SecureChannelError); });
  EXPECT_EQ(found, 0) << "the refused plaintext was freed unwiped";
}

}  // namespace
