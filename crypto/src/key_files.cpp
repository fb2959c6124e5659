// Key file I/O over OpenSSL's PEM/DER decoders.
#include "skillcard/crypto/key_files.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "openssl_check.hpp"

namespace skillcard::crypto {

namespace fs = std::filesystem;
using detail::ossl_check_ptr;
using detail::Owned;

namespace {

using Bio = Owned<BIO, BIO_free_all>;

std::string describe(KeyFileError::Reason reason, const fs::path& path, const std::string& detail) {
  return std::string("key file ") + path.string() + ": " + std::string(to_string(reason)) +
         (detail.empty() ? "" : " (" + detail + ")");
}

bool looks_like_pem(std::string_view text) { return text.find("-----BEGIN ") != std::string_view::npos; }

std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  std::string out = code ? ERR_reason_error_string(code) ? ERR_reason_error_string(code) : "unknown" : "no key found";
  ERR_clear_error();
  return out;
}

// A passphrase callback that never asks: without one, OpenSSL prompts on the terminal for an
// encrypted key, and a service started from a shell would hang there.
extern "C" int no_passphrase(char*, int, int, void*) { return -1; }

OpenSsl::PkeyPtr decode(const fs::path& path, const std::string& content, bool want_private) {
  Bio bio(ossl_check_ptr(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())), "BIO_new_mem_buf"));
  EVP_PKEY* key = nullptr;
  if (looks_like_pem(content)) {
    if (want_private && content.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos) {
      throw KeyFileError(KeyFileError::Reason::Malformed, path,
                         "an encrypted private key; keys are kept unencrypted, protected by their file's mode");
    }
    key = want_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr)
                       : PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr);
  } else {
    key = want_private ? d2i_PrivateKey_bio(bio.get(), nullptr) : d2i_PUBKEY_bio(bio.get(), nullptr);
  }
  if (key == nullptr) {
    throw KeyFileError(KeyFileError::Reason::Malformed, path,
                       std::string("not a ") + (want_private ? "private" : "public") + " key: " + openssl_reason());
  }
  return OpenSsl::PkeyPtr(key);
}

template <class F>
auto with_curve_check(const fs::path& path, F&& f) {
  try {
    return f();
  } catch (const CryptoError& e) {
    throw KeyFileError(KeyFileError::Reason::WrongCurve, path, e.what());
  }
}

}  // namespace

KeyFileError::KeyFileError(Reason reason, const fs::path& path, const std::string& detail)
    : std::runtime_error(describe(reason, path, detail)), reason_(reason), path_(path) {}

std::string_view to_string(KeyFileError::Reason reason) noexcept {
  switch (reason) {
    case KeyFileError::Reason::Missing:
      return "missing";
    case KeyFileError::Reason::Unreadable:
      return "unreadable";
    case KeyFileError::Reason::Malformed:
      return "malformed";
    case KeyFileError::Reason::WrongCurve:
      return "not a P-256 key";
    case KeyFileError::Reason::Exists:
      return "already exists, refusing to overwrite";
    case KeyFileError::Reason::ParentMissing:
      return "folder does not exist";
    case KeyFileError::Reason::WriteFailed:
      return "write failed";
    case KeyFileError::Reason::TooOpen:
      return "readable by others";
  }
  return "unknown";
}

namespace {

constexpr off_t kMaxKeyFile = 1 << 20;  // key files are a few hundred bytes; anything larger is not one

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int open_key_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) return fd;
  const int err = errno;
  if (err == ENOENT || err == ENOTDIR) throw KeyFileError(KeyFileError::Reason::Missing, path, "");
  throw KeyFileError(KeyFileError::Reason::Unreadable, path, std::strerror(err));
}

struct stat stat_key_file(const fs::path& path, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw KeyFileError(KeyFileError::Reason::Unreadable, path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw KeyFileError(KeyFileError::Reason::Unreadable, path, "not a regular file");
  return st;
}

void require_private_mode(const fs::path& path, const struct stat& st) {
  const auto others = st.st_mode & S_IRWXO;
  const auto group = st.st_mode & S_IRWXG;
  if (others != 0 || (group != 0 && st.st_uid != 0)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw KeyFileError(KeyFileError::Reason::TooOpen, path,
                       std::string("mode ") + mode + " lets " + (others != 0 ? "others" : "its group") +
                           " read a secret; chmod 600 it (0640 only when root owns it)");
  }
}

}  // namespace

void require_private_file(const fs::path& path) {
  const Fd file{open_key_file(path)};
  require_private_mode(path, stat_key_file(path, file.fd));
}

std::string read_key_file(const fs::path& path, KeyFileKind kind) {
  const Fd file{open_key_file(path)};
  const auto st = stat_key_file(path, file.fd);
  if (kind == KeyFileKind::Secret) require_private_mode(path, st);
  if (st.st_size > kMaxKeyFile) throw KeyFileError(KeyFileError::Reason::Malformed, path, "larger than 1 MiB");
  // One buffer of the file's size, read into directly: nothing is reallocated, so the only copy
  // is the one the caller wipes.
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const auto n = ::read(file.fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      secure_wipe(text.data(), text.size());
      throw KeyFileError(KeyFileError::Reason::Unreadable, path, std::strerror(err));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);  // shrinking keeps the buffer
  return text;
}

OpenSsl::PrivateKey load_private_key(const fs::path& path) {
  auto content = read_key_file(path, KeyFileKind::Secret);
  const ScopedWipe wipe(content);
  auto key = decode(path, content, true);
  return with_curve_check(path, [&] { return OpenSsl::PrivateKey::adopt(std::move(key)); });
}

OpenSsl::VerifyKey load_public_key(const fs::path& path) {
  const auto content = read_key_file(path);
  auto key = decode(path, content, false);
  return with_curve_check(path, [&] { return OpenSsl::VerifyKey::adopt(std::move(key)); });
}

std::string private_key_pem(const OpenSsl::PrivateKey& key) {
  Bio bio(ossl_check_ptr(BIO_new(BIO_s_secmem()), "BIO_new(secmem)"));
  detail::ossl_check(PEM_write_bio_PrivateKey(bio.get(), key.native(), nullptr, nullptr, 0, nullptr, nullptr),
                     "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string public_key_pem(const EcPublicKey& key) {
  const auto vkey = OpenSsl::VerifyKey::parse(key);
  Bio bio(ossl_check_ptr(BIO_new(BIO_s_mem()), "BIO_new(mem)"));
  detail::ossl_check(PEM_write_bio_PUBKEY(bio.get(), vkey.native()), "PEM_write_bio_PUBKEY");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

namespace {

bool write_all(int fd, std::string_view content) {
  std::size_t done = 0;
  while (done < content.size()) {
    const auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void sync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

// The file gets its name only once its content is written and synced: an unnamed file
// (O_TMPFILE) in the target folder, linked to the name at the end — which fails if the name
// exists, so nothing is ever overwritten — then the folder synced. A process killed half-way
// leaves no file, never an empty or torn key under the name. Where the file system has no
// O_TMPFILE (or there is no /proc) the name is created exclusively and written in place.
void write_new_file(const fs::path& path, std::string_view content, unsigned mode) {
  const auto parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) throw KeyFileError(KeyFileError::Reason::ParentMissing, path, parent.string());
  const auto failed = [&](int err) {
    throw KeyFileError(err == EEXIST ? KeyFileError::Reason::Exists : KeyFileError::Reason::WriteFailed, path,
                       err == EEXIST ? "" : std::strerror(err));
  };
  // Checked first so that an existing name costs no write (linkat checks again, atomically).
  if (fs::exists(fs::symlink_status(path, ec))) failed(EEXIST);
  // linkat names an unnamed file through /proc (AT_EMPTY_PATH would need a capability).
  static const bool have_proc = fs::is_directory("/proc/self/fd", ec);
  int fd = have_proc ? ::open(parent.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, static_cast<mode_t>(mode)) : -1;
  const bool unnamed = fd >= 0;
  if (!unnamed) fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) failed(errno);
  // The umask may have narrowed the mode; never widen it, but make sure it is exactly `mode`.
  bool ok = ::fchmod(fd, static_cast<mode_t>(mode)) == 0 && write_all(fd, content) && ::fsync(fd) == 0;
  int err = errno;
  if (ok && unnamed) {
    const auto self = "/proc/self/fd/" + std::to_string(fd);
    ok = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0;
    err = errno;
  }
  ::close(fd);
  if (!ok) {
    if (!unnamed) ::unlink(path.c_str());
    failed(err);
  }
  sync_folder(parent);
}

void write_new_secret_file(const fs::path& path, std::string text) {
  const ScopedWipe wipe(text);
  write_new_file(path, text, 0600);
}

void write_private_key(const fs::path& path, const OpenSsl::PrivateKey& key) {
  write_new_secret_file(path, private_key_pem(key));
}

void write_public_key(const fs::path& path, const EcPublicKey& key) { write_new_file(path, public_key_pem(key), 0644); }

}  // namespace skillcard::crypto
