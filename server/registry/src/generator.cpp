// The registry data generator (std::mt19937_64: test data, not secrets).
#include "skillcard/registry/generator.hpp"

#include <random>
#include <unordered_set>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/schemas/cst.hpp"

namespace skillcard::registry {

namespace {

constexpr const char* kSurnames[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
                                     "马", "朱", "胡", "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋"};
constexpr const char* kGiven[] = {"伟", "芳", "娜", "敏", "静",   "丽", "强", "磊", "军",   "洋", "勇",   "艳",  "杰",
                                  "娟", "涛", "明", "超", "秀英", "霞", "平", "刚", "桂英", "华", "建国", "志强"};
// Occupations of the national classification that training vouchers commonly name.
constexpr std::uint32_t kOccupations[] = {4040505, 4100102, 6310109, 4030201, 4100301, 6290103, 4140202, 6310201};

}  // namespace

const std::vector<std::uint32_t>& hubei_cities() {
  static const std::vector<std::uint32_t> cities = {420100, 420200, 420300, 420500, 420600, 420700,
                                                    420800, 420900, 421000, 421100, 421200, 421300,
                                                    422800, 429004, 429005, 429006, 429021};
  return cities;
}

GeneratedData generate(std::size_t count, std::uint64_t seed, int year) {
  std::mt19937_64 rng(seed);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  GeneratedData out;
  out.people.reserve(count);
  std::unordered_set<std::string> used;
  for (std::size_t i = 0; i < count; ++i) {
    Person p;
    const auto city = hubei_cities()[pick(hubei_cities().size())];
    // Municipal districts are xxxx01..; the 4290xx cities are county-level themselves.
    p.region = city >= 429000 ? city : city + 2 + static_cast<std::uint32_t>(pick(5));
    const int age = 16 + static_cast<int>(pick(45));
    const std::chrono::year_month_day birth{std::chrono::year{year - age},
                                            std::chrono::month{1u + static_cast<unsigned>(pick(12))},
                                            std::chrono::day{1u + static_cast<unsigned>(pick(28))}};
    // The sequence number tells apart people of one county born on one day: take the next free one.
    std::string first17;
    for (unsigned sequence = static_cast<unsigned>(pick(1000));; sequence = (sequence + 1) % 1000) {
      char buf[32];  // room for any values, so the compiler can see nothing is cut off
      std::snprintf(buf, sizeof buf, "%06u%04d%02u%02u%03u", p.region, static_cast<int>(birth.year()),
                    static_cast<unsigned>(birth.month()), static_cast<unsigned>(birth.day()), sequence);
      first17 = buf;
      if (used.insert(first17).second) break;
    }
    p.citizen_id = first17 + crypto::citizen_id_check_character(first17);
    p.name = std::string(kSurnames[pick(std::size(kSurnames))]) + kGiven[pick(std::size(kGiven))] +
             (chance(50) ? kGiven[pick(std::size(kGiven))] : "");
    p.facts.known = true;
    p.facts.date_of_birth = birth;
    p.facts.employed = chance(60);
    p.facts.insured = p.facts.employed ? chance(95) : chance(40);
    p.facts.retired_fisherman = chance(1);
    if (!p.facts.employed && chance(50)) p.facts.key_groups.insert(policy::KeyGroup::RegisteredUnemployed);
    if (chance(8)) p.facts.key_groups.insert(policy::KeyGroup::PovertyAlleviatedLabour);
    if (age <= 24 && !p.facts.employed && chance(30))
      p.facts.key_groups.insert(policy::KeyGroup::UnemployedRecentGraduate);
    if (age <= 22 && chance(5)) p.facts.key_groups.insert(policy::KeyGroup::PoorFamilyChild);
    if (chance(15)) {
      ExternalSubsidy s;
      s.citizen_id = p.citizen_id;
      s.record.source = static_cast<policy::SubsidyRecord::Source>(1 + pick(5));  // every outside source
      const std::chrono::year_month_day on{std::chrono::year{year},
                                           std::chrono::month{1u + static_cast<unsigned>(pick(12))},
                                           std::chrono::day{1u + static_cast<unsigned>(pick(28))}};
      s.record.issued_at = schemas::cst_start_of(on);
      s.record.fund = s.record.source == policy::SubsidyRecord::Source::OtherDepartment
                          ? schemas::FundSource::OtherDepartment
                      : s.record.source == policy::SubsidyRecord::Source::OtherBusinessSystem
                          ? schemas::FundSource::EmploymentSubsidyFund
                          : schemas::FundSource::UnemploymentInsuranceFund;
      s.record.occupation = kOccupations[pick(std::size(kOccupations))];
      s.record.level = static_cast<std::uint8_t>(3 + pick(3));
      out.subsidies.push_back(std::move(s));
    }
    out.people.push_back(std::move(p));
  }
  return out;
}

}  // namespace skillcard::registry
