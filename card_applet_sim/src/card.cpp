// The card runtime: power, ATR, applet registry and the APDU dispatcher.
#include "skillcard/card/card.hpp"

#include <algorithm>
#include <utility>

#include "skillcard/iso7816/response_apdu.hpp"
#include "skillcard/iso7816/tlv.hpp"

namespace skillcard::card {

using iso7816::ApduFormatError;
using iso7816::CommandApdu;
using iso7816::StatusWord;
using iso7816::StatusWordError;

WarningResponse::WarningResponse(StatusWord sw, Bytes data) : StatusWordError(sw), data_(std::move(data)) {
  const auto first = iso7816::sw1(sw);
  if (first != 0x62 && first != 0x63) {
    throw std::invalid_argument("WarningResponse needs a 62xx or 63xx status word, not " + iso7816::to_string(sw));
  }
}

Applet::~Applet() = default;
Bytes Applet::on_select(AppletContext&) { return {}; }
void Applet::on_deselect(AppletContext&) {}
void Applet::on_power_reset(AppletContext&) {}

struct Card::Slot {
  Slot(std::unique_ptr<Applet> a, Bytes id, std::size_t off, std::size_t len, AppletStorage storage)
      : applet(std::move(a)),
        aid(std::move(id)),
        offset(off),
        size(len),
        transient(applet->transient_size(), 0),
        context(storage, transient) {}

  std::unique_ptr<Applet> applet;
  Bytes aid;
  std::size_t offset;
  std::size_t size;
  Bytes transient;
  AppletContext context;

  void clear_transient() noexcept { std::fill(transient.begin(), transient.end(), std::uint8_t{0}); }
};

namespace {

constexpr std::uint8_t kChainingBit = 0x10;
constexpr std::uint8_t kInsSelect = 0xA4;
constexpr std::uint8_t kInsGetResponse = 0xC0;
constexpr std::uint8_t kInsManageChannel = 0x70;

// ISO/IEC 7816-4:2005 §5.1.1. Proprietary classes (b8 set) are read with the same layout, as
// GlobalPlatform does for its 80-8F / C0-CF classes: b5 chaining, b4-b3 secure messaging,
// b2-b1 channel; further classes 4x-7x / Cx-Fx: b6 SM, b5 chaining, b4-b1 channel - 4.
struct ClassByte {
  bool valid;
  bool proprietary;
  bool chained;
  bool secure;
  unsigned channel;
};

ClassByte decode_class(std::uint8_t cla) {
  const bool proprietary = (cla & 0x80) != 0;
  const auto c = static_cast<std::uint8_t>(cla & 0x7F);
  if ((c & 0x60) == 0x20) return {false, proprietary, false, false, 0};  // 001x xxxx: reserved
  if ((c & 0x40) != 0) {
    return {true, proprietary, (c & 0x10) != 0, (c & 0x20) != 0, 4u + (c & 0x0Fu)};
  }
  return {true, proprietary, (c & 0x10) != 0, (c & 0x0C) != 0, c & 0x03u};
}

Bytes sw_only(StatusWord sw) { return {iso7816::sw1(sw), iso7816::sw2(sw)}; }

void append_sw(Bytes& out, StatusWord sw) {
  out.push_back(iso7816::sw1(sw));
  out.push_back(iso7816::sw2(sw));
}

// 61xx and 6Cxx describe the transport state that only the dispatcher knows; an applet raising
// one would desynchronise the host's GET RESPONSE loop.
bool engine_owned(StatusWord sw) {
  const auto first = iso7816::sw1(sw);
  return first == 0x61 || first == 0x6C;
}

StatusWord more_data(std::size_t remaining) {
  return iso7816::make_sw(0x61, remaining >= 256 ? 0x00 : static_cast<std::uint8_t>(remaining));
}

Bytes make_atr() {
  // TS direct convention; T0: TA1 and TD1 follow, 11 historical bytes; TA1 Fi=372 Di=4;
  // TD1: TD2 follows, T=1; TD2: TA3 and TB3 follow, T=1; TA3 IFSC 254; TB3 BWI 4 CWI 5.
  Bytes atr{0x3B, 0x9B, 0x13, 0x81, 0x31, 0xFE, 0x45};
  // Historical bytes, ISO/IEC 7816-4 §8.1.1: category 80 (compact-TLV), then tag 5 "card
  // issuer's data", 9 bytes: "skillcard".
  atr.push_back(0x80);
  atr.push_back(0x59);
  const ByteView name = as_bytes("skillcard");
  atr.insert(atr.end(), name.begin(), name.end());
  // TCK, present because T=1 is offered: XOR of T0..last historical byte is then zero.
  std::uint8_t tck = 0;
  for (std::size_t i = 1; i < atr.size(); ++i) tck = static_cast<std::uint8_t>(tck ^ atr[i]);
  atr.push_back(tck);
  return atr;
}

}  // namespace

Card::Card(PersistentMemory memory) : memory_(std::move(memory)) {}
Card::~Card() = default;

const Bytes& Card::atr() {
  static const Bytes atr = make_atr();
  return atr;
}

void Card::install(std::unique_ptr<Applet> applet, std::size_t storage_offset, std::size_t storage_size) {
  if (!applet) throw std::invalid_argument("applet: null");
  Bytes aid = applet->aid();
  if (aid.size() < 5 || aid.size() > 16) {
    throw std::invalid_argument("aid: must be 5..16 bytes, got " + std::to_string(aid.size()));
  }
  AppletStorage storage = memory_.storage(storage_offset, storage_size);
  for (const auto& slot : slots_) {
    if (slot->aid == aid) throw std::invalid_argument("aid: " + to_hex(aid) + " is already installed");
    const bool disjoint = storage_size == 0 || slot->size == 0 || storage_offset + storage_size <= slot->offset ||
                          slot->offset + slot->size <= storage_offset;
    if (!disjoint) {
      throw std::invalid_argument("storage: window overlaps the one of applet " + to_hex(slot->aid));
    }
  }
  slots_.push_back(std::make_unique<Slot>(std::move(applet), std::move(aid), storage_offset, storage_size, storage));
}

Bytes Card::power_on() {
  power_off();
  eeprom().restore_power();
  last_mount_ = memory_.mount();
  powered_ = true;
  try {
    for (auto& slot : slots_) slot->applet->on_power_reset(slot->context);
  } catch (...) {
    power_off();
    throw;
  }
  return atr();
}

void Card::power_off() noexcept {
  for (auto& slot : slots_) slot->applet->on_power_off();
  clear_volatile();
  memory_.unmount();
  powered_ = false;
}

Bytes Card::reset() {
  if (!powered_) return power_on();
  clear_volatile();
  try {
    for (auto& slot : slots_) slot->applet->on_power_reset(slot->context);
  } catch (...) {
    power_off();
    throw;
  }
  return atr();
}

const Applet* Card::selected() const noexcept { return selected_ ? selected_->applet.get() : nullptr; }

void Card::clear_volatile() noexcept {
  selected_ = nullptr;
  chain_.reset();
  drop_pending();
  for (auto& slot : slots_) slot->clear_transient();
}

void Card::drop_pending() noexcept {
  pending_.clear();
  pending_offset_ = 0;
  pending_sw_ = StatusWord::Success;
}

Bytes Card::process(ByteView apdu) {
  if (!powered_) throw CardNotPowered("process() on a card that is powered off");
  const std::uint64_t before = eeprom().writes();
  Bytes out;
  try {
    out = dispatch(apdu);
  } catch (const PowerLost&) {
    last_command_writes_ = eeprom().writes() - before;
    power_off();
    throw;
  }
  last_command_writes_ = eeprom().writes() - before;
  // Even if an applet swallowed PowerLost, a card without power cannot have answered.
  if (eeprom().power_lost()) {
    power_off();
    throw PowerLost("power was lost during the command");
  }
  return out;
}

// The one place where exceptions become status words (docs/architecture.md, rule 4).
Bytes Card::dispatch(ByteView apdu) {
  try {
    return execute(apdu);
  } catch (const ApduFormatError& e) {
    return sw_only(e.sw());
  } catch (const StatusWordError& e) {
    return sw_only(engine_owned(e.sw()) ? StatusWord::NoPreciseDiagnosis : e.sw());
  } catch (const PowerLost&) {
    throw;
  } catch (const std::exception&) {
    // An applet bug (TransactionTooLarge, out_of_range, bad_alloc, …): the card stays up.
    return sw_only(StatusWord::NoPreciseDiagnosis);
  } catch (...) {
    return sw_only(StatusWord::NoPreciseDiagnosis);
  }
}

Bytes Card::execute(ByteView apdu) {
  std::optional<CommandApdu> parsed;
  try {
    parsed.emplace(CommandApdu::parse(apdu));
  } catch (const ApduFormatError&) {
    drop_pending();
    chain_.reset();
    throw;
  }
  CommandApdu& command = *parsed;
  const ClassByte cls = decode_class(command.cla());
  if (!cls.valid) {
    drop_pending();
    chain_.reset();
    throw StatusWordError(StatusWord::ClaNotSupported, "reserved class byte");
  }
  // A command for another channel never reaches channel 0, so channel 0's state stays as is.
  if (cls.channel != 0) throw StatusWordError(StatusWord::LogicalChannelNotSupported, "only the basic channel");

  const std::uint8_t ins = command.ins();
  const bool os_command = !cls.proprietary && (ins == kInsSelect || ins == kInsGetResponse || ins == kInsManageChannel);
  if (!(os_command && ins == kInsGetResponse)) drop_pending();

  const auto base_cla = static_cast<std::uint8_t>(command.cla() & ~kChainingBit);
  if (chain_ &&
      (chain_->cla != base_cla || chain_->ins != ins || chain_->p1 != command.p1() || chain_->p2 != command.p2())) {
    chain_.reset();
    throw StatusWordError(StatusWord::LastCommandOfChainExpected, "command does not continue the chain");
  }
  if (cls.chained) {
    if (os_command) {
      chain_.reset();
      throw StatusWordError(StatusWord::CommandChainingNotSupported, "the OS commands are never chained");
    }
    if (!chain_) chain_ = Chain{base_cla, ins, command.p1(), command.p2(), {}};
    if (command.data().size() > kMaxChainedData - chain_->data.size()) {
      chain_.reset();
      throw StatusWordError(StatusWord::WrongLength, "chained command data exceeds the APDU buffer");
    }
    chain_->data.insert(chain_->data.end(), command.data().begin(), command.data().end());
    return sw_only(StatusWord::Success);
  }
  if (chain_) {
    Chain done = std::move(*chain_);
    chain_.reset();
    if (command.data().size() > kMaxChainedData - done.data.size()) {
      throw StatusWordError(StatusWord::WrongLength, "chained command data exceeds the APDU buffer");
    }
    done.data.insert(done.data.end(), command.data().begin(), command.data().end());
    const auto ne = command.ne();
    if (done.data.empty()) {
      command = ne ? CommandApdu(base_cla, ins, done.p1, done.p2, *ne) : CommandApdu(base_cla, ins, done.p1, done.p2);
    } else {
      command = ne ? CommandApdu(base_cla, ins, done.p1, done.p2, done.data, *ne)
                   : CommandApdu(base_cla, ins, done.p1, done.p2, done.data);
    }
  } else if (command.data().size() > kMaxChainedData) {
    throw StatusWordError(StatusWord::WrongLength, "command data exceeds the APDU buffer");
  }

  if (os_command) {
    if (cls.secure) throw StatusWordError(StatusWord::SecureMessagingNotSupported, "OS commands are not wrapped");
    if (ins == kInsSelect) return select(command);
    if (ins == kInsGetResponse) return get_response(command);
    throw StatusWordError(StatusWord::LogicalChannelNotSupported, "MANAGE CHANNEL: only the basic channel");
  }
  if (!selected_) {
    // Nothing to interpret the command: an interindustry INS is unknown, a proprietary class is.
    throw StatusWordError(cls.proprietary ? StatusWord::ClaNotSupported : StatusWord::InsNotSupported,
                          "no applet selected");
  }
  try {
    return respond(selected_->applet->process(command, selected_->context), command.ne());
  } catch (const WarningResponse& warning) {
    return respond(warning.data(), command.ne(), warning.sw());
  }
}

Bytes Card::respond(Bytes data, std::optional<std::size_t> ne, StatusWord final_sw) {
  if (data.empty()) return sw_only(final_sw);
  if (data.size() > iso7816::ResponseApdu::kMaxNr) {
    throw std::length_error("applet answered " + std::to_string(data.size()) + " bytes");
  }
  const std::size_t limit = ne.value_or(0);
  if (data.size() <= limit) {
    append_sw(data, final_sw);
    return data;
  }
  // Longer than the host asked for: send what fits and keep the rest for GET RESPONSE. The
  // card never answers an applet command with 6Cxx, since resending it could repeat a commit.
  Bytes out(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(limit));
  pending_ = std::move(data);
  pending_offset_ = limit;
  pending_sw_ = final_sw;
  append_sw(out, more_data(pending_.size() - limit));
  return out;
}

Bytes Card::get_response(const CommandApdu& command) {
  if (command.p1() != 0 || command.p2() != 0) throw StatusWordError(StatusWord::IncorrectP1P2, "GET RESPONSE");
  if (!command.data().empty() || !command.ne()) {
    throw StatusWordError(StatusWord::WrongLength, "GET RESPONSE is a case 2 command");
  }
  const std::size_t remaining = pending_.size() - pending_offset_;
  if (remaining == 0) throw StatusWordError(StatusWord::ConditionsNotSatisfied, "no response data pending");
  const std::size_t ne = *command.ne();
  // A specific short Le that asks for more than is left: tell the exact count (resending GET
  // RESPONSE is harmless). Le 00 / 0000 and an extended Le of 256 or more are maxima and take
  // what is left; an Le of 1-255 is exact in either form (the parsed APDU keeps Ne, not its form).
  if (ne < 256 && ne > remaining) return sw_only(iso7816::make_wrong_le(remaining));
  const std::size_t n = std::min(ne, remaining);
  Bytes out(pending_.begin() + static_cast<std::ptrdiff_t>(pending_offset_),
            pending_.begin() + static_cast<std::ptrdiff_t>(pending_offset_ + n));
  pending_offset_ += n;
  if (pending_offset_ < pending_.size()) {
    append_sw(out, more_data(pending_.size() - pending_offset_));
  } else {
    const StatusWord final_sw = pending_sw_;
    drop_pending();
    append_sw(out, final_sw);
  }
  return out;
}

Card::Slot* Card::find_applet(ByteView aid) const {
  for (const auto& slot : slots_) {
    if (std::equal(aid.begin(), aid.end(), slot->aid.begin(), slot->aid.end())) return slot.get();
  }
  // Partial selection (ISO/IEC 7816-4 §7.1.1): a whole RID or more, first installed match.
  if (aid.size() < 5) return nullptr;
  for (const auto& slot : slots_) {
    if (slot->aid.size() > aid.size() && std::equal(aid.begin(), aid.end(), slot->aid.begin())) return slot.get();
  }
  return nullptr;
}

Bytes Card::select(const CommandApdu& command) {
  if (command.p1() != 0x04) {
    // The card has no file system: selection by file identifier or path finds nothing.
    const bool file_selection = command.p1() <= 0x03 || command.p1() == 0x08 || command.p1() == 0x09;
    throw StatusWordError(file_selection ? StatusWord::FileNotFound : StatusWord::IncorrectP1P2, "SELECT P1");
  }
  if (command.p2() != 0x00 && command.p2() != 0x0C) throw StatusWordError(StatusWord::IncorrectP1P2, "SELECT P2");
  const ByteView aid = command.data();
  if (aid.empty() || aid.size() > 16) throw StatusWordError(StatusWord::WrongLength, "SELECT: AID of 1..16 bytes");
  Slot* target = find_applet(aid);
  // Middleware probes dozens of AIDs on every connect: a miss must not disturb the session.
  if (!target) throw StatusWordError(StatusWord::FileNotFound, "no applet with AID " + to_hex(aid));

  if (selected_) {
    Slot* old = std::exchange(selected_, nullptr);
    try {
      old->applet->on_deselect(old->context);
    } catch (...) {
      old->clear_transient();
      throw;
    }
    old->clear_transient();
  }
  Bytes proprietary = target->applet->on_select(target->context);
  selected_ = target;
  if (command.p2() == 0x0C) return sw_only(StatusWord::Success);
  Bytes fci_content = iso7816::encode_tlv(0x84, target->aid);
  if (!proprietary.empty()) {
    const Bytes a5 = iso7816::encode_tlv(0xA5, proprietary);
    fci_content.insert(fci_content.end(), a5.begin(), a5.end());
  }
  return respond(iso7816::encode_tlv(0x6F, fci_content), command.ne());
}

}  // namespace skillcard::card
