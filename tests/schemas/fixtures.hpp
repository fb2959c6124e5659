// Sample structures for the schema tests (values from the design note's examples).
#pragma once

#include "formats/examples.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/trust_list.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::schemas::test {

// One set of sample values for the tests and for docs/formats.md (tools/formats/examples.hpp).
inline constexpr std::uint64_t kNow = examples::kNow;  // 2026-11-29 (UTC)

inline VoucherClaims sample_voucher() { return examples::voucher(); }
// The largest voucher the format allows: 4 eligible codes, 4-byte integers, uint16 hours.
inline VoucherClaims worst_case_voucher() { return examples::voucher_worst(); }
inline ReceiptClaims sample_receipt() { return examples::receipt(); }

inline CardCertificateClaims sample_card_certificate(const crypto::EcPublicKey& receipt_key,
                                                     const crypto::EcPublicKey& auth_key) {
  return {"4201000001", 420100, receipt_key.compressed(), auth_key.compressed(), kNow, kNow + 10 * 365 * 86400ull};
}

inline CertificateRecord sample_record() { return examples::record(); }

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
