// Master keys behind an interface: the SCP03 role masters and the holder-reference secret.
// Callers ask for derived values only (a card's diversified key, a holder reference), so that a
// SAM or HSM can replace the file-backed store without the masters ever leaving it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "skillcard/crypto/scp03.hpp"

namespace skillcard::crypto {

// Terminal roles that open an SCP03 session with the card (the operator role never does).
enum class CardRole { Counter, Site, Kiosk };
std::string_view to_string(CardRole role) noexcept;
// SCP03 key version number of each role's key set (docs/design.md).
std::uint8_t key_version(CardRole role) noexcept;

// An 18-character citizen ID (GB 11643): 17 digits and an ISO 7064 MOD 11-2 check character
// (0-9 or X). Returns an empty string when valid, else what is wrong, in words.
std::string citizen_id_problem(std::string_view id);
// The check character (0-9 or X) of an ID's first 17 digits.
char citizen_id_check_character(std::string_view first17);
// The one spelling under which an ID is stored and looked up: a lower-case check character 'x'
// is valid input (people type it so) and becomes 'X'. Anything else is returned as it stands.
std::string canonical_citizen_id(std::string_view id);

class MasterKeyStore {
 public:
  virtual ~MasterKeyStore() = default;
  virtual SecretBytes card_key(CardRole role, scp03::KeyType type, std::string_view card_number) const = 0;
  // Throws std::invalid_argument naming the problem for a malformed citizen ID.
  virtual HolderRef holder_ref(std::string_view citizen_id) const = 0;
};

// The file-backed store: master-keys.toml (mode 0600), written by skillcard-keytool.
class FileMasterKeyStore final : public MasterKeyStore {
 public:
  // Throws KeyFileError: Missing / Unreadable for the file, Malformed naming the key and the
  // line for its content (the tools' "bad key file" exit code, not an internal error).
  static std::unique_ptr<FileMasterKeyStore> load(const std::filesystem::path& path);
  // A new store with fresh random keys, as the TOML text to write.
  static std::string generate_toml();
  // One role's master alone, for a terminal of that role (design.md, "Where keys live": a site
  // holds M_site only). Reads `version` and `[scp03] <role>`; the other roles' masters and the
  // holder-reference secret need not be in the file (a terminal's file from `skillcard-keytool
  // role-keys`) and are not kept when they are. Throws as load() does, naming the key.
  static SecretBytes load_role_master(const std::filesystem::path& path, CardRole role);
  // The TOML text of a terminal's key file: `version` and `[scp03] <role>` only.
  static std::string role_toml(CardRole role, ByteView master);
  // The holder-reference secret alone, for the service and the report tool (design.md, "Where
  // keys live": the service holds no SCP03 master). Reads `version` and `[holder_ref] secret`;
  // SCP03 masters in the file are not read nor kept, and card_key() throws std::logic_error.
  static std::unique_ptr<FileMasterKeyStore> load_holder_secret(const std::filesystem::path& path);
  // The TOML text of the service's key file (`skillcard-keytool role-keys --role service`):
  // `version` and `[holder_ref] secret` of the province file `province_file`, nothing else.
  static std::string holder_toml(const std::filesystem::path& province_file);

  SecretBytes card_key(CardRole role, scp03::KeyType type, std::string_view card_number) const override;
  HolderRef holder_ref(std::string_view citizen_id) const override;

 private:
  FileMasterKeyStore() = default;
  SecretBytes counter_, site_, kiosk_, holder_secret_;
};

}  // namespace skillcard::crypto
