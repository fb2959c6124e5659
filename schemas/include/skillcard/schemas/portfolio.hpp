// The lifelong e-portfolio (P14): certificate records, and the MSO-like portfolio digest the
// portfolio signer issues over their salted SHA-256 digests (docs/design.md, "Portfolio digest",
// "Certificate record").
#pragma once

#include <string>
#include <vector>

#include "skillcard/schemas/common.hpp"

namespace skillcard::schemas {

struct CertificateRecord {
  CertificateKind kind = CertificateKind::TrainingCertificate;
  std::uint32_t occupation = 0;
  std::uint8_t level = 5;
  std::string issuer;           // UTF-8, e.g. a Chinese institution name
  std::string number;           // the certificate's own number
  std::uint32_t date_days = 0;  // days since 1970-01-01
  Bytes salt;                   // 16..32 random bytes
  bool operator==(const CertificateRecord&) const = default;
};

struct PortfolioDigestClaims {
  HolderRef holder{};
  std::uint32_t digest_version = 0;  // monotonic per holder
  std::vector<Digest> digests;       // SHA-256 of each encoded CertificateRecord
  std::uint64_t issued_at = 0;
  std::uint64_t expires_at = 0;
  bool operator==(const PortfolioDigestClaims&) const = default;
};

inline constexpr std::uint64_t kCertificateRecordFormatVersion = 1;
inline constexpr std::uint64_t kPortfolioDigestFormatVersion = 1;
// 11 digests fill the card's 510 bytes (docs/design.md N-3).
inline constexpr std::size_t kMaxPortfolioDigests = 11;

void check(const CertificateRecord& record);
Bytes encode(const CertificateRecord& record);  // the bytes whose SHA-256 goes in the digest
CertificateRecord decode_certificate_record(ByteView encoded);

void check(const PortfolioDigestClaims& claims);
Bytes encode_payload(const PortfolioDigestClaims& claims);
PortfolioDigestClaims decode_portfolio_digest_claims(ByteView payload);

Bytes sign_portfolio_digest(const PortfolioDigestClaims& claims, const crypto::Kid& kid, const SignFunction& sign);
Signed<PortfolioDigestClaims> decode_portfolio_digest(ByteView digest);

}  // namespace skillcard::schemas
