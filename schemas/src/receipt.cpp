// Receipt codec (claim keys: docs/design.md, "Receipt").
#include "skillcard/schemas/receipt.hpp"

#include "codec_util.hpp"

namespace skillcard::schemas {

namespace {
constexpr std::string_view kWhat = "receipt";
constexpr std::int64_t kVersion = -1, kVoucher = 7, kSite = -20, kNonce = -21, kCounter = -22, kTime = -23,
                       kClassroom = -24, kOnline = -25;
using detail::require;
}  // namespace

void check(const ReceiptClaims& c) {
  require(c.site >= 1, kWhat, kSite, "site id", "site id 0");
  require(c.nonce[0] == static_cast<std::uint8_t>(NonceKind::Server) ||
              c.nonce[0] == static_cast<std::uint8_t>(NonceKind::Terminal),
          kWhat, kNonce, "nonce",
          "first byte must be 01 (server) or 02 (terminal), got " + to_hex(ByteView(c.nonce).first(1)));
  require(c.counter >= 1, kWhat, kCounter, "card redemption counter", "counters start at 1");
  require(c.terminal_time <= UINT32_MAX, kWhat, kTime, "terminal time", "beyond the card's 32-bit time");
}

Bytes encode_payload(const ReceiptClaims& c) {
  check(c);
  return cbor::MapWriter()
      .uint(kVersion, kReceiptFormatVersion)
      .bytes(kVoucher, c.voucher)
      .uint(kSite, c.site)
      .bytes(kNonce, c.nonce)
      .uint(kCounter, c.counter)
      .uint(kTime, c.terminal_time)
      .uint(kClassroom, c.classroom_hours)
      .uint(kOnline, c.online_hours)
      .encode();
}

ReceiptClaims decode_receipt_claims(ByteView payload) {
  const auto item = cbor::load(payload, {kMaxReceipt, 4}, kWhat);
  cbor::MapReader r(item.root(), std::string(kWhat));
  r.version(kReceiptFormatVersion);
  ReceiptClaims c;
  c.voucher = detail::to_array<8>(r.bytes(kVoucher, "voucher id", 8, 8));
  c.site = detail::narrow<std::uint32_t>(r.uint(kSite, "site id", 0, UINT32_MAX));
  c.nonce = detail::to_array<17>(r.bytes(kNonce, "nonce", 17, 17));
  c.counter = detail::narrow<std::uint32_t>(r.uint(kCounter, "card redemption counter", 0, UINT32_MAX));
  c.terminal_time = r.uint(kTime, "terminal time", 0, UINT32_MAX);  // the card keeps times as uint32
  c.classroom_hours = detail::narrow<std::uint16_t>(r.uint(kClassroom, "classroom hours", 0, UINT16_MAX));
  c.online_hours = detail::narrow<std::uint16_t>(r.uint(kOnline, "online hours", 0, UINT16_MAX));
  r.finish();
  detail::check_decoded(c);
  return c;
}

Bytes sign_receipt(const ReceiptClaims& claims, const crypto::Kid& kid, const SignFunction& sign) {
  auto receipt = CoseSign1::sign(kid, ContentType{kReceiptContentType}, encode_payload(claims), sign);
  if (receipt.size() > kMaxReceipt) throw std::invalid_argument("receipt would exceed 200 bytes");
  return receipt;
}

Signed<ReceiptClaims> decode_receipt(ByteView receipt) {
  return detail::decode_signed<ReceiptClaims>(receipt, kMaxReceipt, ContentType{kReceiptContentType}, kWhat,
                                              decode_receipt_claims);
}

}  // namespace skillcard::schemas
