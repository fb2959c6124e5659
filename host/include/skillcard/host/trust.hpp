// What a terminal trusts: the province root it pins at installation and the signed trust list
// it holds (docs/design.md, "Trust list, rotation and offline terminals"), and the checks built
// on it: card certificates (role card-ca), INTERNAL AUTHENTICATE answers (the certificate's auth
// key), portfolio digests (role portfolio) and voucher tokens (role voucher, bureau = iss).
// Every failure is a HostRefusal with a catalogue code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/host/card_commands.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/trust_list.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::host {

// Grace after next-update before an offline terminal refuses to act.
inline constexpr std::uint64_t kTrustListGrace = 7 * 86'400;

class TrustAnchors {
 public:
  // Decodes the list, checks the root's signature, every kid against its key, and (when a
  // list is already held) that the sequence does not go back. Throws HostRefusal
  // TOKEN_BAD_SIGNATURE / TOKEN_MALFORMED / TRUST_LIST_ROLLBACK.
  static TrustAnchors from_trust_list(ByteView list, const crypto::EcPublicKey& root,
                                      std::optional<std::uint64_t> held_sequence = std::nullopt);

  const schemas::TrustListClaims& claims() const noexcept { return claims_; }
  const Bytes& encoded() const noexcept { return encoded_; }
  // TRUST_LIST_STALE past next-update + 7 days.
  void require_fresh(std::uint64_t now) const;
  // Whether this list (just fetched) should replace the copy a terminal holds for offline use:
  // a higher sequence, or the same sequence signed later (a list re-signed with the same
  // content and a later next-update; without this the held copy would go stale).
  bool replaces(const TrustAnchors& held) const noexcept;
  // The key of `kid` if listed with `role` and valid at `now` (and, for `region`, that region).
  // Throws HostRefusal TOKEN_UNKNOWN_KID otherwise.
  crypto::EcPublicKey key(const crypto::Kid& kid, schemas::TrustRole role, std::uint64_t now,
                          std::optional<std::uint32_t> region = std::nullopt) const;

 private:
  schemas::TrustListClaims claims_;
  Bytes encoded_;
};

// A card certificate that verified against a card-ca key of the trust list.
struct VerifiedCard {
  Bytes certificate;
  schemas::CardCertificateClaims claims;
  crypto::EcPublicKey auth_key;
  crypto::EcPublicKey receipt_key;
};

// Throws HostRefusal CARD_PROOF_INVALID (bad signature, expired, not a certificate) or
// TOKEN_UNKNOWN_KID (signer not a card CA on the list).
VerifiedCard verify_card_certificate(ByteView certificate, const TrustAnchors& trust, std::uint64_t now);

// The card proof of the contract (INTERNAL AUTHENTICATE over a server nonce).
struct CardProof {
  std::string card;  // 10 digits
  Nonce nonce{};
  std::uint32_t counter = 0;
  bool pin_verified = false;
  crypto::EcSignature signature{};
  // {"card","nonce","counter","pin_verified","signature"} as JSON text.
  std::string to_json() const;
  // base64url of to_json(): the Skillcard-Card-Proof header.
  std::string header_value() const;
};

// Checks the answer's signature with the certificate's auth key over the domain-separated
// message; throws HostRefusal CARD_PROOF_INVALID. Returns the proof to send.
CardProof verify_internal_authenticate(const VerifiedCard& card, const AuthAnswer& answer, const Nonce& nonce);

// A portfolio digest signed by a portfolio key on the list; throws HostRefusal
// TOKEN_BAD_SIGNATURE / TOKEN_UNKNOWN_KID / TOKEN_MALFORMED.
schemas::PortfolioDigestClaims verify_portfolio_digest(ByteView digest, const TrustAnchors& trust, std::uint64_t now);
// A voucher token signed by the voucher signer of its bureau (kid region = iss).
schemas::VoucherClaims verify_voucher_token(ByteView token, const TrustAnchors& trust, std::uint64_t now);

}  // namespace skillcard::host
