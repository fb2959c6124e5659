// Ledger and registry rows into ReportInput, streamed (for_each_*) so that a province year
// is never held twice in memory.
#include "skillcard/reports/load.hpp"

namespace skillcard::reports {

void load_ledger(ledger::Ledger& ledger, ReportInput& input) {
  // One snapshot (P17): read one table after another, a redemption committed in between showed
  // up without its voucher's state, and budgets read last differed from both.
  ledger::Ledger::ReportVisitor visit;
  visit.voucher = [&](const ledger::VoucherRecord& v) { input.vouchers.push_back(VoucherRow::from(v)); };
  visit.redemption = [&](const ledger::RedemptionExportRow& r) { input.redemptions.push_back(RedemptionRow::from(r)); };
  visit.certificate = [&](const ledger::CertificateEntry& c) { input.certificates.push_back(CertificateRow::from(c)); };
  visit.budget = [&](const ledger::Budget& b) { input.budgets.push_back(b); };
  ledger.read_for_reports(visit);
}

void load_registry(const registry::SqliteRegistry& registry, ReportInput& input) {
  registry.for_each_person([&](const registry::Person& p, const crypto::HolderRef& ref) {
    input.holders.push_back({ref, p.region});
  });
  registry.for_each_subsidy(
      [&](const registry::ExternalSubsidy& s, const crypto::HolderRef& ref, std::uint32_t region) {
        input.external.push_back({ref, region, s.record});
      });
}

ReportInput load_input(ledger::Ledger& ledger, const registry::SqliteRegistry* registry) {
  ReportInput input;
  load_ledger(ledger, input);
  if (registry != nullptr) load_registry(*registry, input);
  return input;
}

}  // namespace skillcard::reports
