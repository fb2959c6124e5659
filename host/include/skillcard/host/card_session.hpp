// One conversation with a training-applet card over any iso7816::CardChannel (a PC/SC reader,
// the simulator): SELECT, the role's SCP03 session at level 33, wrapping and GET RESPONSE, and
// every applet command as a typed call. A status word other than 9000 throws CardRefusal with
// the catalogue code for that command (docs/design.md, "Card status words"); a lost card throws
// iso7816::CardRemovedError / UnknownOutcomeError unchanged, and an answer that fails the
// host's R-MAC check is an UnknownOutcomeError too (the workflows decide what an unknown
// outcome means). PINs travel only inside the encrypted channel and are never logged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/scp03_session.hpp"
#include "skillcard/host/card_commands.hpp"
#include "skillcard/host/card_key_source.hpp"
#include "skillcard/host/refusal.hpp"
#include "skillcard/iso7816/card_channel.hpp"

namespace skillcard::host {

struct CardSessionOptions {
  // Readers without extended-length APDUs: wrapped commands over 255 bytes (WRITE DIGEST) are
  // chained (84 → 94) instead of sent extended.
  bool chain_long_commands = false;
};

class CardSession {
 public:
  // Borrows both; they must outlive the session.
  CardSession(iso7816::CardChannel& channel, const CardKeySource& keys, CardSessionOptions options = {});

  // SELECT the training applet; ends any secure channel (the card forgets it too).
  void select();
  // INITIALIZE UPDATE with the role's KVN (0x21/0x22/0x23), keys diversified from the card
  // number in the answer, card cryptogram checked, EXTERNAL AUTHENTICATE at level 0x33.
  // Throws CardRefusal (SECURE_CHANNEL_FAILED for 6300 or a wrong card cryptogram).
  void open(crypto::CardRole role);
  void close() noexcept;
  bool is_open() const noexcept { return host_.is_open(); }
  std::optional<crypto::CardRole> role() const noexcept { return is_open() ? role_ : std::nullopt; }
  // The card number the card gave as diversification data at the last open() (else empty).
  const std::string& card_number() const noexcept { return card_number_; }

  // Exchanges with the card (GET RESPONSE included) since construction or reset_exchanges().
  std::size_t exchanges() const noexcept { return exchanges_; }
  void reset_exchanges() noexcept { exchanges_ = 0; }

  // --- commands; wrapped when a session is open, plain otherwise ---
  std::string read_card_number();
  std::uint32_t read_region();
  Bytes read_certificate();
  CardCounters read_counters();
  AuthAnswer internal_authenticate(ByteView challenge);
  // Throws CardRefusal PIN_WRONG (tries_left()) or PIN_BLOCKED.
  void verify(const Pin& pin);
  // VERIFY without data: nullopt when verified in this session, else the tries left (0 = blocked).
  std::optional<int> pin_tries_left();
  void change_pin(const Pin& old_pin, const Pin& new_pin);
  void reset_retry_counter(const Pin& new_pin);
  void store_voucher(ByteView token);
  VoucherList list_vouchers(std::uint8_t p1 = apdu::kListAll);
  Bytes read_voucher(const VoucherId& id);
  Bytes redeem(const RedeemRequest& request);
  Bytes get_receipt(std::uint32_t counter);
  void purge(const VoucherId& id);
  void write_digest(ByteView digest);
  // nullopt when no digest was ever written (6A88).
  std::optional<Bytes> read_digest();

 private:
  iso7816::ResponseApdu transmit(const iso7816::CommandApdu& command);
  // Sends `plain` (wrapped inside a session); `secret` wipes the plain command's data after.
  iso7816::ResponseApdu exchange(CardCommand command, const iso7816::CommandApdu& plain, bool secret = false);
  Bytes expect_ok(CardCommand command, const iso7816::CommandApdu& plain, bool secret = false);

  iso7816::CardChannel* channel_;
  const CardKeySource* keys_;
  CardSessionOptions options_;
  crypto::scp03::HostSession<crypto::OpenSsl> host_;
  std::optional<crypto::CardRole> role_;
  std::string card_number_;
  std::size_t exchanges_ = 0;
};

}  // namespace skillcard::host
