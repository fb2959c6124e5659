// A signing key behind an interface (docs/design.md, "Where keys live"): the service and the
// tools sign through Signer, so that an HSM can replace the PEM file without touching callers.
#pragma once

#include <filesystem>
#include <memory>

#include "skillcard/crypto/openssl.hpp"

namespace skillcard::crypto {

class Signer {
 public:
  virtual ~Signer() = default;
  virtual const EcPublicKey& public_key() const = 0;
  virtual const Kid& kid() const = 0;
  // ES256: SHA-256 then ECDSA P-256, raw r || s.
  virtual EcSignature sign(ByteView message) const = 0;
};

// A Signer over a private key held in memory, loaded from a PEM/DER key file.
class KeyFileSigner final : public Signer {
 public:
  explicit KeyFileSigner(OpenSsl::PrivateKey key);
  static std::unique_ptr<KeyFileSigner> load(const std::filesystem::path& path);  // KeyFileError

  const EcPublicKey& public_key() const override { return public_key_; }
  const Kid& kid() const override { return kid_; }
  EcSignature sign(ByteView message) const override { return key_.sign(message); }

 private:
  OpenSsl::PrivateKey key_;
  EcPublicKey public_key_;
  Kid kid_;
};

}  // namespace skillcard::crypto
