// Command APDUs of the training applet and the decoding of its structured answers.
#include "skillcard/host/card_commands.hpp"

#include <stdexcept>

#include "skillcard/host/encoding.hpp"
#include "skillcard/host/refusal.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::host {

using iso7816::CommandApdu;

namespace {
constexpr std::size_t kNe = 256;
constexpr std::size_t kListHeader = 24;
constexpr std::size_t kSlotSummary = 35;
}  // namespace

Pin::Pin(std::string_view digits) {
  bool ok = digits.size() >= 4 && digits.size() <= 12;
  for (const char c : digits) ok = ok && c >= '0' && c <= '9';
  if (!ok) throw HostRefusal("PIN_FORMAT", "the PIN entered is not 4-12 digits");
  digits_ = crypto::SecretBytes(as_bytes(digits));
}

crypto::SecretBytes Pin::block() const {
  crypto::SecretBytes b(apdu::kPinBlockSize);
  auto out = b.mutable_view();
  std::fill(out.begin(), out.end(), 0xFF);
  std::copy(digits_.view().begin(), digits_.view().end(), out.begin());
  return b;
}

Bytes RedeemRequest::encode() const {
  Bytes d(voucher.begin(), voucher.end());
  append_be(d, site, 4);
  d.insert(d.end(), nonce.begin(), nonce.end());
  append_be(d, terminal_time, 4);
  append_be(d, classroom_hours, 2);
  append_be(d, online_hours, 2);
  return d;
}

namespace apdu {

const Bytes& training_aid() {
  static const Bytes aid = from_hex("F0736B696C6C63617264 01");
  return aid;
}

CommandApdu get_data(std::uint8_t p2) { return CommandApdu(0x00, kInsGetData, 0x01, p2, kNe); }
CommandApdu internal_authenticate(ByteView challenge) {
  return CommandApdu(0x00, kInsInternalAuthenticate, 0x00, 0x00, challenge, kNe);
}
CommandApdu verify(const Pin& pin) {
  const auto block = pin.block();
  return CommandApdu(0x00, kInsVerify, 0x00, kPinReference, block.view(), kNe);
}
CommandApdu verify_status() { return CommandApdu(0x00, kInsVerify, 0x00, kPinReference, kNe); }
CommandApdu change_reference_data(const Pin& old_pin, const Pin& new_pin) {
  const auto a = old_pin.block();
  const auto b = new_pin.block();
  crypto::SecretBytes both(2 * kPinBlockSize);
  std::copy(a.view().begin(), a.view().end(), both.mutable_view().begin());
  std::copy(b.view().begin(), b.view().end(), both.mutable_view().begin() + kPinBlockSize);
  return CommandApdu(0x00, kInsChangeReferenceData, 0x00, kPinReference, both.view(), kNe);
}
CommandApdu reset_retry_counter(const Pin& new_pin) {
  const auto block = new_pin.block();
  return CommandApdu(0x00, kInsResetRetryCounter, 0x02, kPinReference, block.view(), kNe);
}
CommandApdu store_voucher(ByteView token) { return CommandApdu(0x80, kInsStoreVoucher, 0x00, 0x00, token, kNe); }
CommandApdu list_vouchers(std::uint8_t p1) { return CommandApdu(0x80, kInsListVouchers, p1, 0x00, kNe); }
CommandApdu read_voucher(const VoucherId& id) { return CommandApdu(0x80, kInsReadVoucher, 0x00, 0x00, id, kNe); }
CommandApdu redeem(const RedeemRequest& request) {
  return CommandApdu(0x80, kInsRedeem, 0x00, 0x00, request.encode(), kNe);
}
CommandApdu get_receipt(std::uint32_t counter) {
  Bytes d;
  append_be(d, counter, 4);
  return CommandApdu(0x80, kInsGetReceipt, 0x00, 0x00, d, kNe);
}
CommandApdu purge(const VoucherId& id) { return CommandApdu(0x80, kInsPurge, 0x00, 0x00, id, kNe); }
CommandApdu write_digest(ByteView digest) { return CommandApdu(0x80, kInsWriteDigest, 0x00, 0x00, digest, kNe); }
CommandApdu read_digest() { return CommandApdu(0x80, kInsReadDigest, 0x00, 0x00, kNe); }

}  // namespace apdu

std::string_view to_string(SlotState state) noexcept {
  switch (state) {
    case SlotState::Empty:
      return "empty";
    case SlotState::Stored:
      return "stored";
    case SlotState::Redeemed:
      return "redeemed";
    case SlotState::PurgedPending:
      return "purged-pending";
  }
  return "?";
}

bool SlotSummary::usable_at(std::uint32_t region, std::uint32_t site, std::uint64_t now) const noexcept {
  if (state != SlotState::Stored || now >= expiry) return false;
  if (schemas::region_eligible(regions, region)) return true;  // as the service's P15 reads it
  for (const auto p : providers)
    if (p == site) return true;
  return false;
}

VoucherList VoucherList::parse(ByteView answer) {
  if (answer.size() < kListHeader || (answer.size() - kListHeader) % kSlotSummary != 0)
    throw MalformedCardAnswer("LIST VOUCHERS answered " + std::to_string(answer.size()) + " bytes");
  VoucherList list;
  std::copy_n(answer.begin(), 16, list.holder.begin());
  list.redemption_counter = read_be32(answer, 16);
  list.time_mark = read_be32(answer, 20);
  for (std::size_t at = kListHeader; at < answer.size(); at += kSlotSummary) {
    const auto s = answer.subspan(at, kSlotSummary);
    if (s[0] > 3) throw MalformedCardAnswer("LIST VOUCHERS: unknown slot state");
    SlotSummary slot;
    slot.state = static_cast<SlotState>(s[0]);
    std::copy_n(s.begin() + 1, 8, slot.id.begin());
    slot.expiry = read_be32(s, 9);
    slot.counter = read_be32(s, 13);
    const std::uint8_t n = s[17];
    const std::uint8_t kinds = s[18];
    if (n > 4) throw MalformedCardAnswer("LIST VOUCHERS: more than 4 eligible codes");
    for (std::size_t i = 0; i < n; ++i) {
      const auto code = read_be32(s, 19 + 4 * i);
      ((kinds >> i) & 1 ? slot.providers : slot.regions).push_back(code);
    }
    list.slots.push_back(std::move(slot));
  }
  return list;
}

CardCounters CardCounters::parse(ByteView answer) {
  if (answer.size() != 25)
    throw MalformedCardAnswer("GET DATA 01 04 answered " + std::to_string(answer.size()) + " bytes");
  CardCounters c;
  c.redemption = read_be32(answer, 0);
  c.internal_authenticate = read_be32(answer, 4);
  c.attendance = read_be32(answer, 8);
  c.time_mark = read_be32(answer, 12);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto at = 16 + 3 * i;
    c.sequence[i] = (std::uint32_t{answer[at]} << 16) | (std::uint32_t{answer[at + 1]} << 8) | answer[at + 2];
  }
  return c;
}

AuthAnswer AuthAnswer::parse(ByteView answer) {
  if (answer.size() != 69)
    throw MalformedCardAnswer("INTERNAL AUTHENTICATE answered " + std::to_string(answer.size()) + " bytes");
  AuthAnswer a;
  a.counter = read_be32(answer, 0);
  if (answer[4] > 1) throw MalformedCardAnswer("INTERNAL AUTHENTICATE: PIN state neither 00 nor 01");
  a.pin_verified = answer[4] == 1;
  std::copy_n(answer.begin() + 5, 64, a.signature.begin());
  return a;
}

Bytes auth_message(std::string_view card_number, std::uint32_t counter, bool pin_verified, ByteView challenge) {
  Bytes m(as_bytes("skillcard/card-auth/v1").begin(), as_bytes("skillcard/card-auth/v1").end());
  m.push_back(0x00);
  const auto number = as_bytes(card_number);
  m.insert(m.end(), number.begin(), number.end());
  append_be(m, counter, 4);
  m.push_back(pin_verified ? 0x01 : 0x00);
  m.insert(m.end(), challenge.begin(), challenge.end());
  return m;
}

}  // namespace skillcard::host
