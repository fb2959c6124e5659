// The training applet's command set as the host builds and parses it (docs/card-commands.md):
// the AID, the plain command APDUs (Le = 00, wrapped by CardSession), the PIN as a wiped
// secret, and the decoded answers of LIST VOUCHERS, GET DATA 01 04 and INTERNAL AUTHENTICATE.
// Independent of the simulator: the host never links card_applet_sim.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "skillcard/crypto/types.hpp"
#include "skillcard/iso7816/command_apdu.hpp"
#include "skillcard/schemas/common.hpp"

namespace skillcard::host {

using schemas::HolderRef;
using schemas::Nonce;
using schemas::VoucherId;

namespace apdu {

// F0 73 6B 69 6C 6C 63 61 72 64 01.
const Bytes& training_aid();

inline constexpr std::uint8_t kInsGetData = 0xCA;
inline constexpr std::uint8_t kInsInternalAuthenticate = 0x88;
inline constexpr std::uint8_t kInsVerify = 0x20;
inline constexpr std::uint8_t kInsChangeReferenceData = 0x24;
inline constexpr std::uint8_t kInsResetRetryCounter = 0x2C;
inline constexpr std::uint8_t kInsStoreVoucher = 0x30;
inline constexpr std::uint8_t kInsListVouchers = 0x32;
inline constexpr std::uint8_t kInsReadVoucher = 0x34;
inline constexpr std::uint8_t kInsRedeem = 0x36;
inline constexpr std::uint8_t kInsGetReceipt = 0x38;
inline constexpr std::uint8_t kInsPurge = 0x3A;
inline constexpr std::uint8_t kInsWriteDigest = 0x40;
inline constexpr std::uint8_t kInsReadDigest = 0x42;

// GET DATA 01 P2.
inline constexpr std::uint8_t kDataCardNumber = 0x01;
inline constexpr std::uint8_t kDataRegion = 0x02;
inline constexpr std::uint8_t kDataCertificate = 0x03;
inline constexpr std::uint8_t kDataCounters = 0x04;

inline constexpr std::uint8_t kListAll = 0x00;
inline constexpr std::uint8_t kListStored = 0x01;
inline constexpr std::uint8_t kPinReference = 0x81;
inline constexpr std::size_t kPinBlockSize = 12;

}  // namespace apdu

// A PIN of 4-12 ASCII digits, held as a wiped secret and never printed.
class Pin {
 public:
  // Throws HostRefusal(PIN_FORMAT) for anything but 4-12 digits; the text is not echoed.
  explicit Pin(std::string_view digits);
  // The 12-byte block: digits padded with FF.
  crypto::SecretBytes block() const;
  std::size_t size() const noexcept { return digits_.size(); }

 private:
  crypto::SecretBytes digits_;
};

// The REDEEM data (37 bytes).
struct RedeemRequest {
  VoucherId voucher{};
  std::uint32_t site = 0;
  Nonce nonce{};
  std::uint32_t terminal_time = 0;
  std::uint16_t classroom_hours = 0;
  std::uint16_t online_hours = 0;
  Bytes encode() const;
};

namespace apdu {
iso7816::CommandApdu get_data(std::uint8_t p2);
iso7816::CommandApdu internal_authenticate(ByteView challenge);
// The PIN commands carry the secret block in the APDU: CardSession wraps (encrypts) them and
// wipes the plain command at once.
iso7816::CommandApdu verify(const Pin& pin);
iso7816::CommandApdu verify_status();
iso7816::CommandApdu change_reference_data(const Pin& old_pin, const Pin& new_pin);
iso7816::CommandApdu reset_retry_counter(const Pin& new_pin);
iso7816::CommandApdu store_voucher(ByteView token);
iso7816::CommandApdu list_vouchers(std::uint8_t p1);
iso7816::CommandApdu read_voucher(const VoucherId& id);
iso7816::CommandApdu redeem(const RedeemRequest& request);
iso7816::CommandApdu get_receipt(std::uint32_t counter);
iso7816::CommandApdu purge(const VoucherId& id);
iso7816::CommandApdu write_digest(ByteView digest);
iso7816::CommandApdu read_digest();
}  // namespace apdu

enum class SlotState : std::uint8_t { Empty = 0x00, Stored = 0x01, Redeemed = 0x02, PurgedPending = 0x03 };
std::string_view to_string(SlotState state) noexcept;

// One LIST entry: bytes 0-34 of a slot.
struct SlotSummary {
  SlotState state = SlotState::Empty;
  VoucherId id{};
  std::uint32_t expiry = 0;
  std::uint32_t counter = 0;
  std::vector<std::uint32_t> regions;    // eligible codes whose kind bit is clear
  std::vector<std::uint32_t> providers;  // kind bit set
  // Usable at a site of `region` with provider id `site`, at time `now`: stored, unexpired, and
  // one eligible code matches.
  bool usable_at(std::uint32_t region, std::uint32_t site, std::uint64_t now) const noexcept;
};

// A card answer the host cannot read (wrong length, a field out of range): the card, or what
// answers as one, is misbehaving. A std::invalid_argument, so parsers have one refusal type; the
// CLI reports it as CARD_ERROR, not as a usage mistake.
class MalformedCardAnswer : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct VoucherList {
  HolderRef holder{};
  std::uint32_t redemption_counter = 0;
  std::uint32_t time_mark = 0;
  std::vector<SlotSummary> slots;
  // Throws MalformedCardAnswer for a malformed answer.
  static VoucherList parse(ByteView answer);
};

// GET DATA 01 04.
struct CardCounters {
  std::uint32_t redemption = 0;
  std::uint32_t internal_authenticate = 0;
  std::uint32_t attendance = 0;
  std::uint32_t time_mark = 0;
  std::array<std::uint32_t, 3> sequence{};
  static CardCounters parse(ByteView answer);
};

// INTERNAL AUTHENTICATE answer: counter ‖ PIN state ‖ r‖s.
struct AuthAnswer {
  std::uint32_t counter = 0;
  bool pin_verified = false;
  crypto::EcSignature signature{};
  static AuthAnswer parse(ByteView answer);
};

// The bytes the card's AUTH key signs (docs/design.md, "Card keys and domain separation").
Bytes auth_message(std::string_view card_number, std::uint32_t counter, bool pin_verified, ByteView challenge);

}  // namespace skillcard::host
