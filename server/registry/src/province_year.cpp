// The province-year generator: people from generate(), then each person's year written through
// the Ledger API by a pool of writers (one person's operations stay on one writer, so the card's
// counters are issued in order).
#include "skillcard/registry/province_year.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "skillcard/ledger/cst.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/cst.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/voucher.hpp"

namespace skillcard::registry {

namespace {

using schemas::FundSource;
using schemas::Programme;

constexpr std::uint32_t kOccupations[] = {4040505, 4100102, 6310109, 4030201, 4100301, 6290103,
                                          4140202, 6310201, 4070201, 6240101, 4090101, 6050101};
const crypto::Kid kPlaceholderKid{0xDA, 0x7A, 0x6E, 0x00, 0x00, 0x00, 0x00, 0x01};

crypto::EcSignature placeholder_sign(ByteView) {
  crypto::EcSignature s{};
  s.fill(0x5A);
  return s;
}

const ledger::Actor kBureau{"DATAGEN-BUREAU", "datagen"};
const ledger::Actor kSite{"DATAGEN-SITE", "datagen"};

struct Planned {
  Programme programme;
  FundSource fund;
  std::uint32_t occupation;
  std::uint8_t level;
};

// Base standard in fen per level (5 entry … 1 senior technician), before P5's uplift.
std::uint32_t standard_fen(std::uint8_t level) {
  static constexpr std::uint32_t table[] = {0, 300000, 250000, 200000, 160000, 120000};
  return table[level];
}

Programme pick_programme(std::mt19937_64& rng) {
  const auto r = rng() % 1000;
  if (r < 330) return Programme::EnterpriseStaffUpgrade;
  if (r < 360) return Programme::EnterpriseApprenticeship;  // ≈ 3 %: P19's 14 000 of 550 000 is 2.5 %
  if (r < 760) return Programme::KeyGroupEmploymentSkills;
  if (r < 820) return Programme::EntrepreneurshipSyb;
  if (r < 850) return Programme::EntrepreneurshipGyb;
  if (r < 880) return Programme::SpecialHighRisk;
  if (r < 910) return Programme::SpecialConstruction;
  if (r < 930) return Programme::SpecialIct;
  return Programme::CareWorker;
}

std::uint8_t pick_level(std::mt19937_64& rng) {
  const auto r = rng() % 100;
  if (r < 30) return 5;
  if (r < 60) return 4;
  if (r < 85) return 3;
  if (r < 95) return 2;
  return 1;
}

}  // namespace

std::uint32_t generated_provider(std::size_t city_index, std::uint32_t n) {
  return 10000 + 100 * static_cast<std::uint32_t>(city_index) + n;
}

GeneratedData generate_province_year(ledger::Ledger& ledger, const ProvinceYearOptions& options,
                                     const std::function<crypto::HolderRef(std::string_view)>& holder_ref,
                                     ProvinceYearStats* stats_out) {
  const auto people_count = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(300000.0 * options.scale)));
  auto data = generate(people_count, options.seed, options.year);
  const auto year_start = ledger::cst_year_start(options.year);
  const auto year_end = ledger::cst_year_start(options.year + 1);
  for (const auto fund : {FundSource::SpecialAccount, FundSource::EmploymentSubsidyFund,
                          FundSource::UnemploymentInsuranceFund, FundSource::OtherDepartment}) {
    // Generous allocations: P16 is not what this data exercises (the ledger still checks it).
    ledger.set_budget(fund, 1'000'000'000'000, kBureau, year_start);
  }
  std::map<std::string, std::vector<const ExternalSubsidy*>> outside;
  for (const auto& s : data.subsidies) outside[s.citizen_id].push_back(&s);
  const auto& cities = hubei_cities();

  std::atomic<std::size_t> next{0};
  std::mutex stats_mutex;
  ProvinceYearStats stats;
  stats.people = data.people.size();
  stats.outside_subsidies = data.subsidies.size();
  std::exception_ptr failure;
  std::mutex failure_mutex;

  std::vector<ExternalSubsidy> all_double_reports;
  const auto work = [&] {
    ProvinceYearStats local;
    std::vector<ExternalSubsidy> double_reports;
    try {
      for (std::size_t i = next++; i < data.people.size(); i = next++) {
        const auto& person = data.people[i];
        std::mt19937_64 rng(options.seed * 1'000'003 + i);
        const auto ref = holder_ref(person.citizen_id);
        const auto city = person.region >= 429000 ? person.region : person.region / 100 * 100;
        const auto city_index =
            static_cast<std::size_t>(std::find(cities.begin(), cities.end(), city) - cities.begin());
        // The card.
        schemas::CardCertificateClaims cc;
        cc.card_number = std::to_string(4200000000ull + i);
        cc.region = person.region;
        cc.receipt_key.fill(0x02);
        cc.auth_key.fill(0x03);
        cc.not_before = year_start;
        cc.not_after = year_start + 10ull * 365 * 86400;
        const ledger::NewCard card{cc.card_number, ref, person.region,
                                   schemas::sign_card_certificate(cc, kPlaceholderKid, placeholder_sign)};
        if (ledger.register_card(card, kBureau, year_start) != ledger::CardStatus::Registered) {
          throw std::runtime_error("datagen: card " + card.number + " not registered");
        }
        ++local.cards;

        // What the registry already knows for this year (P1, P2, P3/P4 count it).
        ledger::ExternalCounts external;
        std::set<std::pair<std::uint32_t, std::uint8_t>> taken;
        int employment_fund = 0;
        if (const auto it = outside.find(person.citizen_id); it != outside.end()) {
          for (const auto* s : it->second) {
            taken.insert({s->record.occupation, s->record.level});
            if (schemas::cst_year(s->record.issued_at) == options.year) {
              ++external.holder_year;
              if (s->record.fund == FundSource::EmploymentSubsidyFund) ++employment_fund;
            }
          }
        }
        external.holder_employment_fund_year = static_cast<std::uint32_t>(employment_fund);
        // 0, 1, 2 or 3 wanted; P1 caps them with what the registry knows.
        const auto r = rng() % 100;
        const std::uint32_t wanted = r < 5 ? 0 : r < 25 ? 1 : r < 65 ? 2 : 3;
        const auto count = std::min<std::uint32_t>(wanted, 3 - std::min<std::uint32_t>(3, external.holder_year));
        std::vector<Planned> plan;
        for (std::uint32_t k = 0; k < count; ++k) {
          Planned p{pick_programme(rng), FundSource::SpecialAccount, 0, pick_level(rng)};
          do {
            p.occupation = kOccupations[rng() % std::size(kOccupations)];
            p.level = pick_level(rng);
          } while (taken.count({p.occupation, p.level}));
          taken.insert({p.occupation, p.level});
          const auto f = rng() % 100;
          if (f < 20 && employment_fund == 0) {
            p.fund = FundSource::EmploymentSubsidyFund;
            ++employment_fund;
          } else if (f < 35) {
            p.fund = FundSource::UnemploymentInsuranceFund;
          } else if (f < 40) {
            p.fund = FundSource::OtherDepartment;
          }
          plan.push_back(p);
        }
        // Issue dates in order through the year; then each voucher's life.
        std::vector<std::uint64_t> issued_at;
        for (std::size_t k = 0; k < plan.size(); ++k) issued_at.push_back(year_start + rng() % (year_end - year_start));
        std::sort(issued_at.begin(), issued_at.end());
        std::uint32_t counter = 0;
        for (std::size_t k = 0; k < plan.size(); ++k) {
          const auto& p = plan[k];
          schemas::VoucherClaims c;
          c.issuer = person.region;
          c.holder = ref;
          c.programme = p.programme;
          c.occupation = p.occupation;
          c.level = p.level;
          c.fund = p.fund;
          const bool uplift = p.fund == FundSource::SpecialAccount && !person.facts.key_groups.empty();
          c.face_value_fen = uplift ? policy::with_uplift(standard_fen(p.level), 20) : standard_fen(p.level);
          c.planned_hours = 120;
          c.planned_online_hours = 36;
          // One in ten trainings at the city's high-skill base (P19's floor), the rest at 29 others.
          const auto provider =
              generated_provider(city_index, rng() % 10 == 0 ? 0 : 1 + static_cast<std::uint32_t>(rng() % 29));
          c.eligible_regions = {city};
          c.eligible_providers = {provider};
          c.issued_at = issued_at[k];
          c.not_before = c.issued_at;
          c.expires_at = schemas::add_cst_months(c.issued_at, 3);
          ledger::IssueDecision decision;
          decision.external = external;
          const auto out = ledger.issue_voucher(
              {c, card.number}, decision,
              [](const schemas::VoucherClaims& claims) {
                return schemas::sign_voucher(claims, kPlaceholderKid, placeholder_sign);
              },
              kBureau, c.issued_at);
          if (out.status != ledger::IssueStatus::Issued) {
            throw std::runtime_error("datagen: issue refused: " + std::string(ledger::to_string(out.status)));
          }
          ++local.vouchers;
          const auto id = out.voucher->id();
          const auto fate = rng() % 1000;
          if (fate < 10) {  // voided at the counter before it reached the card
            ledger.void_voucher(id, "holder withdrew", kBureau, c.issued_at + 3600);
            ++local.voided;
            continue;
          }
          if (fate < 50) continue;  // issued, never written to the card (P17 lists the old ones)
          ledger.mark_written(id, kBureau, c.issued_at + 600);
          ++local.written;
          if (fate >= 850) continue;  // written, not (yet) redeemed
          // Redeemed at the provider some days later, within the validity.
          const auto at = c.issued_at + 86400 * (3 + rng() % 80);
          schemas::ReceiptClaims rc;
          rc.voucher = id;
          rc.site = provider;
          rc.nonce[0] = static_cast<std::uint8_t>(schemas::NonceKind::Terminal);
          const auto serial = ledger::serial_of(id);
          for (int b = 0; b < 8; ++b)
            rc.nonce[static_cast<std::size_t>(16 - b)] = static_cast<std::uint8_t>(serial >> (8 * b));
          rc.nonce[1] = 0xD6;
          rc.counter = ++counter;
          rc.terminal_time = at;
          rc.classroom_hours = 84;
          rc.online_hours = 36;
          ledger::RedemptionRequest req;
          req.receipt = schemas::sign_receipt(rc, kPlaceholderKid, placeholder_sign);
          req.card = card.number;
          req.server_time = at + 30;
          req.actor = kSite;
          req.nonce_rule = ledger::NonceRule::Unseen;
          const auto rec = ledger.record_redemption(req);
          if (rec.status != ledger::RecordStatus::Recorded) {
            throw std::runtime_error("datagen: redemption refused: " + std::string(ledger::to_string(rec.status)));
          }
          ++local.redeemed;
          if (fate < 55) {
            ledger.reverse_redemption(id, "training not delivered", kBureau, at + 86400);
            ++local.reversed;
            continue;
          }
          if (fate % 100 == 7) {
            // The other business system reports the same training again (P18 counts it once).
            ExternalSubsidy twice;
            twice.citizen_id = person.citizen_id;
            twice.record.source = policy::SubsidyRecord::Source::OtherBusinessSystem;
            twice.record.issued_at = schemas::cst_start_of(schemas::cst_date(at + 86400 * (1 + rng() % 10)));
            twice.record.fund = p.fund;
            twice.record.occupation = p.occupation;
            twice.record.level = p.level;
            double_reports.push_back(std::move(twice));
          }
          if (p.level <= 3 && fate % 5 < 2) {  // a skill-level certificate after the training
            schemas::CertificateRecord cert;
            cert.kind = schemas::CertificateKind::SkillLevel;
            cert.occupation = p.occupation;
            cert.level = p.level;
            cert.issuer = "湖北省职业技能等级认定中心";
            cert.number = "S" + std::to_string(options.year) + "-" + std::to_string(serial);
            cert.date_days = static_cast<std::uint32_t>(
                std::chrono::sys_days{schemas::cst_date(at + 7 * 86400)}.time_since_epoch().count());
            cert.salt = Bytes(16, static_cast<std::uint8_t>(serial));
            ledger.record_certificate(ref, schemas::encode(cert), kSite, at + 7 * 86400);
            ++local.certificates;
          }
        }
      }
    } catch (...) {
      std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = data.people.size();  // the others stop too
    }
    std::lock_guard lock(stats_mutex);
    stats.cards += local.cards;
    stats.vouchers += local.vouchers;
    stats.written += local.written;
    stats.redeemed += local.redeemed;
    stats.reversed += local.reversed;
    stats.voided += local.voided;
    stats.certificates += local.certificates;
    stats.double_reports += double_reports.size();
    all_double_reports.insert(all_double_reports.end(), double_reports.begin(), double_reports.end());
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < std::max<std::size_t>(1, options.threads); ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  // In the registry's order (by citizen ID), whatever order the writers finished in.
  std::sort(all_double_reports.begin(), all_double_reports.end(),
            [](const ExternalSubsidy& a, const ExternalSubsidy& b) {
              return std::tie(a.citizen_id, a.record.issued_at, a.record.occupation, a.record.level) <
                     std::tie(b.citizen_id, b.record.issued_at, b.record.occupation, b.record.level);
            });
  data.subsidies.insert(data.subsidies.end(), all_double_reports.begin(), all_double_reports.end());
  stats.outside_subsidies = data.subsidies.size();
  if (stats_out != nullptr) *stats_out = stats;
  return data;
}

}  // namespace skillcard::registry
