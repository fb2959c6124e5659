// The one crypto API: every backend (OpenSSL for host/server/tools, mbedTLS for the card) is a
// struct of static functions plus PrivateKey/VerifyKey classes with exactly this shape.
// Algorithms built on top (SCP03 KDF, kid) are templates over a backend, so they are written
// once and the cross-backend tests instantiate them with both.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>

#include "skillcard/crypto/types.hpp"

namespace skillcard::crypto {

template <class B>
concept CryptoBackend = requires(ByteView v, std::span<std::uint8_t> out, const EcPublicKey& pub,
                                 const EcSignature& sig, std::size_t n, const typename B::PrivateKey& priv,
                                 const typename B::VerifyKey& vkey) {
  { B::sha256(v) } -> std::same_as<Sha256Digest>;
  { B::hmac_sha256(v, v) } -> std::same_as<Sha256Digest>;
  { B::hkdf_sha256(v, v, v, n) } -> std::same_as<SecretBytes>;
  { B::aes_cmac(v, v) } -> std::same_as<CmacTag>;
  { B::aes_cbc_encrypt(v, v, v) } -> std::same_as<Bytes>;
  { B::aes_cbc_decrypt(v, v, v) } -> std::same_as<Bytes>;
  { B::aes_ecb_encrypt(v, v) } -> std::same_as<Bytes>;
  { B::random_bytes(out) } -> std::same_as<void>;
  { B::equal_ct(v, v) } -> std::same_as<bool>;
  { B::PrivateKey::generate() } -> std::same_as<typename B::PrivateKey>;
  { B::PrivateKey::from_scalar(v) } -> std::same_as<typename B::PrivateKey>;
  { priv.public_key() } -> std::same_as<EcPublicKey>;
  { priv.sign(v) } -> std::same_as<EcSignature>;
  { priv.scalar() } -> std::same_as<SecretBytes>;
  { B::VerifyKey::parse(pub) } -> std::same_as<typename B::VerifyKey>;
  { B::verify(vkey, v, sig) } -> std::same_as<bool>;
  { B::verify(pub, v, sig) } -> std::same_as<bool>;
};

// kid of a public key (docs/design.md, "Keys and roles").
template <CryptoBackend B>
Kid kid_of(const EcPublicKey& key) {
  const auto digest = B::sha256(key.spki_der());
  Kid kid{};
  std::copy_n(digest.begin(), kid.size(), kid.begin());
  return kid;
}

}  // namespace skillcard::crypto
