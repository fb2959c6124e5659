// The training applet's commands (docs/card-commands.md). Order of checks in every command:
// class and INS, personalisation, secure channel (unwrap), role and PIN (6982), then P1/P2
// (6A86), lengths (6700) and data. State changes follow design.md's commit steps exactly.
#include "skillcard/card/training_applet.hpp"

#include <algorithm>
#include <stdexcept>

#include "skillcard/schemas/errors.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::card::training {

using crypto::MbedTls;
using crypto::scp03::SecureChannelError;
using iso7816::CommandApdu;
using iso7816::StatusWord;
using iso7816::StatusWordError;
namespace L = layout;

namespace {

constexpr std::uint8_t kSessionMarker = 0;  // transient bytes
constexpr std::uint8_t kPinVerified = 1;
constexpr std::uint8_t kPinReference = 0x81;

std::uint32_t get32(ByteView b, std::size_t off) {
  return (std::uint32_t{b[off]} << 24) | (std::uint32_t{b[off + 1]} << 16) | (std::uint32_t{b[off + 2]} << 8) |
         b[off + 3];
}
std::uint32_t get24(ByteView b, std::size_t off) {
  return (std::uint32_t{b[off]} << 16) | (std::uint32_t{b[off + 1]} << 8) | b[off + 2];
}
std::uint16_t get16(ByteView b, std::size_t off) { return static_cast<std::uint16_t>((b[off] << 8) | b[off + 1]); }

Bytes be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
          static_cast<std::uint8_t>(v)};
}
Bytes be24(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}
Bytes be16(std::size_t v) { return {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}; }

void put(Bytes& b, std::size_t off, ByteView v) {
  std::copy(v.begin(), v.end(), b.begin() + static_cast<std::ptrdiff_t>(off));
}

[[noreturn]] void refuse(StatusWord sw, const std::string& detail) { throw StatusWordError(sw, detail); }

void require_p1p2(const CommandApdu& c, std::uint8_t p1, std::uint8_t p2) {
  if (c.p1() != p1 || c.p2() != p2) refuse(StatusWord::IncorrectP1P2, "P1 P2");
}
void require_length(const CommandApdu& c, std::size_t min, std::size_t max) {
  if (c.data().size() < min || c.data().size() > max) refuse(StatusWord::WrongLength, "data length");
}

// Which commands each role may send (docs/design.md, "INS map").
enum class Access { Yes, No, AfterVerify };

Access access(std::uint8_t instruction, Role role) {
  using enum Access;
  switch (instruction) {
    case ins::kGetData:
      return Yes;
    case ins::kInternalAuthenticate:
      return role == Role::Site ? No : role == Role::Kiosk ? AfterVerify : Yes;
    case ins::kVerify:
      return role == Role::None ? No : Yes;
    case ins::kChangeReferenceData:
    case ins::kResetRetryCounter:
    case ins::kStoreVoucher:
    case ins::kPurge:
    case ins::kWriteDigest:
      return role == Role::Counter ? Yes : No;
    case ins::kListVouchers:
      return role == Role::None ? No : role == Role::Counter ? Yes : AfterVerify;
    case ins::kReadVoucher:
    case ins::kReadDigest:
      return role == Role::Counter ? Yes : role == Role::Kiosk ? AfterVerify : No;
    case ins::kRedeem:
      return role == Role::Site ? AfterVerify : No;
    case ins::kGetReceipt:
      return role == Role::Counter ? Yes : role == Role::Site ? AfterVerify : No;
    default:
      return No;
  }
}

// Whether the INS is one of ours, and whether it is an interindustry (ISO, CLA 00/04) one.
std::optional<bool> known_instruction(std::uint8_t i) {
  switch (i) {
    case ins::kGetData:
    case ins::kInternalAuthenticate:
    case ins::kVerify:
    case ins::kChangeReferenceData:
    case ins::kResetRetryCounter:
      return true;
    case ins::kInitializeUpdate:
    case ins::kExternalAuthenticate:
    case ins::kStoreVoucher:
    case ins::kListVouchers:
    case ins::kReadVoucher:
    case ins::kRedeem:
    case ins::kGetReceipt:
    case ins::kPurge:
    case ins::kWriteDigest:
    case ins::kReadDigest:
      return false;
    default:
      return std::nullopt;  // 44-4E (reserved) included
  }
}

// Step 1 of VERIFY and CHANGE REFERENCE DATA: one try spent, committed.
void spend_try(AppletStorage& storage, std::uint8_t tries) {
  auto tx = storage.begin();
  tx.write(L::kTriesLeft, Bytes{static_cast<std::uint8_t>(tries - 1)});
  tx.commit();
}

std::size_t slot_offset(std::size_t index) { return L::kSlots + index * L::kSlotSize; }

std::size_t key_set_offset(std::uint8_t kvn) { return L::kKeySets + (kvn - kKvnCounter) * L::kKeySetSize; }
std::size_t sequence_offset(std::uint8_t kvn) { return L::kSequenceCounters + (kvn - kKvnCounter) * 3u; }

// Length of a well-formed PIN block (4-12 digits, then FF), or nullopt.
std::optional<std::size_t> pin_block_length(ByteView block) {
  if (block.size() != kPinBlockSize) return std::nullopt;
  std::size_t n = 0;
  while (n < block.size() && block[n] >= '0' && block[n] <= '9') ++n;
  for (std::size_t i = n; i < block.size(); ++i) {
    if (block[i] != 0xFF) return std::nullopt;
  }
  if (n < kMinPinLength) return std::nullopt;
  return n;
}

Slot decode_slot(ByteView s) {
  Slot slot;
  slot.state = static_cast<SlotState>(s[L::kSlotState]);
  std::copy_n(s.begin() + L::kSlotId, 8, slot.id.begin());
  slot.expiry = get32(s, L::kSlotExpiry);
  slot.counter = get32(s, L::kSlotCounter);
  slot.eligible_count = s[L::kSlotEligibleCount];
  slot.kinds = s[L::kSlotKinds];
  for (std::size_t i = 0; i < 4; ++i) slot.codes[i] = get32(s, L::kSlotCodes + 4 * i);
  const std::size_t n = std::min<std::size_t>(get16(s, L::kSlotBodyLength), L::kMaxSlotBody);
  slot.body.assign(s.begin() + L::kSlotBody, s.begin() + static_cast<std::ptrdiff_t>(L::kSlotBody + n));
  return slot;
}

// The index of the slot holding this voucher (any state but empty).
std::optional<std::size_t> find_voucher(const AppletStorage& storage, ByteView id) {
  for (std::size_t i = 0; i < L::kSlotCount; ++i) {
    const ByteView s = storage.read(slot_offset(i), L::kSlotSummary);
    if (s[L::kSlotState] != static_cast<std::uint8_t>(SlotState::Empty) &&
        std::equal(id.begin(), id.end(), s.begin() + L::kSlotId)) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace

const Bytes& aid() {
  static const Bytes a{0xF0, 0x73, 0x6B, 0x69, 0x6C, 0x6C, 0x63, 0x61, 0x72, 0x64, 0x01};
  return a;
}

std::string_view to_string(Role role) noexcept {
  switch (role) {
    case Role::None:
      return "none";
    case Role::Counter:
      return "counter";
    case Role::Site:
      return "site";
    case Role::Kiosk:
      return "kiosk";
  }
  return "unknown";
}

std::optional<Role> role_of_kvn(std::uint8_t kvn) noexcept {
  switch (kvn) {
    case kKvnCounter:
      return Role::Counter;
    case kKvnSite:
      return Role::Site;
    case kKvnKiosk:
      return Role::Kiosk;
    default:
      return std::nullopt;
  }
}

CardState decode_state(ByteView w) {
  if (w.size() < L::kReserved) throw std::invalid_argument("training applet window too small");
  CardState s;
  s.pin_block.assign(w.begin() + L::kPinDigits, w.begin() + L::kPinDigits + kPinBlockSize);
  s.pin_length = w[L::kPinLength];
  s.tries_left = w[L::kTriesLeft];
  s.max_tries = w[L::kMaxTries];
  s.redemption_counter = get32(w, L::kRedemptionCounter);
  s.auth_counter = get32(w, L::kAuthCounter);
  s.attendance_counter = get32(w, L::kAttendanceCounter);
  s.time_mark = get32(w, L::kTimeMark);
  for (std::size_t i = 0; i < 3; ++i) s.sequence_counters[i] = get24(w, L::kSequenceCounters + 3 * i);
  s.card_number.assign(w.begin() + L::kCardNumber, w.begin() + L::kCardNumber + 10);
  s.region = get32(w, L::kRegion);
  std::copy_n(w.begin() + L::kHolderRef, 16, s.holder.begin());
  const std::size_t cert = std::min<std::size_t>(get16(w, L::kCertificateLength), L::kMaxCertificate);
  s.certificate.assign(w.begin() + L::kCertificate, w.begin() + static_cast<std::ptrdiff_t>(L::kCertificate + cert));
  const std::size_t digest = std::min<std::size_t>(get16(w, L::kDigestLength), L::kMaxDigest);
  s.digest.assign(w.begin() + L::kDigestBody, w.begin() + static_cast<std::ptrdiff_t>(L::kDigestBody + digest));
  for (std::size_t i = 0; i < L::kSlotCount; ++i) s.slots[i] = decode_slot(w.subspan(slot_offset(i), L::kSlotSize));
  return s;
}

CardState read_state(const PersistentMemory& memory) {
  return decode_state(memory.read(0, std::min(memory.size(), kWindowSize)));
}

std::string pin_problem(std::string_view pin) {
  if (pin.size() < kMinPinLength || pin.size() > kMaxPinLength) {
    return "a PIN has 4 to 12 digits, this one has " + std::to_string(pin.size()) + " characters";
  }
  if (!std::all_of(pin.begin(), pin.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "a PIN has digits 0-9 only";
  }
  return {};
}

Bytes pin_block(std::string_view pin) {
  if (const auto problem = pin_problem(pin); !problem.empty()) throw std::invalid_argument(problem);
  Bytes block(kPinBlockSize, 0xFF);
  std::copy(pin.begin(), pin.end(), block.begin());
  return block;
}

bool is_personalised(ByteView w) {
  if (w.size() < L::kReserved) return false;
  const std::uint8_t n = w[L::kPinLength];
  if (n < kMinPinLength || n > kMaxPinLength || w[L::kMaxTries] != kMaxPinTries) return false;
  return std::all_of(w.begin() + L::kCardNumber, w.begin() + L::kCardNumber + 10,
                     [](std::uint8_t c) { return c >= '0' && c <= '9'; });
}

void personalise(PersistentMemory& memory, const Personalisation& p) {
  if (memory.size() != kWindowSize) {
    throw std::invalid_argument("personalise: the training applet needs a 192-page image");
  }
  if (p.card_number.size() != 10 ||
      !std::all_of(p.card_number.begin(), p.card_number.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw std::invalid_argument("personalise: card number must be 10 digits");
  }
  if (p.region < 100000 || p.region > 999999) throw std::invalid_argument("personalise: region must have 6 digits");
  if (p.certificate.empty() || p.certificate.size() > L::kMaxCertificate) {
    throw std::invalid_argument("personalise: card certificate must have 1..224 bytes");
  }
  if (p.receipt_scalar.size() != 32 || p.auth_scalar.size() != 32) {
    throw std::invalid_argument("personalise: private scalars must be 32 bytes");
  }
  for (const auto& set : p.keys) {
    for (const auto& k : set) {
      if (k.size() != 16) throw std::invalid_argument("personalise: SCP03 keys must be 16 bytes");
    }
  }
  Bytes block = pin_block(p.pin);  // throws for a bad PIN
  const crypto::ScopedWipe wipe_block(block);
  // Pages 17-25 in one buffer: the PIN page, keys, identity.
  crypto::SecretBytes area(L::kDigest);
  Bytes plain(L::kDigest, 0);
  const crypto::ScopedWipe wipe_plain(plain);
  put(plain, L::kPinDigits, block);
  plain[L::kPinLength] = static_cast<std::uint8_t>(p.pin.size());
  plain[L::kTriesLeft] = kMaxPinTries;
  plain[L::kMaxTries] = kMaxPinTries;
  put(plain, L::kCardNumber, as_bytes(p.card_number));
  put(plain, L::kRegion, be32(p.region));
  put(plain, L::kHolderRef, p.holder);
  put(plain, L::kCertificateLength, be16(p.certificate.size()));
  put(plain, L::kCertificate, p.certificate);
  std::copy(plain.begin(), plain.end(), area.data());
  std::copy(p.receipt_scalar.view().begin(), p.receipt_scalar.view().end(), area.data() + L::kReceiptScalar);
  std::copy(p.auth_scalar.view().begin(), p.auth_scalar.view().end(), area.data() + L::kAuthScalar);
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t t = 0; t < 3; ++t) {
      std::copy(p.keys[r][t].view().begin(), p.keys[r][t].view().end(),
                area.data() + L::kKeySets + r * L::kKeySetSize + t * 16);
    }
  }
  auto tx = memory.begin();
  tx.write(0, area.view());
  tx.commit();
}

TrainingApplet& install(Card& card) {
  if (card.memory().eeprom().page_count() != kImagePages) {
    throw std::invalid_argument("the training applet needs a 192-page image");
  }
  auto applet = std::make_unique<TrainingApplet>();
  TrainingApplet& ref = *applet;
  card.install(std::move(applet), 0, kWindowSize);
  return ref;
}

// --- the applet ---------------------------------------------------------------------------

Role TrainingApplet::role() const noexcept {
  if (!session_.is_open()) return Role::None;
  return role_of_kvn(session_.kvn()).value_or(Role::None);
}

Bytes TrainingApplet::on_select(AppletContext& context) {
  close_session(context);
  return {};
}

void TrainingApplet::on_deselect(AppletContext& context) { close_session(context); }

void TrainingApplet::on_power_reset(AppletContext& context) {
  close_session(context);
  receipt_key_.reset();
  auth_key_.reset();
  receipt_kid_.reset();
}

void TrainingApplet::on_power_off() noexcept {
  session_.close();
  receipt_key_.reset();
  auth_key_.reset();
  receipt_kid_.reset();
}

void TrainingApplet::close_session(AppletContext& context) noexcept {
  session_.close();
  auto ram = context.transient();
  std::fill(ram.begin(), ram.end(), std::uint8_t{0});
}

bool TrainingApplet::pin_verified(AppletContext& context) const noexcept {
  return session_.is_open() && context.transient()[kPinVerified] == 1;
}

Bytes TrainingApplet::process(const CommandApdu& command, AppletContext& context) {
  // The OS zeroes transient RAM on deselect, reset and power-off: a zero marker means whatever
  // session this object still holds is gone.
  if (context.transient()[kSessionMarker] == 0) session_.close();
  return dispatch(command, context);
}

Bytes TrainingApplet::dispatch(const CommandApdu& command, AppletContext& context) {
  const std::uint8_t cla = command.cla();
  const std::uint8_t instruction = command.ins();
  // GlobalPlatform: EXTERNAL AUTHENTICATE must follow INITIALIZE UPDATE directly; any other
  // command in between, even a refused one, abandons the handshake.
  if (instruction != ins::kExternalAuthenticate && session_.state() == decltype(session_)::State::Initialized) {
    close_session(context);
  }
  // A command refused before it is unwrapped has moved the host's MAC chain and counter but not
  // ours, and a refused EXTERNAL AUTHENTICATE ends the handshake: either way the session (or the
  // handshake) cannot go on, so it ends here, as on a MAC failure, and the host knows to open a
  // new one.
  const auto end_session = [&] {
    if (session_.state() != decltype(session_)::State::Closed) close_session(context);
  };
  if ((cla & 0x08) != 0) {
    end_session();
    refuse(StatusWord::SecureMessagingNotSupported, "only SCP03 (CLA b3) is supported");
  }
  const auto iso = known_instruction(instruction);
  if (!iso) {
    end_session();
    refuse(StatusWord::InsNotSupported, "unknown instruction");
  }
  if (((cla & 0x80) == 0) != *iso) {
    end_session();
    refuse(StatusWord::ClaNotSupported, "wrong class for this instruction");
  }
  if (!is_personalised(context.storage().read(0, L::kReserved))) {
    refuse(StatusWord::ConditionsNotSatisfied, "card not personalised");
  }
  const bool wrapped = (cla & crypto::scp03::kSecureMessagingBit) != 0;

  if (instruction == ins::kInitializeUpdate) {
    if (wrapped) {
      end_session();  // INITIALIZE UPDATE ends any session, refused or not
      refuse(StatusWord::ClaNotSupported, "INITIALIZE UPDATE is never wrapped");
    }
    return initialize_update(command, context);
  }
  if (instruction == ins::kExternalAuthenticate) {
    external_authenticate(command, context);
    return {};
  }
  if (!session_.is_open()) {
    if (wrapped) refuse(StatusWord::SecurityStatusNotSatisfied, "wrapped command without a secure channel");
    return execute(command, context, Role::None);
  }
  // Inside an open session every command is wrapped; anything else closes it.
  if (!wrapped) {
    close_session(context);
    refuse(StatusWord::SecurityStatusNotSatisfied, "unwrapped command inside a secure channel");
  }
  CommandApdu plain = command;
  // The plain data may be a PIN block (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER):
  // wiped once the command has run, whatever its outcome. The command is ours, not const.
  struct WipeOnExit {
    CommandApdu& command;
    ~WipeOnExit() {
      const ByteView data = command.data();
      crypto::secure_wipe(const_cast<std::uint8_t*>(data.data()), data.size());
    }
  } wipe_plain{plain};
  try {
    plain = session_.unwrap(command);
  } catch (const SecureChannelError& e) {
    close_session(context);
    refuse(crypto::scp03::card_status_word(e.reason(), false), e.what());
  }
  const Role current = role();
  try {
    return session_.wrap_response(execute(plain, context, current), StatusWord::Success);
  } catch (const StatusWordError& e) {
    // Warnings (63Cx) carry an R-MAC; errors travel alone (crypto/scp03_session.hpp).
    if (session_.is_open() && crypto::scp03::is_protected_status(e.sw())) {
      throw WarningResponse(e.sw(), session_.wrap_response({}, e.sw()));
    }
    throw;
  }
}

Bytes TrainingApplet::execute(const CommandApdu& command, AppletContext& context, Role current) {
  const std::uint8_t instruction = command.ins();
  switch (access(instruction, current)) {
    case Access::No:
      refuse(StatusWord::SecurityStatusNotSatisfied, "not allowed for this role");
    case Access::AfterVerify:
      if (!pin_verified(context)) refuse(StatusWord::SecurityStatusNotSatisfied, "PIN not verified");
      break;
    case Access::Yes:
      break;
  }
  switch (instruction) {
    case ins::kGetData:
      return get_data(command, context);
    case ins::kInternalAuthenticate:
      return internal_authenticate(command, context);
    case ins::kVerify:
      return verify(command, context);
    case ins::kChangeReferenceData:
      return change_reference_data(command, context);
    case ins::kResetRetryCounter:
      return reset_retry_counter(command, context);
    case ins::kStoreVoucher:
      return store_voucher(command, context);
    case ins::kListVouchers:
      return list_vouchers(command, context);
    case ins::kReadVoucher:
      return read_voucher(command, context);
    case ins::kRedeem:
      return redeem(command, context);
    case ins::kGetReceipt:
      return get_receipt(command, context);
    case ins::kPurge:
      return purge(command, context);
    case ins::kWriteDigest:
      return write_digest(command, context);
    case ins::kReadDigest:
      return read_digest(command, context);
    default:
      refuse(StatusWord::InsNotSupported, "unknown instruction");
  }
}

// --- secure channel -----------------------------------------------------------------------

Bytes TrainingApplet::initialize_update(const CommandApdu& command, AppletContext& context) {
  // A new INITIALIZE UPDATE ends any session and the PIN state with it.
  close_session(context);
  const std::uint8_t kvn = command.p1();
  if (command.p2() != 0x00) refuse(StatusWord::IncorrectP1P2, "INITIALIZE UPDATE P2");
  require_length(command, 8, 8);
  if (!role_of_kvn(kvn)) refuse(StatusWord::ReferencedDataNotFound, "no key set with this version");
  auto& storage = context.storage();
  const std::uint32_t sequence = get24(storage.read(sequence_offset(kvn), 3), 0);
  if (sequence >= crypto::scp03::kMaxSequenceCounter) {
    refuse(StatusWord::ConditionsNotSatisfied, "sequence counter exhausted");
  }
  // Step 1 (and only step): the counter moves before the challenge exists, so no cut can make
  // the card repeat a challenge.
  auto tx = storage.begin();
  tx.write(sequence_offset(kvn), be24(sequence + 1));
  tx.commit();
  const ByteView keys = storage.read(key_set_offset(kvn), 32);
  const auto response = session_.initialize_update(keys.first(16), keys.subspan(16, 16), kvn, sequence + 1,
                                                   crypto::scp03::CardSession<MbedTls>::host_challenge_of(command),
                                                   training::aid(), storage.read(L::kCardNumber, 10));
  context.transient()[kSessionMarker] = 1;
  return response;
}

void TrainingApplet::external_authenticate(const CommandApdu& command, AppletContext& context) {
  if (session_.state() == crypto::scp03::CardSession<MbedTls>::State::Initialized &&
      command.p1() != crypto::scp03::level::kFull) {
    close_session(context);
    refuse(StatusWord::IncorrectP1P2, "this card accepts security level 33 only");
  }
  try {
    session_.external_authenticate(command);
  } catch (const SecureChannelError& e) {
    close_session(context);
    refuse(crypto::scp03::card_status_word(e.reason(), true), e.what());
  }
  context.transient()[kPinVerified] = 0;
}

// --- identity and authenticity ------------------------------------------------------------

Bytes TrainingApplet::get_data(const CommandApdu& command, AppletContext& context) {
  if (command.p1() != 0x01 || command.p2() < data_object::kCardNumber || command.p2() > data_object::kCounters) {
    refuse(StatusWord::IncorrectP1P2, "GET DATA object");
  }
  require_length(command, 0, 0);
  const auto& storage = context.storage();
  switch (command.p2()) {
    case data_object::kCardNumber: {
      const ByteView v = storage.read(L::kCardNumber, 10);
      return Bytes(v.begin(), v.end());
    }
    case data_object::kRegion: {
      const ByteView v = storage.read(L::kRegion, 4);
      return Bytes(v.begin(), v.end());
    }
    case data_object::kCertificate: {
      const std::size_t n = std::min<std::size_t>(get16(storage.read(L::kCertificateLength, 2), 0), L::kMaxCertificate);
      const ByteView v = storage.read(L::kCertificate, n);
      return Bytes(v.begin(), v.end());
    }
    default: {
      // Redemption, internal-authenticate and attendance counters, time mark, 3 sequence counters.
      const ByteView counters = storage.read(L::kRedemptionCounter, 16);
      Bytes out(counters.begin(), counters.end());
      const ByteView sequences = storage.read(L::kSequenceCounters, 9);
      out.insert(out.end(), sequences.begin(), sequences.end());
      return out;
    }
  }
}

const MbedTls::PrivateKey& TrainingApplet::key(std::size_t scalar_offset, AppletContext& context) {
  auto& slot = scalar_offset == L::kReceiptScalar ? receipt_key_ : auth_key_;
  if (!slot) slot.emplace(MbedTls::PrivateKey::from_scalar(context.storage().read(scalar_offset, 32)));
  return *slot;
}

crypto::EcSignature TrainingApplet::sign(std::size_t scalar_offset, ByteView message, AppletContext& context) {
  const auto& k = key(scalar_offset, context);
  ++signatures_;
  return k.sign(message);
}

Bytes TrainingApplet::internal_authenticate(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, 0x00);
  require_length(command, 16, 32);
  auto& storage = context.storage();
  const std::uint32_t counter = get32(storage.read(L::kAuthCounter, 4), 0);
  if (counter == UINT32_MAX) refuse(StatusWord::ConditionsNotSatisfied, "internal-authenticate counter exhausted");
  // Step 1: the counter moves before anything is signed with it.
  const Bytes next = be32(counter + 1);
  auto tx = storage.begin();
  tx.write(L::kAuthCounter, next);
  tx.commit();
  const std::uint8_t pin_state = pin_verified(context) ? 0x01 : 0x00;
  // M = "skillcard/card-auth/v1" 00 card-number counter pin-state challenge
  // (docs/design.md, "Card keys and domain separation").
  Bytes message(as_bytes("skillcard/card-auth/v1").begin(), as_bytes("skillcard/card-auth/v1").end());
  message.push_back(0x00);
  const ByteView number = storage.read(L::kCardNumber, 10);
  message.insert(message.end(), number.begin(), number.end());
  message.insert(message.end(), next.begin(), next.end());
  message.push_back(pin_state);
  message.insert(message.end(), command.data().begin(), command.data().end());
  const auto signature = sign(L::kAuthScalar, message, context);
  Bytes out = next;
  out.push_back(pin_state);
  out.insert(out.end(), signature.begin(), signature.end());
  return out;
}

// --- PIN ----------------------------------------------------------------------------------

Bytes TrainingApplet::verify(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, kPinReference);
  auto& storage = context.storage();
  const std::uint8_t tries = storage.read(L::kTriesLeft, 1)[0];
  if (command.data().empty()) {
    if (tries == 0) refuse(StatusWord::AuthenticationMethodBlocked, "PIN blocked");
    if (pin_verified(context)) return {};
    throw StatusWordError(iso7816::make_verification_failed(tries), "PIN not verified yet");
  }
  require_length(command, kPinBlockSize, kPinBlockSize);
  if (tries == 0) refuse(StatusWord::AuthenticationMethodBlocked, "PIN blocked");
  // Step 1: the try is spent and committed before the comparison.
  spend_try(storage, tries);
  const bool match = MbedTls::equal_ct(storage.read(L::kPinDigits, kPinBlockSize), command.data());
  if (!match) {
    context.transient()[kPinVerified] = 0;
    throw StatusWordError(iso7816::make_verification_failed(tries - 1), "wrong PIN");
  }
  // Step 2: tries back to the maximum.
  auto tx = storage.begin();
  tx.write(L::kTriesLeft, Bytes{kMaxPinTries});
  tx.commit();
  context.transient()[kPinVerified] = 1;
  return {};
}

Bytes TrainingApplet::change_reference_data(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, kPinReference);
  require_length(command, 2 * kPinBlockSize, 2 * kPinBlockSize);
  auto& storage = context.storage();
  const std::uint8_t tries = storage.read(L::kTriesLeft, 1)[0];
  if (tries == 0) refuse(StatusWord::AuthenticationMethodBlocked, "PIN blocked");
  const ByteView data = command.data();
  const auto new_length = pin_block_length(data.subspan(kPinBlockSize));
  if (!new_length) refuse(StatusWord::WrongData, "new PIN must have 4 to 12 digits");
  spend_try(storage, tries);  // step 1, before the comparison
  if (!MbedTls::equal_ct(storage.read(L::kPinDigits, kPinBlockSize), data.first(kPinBlockSize))) {
    context.transient()[kPinVerified] = 0;
    throw StatusWordError(iso7816::make_verification_failed(tries - 1), "wrong PIN");
  }
  auto tx = storage.begin();
  tx.write(L::kPinDigits, data.subspan(kPinBlockSize));
  tx.write(L::kPinLength, Bytes{static_cast<std::uint8_t>(*new_length), kMaxPinTries});
  tx.commit();
  return {};
}

Bytes TrainingApplet::reset_retry_counter(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x02, kPinReference);
  require_length(command, kPinBlockSize, kPinBlockSize);
  const auto length = pin_block_length(command.data());
  if (!length) refuse(StatusWord::WrongData, "new PIN must have 4 to 12 digits");
  auto tx = context.storage().begin();
  tx.write(L::kPinDigits, command.data());
  tx.write(L::kPinLength, Bytes{static_cast<std::uint8_t>(*length), kMaxPinTries});
  tx.commit();
  return {};
}

// --- vouchers -----------------------------------------------------------------------------

Bytes TrainingApplet::store_voucher(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, 0x00);
  require_length(command, 1, schemas::kMaxVoucherToken);
  auto& storage = context.storage();
  schemas::VoucherClaims claims;
  try {
    claims = schemas::decode_voucher_token(command.data()).claims;
  } catch (const schemas::DecodeError& e) {
    refuse(StatusWord::WrongData, e.what());
  }
  if (!std::equal(claims.holder.begin(), claims.holder.end(), storage.read(L::kHolderRef, 16).begin())) {
    refuse(StatusWord::WrongData, "voucher for another holder");
  }
  if (claims.issued_at > UINT32_MAX || claims.expires_at > UINT32_MAX) refuse(StatusWord::WrongData, "time");
  if (find_voucher(storage, claims.id)) refuse(iso7816::make_sw(0x6A, 0x89), "voucher already on the card");
  // A free slot: an empty one, else a purged one whose voucher has expired by the card's time
  // mark. A purged voucher that may still be valid keeps its slot, and so its id: the same
  // token stored again is refused (6A89) instead of being redeemed a second time (a REDEEM
  // after the voucher's expiry is refused anyway).
  const std::uint32_t mark = get32(storage.read(L::kTimeMark, 4), 0);
  std::optional<std::size_t> free_slot;
  for (std::size_t i = 0; i < L::kSlotCount && !free_slot; ++i) {
    if (storage.read(slot_offset(i), 1)[0] == static_cast<std::uint8_t>(SlotState::Empty)) free_slot = i;
  }
  for (std::size_t i = 0; i < L::kSlotCount && !free_slot; ++i) {
    const ByteView s = storage.read(slot_offset(i), L::kSlotSummary);
    // Expired by the mark even for a REDEEM dated kTimeTolerance before it (which the card still
    // accepts), so the slot's id can no longer be redeemed once it is gone.
    if (s[L::kSlotState] == static_cast<std::uint8_t>(SlotState::PurgedPending) &&
        std::uint64_t{get32(s, L::kSlotExpiry)} + kTimeTolerance <= mark) {
      free_slot = i;
    }
  }
  if (!free_slot) refuse(StatusWord::NotEnoughMemory, "no free voucher slot");

  Bytes slot(L::kSlotSize, 0);
  slot[L::kSlotState] = static_cast<std::uint8_t>(SlotState::Stored);
  put(slot, L::kSlotId, claims.id);
  put(slot, L::kSlotExpiry, be32(static_cast<std::uint32_t>(claims.expires_at)));
  std::size_t n = 0;
  std::uint8_t kinds = 0;
  for (auto r : claims.eligible_regions) put(slot, L::kSlotCodes + 4 * n++, be32(r));
  for (auto p : claims.eligible_providers) {
    kinds = static_cast<std::uint8_t>(kinds | (1u << n));
    put(slot, L::kSlotCodes + 4 * n++, be32(p));
  }
  slot[L::kSlotEligibleCount] = static_cast<std::uint8_t>(n);
  slot[L::kSlotKinds] = kinds;
  put(slot, L::kSlotBodyLength, be16(command.data().size()));
  put(slot, L::kSlotBody, command.data());

  // One commit: the slot, and the time mark raised to iat.
  auto tx = storage.begin();
  tx.write(slot_offset(*free_slot), slot);
  if (claims.issued_at > mark) tx.write(L::kTimeMark, be32(static_cast<std::uint32_t>(claims.issued_at)));
  tx.commit();
  return {};
}

Bytes TrainingApplet::list_vouchers(const CommandApdu& command, AppletContext& context) {
  if ((command.p1() != kListAll && command.p1() != kListStored) || command.p2() != 0x00) {
    refuse(StatusWord::IncorrectP1P2, "LIST P1 P2");
  }
  require_length(command, 0, 0);
  const auto& storage = context.storage();
  const ByteView holder = storage.read(L::kHolderRef, 16);
  Bytes out(holder.begin(), holder.end());
  const ByteView counter = storage.read(L::kRedemptionCounter, 4);
  out.insert(out.end(), counter.begin(), counter.end());
  const ByteView mark = storage.read(L::kTimeMark, 4);
  out.insert(out.end(), mark.begin(), mark.end());
  for (std::size_t i = 0; i < L::kSlotCount; ++i) {
    const ByteView s = storage.read(slot_offset(i), L::kSlotSummary);
    const auto state = static_cast<SlotState>(s[L::kSlotState]);
    if (state == SlotState::Empty) continue;
    if (command.p1() == kListStored && state != SlotState::Stored) continue;
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

Bytes TrainingApplet::read_voucher(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, 0x00);
  require_length(command, 8, 8);
  const auto index = find_voucher(context.storage(), command.data());
  if (!index) refuse(StatusWord::ReferencedDataNotFound, "voucher not on the card");
  return decode_slot(context.storage().read(slot_offset(*index), L::kSlotSize)).body;
}

Bytes TrainingApplet::redeem(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, 0x00);
  require_length(command, 37, 37);
  auto& storage = context.storage();
  const ByteView d = command.data();
  schemas::ReceiptClaims claims;
  std::copy_n(d.begin(), 8, claims.voucher.begin());
  claims.site = get32(d, 8);
  std::copy_n(d.begin() + 12, 17, claims.nonce.begin());
  const std::uint32_t terminal_time = get32(d, 29);
  claims.terminal_time = terminal_time;
  claims.classroom_hours = get16(d, 33);
  claims.online_hours = get16(d, 35);

  const auto index = find_voucher(storage, claims.voucher);
  if (!index) refuse(StatusWord::ReferencedDataNotFound, "voucher not on the card");
  if (storage.read(slot_offset(*index), 1)[0] != static_cast<std::uint8_t>(SlotState::Stored)) {
    refuse(StatusWord::ConditionsNotSatisfied, "voucher already redeemed");
  }
  if (claims.site == 0) refuse(StatusWord::WrongData, "site id 0");
  if (claims.nonce[0] != static_cast<std::uint8_t>(schemas::NonceKind::Server) &&
      claims.nonce[0] != static_cast<std::uint8_t>(schemas::NonceKind::Terminal)) {
    refuse(StatusWord::WrongData, "nonce type");
  }
  const std::uint32_t mark = get32(storage.read(L::kTimeMark, 4), 0);
  if (mark > kTimeTolerance && terminal_time < mark - kTimeTolerance) {
    refuse(StatusWord::WrongData, "terminal time before the card's time mark");
  }
  // No redemption after the voucher's expiry by the terminal's own clock. This also bounds the
  // time mark a REDEEM can raise: a terminal with a clock far ahead (or lying) cannot push the
  // mark beyond every voucher's life and so refuse the card at every honest site for good.
  if (terminal_time >= get32(storage.read(slot_offset(*index) + L::kSlotExpiry, 4), 0)) {
    refuse(StatusWord::WrongData, "terminal time at or after the voucher's expiry");
  }
  const std::uint32_t counter = get32(storage.read(L::kRedemptionCounter, 4), 0);
  if (counter == UINT32_MAX) refuse(StatusWord::ConditionsNotSatisfied, "redemption counter exhausted");
  claims.counter = counter + 1;

  if (!receipt_kid_) receipt_kid_ = crypto::kid_of<MbedTls>(key(L::kReceiptScalar, context).public_key());
  const Bytes receipt = schemas::sign_receipt(
      claims, *receipt_kid_, [&](ByteView to_be_signed) { return sign(L::kReceiptScalar, to_be_signed, context); });
  if (receipt.size() > L::kMaxSlotBody) throw std::length_error("receipt larger than a slot body");

  // One commit: counter + 1, slot → redeemed with the receipt, time mark raised. The answer
  // leaves the card only after it.
  const ByteView current = storage.read(slot_offset(*index), L::kSlotSize);
  Bytes slot(current.begin(), current.end());
  slot[L::kSlotState] = static_cast<std::uint8_t>(SlotState::Redeemed);
  put(slot, L::kSlotCounter, be32(claims.counter));
  std::fill(slot.begin() + L::kSlotBodyLength, slot.end(), std::uint8_t{0});
  put(slot, L::kSlotBodyLength, be16(receipt.size()));
  put(slot, L::kSlotBody, receipt);
  auto tx = storage.begin();
  tx.write(L::kRedemptionCounter, be32(claims.counter));
  if (terminal_time > mark) tx.write(L::kTimeMark, be32(terminal_time));
  tx.write(slot_offset(*index), slot);
  tx.commit();
  return receipt;
}

Bytes TrainingApplet::get_receipt(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, 0x00);
  require_length(command, 4, 4);
  const std::uint32_t wanted = get32(command.data(), 0);
  const auto& storage = context.storage();
  if (wanted != 0) {
    for (std::size_t i = 0; i < L::kSlotCount; ++i) {
      const ByteView s = storage.read(slot_offset(i), L::kSlotSummary);
      const auto state = static_cast<SlotState>(s[L::kSlotState]);
      if ((state == SlotState::Redeemed || state == SlotState::PurgedPending) && get32(s, L::kSlotCounter) == wanted) {
        return decode_slot(storage.read(slot_offset(i), L::kSlotSize)).body;
      }
    }
  }
  refuse(StatusWord::ReferencedDataNotFound, "no receipt with this counter");
}

Bytes TrainingApplet::purge(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, 0x00);
  require_length(command, 8, 8);
  auto& storage = context.storage();
  const auto index = find_voucher(storage, command.data());
  if (!index) refuse(StatusWord::ReferencedDataNotFound, "voucher not on the card");
  const auto state = static_cast<SlotState>(storage.read(slot_offset(*index), 1)[0]);
  if (state == SlotState::Stored) refuse(StatusWord::CommandNotAllowedNoEf, "voucher not redeemed");
  if (state == SlotState::PurgedPending) return {};  // already purged: nothing to do
  auto tx = storage.begin();
  tx.write(slot_offset(*index) + L::kSlotState, Bytes{static_cast<std::uint8_t>(SlotState::PurgedPending)});
  tx.commit();
  return {};
}

// --- portfolio digest ---------------------------------------------------------------------

Bytes TrainingApplet::write_digest(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, 0x00);
  require_length(command, 1, L::kMaxDigest);
  Bytes area(2 + L::kMaxDigest, 0);
  put(area, 0, be16(command.data().size()));
  put(area, 2, command.data());
  auto tx = context.storage().begin();
  tx.write(L::kDigestLength, area);
  tx.commit();
  return {};
}

Bytes TrainingApplet::read_digest(const CommandApdu& command, AppletContext& context) {
  require_p1p2(command, 0x00, 0x00);
  require_length(command, 0, 0);
  const auto& storage = context.storage();
  const std::size_t n = std::min<std::size_t>(get16(storage.read(L::kDigestLength, 2), 0), L::kMaxDigest);
  if (n == 0) refuse(StatusWord::ReferencedDataNotFound, "no portfolio digest on the card");
  const ByteView v = storage.read(L::kDigestBody, n);
  return Bytes(v.begin(), v.end());
}

}  // namespace skillcard::card::training
