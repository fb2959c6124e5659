// The card key certificate (docs/design.md, "Card certificate"): the card CA binds a card
// number and region to the card's RECEIPT and AUTH public keys (SEC1 compressed points).
#pragma once

#include <string>

#include "skillcard/schemas/common.hpp"

namespace skillcard::schemas {

struct CardCertificateClaims {
  std::string card_number;  // 10 ASCII digits
  std::uint32_t region = 0;
  CompressedPoint receipt_key{};
  CompressedPoint auth_key{};
  std::uint64_t not_before = 0;
  std::uint64_t not_after = 0;
  bool operator==(const CardCertificateClaims&) const = default;
};

inline constexpr std::uint64_t kCardCertificateFormatVersion = 1;

void check(const CardCertificateClaims& claims);
Bytes encode_payload(const CardCertificateClaims& claims);
CardCertificateClaims decode_card_certificate_claims(ByteView payload);

Bytes sign_card_certificate(const CardCertificateClaims& claims, const crypto::Kid& kid, const SignFunction& sign);
Signed<CardCertificateClaims> decode_card_certificate(ByteView certificate);

}  // namespace skillcard::schemas
