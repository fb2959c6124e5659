// BER-TLV data objects (ISO/IEC 7816-4:2005 §5.2, ISO/IEC 8825-1): a strict, canonical subset
// with 1..3-byte tags and definite lengths up to 0xFFFFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::iso7816 {

// tag holds the tag bytes as they appear on the wire, big-endian: 0x84, 0x5F20, 0xDF8101.
struct Tlv {
  std::uint32_t tag;
  Bytes value;

  // b6 of the first tag byte: the value is itself a sequence of data objects.
  bool constructed() const noexcept;

  friend bool operator==(const Tlv&, const Tlv&) = default;
};

// Malformed BER-TLV input. offset() is where the faulty field starts, counted from the start of
// the bytes handed to parse_tlvs (for parse_constructed: from the start of the parent's value).
class TlvError : public std::invalid_argument {
 public:
  TlvError(std::size_t offset, const std::string& reason);
  std::size_t offset() const noexcept { return offset_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::size_t offset_;
  std::string reason_;
};

// Tag, then the length in its shortest definite form (00..7F, 81 xx, 82 xxxx, 83 xxxxxx),
// then the value. Throws std::invalid_argument for a tag parse_tlvs would refuse or a value
// longer than 0xFFFFFF bytes.
Bytes encode_tlv(std::uint32_t tag, ByteView value);

// Splits a sequence of data objects without descending into constructed ones. Refuses with
// TlvError: 00/FF padding bytes where a tag starts (ISO/IEC 7816-4 tolerates them; our own
// encoder never writes them, so they can only mean corruption), a truncated tag or length, a
// tag longer than 3 bytes, a tag number 0 in two bytes or a subsequent byte with leading zero
// bits (80), indefinite length (80), a length field
// of more than 3 subsequent bytes (84 and up), a length not in its shortest form, and a value
// running past the end. Two-byte tags with numbers below 31 (EMV-style 9F02, BF0C), which
// ISO/IEC 7816-4 §5.2.2.1 reserves, are accepted: cards in the field send them. Otherwise only
// the canonical form is accepted, so that parse and encode are exact inverses and equal objects
// always have equal bytes.
std::vector<Tlv> parse_tlvs(ByteView data);

// The first object with this tag, or nullptr.
const Tlv* find_tlv(const std::vector<Tlv>& tlvs, std::uint32_t tag);

// The children of a constructed object; std::invalid_argument if the tag is primitive.
std::vector<Tlv> parse_constructed(const Tlv& tlv);

}  // namespace skillcard::iso7816
