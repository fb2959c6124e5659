// Fuzz target for what a terminal parses from a card, which may be anybody's: the answers of
// LIST VOUCHERS (then every slot's usable_at), GET DATA 01 04 and INTERNAL AUTHENTICATE
// (host/card_commands), and INITIALIZE UPDATE (crypto/scp03). The first byte picks the parser,
// the rest is the answer's data. A malformed answer may only be refused with the parser's
// documented error (std::invalid_argument; SecureChannelError for INITIALIZE UPDATE); any other
// exception escaping, or a crash, is a finding.
#include <cstdint>
#include <stdexcept>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/scp03_session.hpp"
#include "skillcard/host/card_commands.hpp"

using namespace skillcard;

namespace {

// The card_commands parsers: std::invalid_argument is their one refusal.
void parse_card_command_answer(std::uint8_t which, ByteView answer) {
  try {
    switch (which) {
      case 0: {
        const auto list = host::VoucherList::parse(answer);
        for (const auto& slot : list.slots) (void)slot.usable_at(420100, 10001, 1795910400);
        break;
      }
      case 1:
        (void)host::CardCounters::parse(answer);
        break;
      default:
        (void)host::AuthAnswer::parse(answer);
        break;
    }
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ByteView answer(data + 1, size - 1);
  const auto which = static_cast<std::uint8_t>(data[0] % 4);
  if (which < 3) {
    parse_card_command_answer(which, answer);
  } else {
    try {
      (void)crypto::scp03::HostSession<crypto::OpenSsl>::parse_initialize_update_response(answer);
    } catch (const crypto::scp03::SecureChannelError&) {
    }
  }
  return 0;
}
