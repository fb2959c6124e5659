// The registry of record on SQLite (docs/registry.md): people and outside subsidies in two tables
// loaded from the CSV exports by an import, indexed by citizen ID and by holder reference (the
// HMAC of the citizen ID, computed at import with the master key store). Reads never need the
// master key; only imports do.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>

#include "skillcard/registry/registry.hpp"

namespace skillcard::registry {

struct ImportCounts {
  std::size_t people = 0;
  std::size_t subsidies = 0;
};

class SqliteRegistry final : public Registry {
 public:
  using HolderRefOf = MemoryRegistry::HolderRefOf;
  // Opens (creating the tables if needed): for an import. RegistryStorageError.
  static std::unique_ptr<SqliteRegistry> open(const std::filesystem::path& path);
  // Opens an imported registry read-only, for the service and the reports: nothing is created or
  // written, and RegistryStorageError names the file when it is missing, not a database, not a
  // registry (a ledger given by mistake, an empty file) or holds nobody — each of which would
  // otherwise be read as a registry without anyone, silently under-counting.
  static std::unique_ptr<SqliteRegistry> open_existing(const std::filesystem::path& path);
  ~SqliteRegistry() override;
  SqliteRegistry(const SqliteRegistry&) = delete;
  SqliteRegistry& operator=(const SqliteRegistry&) = delete;

  // Replaces the registry's contents with these files in one transaction: all or nothing. A
  // bad row (a citizen ID with a bad check character, a bad date, an unknown key group …) is
  // refused with CsvError naming the file, the line and the field; so is a person listed twice
  // or a subsidy of a person the people file does not have.
  ImportCounts import_csv(const std::filesystem::path& people_csv, const std::filesystem::path& subsidies_csv,
                          const HolderRefOf& holder_ref);
  // The same from rows already read (each citizen ID checked again: every entry point refuses a
  // bad one). CsvError names the row ("people[3]: citizen_id: …").
  ImportCounts import_rows(const std::vector<Person>& people, const std::vector<ExternalSubsidy>& subsidies,
                           const HolderRefOf& holder_ref);

  policy::RegistryFacts facts(std::string_view citizen_id) const override;
  policy::RegistryFacts facts_by_holder(const crypto::HolderRef& holder) const override;
  std::vector<policy::SubsidyRecord> external_subsidies(const crypto::HolderRef& holder) const override;

  // Bulk reads for reports (P18): every person with their holder reference, every outside
  // subsidy with its person's holder reference and region.
  void for_each_person(const std::function<void(const Person&, const crypto::HolderRef&)>& visit) const;
  void for_each_subsidy(
      const std::function<void(const ExternalSubsidy&, const crypto::HolderRef&, std::uint32_t region)>& visit) const;
  std::size_t size() const;

  struct Impl;

 private:
  explicit SqliteRegistry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skillcard::registry
