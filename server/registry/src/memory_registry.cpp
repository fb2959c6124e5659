// The embedded registry: people and external subsidies in memory, indexed two ways.
#include <cstring>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/registry/registry.hpp"

namespace skillcard::registry {

std::size_t MemoryRegistry::RefHash::operator()(const crypto::HolderRef& r) const noexcept {
  std::size_t h = 0;  // holder refs are HMAC outputs: any 8 bytes are uniformly distributed
  std::memcpy(&h, r.data(), sizeof h);
  return h;
}

MemoryRegistry::MemoryRegistry(std::vector<Person> people, const std::vector<ExternalSubsidy>& subsidies,
                               HolderRefOf holder_ref)
    : people_(std::move(people)) {
  for (auto& p : people_) p.citizen_id = crypto::canonical_citizen_id(p.citizen_id);
  for (std::size_t i = 0; i < people_.size(); ++i) {
    if (!by_id_.emplace(people_[i].citizen_id, i).second) {
      throw CsvError("citizen ID " + people_[i].citizen_id.substr(0, 6) + "... appears twice in the registry");
    }
    by_holder_.emplace(holder_ref(people_[i].citizen_id), i);
  }
  for (const auto& s : subsidies)
    subsidies_[holder_ref(crypto::canonical_citizen_id(s.citizen_id))].push_back(s.record);
}

policy::RegistryFacts MemoryRegistry::facts(std::string_view citizen_id) const {
  const auto it = by_id_.find(crypto::canonical_citizen_id(citizen_id));
  return it == by_id_.end() ? policy::RegistryFacts{} : people_[it->second].facts;
}

policy::RegistryFacts MemoryRegistry::facts_by_holder(const crypto::HolderRef& holder) const {
  const auto it = by_holder_.find(holder);
  return it == by_holder_.end() ? policy::RegistryFacts{} : people_[it->second].facts;
}

std::vector<policy::SubsidyRecord> MemoryRegistry::external_subsidies(const crypto::HolderRef& holder) const {
  const auto it = subsidies_.find(holder);
  return it == subsidies_.end() ? std::vector<policy::SubsidyRecord>{} : it->second;
}

}  // namespace skillcard::registry
