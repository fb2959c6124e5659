// Trust list handling and the signature checks of the host.
#include "skillcard/host/trust.hpp"

#include <nlohmann/json.hpp>

#include "skillcard/host/encoding.hpp"
#include "skillcard/host/refusal.hpp"

namespace skillcard::host {

using crypto::OpenSsl;

namespace {

crypto::EcPublicKey key_from_spki(ByteView spki) {
  // A P-256 SPKI DER is a fixed 26-byte prefix and the 65-byte point (crypto::EcPublicKey).
  if (spki.size() != 91)
    throw HostRefusal("TOKEN_MALFORMED", "trust list key is not a 91-byte P-256 SPKI", {{"detail", "spki"}});
  const auto key = crypto::EcPublicKey::from_uncompressed(spki.last(65));
  if (key.spki_der() != Bytes(spki.begin(), spki.end()))
    throw HostRefusal("TOKEN_MALFORMED", "trust list key is not a P-256 SPKI", {{"detail", "spki"}});
  return key;
}

schemas::Verifier verifier_for(const crypto::EcPublicKey& key) {
  return [key](ByteView tbs, const crypto::EcSignature& sig) { return OpenSsl::verify(key, tbs, sig); };
}

}  // namespace

TrustAnchors TrustAnchors::from_trust_list(ByteView list, const crypto::EcPublicKey& root,
                                           std::optional<std::uint64_t> held_sequence) {
  schemas::Signed<schemas::TrustListClaims> decoded;
  try {
    decoded = schemas::decode_trust_list(list);
  } catch (const schemas::DecodeError& e) {
    throw HostRefusal("TOKEN_MALFORMED", e.what(), {{"detail", "trust list"}});
  }
  if (decoded.kid != crypto::kid_of<OpenSsl>(root))
    throw HostRefusal("TOKEN_UNKNOWN_KID", "trust list not signed by the pinned province root");
  if (const auto verdict = decoded.envelope.verify(verifier_for(root)); !verdict.ok())
    throw HostRefusal("TOKEN_BAD_SIGNATURE", "trust list: " + verdict.reason);
  if (schemas::first_kid_mismatch<OpenSsl>(decoded.claims))
    throw HostRefusal("TOKEN_MALFORMED", "trust list entry whose kid does not match its key", {{"detail", "kid"}});
  if (held_sequence && decoded.claims.sequence < *held_sequence)
    throw HostRefusal("TRUST_LIST_ROLLBACK", "sequence " + std::to_string(decoded.claims.sequence) + " < held " +
                                                 std::to_string(*held_sequence));
  TrustAnchors t;
  t.claims_ = std::move(decoded.claims);
  t.encoded_.assign(list.begin(), list.end());
  return t;
}

bool TrustAnchors::replaces(const TrustAnchors& held) const noexcept {
  const auto& h = held.claims();
  return claims_.sequence > h.sequence || (claims_.sequence == h.sequence && claims_.issued_at > h.issued_at);
}

void TrustAnchors::require_fresh(std::uint64_t now) const {
  if (now > claims_.next_update + kTrustListGrace)
    throw HostRefusal("TRUST_LIST_STALE", "trust list next-update passed more than 7 days ago");
}

crypto::EcPublicKey TrustAnchors::key(const crypto::Kid& kid, schemas::TrustRole role, std::uint64_t now,
                                      std::optional<std::uint32_t> region) const {
  const auto it = claims_.entries.find(kid);
  if (it == claims_.entries.end() || it->second.role != role || now < it->second.not_before ||
      now > it->second.not_after || (region && it->second.region != *region))
    throw HostRefusal("TOKEN_UNKNOWN_KID", "kid " + lower_hex(kid) + " not listed for this role and time");
  return key_from_spki(it->second.spki);
}

VerifiedCard verify_card_certificate(ByteView certificate, const TrustAnchors& trust, std::uint64_t now) {
  schemas::Signed<schemas::CardCertificateClaims> decoded;
  try {
    decoded = schemas::decode_card_certificate(certificate);
  } catch (const schemas::DecodeError& e) {
    throw HostRefusal("CARD_PROOF_INVALID", std::string("card certificate: ") + e.what());
  }
  const auto ca = trust.key(decoded.kid, schemas::TrustRole::CardCa, now);
  if (const auto verdict = decoded.envelope.verify(verifier_for(ca)); !verdict.ok())
    throw HostRefusal("CARD_PROOF_INVALID", "card certificate signature: " + verdict.reason);
  if (now < decoded.claims.not_before || now > decoded.claims.not_after)
    throw HostRefusal("CARD_PROOF_INVALID", "card certificate outside its validity");
  try {
    return VerifiedCard{Bytes(certificate.begin(), certificate.end()), decoded.claims,
                        OpenSsl::decompress(decoded.claims.auth_key), OpenSsl::decompress(decoded.claims.receipt_key)};
  } catch (const std::invalid_argument& e) {
    throw HostRefusal("CARD_PROOF_INVALID", std::string("card certificate key: ") + e.what());
  }
}

std::string CardProof::to_json() const {
  nlohmann::json j = {{"card", card},
                      {"nonce", lower_hex(nonce)},
                      {"counter", counter},
                      {"pin_verified", pin_verified},
                      {"signature", base64url_encode(signature)}};
  return j.dump();
}

std::string CardProof::header_value() const {
  const auto text = to_json();
  return base64url_encode(as_bytes(text));
}

CardProof verify_internal_authenticate(const VerifiedCard& card, const AuthAnswer& answer, const Nonce& nonce) {
  const auto message = auth_message(card.claims.card_number, answer.counter, answer.pin_verified, nonce);
  if (!OpenSsl::verify(card.auth_key, message, answer.signature))
    throw HostRefusal("CARD_PROOF_INVALID", "INTERNAL AUTHENTICATE signature does not verify with the card's auth key");
  return CardProof{card.claims.card_number, nonce, answer.counter, answer.pin_verified, answer.signature};
}

schemas::PortfolioDigestClaims verify_portfolio_digest(ByteView digest, const TrustAnchors& trust, std::uint64_t now) {
  schemas::Signed<schemas::PortfolioDigestClaims> decoded;
  try {
    decoded = schemas::decode_portfolio_digest(digest);
  } catch (const schemas::DecodeError& e) {
    throw HostRefusal("TOKEN_MALFORMED", e.what(), {{"detail", "portfolio digest"}});
  }
  const auto key = trust.key(decoded.kid, schemas::TrustRole::Portfolio, now);
  if (const auto verdict = decoded.envelope.verify(verifier_for(key)); !verdict.ok())
    throw HostRefusal("TOKEN_BAD_SIGNATURE", "portfolio digest: " + verdict.reason);
  return decoded.claims;
}

schemas::VoucherClaims verify_voucher_token(ByteView token, const TrustAnchors& trust, std::uint64_t now) {
  schemas::Signed<schemas::VoucherClaims> decoded;
  try {
    decoded = schemas::decode_voucher_token(token);
  } catch (const schemas::DecodeError& e) {
    throw HostRefusal("TOKEN_MALFORMED", e.what(), {{"detail", "voucher token"}});
  }
  const auto key = trust.key(decoded.kid, schemas::TrustRole::Voucher, now, decoded.claims.issuer);
  if (const auto verdict = decoded.envelope.verify(verifier_for(key)); !verdict.ok())
    throw HostRefusal("TOKEN_BAD_SIGNATURE", "voucher token: " + verdict.reason);
  return decoded.claims;
}

}  // namespace skillcard::host
