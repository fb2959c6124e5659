// The card-signed redemption receipt (docs/design.md, "Receipt"): what the card's RECEIPT key
// signs at REDEEM, kept on the card and sent to the service.
#pragma once

#include "skillcard/schemas/common.hpp"

namespace skillcard::schemas {

struct ReceiptClaims {
  VoucherId voucher{};
  std::uint32_t site = 0;
  Nonce nonce{};  // byte 0: NonceKind
  std::uint32_t counter = 0;
  std::uint64_t terminal_time = 0;
  std::uint16_t classroom_hours = 0;
  std::uint16_t online_hours = 0;
  NonceKind nonce_kind() const noexcept { return static_cast<NonceKind>(nonce[0]); }
  bool operator==(const ReceiptClaims&) const = default;
};

inline constexpr std::uint64_t kReceiptFormatVersion = 1;

void check(const ReceiptClaims& claims);
Bytes encode_payload(const ReceiptClaims& claims);
ReceiptClaims decode_receipt_claims(ByteView payload);

Bytes sign_receipt(const ReceiptClaims& claims, const crypto::Kid& kid, const SignFunction& sign);
Signed<ReceiptClaims> decode_receipt(ByteView receipt);

}  // namespace skillcard::schemas
