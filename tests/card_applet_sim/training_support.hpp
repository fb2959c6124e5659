// Shared pieces of the training applet tests: a personalised 192-page test image with fixed
// keys, voucher tokens signed by a test voucher signer, and Terminal — the host side of the
// conversation (SCP03 through HostSession<OpenSsl>, as a real terminal would run it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "skillcard/card/card.hpp"
#include "skillcard/card/in_process_channel.hpp"
#include "skillcard/card/training_applet.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/scp03_session.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::card::testing {

using training::Role;

inline constexpr std::string_view kCardNumber = "4201000001";
inline constexpr std::uint32_t kRegion = 420100;
inline constexpr std::string_view kPin = "123456";
inline constexpr std::uint32_t kIssuedAt = 1'767'225'600;  // 2026-01-01T00:00:00Z

crypto::HolderRef holder_ref();
// The role masters of the test key store; the card holds KDF(master, 0x41..43, "SKCD" ‖ number).
Bytes role_master(Role role);
crypto::SecretBytes card_key(Role role, crypto::scp03::KeyType type, std::string_view card_number = kCardNumber);
std::uint8_t kvn_of(Role role);
// Public keys of the card's RECEIPT and AUTH keys and the test card CA.
crypto::EcPublicKey receipt_public_key();
crypto::EcPublicKey auth_public_key();
crypto::EcPublicKey card_ca_public_key();
Bytes card_certificate();
training::Personalisation personalisation();

// A formatted and personalised 192-page RAM image (a fresh copy each call).
Eeprom personalised_image();
// A powered-off card on that image with the training applet installed. `applet` (optional)
// receives the installed applet.
std::unique_ptr<Card> make_training_card(training::TrainingApplet** applet = nullptr,
                                         Eeprom eeprom = personalised_image());

// A voucher token for the test holder: id = 8-byte big-endian `serial`.
struct VoucherSpec {
  std::uint64_t serial = 1;
  std::uint64_t issued_at = kIssuedAt;
  std::vector<std::uint32_t> regions{420100};
  std::vector<std::uint32_t> providers{10001};
  std::optional<crypto::HolderRef> holder;  // default: the test holder
};
Bytes voucher_token(const VoucherSpec& spec);
Bytes voucher_token(std::uint64_t serial);
training::VoucherId voucher_id(std::uint64_t serial);

// The receipt the test card must sign for these claims (deterministic ECDSA, same key).
Bytes expected_receipt(const schemas::ReceiptClaims& claims);

// REDEEM data (37 bytes).
struct RedeemSpec {
  std::uint64_t serial = 1;
  std::uint32_t site = 10001;
  std::uint8_t nonce_kind = 0x01;
  std::uint32_t time = kIssuedAt + 86'400;
  std::uint16_t classroom = 84;
  std::uint16_t online = 36;
};
Bytes redeem_data(const RedeemSpec& spec);

// Plain commands, Le = 00 (so that protected answers never need GET RESPONSE).
namespace cmd {
iso7816::CommandApdu get_data(std::uint8_t p2);
iso7816::CommandApdu internal_authenticate(ByteView challenge);
iso7816::CommandApdu verify(std::string_view pin);
iso7816::CommandApdu verify_block(ByteView block);
iso7816::CommandApdu verify_status();
iso7816::CommandApdu change(std::string_view old_pin, std::string_view new_pin);
iso7816::CommandApdu reset_retry_counter(std::string_view new_pin);
iso7816::CommandApdu store(ByteView token);
iso7816::CommandApdu list(std::uint8_t p1);
iso7816::CommandApdu read_voucher(std::uint64_t serial);
iso7816::CommandApdu redeem(const RedeemSpec& spec);
iso7816::CommandApdu get_receipt(std::uint32_t counter);
iso7816::CommandApdu purge(std::uint64_t serial);
iso7816::CommandApdu write_digest(ByteView digest);
iso7816::CommandApdu read_digest();
// One valid instance of every command, by INS (for the role table and the fuzz seeds).
iso7816::CommandApdu sample(std::uint8_t ins);
}  // namespace cmd

// The host end: SELECT, opening a session per role, wrapping, GET RESPONSE.
class Terminal {
 public:
  explicit Terminal(Card& card) : card_(&card), channel_(card) {}

  iso7816::ResponseApdu select();
  // INITIALIZE UPDATE + EXTERNAL AUTHENTICATE with the role's keys for this card; the SW of
  // EXTERNAL AUTHENTICATE (9000 when open). `level` other than 33 is for refusal tests.
  iso7816::StatusWord open(Role role, std::uint8_t level = crypto::scp03::level::kFull);
  // Wrapped when a session is open, plain otherwise; 61xx followed.
  iso7816::ResponseApdu send(const iso7816::CommandApdu& plain);
  // As is, never wrapped.
  iso7816::ResponseApdu send_raw(const iso7816::CommandApdu& command);
  void close() { host_.close(); }
  bool open_session() const { return host_.is_open(); }
  crypto::scp03::HostSession<crypto::OpenSsl>& host() { return host_; }
  InProcessChannel& channel() { return channel_; }
  // Bytes and exchanges since construction or the last reset_counts(), both directions.
  std::size_t bytes() const { return bytes_; }
  std::size_t exchanges() const { return exchanges_; }
  void reset_counts() { bytes_ = exchanges_ = 0; }

 private:
  iso7816::ResponseApdu transmit(const iso7816::CommandApdu& command);
  Card* card_;
  InProcessChannel channel_;
  crypto::scp03::HostSession<crypto::OpenSsl> host_;
  std::size_t bytes_ = 0;
  std::size_t exchanges_ = 0;
};

}  // namespace skillcard::card::testing
