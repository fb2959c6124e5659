// Strict BER-TLV reading and canonical writing.
#include "skillcard/iso7816/tlv.hpp"

#include <algorithm>

namespace skillcard::iso7816 {

namespace {

constexpr std::size_t kMaxLength = 0xFFFFFF;

std::string hex_byte(std::uint8_t b) { return to_hex(ByteView(&b, 1)); }

struct TagRead {
  std::uint32_t tag = 0;
  std::size_t size = 0;
  std::string problem;  // empty when the tag is valid
};

// ISO/IEC 7816-4:2005 §5.2.2.1: a first byte with b5-b1 = 11111 announces more bytes; a second
// byte encodes tag numbers 31..127 (b8 = 0), or with b8 = 1 and b7-b1 not all zero the upper
// bits of a number 128..16383 whose last byte has b8 = 0.
TagRead read_tag(ByteView in) {
  TagRead r;
  const std::uint8_t first = in[0];
  r.size = 1;
  r.tag = first;
  if (first == 0x00 || first == 0xFF) {
    r.problem = "padding byte '" + hex_byte(first) + "' where a tag should start";
    return r;
  }
  if ((first & 0x1F) != 0x1F) return r;
  if (in.size() < 2) {
    r.problem = "truncated tag";
    return r;
  }
  const std::uint8_t second = in[1];
  r.size = 2;
  r.tag = (r.tag << 8) | second;
  if ((second & 0x80) == 0) {
    // ISO/IEC 7816-4 reserves second bytes 00..1E, but EMV and GlobalPlatform answers use them
    // (9F02, BF0C, ...) and cards in the field send them: accept all but 00.
    if (second == 0x00) r.problem = "tag number 0 written in two bytes";
    return r;
  }
  if (second == 0x80) {
    r.problem = "tag number with leading zero bits";
    return r;
  }
  if (in.size() < 3) {
    r.problem = "truncated tag";
    return r;
  }
  const std::uint8_t third = in[2];
  r.size = 3;
  r.tag = (r.tag << 8) | third;
  if ((third & 0x80) != 0) r.problem = "tag longer than 3 bytes";
  return r;
}

std::uint8_t first_tag_byte(std::uint32_t tag) {
  if (tag > 0xFFFF) return static_cast<std::uint8_t>(tag >> 16);
  if (tag > 0xFF) return static_cast<std::uint8_t>(tag >> 8);
  return static_cast<std::uint8_t>(tag);
}

Bytes tag_bytes(std::uint32_t tag) {
  Bytes out;
  if (tag > 0xFFFF) out.push_back(static_cast<std::uint8_t>(tag >> 16));
  if (tag > 0xFF) out.push_back(static_cast<std::uint8_t>((tag >> 8) & 0xFF));
  out.push_back(static_cast<std::uint8_t>(tag & 0xFF));
  return out;
}

}  // namespace

bool Tlv::constructed() const noexcept { return (first_tag_byte(tag) & 0x20) != 0; }

TlvError::TlvError(std::size_t offset, const std::string& reason)
    : std::invalid_argument("BER-TLV error at offset " + std::to_string(offset) + ": " + reason),
      offset_(offset),
      reason_(reason) {}

Bytes encode_tlv(std::uint32_t tag, ByteView value) {
  if (tag > 0xFFFFFF) throw std::invalid_argument("tag: longer than 3 bytes");
  Bytes out = tag_bytes(tag);
  const TagRead r = read_tag(out);
  if (!r.problem.empty()) throw std::invalid_argument("tag " + to_hex(out) + ": " + r.problem);
  if (r.size != out.size()) {
    throw std::invalid_argument("tag " + to_hex(out) + ": the tag ends after " + std::to_string(r.size) + " byte(s)");
  }
  const std::size_t n = value.size();
  if (n > kMaxLength) {
    throw std::invalid_argument("value: " + std::to_string(n) + " bytes exceed 0xFFFFFF");
  }
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    const std::size_t length_bytes = n <= 0xFF ? 1 : n <= 0xFFFF ? 2 : 3;
    out.push_back(static_cast<std::uint8_t>(0x80 | length_bytes));
    for (std::size_t i = length_bytes; i-- > 0;) {
      out.push_back(static_cast<std::uint8_t>((n >> (8 * i)) & 0xFF));
    }
  }
  out.insert(out.end(), value.begin(), value.end());
  return out;
}

std::vector<Tlv> parse_tlvs(ByteView data) {
  std::vector<Tlv> out;
  std::size_t pos = 0;
  while (pos < data.size()) {
    const TagRead tag = read_tag(data.subspan(pos));
    if (!tag.problem.empty()) throw TlvError(pos, tag.problem);
    pos += tag.size;

    if (pos >= data.size()) throw TlvError(pos, "truncated length: no length byte");
    const std::size_t length_at = pos;
    const std::uint8_t first = data[pos++];
    std::size_t length = first;
    if (first == 0x80) throw TlvError(length_at, "indefinite length (80) not allowed");
    if (first > 0x80) {
      const std::size_t count = first & 0x7F;
      if (count > 3) {
        throw TlvError(length_at, "length field '" + hex_byte(first) + "' announces more than 3 length bytes");
      }
      if (data.size() - pos < count) throw TlvError(length_at, "truncated length");
      length = 0;
      for (std::size_t i = 0; i < count; ++i) length = (length << 8) | data[pos++];
      // The shortest form of a length below 0x80 is one byte; otherwise count bytes are the
      // fewest exactly when the top one is not zero.
      if (length < 0x80 || (length >> (8 * (count - 1))) == 0) {
        throw TlvError(length_at, "length " + std::to_string(length) + " not in shortest form");
      }
    }
    if (data.size() - pos < length) {
      throw TlvError(pos, "value of " + std::to_string(length) + " bytes runs past the end (" +
                              std::to_string(data.size() - pos) + " left)");
    }
    const ByteView value = data.subspan(pos, length);
    out.push_back(Tlv{tag.tag, Bytes(value.begin(), value.end())});
    pos += length;
  }
  return out;
}

const Tlv* find_tlv(const std::vector<Tlv>& tlvs, std::uint32_t tag) {
  const auto it = std::find_if(tlvs.begin(), tlvs.end(), [tag](const Tlv& t) { return t.tag == tag; });
  return it == tlvs.end() ? nullptr : &*it;
}

std::vector<Tlv> parse_constructed(const Tlv& tlv) {
  if (!tlv.constructed()) {
    throw std::invalid_argument("tlv: tag " + to_hex(tag_bytes(tlv.tag)) + " is primitive, it has no children");
  }
  return parse_tlvs(tlv.value);
}

}  // namespace skillcard::iso7816
