// COSE_Sign1 (RFC 9052 §4.2) with ES256, verified over the bytes received (never re-encoded).
// skillcard's profile is stricter than COSE where that is safer: `alg` must be in the protected
// header, and only ES256 is accepted. Our own tokens add more (see require_skillcard_profile).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "skillcard/crypto/types.hpp"
#include "skillcard/iso7816/bytes.hpp"
#include "skillcard/schemas/errors.hpp"

namespace skillcard::schemas {

inline constexpr std::uint64_t kCoseSign1Tag = 18;
inline constexpr std::int64_t kAlgEs256 = -7;

// Why a COSE_Sign1 was refused, in the order the checks run: framing (tag), algorithm, then
// the signature. The algorithm is checked before the signature so that an unsupported or
// unprotected algorithm is never "verified" with the wrong code path.
enum class CoseFailure {
  None,
  WrongTag,               // tagged with something other than 18
  AlgorithmNotProtected,  // alg only in the unprotected header
  AlgorithmMissing,       // no alg at all
  UnsupportedAlgorithm,   // alg present but not ES256
  BadSignature,           // the signature does not verify (or is not 64 bytes)
};
std::string_view to_string(CoseFailure failure) noexcept;

struct CoseVerdict {
  CoseFailure failure = CoseFailure::None;
  std::string reason;  // words for a person: what was found, what was expected
  bool ok() const noexcept { return failure == CoseFailure::None; }
};

// Checks a signature over the to-be-signed bytes (the Sig_structure); e.g. a lambda calling
// OpenSsl::verify with a cached key, or MbedTls::verify on the card.
using Verifier = std::function<bool(ByteView to_be_signed, const crypto::EcSignature& signature)>;
// Produces an ES256 signature over the to-be-signed bytes (a Signer, an HSM, the card's key).
using SignFunction = std::function<crypto::EcSignature(ByteView to_be_signed)>;

// The content type of a protected header: a CoAP content-format number or a media type.
using ContentType = std::variant<std::uint64_t, std::string>;

class CoseSign1 {
 public:
  // Parses the structure strictly (deterministic CBOR, definite lengths, no trailing bytes,
  // at most max_size bytes) without judging tag or algorithm: those are verify()'s verdict.
  // Throws DecodeError if it is not a COSE_Sign1 array at all.
  static CoseSign1 decode(ByteView encoded, std::size_t max_size = 64 * 1024);

  // Builds a tagged COSE_Sign1 in skillcard's profile: protected {1: -7, [3: content type,]
  // 4: kid}, unprotected empty, the payload embedded.
  static Bytes sign(const crypto::Kid& kid, const std::optional<ContentType>& content_type, ByteView payload,
                    const SignFunction& sign);

  // Sig_structure ["Signature1", protected, external_aad, payload] from the received bytes.
  Bytes to_be_signed(ByteView external_aad = {}) const;
  // Tag, algorithm, then signature, in that order.
  CoseVerdict verify(const Verifier& verifier, ByteView external_aad = {}) const;

  std::optional<std::uint64_t> tag() const noexcept { return tag_; }
  ByteView protected_bytes() const noexcept { return protected_; }
  ByteView payload() const noexcept { return payload_; }
  ByteView signature() const noexcept { return signature_; }
  // Protected header parameters (all protected unless said otherwise).
  std::optional<std::int64_t> algorithm() const noexcept { return alg_; }
  const std::optional<Bytes>& kid() const noexcept { return kid_; }
  const std::optional<Bytes>& unprotected_kid() const noexcept { return unprotected_kid_; }
  const std::optional<ContentType>& content_type() const noexcept { return content_type_; }
  bool unprotected_empty() const noexcept { return unprotected_count_ == 0; }
  // Number of protected header parameters (to refuse extra ones in our profile).
  std::size_t protected_count() const noexcept { return protected_count_; }

  // skillcard's profile for its own structures: tag 18 (or untagged), protected header exactly
  // {1: -7, 4: kid (8 bytes)} plus content type when `content_type` is given (and then
  // required), unprotected header empty. Throws DecodeError (ProfileViolation or WrongTag).
  crypto::Kid require_skillcard_profile(const std::optional<ContentType>& content_type, std::string_view what) const;

 private:
  std::optional<std::uint64_t> tag_;
  Bytes protected_;
  Bytes payload_;
  Bytes signature_;
  std::optional<std::int64_t> alg_;
  bool alg_text_ = false;       // alg given as a text string (never supported)
  std::string alg_text_value_;  // for the message
  bool alg_unprotected_ = false;
  std::optional<Bytes> kid_;
  std::optional<Bytes> unprotected_kid_;
  std::optional<ContentType> content_type_;
  std::size_t protected_count_ = 0;
  std::size_t unprotected_count_ = 0;
};

}  // namespace skillcard::schemas
