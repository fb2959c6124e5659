// Fuzz target for the files that operators hand the service and its tools: the policy (TOML,
// P1-P16), the P19 targets (TOML), the registry's people and subsidies CSVs, the terminal
// revocation list and the master key file (TOML, skillcard-keytool's). The first byte picks the parser, the rest is the
// file. A parser may refuse only with its own error type, which names the file, line and field; any other exception
// escaping, or a crash, is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "skillcard/crypto/master_keys.hpp"
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
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
