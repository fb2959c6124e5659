// Sample structures for the schema tests (values from the design note's examples).
#pragma once

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/trust_list.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::schemas::test {

inline constexpr std::uint64_t kNow = 1796000000;  // 2026-11-29 (UTC)

inline VoucherClaims sample_voucher() {
  VoucherClaims c;
  c.issuer = 420100;
  c.id = {0, 0, 0, 0, 0, 0, 0, 1};
  c.holder = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00};
  c.programme = Programme::KeyGroupEmploymentSkills;
  c.occupation = 4040505;
  c.level = 4;
  c.fund = FundSource::EmploymentSubsidyFund;
  c.face_value_fen = 180000;
  c.planned_hours = 120;
  c.planned_online_hours = 36;
  c.eligible_regions = {420100};
  c.eligible_providers = {10001};
  c.issued_at = kNow;
  c.not_before = kNow;
  c.expires_at = kNow + 92 * 86400;
  return c;
}

// The largest voucher the format allows: 4 eligible codes, 4-byte integers, uint16 hours.
inline VoucherClaims worst_case_voucher() {
  auto c = sample_voucher();
  c.occupation = 9999999;
  c.face_value_fen = 0xFFFFFFFF;
  c.planned_hours = 65535;
  c.planned_online_hours = 65535;
  c.eligible_regions = {420100, 420500};
  c.eligible_providers = {4000000000u, 4000000001u};
  c.issued_at = c.not_before = 0xFFFFFFFF - 1;
  c.expires_at = 0xFFFFFFFF;
  return c;
}

inline ReceiptClaims sample_receipt() {
  ReceiptClaims c;
  c.voucher = {0, 0, 0, 0, 0, 0, 0, 1};
  c.site = 10001;
  c.nonce.fill(0x5A);
  c.nonce[0] = 0x01;
  c.counter = 1;
  c.terminal_time = kNow + 3600;
  c.classroom_hours = 84;
  c.online_hours = 36;
  return c;
}

inline CardCertificateClaims sample_card_certificate(const crypto::EcPublicKey& receipt_key,
                                                     const crypto::EcPublicKey& auth_key) {
  return {"4201000001", 420100, receipt_key.compressed(), auth_key.compressed(), kNow, kNow + 10 * 365 * 86400ull};
}

inline CertificateRecord sample_record() {
  return {
      CertificateKind::SkillLevel, 4040505, 4, "武汉市职业技能鉴定中心", "4201202611000123", 20785, Bytes(16, 0xA5)};
}

inline SignFunction signer(const crypto::OpenSsl::PrivateKey& key) {
  return [&key](ByteView tbs) { return key.sign(tbs); };
}

inline Verifier verifier(const crypto::EcPublicKey& key) {
  return [key](ByteView tbs, const crypto::EcSignature& sig) { return crypto::OpenSsl::verify(key, tbs, sig); };
}

template <class F>
DecodeErrorKind refusal_kind(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const DecodeError& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  throw std::logic_error("expected a DecodeError");
}

}  // namespace skillcard::schemas::test
