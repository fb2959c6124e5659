// Where a terminal gets a card's static SCP03 keys: derived per card from its role's master
// (docs/design.md, "Per-card keys"). An interface, so that a SAM or HSM that keeps the master
// inside can replace the key file; callers only ever see the derived card key.
#pragma once

#include <memory>
#include <string_view>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/types.hpp"

namespace skillcard::host {

class CardKeySource {
 public:
  virtual ~CardKeySource() = default;
  // The card's key of `type` for `role`; throws std::invalid_argument when this source holds
  // no master for the role (a site terminal has only M_site).
  virtual crypto::SecretBytes card_key(crypto::CardRole role, crypto::scp03::KeyType type,
                                       std::string_view card_number) const = 0;
};

// Over crypto's MasterKeyStore (FileMasterKeyStore: master-keys.toml, mode 0600).
class MasterKeyStoreKeySource final : public CardKeySource {
 public:
  explicit MasterKeyStoreKeySource(std::shared_ptr<const crypto::MasterKeyStore> store);
  crypto::SecretBytes card_key(crypto::CardRole role, crypto::scp03::KeyType type,
                               std::string_view card_number) const override;

 private:
  std::shared_ptr<const crypto::MasterKeyStore> store_;
};

// One role's 16-byte master held in memory (a terminal's own key set), wiped on destruction.
class RoleMasterKeySource final : public CardKeySource {
 public:
  RoleMasterKeySource(crypto::CardRole role, crypto::SecretBytes master);
  crypto::SecretBytes card_key(crypto::CardRole role, crypto::scp03::KeyType type,
                               std::string_view card_number) const override;

 private:
  crypto::CardRole role_;
  crypto::SecretBytes master_;
};

}  // namespace skillcard::host
