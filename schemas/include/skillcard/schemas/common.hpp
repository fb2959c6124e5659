// Types shared by every skillcard structure: ids, enumerations of the design note, the signed
// envelope, size caps, and a CBOR diagnostic-notation printer for people.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "skillcard/crypto/types.hpp"
#include "skillcard/schemas/cose.hpp"

namespace skillcard::schemas {

using VoucherId = std::array<std::uint8_t, 8>;  // big-endian serial, unique province-wide
using HolderRef = crypto::HolderRef;            // 16 bytes (docs/design.md, "Holder reference")
using Nonce = std::array<std::uint8_t, 17>;     // type byte + 16 random bytes
using Digest = std::array<std::uint8_t, 32>;    // SHA-256
using CompressedPoint = std::array<std::uint8_t, 33>;

enum class NonceKind : std::uint8_t { Server = 0x01, Terminal = 0x02 };

// Programme types (P10). 99, train-in-place-of-work, is closed: it decodes, and policy refuses it.
enum class Programme : std::uint8_t {
  EnterpriseStaffUpgrade = 1,
  EnterpriseApprenticeship = 2,
  KeyGroupEmploymentSkills = 3,
  EntrepreneurshipGyb = 4,
  EntrepreneurshipSyb = 5,
  EntrepreneurshipIyb = 6,
  EntrepreneurshipEyb = 7,
  SpecialHighRisk = 8,
  SpecialConstruction = 9,
  SpecialIct = 10,
  CareWorker = 11,
  TrainInPlaceOfWork = 99,
};
bool is_known(Programme p) noexcept;

enum class FundSource : std::uint8_t {
  SpecialAccount = 1,
  EmploymentSubsidyFund = 2,
  UnemploymentInsuranceFund = 3,
  OtherDepartment = 4,
};

enum class CertificateKind : std::uint8_t { TrainingCertificate = 1, VocationalQualification = 2, SkillLevel = 3 };

enum class TrustRole : std::uint8_t { Voucher = 1, CardCa = 2, Portfolio = 3, Audit = 4, TerminalCa = 5 };

// Size caps, checked before any decoding (docs/design.md, "Wire formats").
inline constexpr std::size_t kMaxVoucherToken = 200;
inline constexpr std::size_t kMaxReceipt = 200;
inline constexpr std::size_t kMaxCardCertificate = 224;
inline constexpr std::size_t kMaxPortfolioDigest = 510;
inline constexpr std::size_t kMaxCertificateRecord = 512;
inline constexpr std::size_t kMaxTrustList = 64 * 1024;

// The receipt's COSE content type: a CoAP content-format number from the experimental range
// (RFC 7252 §12.3, 65000-65535), 4 bytes instead of a 31-byte media type string.
inline constexpr std::uint64_t kReceiptContentType = 65000;

// A decoded signed structure: the envelope (for verification over the received bytes), the
// signer's kid from the protected header, and the claims. Decoding does not verify: call
// envelope.verify() with the key the kid names.
template <class Claims>
struct Signed {
  CoseSign1 envelope;
  crypto::Kid kid;
  Claims claims;
};

// RFC 8949 §8 diagnostic notation of one CBOR item (for docs, tools and error reports).
// Throws DecodeError if `encoded` is not valid deterministic CBOR.
std::string to_diagnostic(ByteView encoded);

// Occupation codes: "4-04-05-05" <-> 4040505 (docs/design.md, "COSE/CWT profile").
std::uint32_t parse_occupation(std::string_view code);  // std::invalid_argument on a bad code
std::string format_occupation(std::uint32_t code);

}  // namespace skillcard::schemas
