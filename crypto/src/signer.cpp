// KeyFileSigner: the file-backed Signer.
#include "skillcard/crypto/signer.hpp"

#include "skillcard/crypto/key_files.hpp"

namespace skillcard::crypto {

KeyFileSigner::KeyFileSigner(OpenSsl::PrivateKey key)
    : key_(std::move(key)), public_key_(key_.public_key()), kid_(kid_of<OpenSsl>(public_key_)) {}

std::unique_ptr<KeyFileSigner> KeyFileSigner::load(const std::filesystem::path& path) {
  return std::make_unique<KeyFileSigner>(load_private_key(path));
}

}  // namespace skillcard::crypto
