// Card key sources: the master key store and a single in-memory role master.
#include "skillcard/host/card_key_source.hpp"

#include <stdexcept>

#include "skillcard/crypto/openssl.hpp"

namespace skillcard::host {

MasterKeyStoreKeySource::MasterKeyStoreKeySource(std::shared_ptr<const crypto::MasterKeyStore> store)
    : store_(std::move(store)) {
  if (!store_) throw std::invalid_argument("MasterKeyStoreKeySource: no store");
}

crypto::SecretBytes MasterKeyStoreKeySource::card_key(crypto::CardRole role, crypto::scp03::KeyType type,
                                                      std::string_view card_number) const {
  return store_->card_key(role, type, card_number);
}

RoleMasterKeySource::RoleMasterKeySource(crypto::CardRole role, crypto::SecretBytes master)
    : role_(role), master_(std::move(master)) {
  if (master_.size() != 16) throw std::invalid_argument("a role master is 16 bytes");
}

crypto::SecretBytes RoleMasterKeySource::card_key(crypto::CardRole role, crypto::scp03::KeyType type,
                                                  std::string_view card_number) const {
  if (role != role_)
    throw std::invalid_argument("this terminal holds no master for role " + std::string(crypto::to_string(role)));
  return crypto::scp03::diversify_card_key<crypto::OpenSsl>(master_.view(), type, card_number);
}

}  // namespace skillcard::host
