// Reading and writing key files (PEM or DER) for the host, the service and the tools, with a
// precise error for each way a key file can be wrong. Writes never overwrite an existing file
// and give private keys mode 0600.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "skillcard/crypto/openssl.hpp"

namespace skillcard::crypto {

class KeyFileError : public std::runtime_error {
 public:
  enum class Reason {
    Missing,        // no such file
    Unreadable,     // exists but cannot be read (permissions, a directory, ...)
    Malformed,      // not a PEM/DER key of the expected kind
    WrongCurve,     // an EC key on another curve, or not an EC key at all
    Exists,         // refusing to overwrite
    ParentMissing,  // the folder to write into does not exist
    WriteFailed,    // I/O error while writing
    TooOpen,        // a secret others may read: its mode lets them (or its group, unless root owns it)
  };
  KeyFileError(Reason reason, const std::filesystem::path& path, const std::string& detail);
  Reason reason() const noexcept { return reason_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  Reason reason_;
  std::filesystem::path path_;
};

std::string_view to_string(KeyFileError::Reason reason) noexcept;

// A P-256 private key from a PEM ("BEGIN PRIVATE KEY" / "BEGIN EC PRIVATE KEY") or DER file.
OpenSsl::PrivateKey load_private_key(const std::filesystem::path& path);
// A P-256 public key from a PEM ("BEGIN PUBLIC KEY") or DER SubjectPublicKeyInfo file.
OpenSsl::VerifyKey load_public_key(const std::filesystem::path& path);

std::string private_key_pem(const OpenSsl::PrivateKey& key);  // PKCS#8, unencrypted
std::string public_key_pem(const EcPublicKey& key);

// Creates `path` exclusively (O_CREAT | O_EXCL) with `mode` and writes `content`, flushed to
// disk before returning. Throws KeyFileError (Exists, ParentMissing, WriteFailed).
void write_new_file(const std::filesystem::path& path, std::string_view content, unsigned mode);

// write_new_file of a secret's text (mode 0600), which is wiped afterwards whatever happened.
void write_new_secret_file(const std::filesystem::path& path, std::string text);

void write_private_key(const std::filesystem::path& path, const OpenSsl::PrivateKey& key);  // 0600
void write_public_key(const std::filesystem::path& path, const EcPublicKey& key);           // 0644

// What a file read by read_key_file holds: a secret's file must be private to its owner.
enum class KeyFileKind { Public, Secret };

// Reads a whole file into one buffer (no stream buffers left holding copies of it); KeyFileError
// Missing / Unreadable / Malformed (over 1 MiB), and for a Secret TooOpen (require_private_file).
std::string read_key_file(const std::filesystem::path& path, KeyFileKind kind = KeyFileKind::Public);

// Refuses (KeyFileError TooOpen) a secret's file that others may read or write, or its group
// when the owner is not root — ssh's rule for private keys, with PostgreSQL's exception for a
// root-owned key shared with a service group (mode 0640). Also for keys OpenSSL opens itself
// (TLS keys), checked before they are handed to it.
void require_private_file(const std::filesystem::path& path);

}  // namespace skillcard::crypto
