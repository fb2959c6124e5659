// The training applet (docs/design.md, "Card data model"; every command in
// docs/card-commands.md): PIN, SCP03 sessions whose key version names the terminal role,
// voucher slots that keep the token until REDEEM and the card-signed receipt after it, the
// counters and time mark, the portfolio digest, and INTERNAL AUTHENTICATE. It owns pages
// 17-191 of a 192-page image; its crypto is the card's (MbedTls) only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "skillcard/card/applet.hpp"
#include "skillcard/card/card.hpp"
#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/scp03_session.hpp"
#include "skillcard/crypto/types.hpp"

namespace skillcard::card::training {

// F0 73 6B 69 6C 6C 63 61 72 64 01: proprietary F0, ASCII "skillcard", applet version 01.
const Bytes& aid();

inline constexpr std::size_t kImagePages = 192;
// The applet's window: the whole applet area of a 192-page image, pages 17-191.
inline constexpr std::size_t kWindowSize = (kImagePages - kFirstAppletPage) * kPageSize;  // 11 200

// Offsets inside the window (window offset 0 = page 17); docs/design.md, "Memory map v1".
namespace layout {
inline constexpr std::size_t kPinDigits = 0;  // page 17
inline constexpr std::size_t kPinLength = 12;
inline constexpr std::size_t kTriesLeft = 13;
inline constexpr std::size_t kMaxTries = 14;
inline constexpr std::size_t kRedemptionCounter = 16;
inline constexpr std::size_t kAuthCounter = 20;
inline constexpr std::size_t kAttendanceCounter = 24;
inline constexpr std::size_t kTimeMark = 28;
inline constexpr std::size_t kKeys = 64;  // pages 18-21
inline constexpr std::size_t kReceiptScalar = kKeys + 0;
inline constexpr std::size_t kAuthScalar = kKeys + 32;
inline constexpr std::size_t kKeySets = kKeys + 64;  // 3 × (ENC, MAC, DEK), 16 bytes each
inline constexpr std::size_t kKeySetSize = 48;
inline constexpr std::size_t kSequenceCounters = kKeys + 208;  // 3 × 3 bytes
inline constexpr std::size_t kIdentity = 320;                  // pages 22-25
inline constexpr std::size_t kCardNumber = kIdentity + 0;
inline constexpr std::size_t kRegion = kIdentity + 10;
inline constexpr std::size_t kHolderRef = kIdentity + 14;
inline constexpr std::size_t kCertificateLength = kIdentity + 30;
inline constexpr std::size_t kCertificate = kIdentity + 32;
inline constexpr std::size_t kMaxCertificate = 224;
inline constexpr std::size_t kDigest = 576;  // pages 26-33
inline constexpr std::size_t kDigestLength = kDigest;
inline constexpr std::size_t kDigestBody = kDigest + 2;
inline constexpr std::size_t kMaxDigest = 510;
inline constexpr std::size_t kSlots = 1088;  // pages 34-161
inline constexpr std::size_t kSlotSize = 256;
inline constexpr std::size_t kSlotCount = 32;
inline constexpr std::size_t kReserved = kSlots + kSlotSize * kSlotCount;  // pages 162-191
// Slot fields.
inline constexpr std::size_t kSlotState = 0;
inline constexpr std::size_t kSlotId = 1;
inline constexpr std::size_t kSlotExpiry = 9;
inline constexpr std::size_t kSlotCounter = 13;
inline constexpr std::size_t kSlotEligibleCount = 17;
inline constexpr std::size_t kSlotKinds = 18;
inline constexpr std::size_t kSlotCodes = 19;
inline constexpr std::size_t kSlotBodyLength = 35;
inline constexpr std::size_t kSlotBody = 37;
inline constexpr std::size_t kSlotSummary = 35;                     // bytes 0-34: what LIST returns per slot
inline constexpr std::size_t kMaxSlotBody = kSlotSize - kSlotBody;  // 219
inline constexpr std::size_t kListHeader = 24;
}  // namespace layout

inline constexpr std::uint8_t kMaxPinTries = 3;
inline constexpr std::size_t kPinBlockSize = 12;
inline constexpr std::size_t kMinPinLength = 4;
inline constexpr std::size_t kMaxPinLength = 12;
// REDEEM refuses a terminal time this far before the card's time mark (docs/design.md, "Time").
inline constexpr std::uint32_t kTimeTolerance = 600;

// Key version numbers = roles (docs/design.md, "SCP03 per role").
inline constexpr std::uint8_t kKvnCounter = 0x21;
inline constexpr std::uint8_t kKvnSite = 0x22;
inline constexpr std::uint8_t kKvnKiosk = 0x23;

// Instructions (docs/design.md, "INS map").
namespace ins {
inline constexpr std::uint8_t kGetData = 0xCA;
inline constexpr std::uint8_t kInternalAuthenticate = 0x88;
inline constexpr std::uint8_t kVerify = 0x20;
inline constexpr std::uint8_t kChangeReferenceData = 0x24;
inline constexpr std::uint8_t kResetRetryCounter = 0x2C;
inline constexpr std::uint8_t kInitializeUpdate = 0x50;
inline constexpr std::uint8_t kExternalAuthenticate = 0x82;
inline constexpr std::uint8_t kStoreVoucher = 0x30;
inline constexpr std::uint8_t kListVouchers = 0x32;
inline constexpr std::uint8_t kReadVoucher = 0x34;
inline constexpr std::uint8_t kRedeem = 0x36;
inline constexpr std::uint8_t kGetReceipt = 0x38;
inline constexpr std::uint8_t kPurge = 0x3A;
inline constexpr std::uint8_t kWriteDigest = 0x40;
inline constexpr std::uint8_t kReadDigest = 0x42;
}  // namespace ins

// GET DATA P1 P2 (P1 = 01).
namespace data_object {
inline constexpr std::uint8_t kCardNumber = 0x01;
inline constexpr std::uint8_t kRegion = 0x02;
inline constexpr std::uint8_t kCertificate = 0x03;
inline constexpr std::uint8_t kCounters = 0x04;
}  // namespace data_object

// LIST VOUCHERS P1.
inline constexpr std::uint8_t kListAll = 0x00;
inline constexpr std::uint8_t kListStored = 0x01;

// The terminal role of the open session, from its KVN; None = no session (plain commands).
enum class Role : std::uint8_t { None, Counter, Site, Kiosk };
std::string_view to_string(Role role) noexcept;
std::optional<Role> role_of_kvn(std::uint8_t kvn) noexcept;

enum class SlotState : std::uint8_t { Empty = 0x00, Stored = 0x01, Redeemed = 0x02, PurgedPending = 0x03 };

using VoucherId = std::array<std::uint8_t, 8>;

// One voucher slot as stored (docs/design.md, "Voucher slots").
struct Slot {
  SlotState state = SlotState::Empty;
  VoucherId id{};
  std::uint32_t expiry = 0;
  std::uint32_t counter = 0;
  std::uint8_t eligible_count = 0;
  std::uint8_t kinds = 0;
  std::array<std::uint32_t, 4> codes{};
  Bytes body;  // the token while stored, the signed receipt after REDEEM
  bool operator==(const Slot&) const = default;
};

// Everything the applet keeps except its secrets (private scalars and SCP03 keys), decoded
// from its window: what tests, models and tools compare.
struct CardState {
  Bytes pin_block;  // 12 bytes: ASCII digits padded with FF
  std::uint8_t pin_length = 0;
  std::uint8_t tries_left = 0;
  std::uint8_t max_tries = 0;
  std::uint32_t redemption_counter = 0;
  std::uint32_t auth_counter = 0;
  std::uint32_t attendance_counter = 0;
  std::uint32_t time_mark = 0;
  std::array<std::uint32_t, 3> sequence_counters{};  // KVN 21, 22, 23
  std::string card_number;
  std::uint32_t region = 0;
  crypto::HolderRef holder{};
  Bytes certificate;
  Bytes digest;
  std::array<Slot, layout::kSlotCount> slots{};
  bool operator==(const CardState&) const = default;
};

// Decodes a window of at least layout::kReserved bytes (std::invalid_argument if shorter).
CardState decode_state(ByteView window);
// The same for a mounted memory whose applet area holds the training applet at offset 0.
CardState read_state(const PersistentMemory& memory);

// A PIN of 4-12 ASCII digits: empty when valid, else what is wrong, in words.
std::string pin_problem(std::string_view pin);
// Digits padded to 12 bytes with FF (std::invalid_argument for a bad PIN).
Bytes pin_block(std::string_view pin);

// What personalisation writes (skillcard-personalise; docs/design.md, "Memory map v1").
struct Personalisation {
  std::string card_number;  // 10 ASCII digits
  std::uint32_t region = 0;
  crypto::HolderRef holder{};
  Bytes certificate;                   // COSE_Sign1 by the card CA, ≤ 224 bytes
  crypto::SecretBytes receipt_scalar;  // 32 bytes each
  crypto::SecretBytes auth_scalar;
  // Per role, in KVN order 21 (counter), 22 (site), 23 (kiosk): ENC, MAC, DEK, 16 bytes each.
  std::array<std::array<crypto::SecretBytes, 3>, 3> keys;
  std::string pin;
};

// Writes pages 17-25 of a mounted, formatted 192-page memory in one commit: PIN (3 tries),
// zero counters and time mark, private scalars, key sets, sequence counters 0, identity.
// Throws std::invalid_argument naming the bad field (the memory is then untouched).
void personalise(PersistentMemory& memory, const Personalisation& p);
// Whether the window holds a personalised card (a PIN, 3 max tries, a 10-digit card number).
bool is_personalised(ByteView window);

class TrainingApplet final : public Applet {
 public:
  Bytes aid() const override { return training::aid(); }
  // [0] session marker (zeroed by the OS on deselect, reset and power-off), [1] PIN verified.
  std::size_t transient_size() const override { return 2; }
  Bytes on_select(AppletContext& context) override;
  void on_deselect(AppletContext& context) override;
  void on_power_reset(AppletContext& context) override;
  void on_power_off() noexcept override;
  Bytes process(const iso7816::CommandApdu& command, AppletContext& context) override;

  // ECDSA signatures made since construction (receipts and INTERNAL AUTHENTICATE answers).
  std::uint64_t signatures() const noexcept { return signatures_; }
  // The role of the open session (None without one).
  Role role() const noexcept;

 private:
  Bytes dispatch(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes execute(const iso7816::CommandApdu& command, AppletContext& context, Role role);
  Bytes initialize_update(const iso7816::CommandApdu& command, AppletContext& context);
  void external_authenticate(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes get_data(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes internal_authenticate(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes verify(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes change_reference_data(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes reset_retry_counter(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes store_voucher(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes list_vouchers(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes read_voucher(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes redeem(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes get_receipt(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes purge(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes write_digest(const iso7816::CommandApdu& command, AppletContext& context);
  Bytes read_digest(const iso7816::CommandApdu& command, AppletContext& context);
  void close_session(AppletContext& context) noexcept;
  bool pin_verified(AppletContext& context) const noexcept;
  // The key object of a private scalar, loaded once per power-on (as a card keeps its key
  // objects): no command ever changes a card key after personalisation.
  const crypto::MbedTls::PrivateKey& key(std::size_t scalar_offset, AppletContext& context);
  crypto::EcSignature sign(std::size_t scalar_offset, ByteView message, AppletContext& context);

  crypto::scp03::CardSession<crypto::MbedTls> session_;
  std::uint64_t signatures_ = 0;
  std::optional<crypto::MbedTls::PrivateKey> receipt_key_;
  std::optional<crypto::MbedTls::PrivateKey> auth_key_;
  std::optional<crypto::Kid> receipt_kid_;
};

// Installs a TrainingApplet over pages 17-191 (std::invalid_argument unless 192 pages).
TrainingApplet& install(Card& card);

}  // namespace skillcard::card::training
