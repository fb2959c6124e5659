// GlobalPlatform SCP03 key derivation (Card Specification v2.3 Amendment D, "data derivation scheme"): NIST SP
// 800-108 KDF in counter mode with AES-CMAC as PRF, in GlobalPlatform's input layout. OpenSSL
// 3.0's KBKDF puts the counter first and cannot produce this layout, so it is built here on
// the backend's CMAC. Templates over the backend: card (mbedTLS) and host (OpenSSL) share it.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "skillcard/crypto/backend.hpp"

namespace skillcard::crypto::scp03 {

// Derivation constants (Amendment D, data derivation constants).
enum class Constant : std::uint8_t {
  CardCryptogram = 0x00,
  HostCryptogram = 0x01,
  CardChallenge = 0x02,
  SEnc = 0x04,
  SMac = 0x06,
  SRmac = 0x07,
  // skillcard's own, outside GlobalPlatform's range: per-card diversification of a role's
  // master key, one constant per key type (docs/design.md, "Per-card keys").
  DiversifyEnc = 0x41,
  DiversifyMac = 0x42,
  DiversifyDek = 0x43,
};

// KDF(key, constant, L bits, context): for i = 1.., PRF(key, 00*11 || constant || 00 || L || i
// || context), concatenated and cut to L bits. L is a multiple of 8 here.
template <CryptoBackend B>
SecretBytes kdf(ByteView key, Constant constant, std::uint16_t length_bits, ByteView context) {
  if (length_bits == 0 || length_bits % 8 != 0)
    throw std::invalid_argument("SCP03 KDF: L must be a positive multiple of 8");
  // The block counter i is one byte: 255 blocks of 128 bits at most, or blocks would repeat.
  if (length_bits > 255u * 128u) throw std::invalid_argument("SCP03 KDF: L must be at most 32640 bits");
  const std::size_t out_len = length_bits / 8u;
  Bytes input(16 + context.size(), 0);
  input[11] = static_cast<std::uint8_t>(constant);
  input[12] = 0x00;  // separation indicator
  input[13] = static_cast<std::uint8_t>(length_bits >> 8);
  input[14] = static_cast<std::uint8_t>(length_bits & 0xFF);
  std::copy(context.begin(), context.end(), input.begin() + 16);
  SecretBytes out(out_len);
  std::size_t produced = 0;
  for (std::uint8_t i = 1; produced < out_len; ++i) {
    input[15] = i;
    auto block = B::aes_cmac(key, input);
    const auto n = std::min(block.size(), out_len - produced);
    std::copy_n(block.begin(), n, out.data() + produced);
    produced += n;
    secure_wipe(block.data(), block.size());
  }
  return out;
}

using Challenge = std::array<std::uint8_t, 8>;
using Cryptogram = std::array<std::uint8_t, 8>;

// The session keys of one SCP03 session (S8 mode).
struct SessionKeys {
  SecretBytes s_enc;
  SecretBytes s_mac;
  SecretBytes s_rmac;
};

template <CryptoBackend B>
SessionKeys derive_session_keys(ByteView k_enc, ByteView k_mac, const Challenge& host, const Challenge& card) {
  std::array<std::uint8_t, 16> context{};
  std::copy(host.begin(), host.end(), context.begin());
  std::copy(card.begin(), card.end(), context.begin() + 8);
  const auto bits = static_cast<std::uint16_t>(k_enc.size() * 8);
  return SessionKeys{kdf<B>(k_enc, Constant::SEnc, bits, context), kdf<B>(k_mac, Constant::SMac, bits, context),
                     kdf<B>(k_mac, Constant::SRmac, bits, context)};
}

namespace detail {
template <CryptoBackend B>
Cryptogram cryptogram(ByteView s_mac, Constant which, const Challenge& host, const Challenge& card) {
  std::array<std::uint8_t, 16> context{};
  std::copy(host.begin(), host.end(), context.begin());
  std::copy(card.begin(), card.end(), context.begin() + 8);
  const auto full = kdf<B>(s_mac, which, 64, context);
  Cryptogram out{};
  std::copy_n(full.data(), out.size(), out.begin());
  return out;
}
}  // namespace detail

template <CryptoBackend B>
Cryptogram card_cryptogram(ByteView s_mac, const Challenge& host, const Challenge& card) {
  return detail::cryptogram<B>(s_mac, Constant::CardCryptogram, host, card);
}

template <CryptoBackend B>
Cryptogram host_cryptogram(ByteView s_mac, const Challenge& host, const Challenge& card) {
  return detail::cryptogram<B>(s_mac, Constant::HostCryptogram, host, card);
}

// Pseudo-random card challenge (Amendment D, i-parameter bit b5 set): KDF(K-ENC, 0x02, 64, sequence counter
// (3 bytes) || AID of the invoking application).
template <CryptoBackend B>
Challenge pseudo_random_card_challenge(ByteView k_enc, std::uint32_t sequence_counter, ByteView aid) {
  Bytes context{static_cast<std::uint8_t>(sequence_counter >> 16), static_cast<std::uint8_t>(sequence_counter >> 8),
                static_cast<std::uint8_t>(sequence_counter)};
  context.insert(context.end(), aid.begin(), aid.end());
  const auto full = kdf<B>(k_enc, Constant::CardChallenge, 64, context);
  Challenge out{};
  std::copy_n(full.data(), out.size(), out.begin());
  return out;
}

enum class KeyType : std::uint8_t { Enc = 0x01, Mac = 0x02, Dek = 0x03 };

// Per-card static key of one role: KDF(master, 0x40 + type, 128, "SKCD" || card number).
// A leaked card key reveals nothing about other cards; the master never leaves the key store.
template <CryptoBackend B>
SecretBytes diversify_card_key(ByteView role_master, KeyType type, std::string_view card_number) {
  Bytes context{'S', 'K', 'C', 'D'};
  context.insert(context.end(), card_number.begin(), card_number.end());
  const auto constant = static_cast<Constant>(0x40 + static_cast<std::uint8_t>(type));
  return kdf<B>(role_master, constant, static_cast<std::uint16_t>(role_master.size() * 8), context);
}

}  // namespace skillcard::crypto::scp03
