// The registry of record (P13, and the history behind P1-P4 and P18): what the social
// insurance and employment systems know about a person, and the subsidies paid outside this
// system. The policy engine takes its facts from here, never from the applicant.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "skillcard/policy/policy.hpp"

namespace skillcard::registry {

struct Person {
  std::string citizen_id;  // 18 characters, ISO 7064 MOD 11-2 check character
  std::string name;        // UTF-8
  std::uint32_t region = 0;
  policy::RegistryFacts facts;
};

struct ExternalSubsidy {
  std::string citizen_id;
  policy::SubsidyRecord record;
  std::size_t line = 0;  // where read_subsidies_csv found it, for messages; 0 when not read from a file
};

class Registry {
 public:
  virtual ~Registry() = default;
  // Facts by citizen ID (at the counter) or by holder reference (where only the card is seen).
  virtual policy::RegistryFacts facts(std::string_view citizen_id) const = 0;
  virtual policy::RegistryFacts facts_by_holder(const crypto::HolderRef& holder) const = 0;
  // Subsidies paid outside this system (other business system, unemployment-insurance-fund
  // training, skill upgrade, other departments).
  virtual std::vector<policy::SubsidyRecord> external_subsidies(const crypto::HolderRef& holder) const = 0;
};

// The registry's store cannot be opened, read or written (any Registry may throw it where it
// cannot answer); says what, and the store's own message.
class RegistryStorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A CSV file that is not what the importer expects; names the file, the line and the field.
class CsvError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// RFC 4180 CSV (libcsv) with a header row naming the columns (docs/registry.md).
std::vector<Person> read_people_csv(const std::filesystem::path& path);
std::vector<ExternalSubsidy> read_subsidies_csv(const std::filesystem::path& path);
// Every outside subsidy's citizen is in the people file: CsvError naming the subsidies file's
// line otherwise (a subsidy of nobody the registry knows cannot be counted against anyone).
void require_known_people(const std::vector<Person>& people, const std::vector<ExternalSubsidy>& subsidies,
                          const std::filesystem::path& people_csv, const std::filesystem::path& subsidies_csv);
void write_people_csv(const std::filesystem::path& path, const std::vector<Person>& people);
void write_subsidies_csv(const std::filesystem::path& path, const std::vector<ExternalSubsidy>& subsidies);

// The embedded registry: loaded from CSV exports, indexed by citizen ID and holder reference.
class MemoryRegistry final : public Registry {
 public:
  using HolderRefOf = std::function<crypto::HolderRef(std::string_view citizen_id)>;
  MemoryRegistry(std::vector<Person> people, const std::vector<ExternalSubsidy>& subsidies, HolderRefOf holder_ref);

  policy::RegistryFacts facts(std::string_view citizen_id) const override;
  policy::RegistryFacts facts_by_holder(const crypto::HolderRef& holder) const override;
  std::vector<policy::SubsidyRecord> external_subsidies(const crypto::HolderRef& holder) const override;
  std::size_t size() const noexcept { return people_.size(); }

 private:
  struct RefHash {
    std::size_t operator()(const crypto::HolderRef& r) const noexcept;
  };
  std::vector<Person> people_;
  std::unordered_map<std::string, std::size_t> by_id_;
  std::unordered_map<crypto::HolderRef, std::size_t, RefHash> by_holder_;
  std::unordered_map<crypto::HolderRef, std::vector<policy::SubsidyRecord>, RefHash> subsidies_;
};

}  // namespace skillcard::registry
