// Value types shared by both crypto backends: secrets that wipe themselves, digests, P-256
// public keys and raw signatures, key ids, and the crypto error types.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include "skillcard/iso7816/call_site.hpp"

#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::crypto {

using Sha256Digest = std::array<std::uint8_t, 32>;
using CmacTag = std::array<std::uint8_t, 16>;
// kid: the first 8 bytes of SHA-256 over the key's SubjectPublicKeyInfo DER (docs/design.md).
using Kid = std::array<std::uint8_t, 8>;
// 16-byte keyed holder reference (docs/design.md, "Holder reference").
using HolderRef = std::array<std::uint8_t, 16>;

// A failure inside a crypto library call; the message names the call and where it was made.
class CryptoError : public std::runtime_error {
 public:
  CryptoError(const std::string& what, CallSite where);
  const CallSite& where() const noexcept { return where_; }

 private:
  CallSite where_;
};

// Overwrites memory in a way the compiler may not elide (glibc explicit_bzero).
void secure_wipe(void* data, std::size_t size) noexcept;

// Wipes a buffer that holds a secret's text (a key file, a PEM) when the scope ends, however it
// ends: the buffer may leave the scope by an exception before its last use.
template <class Buffer>
class ScopedWipe {
 public:
  explicit ScopedWipe(Buffer& buffer) noexcept : buffer_(buffer) {}
  ScopedWipe(const ScopedWipe&) = delete;
  ScopedWipe& operator=(const ScopedWipe&) = delete;
  ~ScopedWipe() { secure_wipe(buffer_.data(), buffer_.size() * sizeof(*buffer_.data())); }

 private:
  Buffer& buffer_;
};

// Owned secret bytes (keys, PINs, shared secrets): wiped when destroyed or reassigned, and
// never printed. Move-only so that copies of a secret cannot linger unnoticed.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size) : bytes_(size, 0) {}
  explicit SecretBytes(ByteView bytes) : bytes_(bytes.begin(), bytes.end()) {}
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) { other.bytes_.clear(); }
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      wipe();
      bytes_ = std::move(other.bytes_);
      other.bytes_.clear();
    }
    return *this;
  }
  ~SecretBytes() { wipe(); }

  SecretBytes clone() const { return SecretBytes(view()); }
  ByteView view() const noexcept { return bytes_; }
  std::span<std::uint8_t> mutable_view() noexcept { return bytes_; }
  std::size_t size() const noexcept { return bytes_.size(); }
  bool empty() const noexcept { return bytes_.empty(); }
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  std::uint8_t* data() noexcept { return bytes_.data(); }

 private:
  void wipe() noexcept { secure_wipe(bytes_.data(), bytes_.size()); }
  Bytes bytes_;
};

// An uncompressed P-256 point (0x04 || X || Y). Construction checks only the encoding; each
// backend checks that the point is on the curve before it uses it.
class EcPublicKey {
 public:
  static constexpr std::size_t kSize = 65;
  static EcPublicKey from_uncompressed(ByteView point);  // throws std::invalid_argument
  ByteView bytes() const noexcept { return point_; }
  // SubjectPublicKeyInfo DER (RFC 5480): a fixed prefix for P-256 followed by the point.
  Bytes spki_der() const;
  // SEC1 compressed form (02/03 by the parity of Y, then X): 33 bytes, as card certificates
  // carry it. Decompressing needs curve arithmetic: OpenSsl::decompress.
  std::array<std::uint8_t, 33> compressed() const;
  bool operator==(const EcPublicKey&) const = default;

 private:
  std::array<std::uint8_t, kSize> point_{};
};

// ECDSA signature as used by COSE (RFC 9053 §2.1): r || s, 32 bytes each, big-endian.
using EcSignature = std::array<std::uint8_t, 64>;

}  // namespace skillcard::crypto
