// The example structures of docs/formats.md, shared by skillcard-formats, schemas_bench and the
// schema tests (tests/schemas/fixtures.hpp), signed with fixed example keys so that every byte is
// reproducible. The keys are scalars derived from a public label: never use them for anything real.
// Signing uses the mbedTLS backend, whose ECDSA is deterministic (RFC 6979); OpenSSL's is not.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "skillcard/crypto/backend.hpp"
#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/trust_list.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::examples {

using crypto::MbedTls;
using namespace skillcard::schemas;

inline constexpr std::uint64_t kNow = 1796000000;  // 2026-11-29 (UTC), as in the tests
inline constexpr std::uint64_t kDay = 86400;

// An example key: scalar = SHA-256("skillcard example key/" + name).
struct ExampleKey {
  std::string name;
  MbedTls::PrivateKey key;
  crypto::EcPublicKey public_key;
  crypto::Kid kid;

  explicit ExampleKey(const std::string& label)
      : name(label),
        key(MbedTls::PrivateKey::from_scalar(MbedTls::sha256(to_bytes("skillcard example key/" + label)))),
        public_key(key.public_key()),
        kid(crypto::kid_of<MbedTls>(public_key)) {}

  SignFunction signer() const {
    return [this](ByteView tbs) { return key.sign(tbs); };
  }
  Verifier verifier() const {
    return [this](ByteView tbs, const crypto::EcSignature& sig) { return MbedTls::verify(public_key, tbs, sig); };
  }

 private:
  static Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
};

struct Keys {
  ExampleKey root{"province-root-420000"};
  ExampleKey voucher_signer{"voucher-signer-420100"};
  ExampleKey card_ca{"card-ca-420000"};
  ExampleKey portfolio_signer{"portfolio-signer-420000"};
  ExampleKey card_receipt{"card-4201000001-receipt"};
  ExampleKey card_auth{"card-4201000001-auth"};
};

inline HolderRef example_holder() {
  return {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00};
}

inline VoucherClaims voucher() {
  VoucherClaims c;
  c.issuer = 420100;
  c.id = {0, 0, 0, 0, 0, 0, 0, 1};
  c.holder = example_holder();
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
  c.expires_at = kNow + 92 * kDay;
  return c;
}

// The largest token the issuer signs: 4 eligible codes of 5 bytes each, 4-byte integers where
// the card keeps uint32 (times, face value), uint16 hours.
inline VoucherClaims voucher_worst() {
  auto c = voucher();
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

inline ReceiptClaims receipt() {
  ReceiptClaims c;
  c.voucher = {0, 0, 0, 0, 0, 0, 0, 1};
  c.site = 10001;
  c.nonce.fill(0x5A);
  c.nonce[0] = static_cast<std::uint8_t>(NonceKind::Server);
  c.counter = 1;
  c.terminal_time = kNow + 3600;
  c.classroom_hours = 84;
  c.online_hours = 36;
  return c;
}

// Every field at its card-side maximum (uint32 site, counter and time; uint16 hours).
inline ReceiptClaims receipt_worst() {
  auto c = receipt();
  c.site = 0xFFFFFFFF;
  c.counter = 0xFFFFFFFF;
  c.terminal_time = 0xFFFFFFFF;
  c.classroom_hours = 65535;
  c.online_hours = 65535;
  return c;
}

inline CardCertificateClaims card_certificate(const Keys& k) {
  return {
      "4201000001",          420100, k.card_receipt.public_key.compressed(), k.card_auth.public_key.compressed(), kNow,
      kNow + 10 * 365 * kDay};
}

inline CertificateRecord record() {
  return {
      CertificateKind::SkillLevel, 4040505, 4, "武汉市职业技能鉴定中心", "4201202611000123", 20785, Bytes(16, 0xA5)};
}

inline std::vector<CertificateRecord> records() {
  auto second = record();
  second.kind = CertificateKind::TrainingCertificate;
  second.occupation = 4100101;
  second.level = 5;
  second.issuer = "武汉市第一职业培训学校";
  second.number = "PX2026-000871";
  second.date_days = 20701;
  second.salt = Bytes(16, 0x3C);
  auto third = record();
  third.kind = CertificateKind::VocationalQualification;
  third.occupation = 6260101;
  third.level = 3;
  third.issuer = "湖北省人力资源和社会保障厅";
  third.number = "S000042010000123456";
  third.date_days = 20454;
  third.salt = Bytes(16, 0x96);
  return {record(), second, third};
}

// The largest record the codec accepts: 128-byte texts, 32-byte salt, 4-byte date.
inline CertificateRecord record_worst() {
  auto r = record();
  r.occupation = 9999999;
  r.issuer = std::string(128, 'I');
  r.number = std::string(128, 'N');
  r.date_days = 0xFFFFFFFF;
  r.salt = Bytes(32, 0xA5);
  return r;
}

inline Digest digest_of(const CertificateRecord& r) { return MbedTls::sha256(encode(r)); }

inline PortfolioDigestClaims portfolio_digest() {
  PortfolioDigestClaims c;
  c.holder = example_holder();
  c.digest_version = 3;
  for (const auto& r : records()) c.digests.push_back(digest_of(r));
  c.issued_at = kNow + 7200;
  c.expires_at = c.issued_at + 3 * 365 * kDay;
  return c;
}

// 11 digests (what the card's 510 bytes hold), uint32 digest version and times.
inline PortfolioDigestClaims portfolio_digest_worst() {
  auto c = portfolio_digest();
  c.digests.clear();
  for (std::uint8_t i = 0; i < kMaxPortfolioDigests; ++i) {
    Digest d{};
    d.fill(static_cast<std::uint8_t>(0xD0 + i));
    c.digests.push_back(d);
  }
  c.digest_version = 0xFFFFFFFF;
  c.issued_at = 0xFFFFFFFF - 1;
  c.expires_at = 0xFFFFFFFF;
  return c;
}

inline TrustEntry entry_for(const ExampleKey& key, TrustRole role, std::uint32_t region) {
  return {key.public_key.spki_der(), role, region, kNow - 30 * kDay, kNow + 2 * 365 * kDay};
}

// Two entries: the bureau 420100's voucher signer and the province's card CA.
inline TrustListClaims trust_list(const Keys& k) {
  TrustListClaims c;
  c.sequence = 7;
  c.issued_at = kNow - kDay;
  c.next_update = c.issued_at + 90 * kDay;
  c.entries.emplace(k.voucher_signer.kid, entry_for(k.voucher_signer, TrustRole::Voucher, 420100));
  c.entries.emplace(k.card_ca.kid, entry_for(k.card_ca, TrustRole::CardCa, 420000));
  return c;
}

// A province's list with `n` entries (voucher signers of n - 4 bureaus, card CA, portfolio,
// audit and terminal CA signers), for sizes only.
inline TrustListClaims trust_list_of(std::size_t n) {
  TrustListClaims c;
  c.sequence = 7;
  c.issued_at = kNow - kDay;
  c.next_update = c.issued_at + 90 * kDay;
  for (std::size_t i = 0; i < n; ++i) {
    const ExampleKey key("trust-list-entry-" + std::to_string(i));
    const auto role = i < 4 ? static_cast<TrustRole>(i + 2) : TrustRole::Voucher;
    const auto region = i < 4 ? 420000u : static_cast<std::uint32_t>(420100 + 100 * (i - 4));
    c.entries.emplace(key.kid, entry_for(key, role, region));
  }
  return c;
}

}  // namespace skillcard::examples
