// Command APDU validation, encoding, strict decoding, ISO command factories and chaining.
#include "skillcard/iso7816/command_apdu.hpp"

#include <algorithm>
#include <array>

namespace skillcard::iso7816 {

namespace {

constexpr std::uint8_t kChainingBit = 0x10;

// ISO/IEC 7816-4:2005 §5.1.1: first interindustry 000x xxxx, further interindustry 01xx xxxx.
// 001x xxxx is reserved and 1xxx xxxx proprietary, where b5 has no agreed meaning.
bool is_interindustry(std::uint8_t cla) { return (cla & 0xE0) == 0x00 || (cla & 0xC0) == 0x40; }

// GlobalPlatform's proprietary classes 8x and Cx keep the interindustry meaning of b5
// (command chaining), as Java Card's APDU.isCommandChainingCLA and our card do; 9x, Ax, Bx,
// Dx-Fx are left alone (b5 is part of their class number there).
bool chains_with_b5(std::uint8_t cla) { return is_interindustry(cla) || (cla & 0xE0) == 0x80 || (cla & 0xF0) == 0xC0; }

// Both bytes can never reach a card: over T=0 a CLA of FF would be read as a PPS request and an
// INS of 6X/9X as a procedure byte (ISO/IEC 7816-3), hence invalid in ISO/IEC 7816-4 too.
const char* cla_problem(std::uint8_t cla) { return cla == 0xFF ? "CLA 'FF' is reserved for PPS" : nullptr; }
const char* ins_problem(std::uint8_t ins) {
  const auto high = ins & 0xF0;
  return (high == 0x60 || high == 0x90) ? "INS '6X' and '9X' are reserved for T=0 procedure bytes" : nullptr;
}

void check_cla(std::uint8_t cla) {
  if (auto p = cla_problem(cla)) throw std::invalid_argument(std::string("cla: ") + p);
}

void check_nc(std::size_t nc) {
  if (nc < 1 || nc > CommandApdu::kMaxNc) {
    throw std::invalid_argument("data: Nc must be 1..65535, got " + std::to_string(nc));
  }
}

void check_ne(std::size_t ne) {
  if (ne < 1 || ne > CommandApdu::kMaxNe) {
    throw std::invalid_argument("ne: Ne must be 1..65536, got " + std::to_string(ne));
  }
}

// Length fields carry 256 / 65536 as 00 / 0000, so a zero on the wire means the maximum.
std::size_t short_ne(std::uint8_t b) { return b == 0 ? 256 : b; }
std::size_t extended_value(std::uint8_t high, std::uint8_t low) { return static_cast<std::size_t>((high << 8) | low); }
std::size_t extended_ne(std::uint8_t high, std::uint8_t low) {
  const auto v = extended_value(high, low);
  return v == 0 ? 65536 : v;
}

void push16(Bytes& out, std::size_t v) {
  out.push_back(static_cast<std::uint8_t>((v >> 8) & 0xFF));
  out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

ApduFormatError wrong_length(const std::string& reason) { return ApduFormatError(StatusWord::WrongLength, reason); }

}  // namespace

CommandApdu::CommandApdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2)
    : cla_(cla), ins_(ins), p1_(p1), p2_(p2) {
  check_cla(cla);
  if (auto p = ins_problem(ins)) throw std::invalid_argument(std::string("ins: ") + p);
}

CommandApdu::CommandApdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, std::size_t ne)
    : CommandApdu(cla, ins, p1, p2) {
  check_ne(ne);
  ne_ = ne;
}

CommandApdu::CommandApdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, ByteView data)
    : CommandApdu(cla, ins, p1, p2) {
  check_nc(data.size());
  data_.assign(data.begin(), data.end());
}

CommandApdu::CommandApdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, ByteView data,
                         std::size_t ne)
    : CommandApdu(cla, ins, p1, p2, data) {
  check_ne(ne);
  ne_ = ne;
}

CommandApdu CommandApdu::parse(ByteView apdu) {
  if (apdu.size() < 4) {
    throw wrong_length("APDU of " + std::to_string(apdu.size()) + " bytes is shorter than the 4-byte header");
  }
  const std::uint8_t cla = apdu[0], ins = apdu[1], p1 = apdu[2], p2 = apdu[3];
  if (auto p = cla_problem(cla)) throw ApduFormatError(StatusWord::ClaNotSupported, p);
  if (auto p = ins_problem(ins)) throw ApduFormatError(StatusWord::InsNotSupported, p);

  const ByteView body = apdu.subspan(4);
  if (body.empty()) return CommandApdu(cla, ins, p1, p2);
  if (body.size() == 1) return CommandApdu(cla, ins, p1, p2, short_ne(body[0]));

  if (body[0] != 0) {
    const std::size_t nc = body[0];
    if (body.size() == 1 + nc) return CommandApdu(cla, ins, p1, p2, body.subspan(1));
    if (body.size() == 2 + nc) {
      return CommandApdu(cla, ins, p1, p2, body.subspan(1, nc), short_ne(body.back()));
    }
    if (body.size() < 1 + nc) {
      throw wrong_length("short Lc=" + std::to_string(nc) + " but " + std::to_string(body.size() - 1) +
                         " data bytes follow");
    }
    throw wrong_length(std::to_string(body.size() - 2 - nc) + " trailing bytes after short Le");
  }

  // A 00 byte that is not the only body byte opens an extended length field.
  if (body.size() == 2) throw wrong_length("Lc=00 in short form");
  if (body.size() == 3) return CommandApdu(cla, ins, p1, p2, extended_ne(body[1], body[2]));
  const std::size_t nc = extended_value(body[1], body[2]);
  if (nc == 0) throw wrong_length("extended Lc of 0000");
  const std::size_t rest = body.size() - 3;
  if (rest == nc) return CommandApdu(cla, ins, p1, p2, body.subspan(3));
  if (rest == nc + 2) {
    return CommandApdu(cla, ins, p1, p2, body.subspan(3, nc), extended_ne(body[3 + nc], body[4 + nc]));
  }
  if (rest < nc) {
    throw wrong_length("extended Lc=" + std::to_string(nc) + " but " + std::to_string(rest) + " data bytes follow");
  }
  if (rest == nc + 1) throw wrong_length("1-byte Le after extended Lc, needs 2 bytes");
  throw wrong_length(std::to_string(rest - nc - 2) + " trailing bytes after extended Le");
}

Bytes CommandApdu::encode() const { return encode(is_extended_required() ? LengthForm::Extended : LengthForm::Short); }

Bytes CommandApdu::encode(LengthForm form) const {
  if (form == LengthForm::Short && is_extended_required()) {
    throw std::invalid_argument("form: Nc=" + std::to_string(data_.size()) +
                                (ne_ ? " Ne=" + std::to_string(*ne_) : std::string()) +
                                " needs the extended length form");
  }
  const bool extended = form == LengthForm::Extended;
  Bytes out{cla_, ins_, p1_, p2_};
  out.reserve(4 + 3 + data_.size() + 2);
  if (!data_.empty()) {
    if (extended) {
      out.push_back(0x00);
      push16(out, data_.size());
    } else {
      out.push_back(static_cast<std::uint8_t>(data_.size()));
    }
    out.insert(out.end(), data_.begin(), data_.end());
  }
  if (ne_) {
    if (extended) {
      // Case 2E has no Lc to carry the extended marker, so Le brings its own 00.
      if (data_.empty()) out.push_back(0x00);
      push16(out, *ne_ & 0xFFFF);
    } else {
      out.push_back(static_cast<std::uint8_t>(*ne_ & 0xFF));
    }
  }
  return out;
}

ApduCase CommandApdu::apdu_case() const noexcept {
  if (data_.empty()) return ne_ ? ApduCase::Case2 : ApduCase::Case1;
  return ne_ ? ApduCase::Case4 : ApduCase::Case3;
}

bool CommandApdu::is_extended_required() const noexcept {
  return data_.size() > kMaxShortNc || (ne_ && *ne_ > kMaxShortNe);
}

bool CommandApdu::is_chained() const noexcept {
  // 9x is 8x with b5 set: a chained GlobalPlatform command.
  const std::uint8_t base = static_cast<std::uint8_t>(cla_ & ~kChainingBit);
  return (cla_ & kChainingBit) != 0 && chains_with_b5(base);
}

CommandApdu CommandApdu::with_cla(std::uint8_t cla) const {
  check_cla(cla);
  CommandApdu copy = *this;
  copy.cla_ = cla;
  return copy;
}

CommandApdu CommandApdu::with_ne(std::size_t ne) const {
  check_ne(ne);
  CommandApdu copy = *this;
  copy.ne_ = ne;
  return copy;
}

std::string CommandApdu::header_string() const {
  const Bytes wire = encode();
  const std::array<std::uint8_t, 4> header{cla_, ins_, p1_, p2_};
  std::string out;
  for (auto b : header) {
    if (!out.empty()) out += ' ';
    out += to_hex(ByteView(&b, 1));
  }
  const bool extended = is_extended_required();
  const ByteView fields = ByteView(wire).subspan(4);
  if (!data_.empty()) {
    const std::size_t lc_len = extended ? 3 : 1;
    out += " Lc=" + to_hex(fields.first(lc_len));
  }
  if (ne_) {
    const std::size_t le_len = !extended ? 1 : data_.empty() ? 3 : 2;
    out += " Le=" + to_hex(fields.last(le_len));
  }
  return out;
}

CommandApdu CommandApdu::select_by_aid(ByteView aid, Occurrence occurrence, std::size_t ne) {
  if (aid.empty() || aid.size() > 16) {
    throw std::invalid_argument("aid: must be 1..16 bytes, got " + std::to_string(aid.size()));
  }
  const std::uint8_t p2 = occurrence == Occurrence::First ? 0x00 : 0x02;
  return CommandApdu(0x00, 0xA4, 0x04, p2, aid, ne);
}

CommandApdu CommandApdu::get_response(std::size_t ne) { return CommandApdu(0x00, 0xC0, 0x00, 0x00, ne); }

CommandApdu CommandApdu::verify(std::uint8_t reference, ByteView pin) {
  return CommandApdu(0x00, 0x20, 0x00, reference, pin);
}

CommandApdu CommandApdu::verify_status(std::uint8_t reference) { return CommandApdu(0x00, 0x20, 0x00, reference); }

CommandApdu CommandApdu::change_reference_data(std::uint8_t reference, ByteView old_and_new) {
  return CommandApdu(0x00, 0x24, 0x00, reference, old_and_new);
}

CommandApdu CommandApdu::reset_retry_counter(std::uint8_t reference, ByteView new_pin) {
  return CommandApdu(0x00, 0x2C, 0x02, reference, new_pin);
}

CommandApdu CommandApdu::internal_authenticate(ByteView challenge, std::size_t ne) {
  return CommandApdu(0x00, 0x88, 0x00, 0x00, challenge, ne);
}

CommandApdu CommandApdu::get_data(std::uint16_t tag, std::size_t ne) {
  return CommandApdu(0x00, 0xCA, static_cast<std::uint8_t>(tag >> 8), static_cast<std::uint8_t>(tag & 0xFF), ne);
}

std::vector<CommandApdu> split_for_chaining(const CommandApdu& command, std::size_t max_chunk) {
  if (max_chunk < 1 || max_chunk > CommandApdu::kMaxNc) {
    throw std::invalid_argument("max_chunk: must be 1..65535, got " + std::to_string(max_chunk));
  }
  const ByteView data = command.data();
  if (data.size() <= max_chunk) return {command};
  const std::uint8_t cla = command.cla();
  if (!chains_with_b5(cla)) {
    throw std::invalid_argument("cla: chaining by CLA b5 needs an interindustry or GlobalPlatform class, got " +
                                to_hex(ByteView(&cla, 1)));
  }
  if (command.is_chained()) {
    throw std::invalid_argument("cla: command already carries the chaining bit");
  }

  std::vector<CommandApdu> out;
  out.reserve((data.size() + max_chunk - 1) / max_chunk);
  for (std::size_t offset = 0; offset < data.size(); offset += max_chunk) {
    const ByteView chunk = data.subspan(offset, std::min(max_chunk, data.size() - offset));
    const bool last = offset + chunk.size() == data.size();
    if (!last) {
      out.emplace_back(static_cast<std::uint8_t>(cla | kChainingBit), command.ins(), command.p1(), command.p2(), chunk);
    } else if (auto ne = command.ne()) {
      out.emplace_back(cla, command.ins(), command.p1(), command.p2(), chunk, *ne);
    } else {
      out.emplace_back(cla, command.ins(), command.p1(), command.p2(), chunk);
    }
  }
  return out;
}

}  // namespace skillcard::iso7816
