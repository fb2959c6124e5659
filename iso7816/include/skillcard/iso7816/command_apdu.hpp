// Command APDUs (ISO/IEC 7816-4:2005 §5.1): a value type that always holds a valid command,
// its short/extended encoding, the strict decoder, the ISO commands we send, and chaining.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "skillcard/iso7816/apdu_format_error.hpp"
#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::iso7816 {

// The four command cases by presence of data (Nc > 0) and of an expected length (Ne).
enum class ApduCase { Case1, Case2, Case3, Case4 };

enum class LengthForm { Short, Extended };

// SELECT P2 b2-b1: which of several applications sharing an AID prefix to select.
enum class Occurrence { First, Next };

class CommandApdu {
 public:
  static constexpr std::size_t kMaxNc = 65535;
  static constexpr std::size_t kMaxNe = 65536;
  static constexpr std::size_t kMaxShortNc = 255;
  static constexpr std::size_t kMaxShortNe = 256;

  // One constructor per case. Each throws std::invalid_argument naming the field ("cla", "ins",
  // "data", "ne") when a value cannot be sent: Nc must be 1..65535, Ne 1..65536 (256 and 65536
  // are sent as 00 / 0000), CLA 'FF' and INS '6X'/'9X' are reserved by ISO/IEC 7816-3 for PPS
  // and T=0 procedure bytes (ISO/IEC 7816-4:2005 §5.1.1, §5.1.2).
  CommandApdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2);
  CommandApdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, std::size_t ne);
  CommandApdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, ByteView data);
  CommandApdu(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, ByteView data, std::size_t ne);

  // Decodes any of the seven encodings (1, 2S, 3S, 4S, 2E, 3E, 4E; ISO/IEC 7816-3 §12.1.3) and
  // nothing else. Throws ApduFormatError whose sw() is what the card should answer.
  static CommandApdu parse(ByteView apdu);

  // Short form when Nc <= 255 and Ne <= 256, else extended (ISO/IEC 7816-4:2005 §5.1).
  Bytes encode() const;
  // Forces a form; Short throws std::invalid_argument when the lengths do not fit it.
  Bytes encode(LengthForm form) const;

  std::uint8_t cla() const noexcept { return cla_; }
  std::uint8_t ins() const noexcept { return ins_; }
  std::uint8_t p1() const noexcept { return p1_; }
  std::uint8_t p2() const noexcept { return p2_; }
  const Bytes& data() const noexcept { return data_; }
  std::optional<std::size_t> ne() const noexcept { return ne_; }

  ApduCase apdu_case() const noexcept;
  bool is_extended_required() const noexcept;
  // CLA b5 in an interindustry class: more commands of this chain follow (§5.1.1.1).
  bool is_chained() const noexcept;

  CommandApdu with_cla(std::uint8_t cla) const;
  // Same command expecting ne bytes (adds Le to a case 1/3 command); used to resend after 6Cxx.
  CommandApdu with_ne(std::size_t ne) const;

  // "00 A4 04 00 Lc=0B Le=00": header and length fields as sent, never the data, so that
  // traces of VERIFY or key loading do not leak secrets. Extended fields show all their bytes
  // ("Lc=000100 Le=0000").
  std::string header_string() const;

  friend bool operator==(const CommandApdu&, const CommandApdu&) = default;

  // --- ISO/IEC 7816-4:2005 commands, interindustry CLA 00 (use with_cla for channels / SM) ---

  // §7.1.1 SELECT by DF name: 00 A4 04 P2, P2 00 = first or only occurrence, 02 = next,
  // FCI requested. The AID must be 1..16 bytes (§8.2.1.2).
  static CommandApdu select_by_aid(ByteView aid, Occurrence occurrence = Occurrence::First, std::size_t ne = 256);
  // §7.6.1 GET RESPONSE: 00 C0 00 00 Le.
  static CommandApdu get_response(std::size_t ne);
  // §7.5.6 VERIFY: 00 20 00 ref, data = verification data.
  static CommandApdu verify(std::uint8_t reference, ByteView pin);
  // §7.5.6 VERIFY without data: the card answers 9000 (verified) or 63Cx (x tries left).
  static CommandApdu verify_status(std::uint8_t reference);
  // §7.5.7 CHANGE REFERENCE DATA, P1 00: data = current PIN followed by the new one.
  static CommandApdu change_reference_data(std::uint8_t reference, ByteView old_and_new);
  // §7.5.10 RESET RETRY COUNTER, P1 02: data = new reference data only (no resetting code).
  static CommandApdu reset_retry_counter(std::uint8_t reference, ByteView new_pin);
  // §7.5.2 INTERNAL AUTHENTICATE: 00 88 00 00, P1/P2 00 = algorithm and key known implicitly.
  static CommandApdu internal_authenticate(ByteView challenge, std::size_t ne = 256);
  // §7.4.2 GET DATA (even INS): 00 CA P1-P2 = tag Le.
  static CommandApdu get_data(std::uint16_t tag, std::size_t ne = 256);

 private:
  std::uint8_t cla_;
  std::uint8_t ins_;
  std::uint8_t p1_;
  std::uint8_t p2_;
  Bytes data_;
  std::optional<std::size_t> ne_;
};

// §5.1.1.1 command chaining: cuts the data into chunks of at most max_chunk bytes; every
// command but the last has CLA b5 set and no Le, the last keeps the original CLA and Ne.
// A command that already fits is returned alone, whatever its class. Throws
// std::invalid_argument when max_chunk is not 1..65535, or when the command must be split but
// its class is proprietary (b5 means nothing there) or already has the chaining bit.
std::vector<CommandApdu> split_for_chaining(const CommandApdu& command, std::size_t max_chunk = 255);

}  // namespace skillcard::iso7816
