// Fuzz target for the files that operators hand the service and its tools: the policy (TOML,
// P1-P16), the P19 targets (TOML), the registry's people and subsidies CSVs, the terminal
// revocation list and the master key file (TOML, skillcard-keytool's); key and certificate files (PEM, DER) and the
// ledger's audit checkpoint files. The first byte picks the parser, the rest is the
// file. A parser may refuse only with its own error type, which names the file, line and field; any other exception
// escaping, or a crash, is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/x509.hpp"
#include "skillcard/ledger/audit.hpp"
#include "skillcard/policy/config.hpp"
#include "skillcard/registry/registry.hpp"
#include "skillcard/reports/targets.hpp"
#include "skillcard/service/terminal.hpp"

using namespace skillcard;

namespace {

// The CSV readers and the revocation list read files: one scratch file per fuzzing process.
const std::filesystem::path& scratch() {
  static const auto path = [] {
    auto p = std::filesystem::temp_directory_path() / ("skillcard_operator_files_fuzz_" + std::to_string(::getpid()));
    std::atexit([] { std::filesystem::remove(scratch()); });
    return p;
  }();
  return path;
}

const std::filesystem::path& write_scratch(std::string_view text) {
  std::ofstream(scratch(), std::ios::binary | std::ios::trunc)
      .write(text.data(), static_cast<std::streamsize>(text.size()));
  return scratch();
}

// Key and certificate files, and an audit checkpoint file (first byte 0xF0-0xF4; the older
// parsers keep the bytes below, so the corpus still reaches them).
void key_files(std::uint8_t which, std::string_view text) {
  switch (which % 5) {
    case 0:
      try {
        const auto& file = write_scratch(text);
        std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        (void)crypto::load_private_key(file);
      } catch (const crypto::KeyFileError&) {
      }
      break;
    case 1:
      try {
        (void)crypto::load_public_key(write_scratch(text));
      } catch (const crypto::KeyFileError&) {
      }
      break;
    case 2:
      try {
        const auto cert = crypto::Certificate::from_pem(text);
        (void)cert.subject();
        (void)cert.public_key();
      } catch (const crypto::CryptoError&) {
      } catch (const std::invalid_argument&) {  // a subject naming an attribute twice
      }
      break;
    case 3:
      try {
        const auto cert = crypto::Certificate::load(write_scratch(text));
        (void)cert.issuer();
      } catch (const crypto::CryptoError&) {
      } catch (const crypto::KeyFileError&) {
      }
      break;
    default: {
      // Its contract: a verdict, never an exception.
      static const auto key = crypto::OpenSsl::VerifyKey::parse(crypto::OpenSsl::PrivateKey::generate().public_key());
      const auto bytes = reinterpret_cast<const std::uint8_t*>(text.data());
      (void)ledger::verify_checkpoint(ByteView(bytes, text.size()), key);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] >= 0xF0) {
    key_files(static_cast<std::uint8_t>(data[0] - 0xF0), text);
    return 0;
  }
  switch (data[0] % 6) {
    case 0:
      try {
        (void)policy::PolicyConfig::from_toml(text, "policy.toml");
      } catch (const policy::ConfigError&) {
      }
      break;
    case 1:
      try {
        (void)reports::targets_from_toml(text, "targets.toml");
      } catch (const reports::TargetsError&) {
      }
      break;
    case 2:
      try {
        (void)registry::read_people_csv(write_scratch(text));
      } catch (const registry::CsvError&) {
      }
      break;
    case 3:
      try {
        (void)registry::read_subsidies_csv(write_scratch(text));
      } catch (const registry::CsvError&) {
      }
      break;
    case 5:
      // Its contract: KeyFileError (unreadable) or std::runtime_error naming the key and line.
      try {
        const auto store = crypto::FileMasterKeyStore::load(write_scratch(text));
        (void)store->card_key(crypto::CardRole::Site, crypto::scp03::KeyType::Mac, "4201000001");
        (void)store->holder_ref("420102199003071232");
      } catch (const std::runtime_error&) {
      }
      break;
    default: {
      // A fresh list each time: reload_if_changed() would skip a file of the same size and time.
      service::TerminalRevocations revocations(write_scratch(text));
      std::string problem;
      (void)revocations.reload_if_changed(&problem);  // throws nothing, by its contract
      (void)revocations.is_revoked("K0001", "0a1b");
      (void)revocations.list();
      break;
    }
  }
  return 0;
}
