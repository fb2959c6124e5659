// The voucher token (docs/design.md, "Voucher token"): CWT-style claims with compact integer
// keys in a COSE_Sign1 by the issuing bureau's voucher signer; at most 200 bytes in all.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "skillcard/schemas/common.hpp"

namespace skillcard::schemas {

struct VoucherClaims {
  std::uint32_t issuer = 0;  // issuing bureau's region code (iss)
  VoucherId id{};            // cti
  HolderRef holder{};        // sub
  Programme programme = Programme::KeyGroupEmploymentSkills;
  std::uint32_t occupation = 0;  // 7 digits, e.g. 4040505
  std::uint8_t level = 5;        // 1 (senior technician) .. 5 (entry)
  FundSource fund = FundSource::SpecialAccount;
  std::uint32_t face_value_fen = 0;
  std::uint16_t planned_hours = 0;
  std::uint16_t planned_online_hours = 0;
  std::vector<std::uint32_t> eligible_regions;    // ascending; with providers at most 4 codes
  std::vector<std::uint32_t> eligible_providers;  // ascending
  std::uint64_t issued_at = 0;                    // UTC seconds
  std::uint64_t not_before = 0;
  std::uint64_t expires_at = 0;
  bool operator==(const VoucherClaims&) const = default;
};

inline constexpr std::uint64_t kVoucherFormatVersion = 1;

// Whether a site in `site_region` is in one of a voucher's eligible regions: the region itself,
// or its city or province (GB/T 2260: xxxx00, xx0000), since a voucher for a city or province is
// good in its counties. The service's policy (P15) and the site terminal apply the same rule.
bool region_eligible(std::span<const std::uint32_t> eligible, std::uint32_t site_region) noexcept;

// Throws std::invalid_argument naming the field when the claims are outside the format.
void check(const VoucherClaims& claims);
Bytes encode_payload(const VoucherClaims& claims);
VoucherClaims decode_voucher_claims(ByteView payload);  // DecodeError

Bytes sign_voucher(const VoucherClaims& claims, const crypto::Kid& kid, const SignFunction& sign);
Signed<VoucherClaims> decode_voucher_token(ByteView token);  // DecodeError; does not verify

}  // namespace skillcard::schemas
