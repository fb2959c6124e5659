// COSE_Sign1 decoding, Sig_structure, verification order and signing.
#include "skillcard/schemas/cose.hpp"

#include <cstring>

#include "cbor_strict.hpp"

namespace skillcard::schemas {

namespace {

using K = DecodeErrorKind;
constexpr std::int64_t kLabelAlg = 1;
constexpr std::int64_t kLabelContentType = 3;
constexpr std::int64_t kLabelKid = 4;

void append_bstr(Bytes& out, ByteView value) {
  unsigned char head[9];
  const std::size_t n = cbor_encode_bytestring_start(value.size(), head, sizeof head);
  out.insert(out.end(), head, head + n);
  out.insert(out.end(), value.begin(), value.end());
}

std::string describe_kid(const Bytes& kid) { return kid.empty() ? "empty" : to_hex(kid); }

bool is_label(const cbor::Node* key, std::int64_t label) {
  return cbor::is_int(key) && key->value <= static_cast<std::uint64_t>(INT64_MAX) &&
         cbor::as_int(key, "COSE header label") == label;
}

}  // namespace

std::string_view to_string(CoseFailure failure) noexcept {
  switch (failure) {
    case CoseFailure::None:
      return "verified";
    case CoseFailure::WrongTag:
      return "wrong CBOR tag";
    case CoseFailure::AlgorithmNotProtected:
      return "algorithm not in the protected header";
    case CoseFailure::AlgorithmMissing:
      return "no algorithm";
    case CoseFailure::UnsupportedAlgorithm:
      return "unsupported algorithm";
    case CoseFailure::BadSignature:
      return "bad signature";
  }
  return "unknown";
}

CoseSign1 CoseSign1::decode(ByteView encoded, std::size_t max_size) {
  CoseSign1 out;
  const auto root = cbor::load(encoded, {max_size, 8}, "COSE_Sign1", &out.tag_);
  const cbor::Node* body = root.root();
  if (body->major != cbor::Major::Array || body->value != 4) {
    throw DecodeError(K::WrongType, "COSE_Sign1", "must be an array of 4 items");
  }
  const auto items = cbor::as_array(body, "COSE_Sign1");

  const auto protected_bytes = cbor::as_bytes(items[0], "COSE_Sign1 protected header");
  out.protected_.assign(protected_bytes.begin(), protected_bytes.end());
  if (!out.protected_.empty()) {
    const auto header = cbor::load(out.protected_, {1024, 4}, "COSE_Sign1 protected header");
    if (header.root()->major != cbor::Major::Map) {
      throw DecodeError(K::WrongType, "COSE_Sign1 protected header",
                        std::string("expected map, got ") + cbor::type_name(header.root()));
    }
    const auto pairs = cbor::as_map(header.root(), "COSE_Sign1 protected header");
    out.protected_count_ = pairs.size();
    for (const auto& [key, value] : pairs) {
      if (is_label(key, kLabelAlg)) {
        if (value->major == cbor::Major::Text) {
          out.alg_text_ = true;
          out.alg_text_value_ = std::string(cbor::as_text(value, "COSE alg"));
        } else {
          out.alg_ = cbor::as_int(value, "COSE_Sign1 protected header alg");
        }
      } else if (is_label(key, kLabelContentType)) {
        if (value->major == cbor::Major::Text) {
          out.content_type_ = std::string(cbor::as_text(value, "COSE content type"));
        } else {
          out.content_type_ = cbor::as_uint(value, "COSE_Sign1 protected header content type");
        }
      } else if (is_label(key, kLabelKid)) {
        const auto kid = cbor::as_bytes(value, "COSE_Sign1 protected header kid");
        out.kid_ = Bytes(kid.begin(), kid.end());
      }
    }
  }

  if (items[1]->major != cbor::Major::Map) {
    throw DecodeError(K::WrongType, "COSE_Sign1 unprotected header", "expected map");
  }
  const auto unprotected = cbor::as_map(items[1], "COSE_Sign1 unprotected header");
  out.unprotected_count_ = unprotected.size();
  for (const auto& [key, value] : unprotected) {
    if (is_label(key, kLabelAlg)) out.alg_unprotected_ = true;
    if (is_label(key, kLabelKid) && value->major == cbor::Major::Bytes) {
      const auto kid = cbor::as_bytes(value, "COSE_Sign1 unprotected kid");
      out.unprotected_kid_ = Bytes(kid.begin(), kid.end());
    }
  }

  if (items[2]->major == cbor::Major::Simple && items[2]->value == cbor::kSimpleNull)
    throw DecodeError(K::WrongType, "COSE_Sign1 payload", "detached payloads are not supported");
  const auto payload = cbor::as_bytes(items[2], "COSE_Sign1 payload");
  out.payload_.assign(payload.begin(), payload.end());
  const auto signature = cbor::as_bytes(items[3], "COSE_Sign1 signature");
  out.signature_.assign(signature.begin(), signature.end());
  return out;
}

Bytes CoseSign1::to_be_signed(ByteView external_aad) const {
  static constexpr std::uint8_t kContext[] = {0x84, 0x6A, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1'};
  Bytes out(std::begin(kContext), std::end(kContext));
  out.reserve(out.size() + protected_.size() + external_aad.size() + payload_.size() + 27);
  append_bstr(out, protected_);
  append_bstr(out, external_aad);
  append_bstr(out, payload_);
  return out;
}

CoseVerdict CoseSign1::verify(const Verifier& verifier, ByteView external_aad) const {
  if (tag_ && *tag_ != kCoseSign1Tag) {
    return {CoseFailure::WrongTag, "tagged " + std::to_string(*tag_) + ", expected 18 (COSE_Sign1) or no tag"};
  }
  if (!alg_ && !alg_text_) {
    if (alg_unprotected_) {
      return {CoseFailure::AlgorithmNotProtected,
              "the algorithm is only in the unprotected header, where it is not covered by the signature"};
    }
    return {CoseFailure::AlgorithmMissing, "no algorithm in the protected header"};
  }
  if (alg_text_) {
    return {CoseFailure::UnsupportedAlgorithm, "algorithm \"" + alg_text_value_ + "\", only ES256 (-7) is accepted"};
  }
  if (*alg_ != kAlgEs256) {
    return {CoseFailure::UnsupportedAlgorithm, "algorithm " + std::to_string(*alg_) + ", only ES256 (-7) is accepted"};
  }
  if (signature_.size() != 64) {
    return {CoseFailure::BadSignature, "ES256 signature must be 64 bytes, got " + std::to_string(signature_.size())};
  }
  crypto::EcSignature sig{};
  std::memcpy(sig.data(), signature_.data(), sig.size());
  if (!verifier(to_be_signed(external_aad), sig)) {
    return {CoseFailure::BadSignature, "the signature does not verify with the signer's key"};
  }
  return {};
}

crypto::Kid CoseSign1::require_skillcard_profile(const std::optional<ContentType>& content_type,
                                                 std::string_view what) const {
  const std::string field = std::string(what) + " COSE header";
  if (tag_ && *tag_ != kCoseSign1Tag) {
    throw DecodeError(K::WrongTag, std::string(what), "tagged " + std::to_string(*tag_) + ", expected 18");
  }
  if (!alg_ || *alg_ != kAlgEs256) throw DecodeError(K::ProfileViolation, field, "protected alg must be ES256 (-7)");
  if (!kid_ || kid_->size() != 8) {
    throw DecodeError(K::ProfileViolation, field,
                      "protected kid must be 8 bytes, got " + (kid_ ? describe_kid(*kid_) : std::string("none")));
  }
  if (content_type_ != content_type) throw DecodeError(K::ProfileViolation, field, "unexpected content type");
  const std::size_t expected = content_type ? 3 : 2;
  if (protected_count_ != expected) {
    throw DecodeError(K::ProfileViolation, field,
                      std::to_string(protected_count_) + " protected parameters, expected " + std::to_string(expected));
  }
  if (unprotected_count_ != 0) throw DecodeError(K::ProfileViolation, field, "unprotected header must be empty");
  crypto::Kid kid{};
  std::memcpy(kid.data(), kid_->data(), kid.size());
  return kid;
}

Bytes CoseSign1::sign(const crypto::Kid& kid, const std::optional<ContentType>& content_type, ByteView payload,
                      const SignFunction& sign) {
  cbor::MapWriter header;
  header.item(kLabelAlg, cbor::make_int(kAlgEs256)).bytes(kLabelKid, kid);
  if (content_type) {
    if (const auto* n = std::get_if<std::uint64_t>(&*content_type)) {
      header.uint(kLabelContentType, *n);
    } else {
      header.text(kLabelContentType, std::get<std::string>(*content_type));
    }
  }
  CoseSign1 unsigned_form;
  unsigned_form.protected_ = header.encode();
  unsigned_form.payload_.assign(payload.begin(), payload.end());
  const auto signature = sign(unsigned_form.to_be_signed());

  std::vector<cbor::Item> items;
  items.push_back(cbor::make_bytes(unsigned_form.protected_));
  items.push_back(cbor::make_map({}));
  items.push_back(cbor::make_bytes(payload));
  items.push_back(cbor::make_bytes(signature));
  return cbor::serialize(cbor::make_tag(kCoseSign1Tag, cbor::make_array(std::move(items))).get());
}

}  // namespace skillcard::schemas
