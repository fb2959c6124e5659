// P17, P18, P19 and settlement over plain rows: no I/O, no clock.
#include "skillcard/reports/reports.hpp"

#include <algorithm>
#include <cstring>
#include <set>
#include <tuple>
#include <unordered_map>

#include "skillcard/schemas/cst.hpp"

namespace skillcard::reports {

namespace {

// The report functions scan millions of rows: their look-ups are flat arrays (one cache miss
// each) rather than node-based maps, so that time per row stays flat as the year grows.

// A holder reference as two integers: cheap to compare and to hash.
struct Key128 {
  std::uint64_t hi = 0, lo = 0;
  explicit Key128(const HolderRef& r) {
    std::memcpy(&hi, r.data(), 8);
    std::memcpy(&lo, r.data() + 8, 8);
  }
  Key128() = default;
  bool operator==(const Key128&) const = default;
  auto operator<=>(const Key128&) const = default;
  std::uint64_t hash() const noexcept { return (hi ^ (lo * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull; }
};

// Holder → region, open addressing with linear probing.
class RegionMap {
 public:
  explicit RegionMap(const std::vector<HolderRow>& holders) {
    std::size_t capacity = 16;
    while (capacity < holders.size() * 2) capacity *= 2;
    mask_ = capacity - 1;
    slots_.resize(capacity);
    for (const auto& h : holders) {
      const Key128 k(h.holder);
      auto i = k.hash() & mask_;
      while (slots_[i].used && !(slots_[i].key == k)) i = (i + 1) & mask_;
      if (!slots_[i].used) slots_[i] = {k, h.region, true};  // the first row for a holder wins
    }
  }
  std::uint32_t find(const HolderRef& holder) const {  // 0 when unknown
    const Key128 k(holder);
    for (auto i = k.hash() & mask_; slots_[i].used; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return slots_[i].region;
    }
    return 0;
  }

 private:
  struct Slot {
    Key128 key;
    std::uint32_t region = 0;
    bool used = false;
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

// Voucher serial → index in input.vouchers. Ledger serials are dense (max + 1), so a vector
// indexed by serial; a sparse set of serials falls back to a hash map.
class SerialIndex {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFF;
  explicit SerialIndex(const std::vector<VoucherRow>& vouchers) {
    std::uint64_t top = 0;
    for (const auto& v : vouchers) top = std::max(top, v.serial);
    dense_ = top <= 4 * vouchers.size() + 1024;
    if (dense_) {
      index_.assign(static_cast<std::size_t>(top) + 1, kNone);
      for (std::size_t i = 0; i < vouchers.size(); ++i) index_[vouchers[i].serial] = static_cast<std::uint32_t>(i);
    } else {
      sparse_.reserve(vouchers.size());
      for (std::size_t i = 0; i < vouchers.size(); ++i)
        sparse_.emplace(vouchers[i].serial, static_cast<std::uint32_t>(i));
    }
  }
  std::uint32_t find(std::uint64_t serial) const {
    if (dense_) return serial < index_.size() ? index_[static_cast<std::size_t>(serial)] : kNone;
    const auto it = sparse_.find(serial);
    return it == sparse_.end() ? kNone : it->second;
  }

 private:
  bool dense_ = true;
  std::vector<std::uint32_t> index_;
  std::unordered_map<std::uint64_t, std::uint32_t> sparse_;
};

constexpr FundSource kFunds[] = {FundSource::SpecialAccount, FundSource::EmploymentSubsidyFund,
                                 FundSource::UnemploymentInsuranceFund, FundSource::OtherDepartment};

// One subsidised person-time before counting it once.
struct Event {
  Key128 holder;
  std::uint32_t occupation = 0;
  std::uint8_t level = 0;
  bool ours = false;
  Category category = Category::EnterpriseStaff;
  UtcSeconds at = 0;
  std::uint32_t region = 0;
  std::uint32_t site = 0;  // ours only
};

std::uint32_t days_of(UtcSeconds utc) {
  const auto date = schemas::cst_date(utc);
  return static_cast<std::uint32_t>(std::chrono::sys_days{date}.time_since_epoch().count());
}

// The year's person-times, each counted once (the P18 rule in reports.hpp), and how many
// reports were dropped as duplicates, with their times.
struct Counted {
  std::vector<Event> events;
  std::vector<UtcSeconds> duplicate_times;
};

Counted count_once(const ReportInput& input, Period year) {
  const RegionMap region_of(input.holders);
  const SerialIndex voucher_of(input.vouchers);
  const auto region = [&](const HolderRef& holder, std::uint32_t fallback) {
    const auto r = region_of.find(holder);
    return r != 0 ? r : fallback;
  };

  const auto in_year = [&](UtcSeconds at) { return at >= year.from && at < year.to; };
  std::vector<Event> all;
  all.reserve(input.redemptions.size() + input.external.size());
  // Every year's reports take part in removing duplicates (P3: one occupation and level, ever),
  // so a training reported again in the next year is not counted there a second time; only the
  // surviving reports inside `year` are then counted.
  for (const auto& r : input.redemptions) {
    if (r.reversed) continue;
    const auto i = voucher_of.find(r.voucher);
    if (i == SerialIndex::kNone) continue;  // reconciliation lists it (RedemptionOfUnknownVoucher)
    const auto& v = input.vouchers[i];
    const auto category = category_of(v.programme);
    if (!category) continue;
    all.push_back(
        {Key128(v.holder), v.occupation, v.level, true, *category, r.server_time, region(v.holder, v.issuer), r.site});
  }
  for (const auto& e : input.external) {
    if (e.record.voided_or_expired_unredeemed) continue;
    const auto category = category_of(e.record.source);
    if (!category) continue;
    all.push_back({Key128(e.holder), e.record.occupation, e.record.level, false, *category, e.record.issued_at,
                   e.region != 0 ? e.region : region(e.holder, 0), 0});
  }
  // One slot per person-time key (open addressing): the earliest report stays, ours before an
  // outside report of the same CST day (an outside report carries only its day, stamped 00:00);
  // every other report of the key is a duplicate. Linear in the reports (a sort would add a log
  // factor).
  constexpr std::uint32_t kEmpty = 0xFFFFFFFF;
  struct Slot {  // the key beside the index: one cache miss per probe, not two
    Key128 holder;
    std::uint32_t occupation = 0;
    std::uint32_t level = 0;
    std::uint32_t event = kEmpty;
  };
  std::size_t capacity = 16;
  while (capacity < all.size() * 2) capacity *= 2;
  const auto mask = capacity - 1;
  std::vector<Slot> slot(capacity);
  const auto earlier = [](const Event& a, const Event& b) {
    const auto day_a = days_of(a.at);
    const auto day_b = days_of(b.at);
    if (day_a != day_b) return day_a < day_b;
    if (a.ours != b.ours) return a.ours;
    return a.at < b.at;
  };
  Counted out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& e = all[i];
    const auto h = (e.holder.hash() ^ (std::uint64_t{e.occupation} << 8 | e.level)) * 0x9E3779B97F4A7C15ull;
    auto k = static_cast<std::size_t>(h >> 20) & mask;
    while (slot[k].event != kEmpty &&
           !(slot[k].holder == e.holder && slot[k].occupation == e.occupation && slot[k].level == e.level)) {
      k = (k + 1) & mask;
    }
    auto& s = slot[k];
    if (s.event == kEmpty) {
      s = {e.holder, e.occupation, e.level, static_cast<std::uint32_t>(i)};
    } else if (earlier(e, all[s.event])) {
      if (in_year(all[s.event].at)) out.duplicate_times.push_back(all[s.event].at);
      s.event = static_cast<std::uint32_t>(i);
    } else if (in_year(e.at)) {
      out.duplicate_times.push_back(e.at);
    }
  }
  for (const auto& k : slot) {
    if (k.event != kEmpty && in_year(all[k.event].at)) out.events.push_back(all[k.event]);
  }
  return out;
}

bool region_less(std::uint32_t a, std::uint32_t b) {
  return std::make_tuple(province_of(a), city_of(a), static_cast<int>(level_of(a)), a) <
         std::make_tuple(province_of(b), city_of(b), static_cast<int>(level_of(b)), b);
}

// The region codes a person-time counts in: its county, its city, its province (each once).
std::vector<std::uint32_t> rollup(std::uint32_t region) {
  if (region == 0) return {0};
  std::vector<std::uint32_t> out{province_of(region)};
  if (city_of(region) != out.back()) out.push_back(city_of(region));
  if (region != out.back()) out.push_back(region);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Rows.

VoucherRow VoucherRow::from(const ledger::VoucherRecord& r) {
  VoucherRow v;
  v.serial = ledger::serial_of(r.id());
  v.holder = r.claims.holder;
  v.issuer = r.claims.issuer;
  v.programme = r.claims.programme;
  v.fund = r.claims.fund;
  v.occupation = r.claims.occupation;
  v.level = r.claims.level;
  v.face_value_fen = r.claims.face_value_fen;
  v.issued_at = r.claims.issued_at;
  // A voucher moved to a replacement card keeps its claims (and issued_at); its record was made
  // at the move, and stays Issued until it is written, so that is when its grace starts.
  if (r.moved_from) v.moved_at = r.state_changed_at;
  v.state = r.state;
  v.card = r.card;
  return v;
}

RedemptionRow RedemptionRow::from(const ledger::RedemptionExportRow& row) {
  RedemptionRow r;
  r.voucher = ledger::serial_of(row.redemption.voucher);
  r.card = row.redemption.card;
  r.counter = row.redemption.counter;
  r.site = row.redemption.site;
  r.server_time = row.redemption.server_time;
  r.reversed = row.redemption.reversed_at.has_value();
  r.reversed_at = row.redemption.reversed_at.value_or(0);
  r.fund = row.fund;
  r.face_value_fen = row.face_value_fen;
  return r;
}

CertificateRow CertificateRow::from(const ledger::CertificateEntry& entry) {
  return {entry.holder, entry.record.kind, entry.record.occupation, entry.record.level, entry.record.date_days};
}

// ---------------------------------------------------------------------------------------------
// Regions and periods.

std::string_view to_string(RegionLevel level) noexcept {
  switch (level) {
    case RegionLevel::Province:
      return "province";
    case RegionLevel::City:
      return "city";
    case RegionLevel::County:
      return "county";
  }
  return "?";
}

std::uint32_t province_of(std::uint32_t code) noexcept { return code / 10000 * 10000; }

std::uint32_t city_of(std::uint32_t code) noexcept {
  if (code % 10000 == 0) return code;         // a province is its own city level
  if ((code / 100) % 100 == 90) return code;  // xx90xx: a county-level city under the province
  return code / 100 * 100;
}

RegionLevel level_of(std::uint32_t code) noexcept {
  if (code % 10000 == 0) return RegionLevel::Province;
  if (city_of(code) == code) return RegionLevel::City;
  return RegionLevel::County;
}

Period cst_month_period(int year, unsigned month) {
  using namespace std::chrono;
  const year_month_day first{std::chrono::year{year}, std::chrono::month{month}, day{1}};
  const auto next_month = year_month{std::chrono::year{year}, std::chrono::month{month}} + months{1};
  const year_month_day next{next_month.year(), next_month.month(), day{1}};
  return {schemas::cst_start_of(first), schemas::cst_start_of(next)};
}

Period cst_year_period(int year) { return {cst_month_period(year, 1).from, cst_month_period(year, 12).to}; }

// ---------------------------------------------------------------------------------------------
// Categories.

std::string_view to_string(Category category) noexcept {
  switch (category) {
    case Category::EnterpriseStaff:
      return "enterprise_staff";
    case Category::Apprenticeship:
      return "apprenticeship";
    case Category::KeyGroup:
      return "key_group";
    case Category::OtherDepartment:
      return "other_department";
    case Category::JobStabilisation:
      return "job_stabilisation";
  }
  return "?";
}

std::optional<Category> category_of(schemas::Programme programme) noexcept {
  using P = schemas::Programme;
  switch (programme) {
    case P::EnterpriseStaffUpgrade:
    case P::SpecialHighRisk:
    case P::SpecialConstruction:
    case P::SpecialIct:
      return Category::EnterpriseStaff;
    case P::EnterpriseApprenticeship:
      return Category::Apprenticeship;
    case P::KeyGroupEmploymentSkills:
    case P::EntrepreneurshipGyb:
    case P::EntrepreneurshipSyb:
    case P::EntrepreneurshipIyb:
    case P::EntrepreneurshipEyb:
    case P::CareWorker:
      return Category::KeyGroup;
    case P::TrainInPlaceOfWork:
      return std::nullopt;  // P10: closed, never a subsidised person-time
  }
  return std::nullopt;
}

std::optional<Category> category_of(policy::SubsidyRecord::Source source) noexcept {
  using S = policy::SubsidyRecord::Source;
  switch (source) {
    case S::Ours:
    case S::OtherBusinessSystem:
      return Category::EnterpriseStaff;
    case S::UnemploymentInsuranceTraining:
      return Category::KeyGroup;
    case S::OtherDepartment:
      return Category::OtherDepartment;
    case S::JobStabilisationRefund:
      return Category::JobStabilisation;
    case S::SkillUpgrade:
      return std::nullopt;
  }
  return std::nullopt;
}

Tally& Tally::operator+=(const Tally& other) noexcept {
  for (std::size_t i = 0; i < kCategories; ++i) person_times[i] += other.person_times[i];
  technician += other.technician;
  senior_technician += other.senior_technician;
  return *this;
}

std::uint64_t Tally::total_person_times() const noexcept {
  std::uint64_t n = 0;
  for (const auto v : person_times) n += v;
  return n;
}

// ---------------------------------------------------------------------------------------------
// P18.

const RegionLine* MonthlyReport::line(std::uint32_t region) const {
  for (const auto& l : lines) {
    if (l.region == region) return &l;
  }
  return nullptr;
}

MonthlyReport monthly_report(const ReportInput& input, int year, unsigned month) {
  if (month < 1 || month > 12) throw std::invalid_argument("a month is 1..12, got " + std::to_string(month));
  const auto period = cst_month_period(year, month);
  const auto whole_year = cst_year_period(year);
  const auto counted = count_once(input, whole_year);
  // Tallied per region as reported (a few hundred), rolled up to cities and the province once.
  std::unordered_map<std::uint32_t, RegionLine> raw;
  const auto add = [&](std::uint32_t region, bool in_month, auto&& bump) {
    auto& line = raw[region];
    bump(line.year_to_date);
    if (in_month) bump(line.month);
  };
  for (const auto& e : counted.events) {
    if (e.at >= period.to) continue;
    add(e.region, e.at >= period.from, [&](Tally& t) { ++t.person_times[static_cast<std::size_t>(e.category)]; });
  }
  MonthlyReport report;
  report.year = year;
  report.month = month;
  for (const auto t : counted.duplicate_times) {
    if (t >= period.to) continue;
    ++report.duplicates_year_to_date;
    if (t >= period.from) ++report.duplicates_month;
  }

  // Certificates: levels 2 and 1 of a qualification or skill-level certificate, once per key.
  const RegionMap region_of(input.holders);
  const auto first_day = days_of(whole_year.from);
  const auto month_first = days_of(period.from);
  const auto month_end = days_of(period.to);  // the first day of the next month
  std::vector<const CertificateRow*> certs;
  for (const auto& c : input.certificates) {
    if (c.kind == schemas::CertificateKind::TrainingCertificate || (c.level != 1 && c.level != 2)) continue;
    if (c.date_days >= month_end) continue;  // earlier years too: the first of a key is the new one
    certs.push_back(&c);
  }
  std::sort(certs.begin(), certs.end(), [](const CertificateRow* a, const CertificateRow* b) {
    return std::tuple(Key128(a->holder), a->occupation, a->level, a->date_days) <
           std::tuple(Key128(b->holder), b->occupation, b->level, b->date_days);
  });
  for (std::size_t i = 0; i < certs.size(); ++i) {
    const auto& c = *certs[i];
    if (i > 0 && certs[i - 1]->holder == c.holder && certs[i - 1]->occupation == c.occupation &&
        certs[i - 1]->level == c.level) {
      continue;  // the same achievement as a qualification and as a skill-level certificate
    }
    if (c.date_days < first_day) continue;  // first obtained before this year: not new now
    add(region_of.find(c.holder), c.date_days >= month_first, [&](Tally& t) {
      if (c.level == 2) ++t.technician;
      if (c.level == 1) ++t.senior_technician;
    });
  }
  std::map<std::uint32_t, RegionLine> lines;
  for (const auto& [region, tally] : raw) {
    for (const auto code : rollup(region)) {
      auto& line = lines[code];
      line.region = code;
      line.level = code == 0 ? RegionLevel::County : level_of(code);
      line.month += tally.month;
      line.year_to_date += tally.year_to_date;
    }
  }
  for (auto& [code, line] : lines) report.lines.push_back(line);
  std::sort(report.lines.begin(), report.lines.end(), [](const RegionLine& a, const RegionLine& b) {
    if ((a.region == 0) != (b.region == 0)) return b.region == 0;  // unknown region last
    return region_less(a.region, b.region);
  });
  return report;
}

// ---------------------------------------------------------------------------------------------
// P19.

Targets Targets::defaults() {
  Targets t;
  t.regions[420000] = {550'000, 14'000};
  t.base_floor = 2000;
  return t;
}

std::optional<std::uint64_t> ProgressLine::permille() const noexcept {
  if (target.person_times == 0) return std::nullopt;
  return person_times * 1000 / target.person_times;
}

std::optional<std::uint64_t> ProgressLine::apprenticeship_permille() const noexcept {
  if (target.apprenticeships == 0) return std::nullopt;
  return apprenticeships * 1000 / target.apprenticeships;
}

Progress progress(const ReportInput& input, const Targets& targets, int year, unsigned through_month) {
  if (through_month < 1 || through_month > 12)
    throw std::invalid_argument("a month is 1..12, got " + std::to_string(through_month));
  const auto report = monthly_report(input, year, through_month);
  Progress out;
  out.year = year;
  out.through_month = through_month;
  for (const auto& [code, target] : targets.regions) {
    ProgressLine line;
    line.region = code;
    line.level = level_of(code);
    line.target = target;
    if (const auto* l = report.line(code)) {
      line.person_times = l->year_to_date.total_person_times();
      line.apprenticeships = l->year_to_date.of(Category::Apprenticeship);
    }
    out.lines.push_back(line);
  }
  std::sort(out.lines.begin(), out.lines.end(),
            [](const ProgressLine& a, const ProgressLine& b) { return region_less(a.region, b.region); });
  // High-skill bases: the trainings the base delivered — our redemptions there, each training
  // once among ours. An outside report of the same training (the other system, a department)
  // does not take it away from the base that ran it.
  const auto period = cst_year_period(year);
  const auto end = cst_month_period(year, through_month).to;
  const SerialIndex voucher_of(input.vouchers);
  std::map<std::uint32_t, std::uint64_t> at_site;
  std::set<std::tuple<Key128, std::uint32_t, std::uint8_t>> delivered;
  for (const auto& r : input.redemptions) {
    if (r.reversed || r.server_time < period.from || r.server_time >= end || !targets.bases.count(r.site)) continue;
    const auto i = voucher_of.find(r.voucher);
    if (i == SerialIndex::kNone) continue;
    const auto& v = input.vouchers[i];
    if (!category_of(v.programme)) continue;
    if (delivered.emplace(Key128(v.holder), v.occupation, v.level).second) ++at_site[r.site];
  }
  for (const auto& [provider, name] : targets.bases) {
    out.bases.push_back({provider, name, at_site[provider], targets.base_floor});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Settlement.

Settlement settlement(const std::vector<RedemptionRow>& redemptions, Period period) {
  Settlement out;
  out.period = period;
  std::map<std::pair<std::uint32_t, FundSource>, SettlementLine> lines;
  std::map<FundSource, SettlementLine> funds;
  const auto in_period = [&](UtcSeconds t) { return t >= period.from && t < period.to; };
  for (const auto& r : redemptions) {
    const bool owed = in_period(r.server_time) && (!r.reversed || r.reversed_at >= period.to);
    const bool recovered = r.server_time < period.from && r.reversed && in_period(r.reversed_at);
    if (in_period(r.server_time) && !owed) ++out.reversed_excluded;
    if (!owed && !recovered) continue;
    auto& line = lines[{r.site, r.fund}];
    line.provider = r.site;
    line.fund = r.fund;
    auto& fund = funds[r.fund];
    fund.fund = r.fund;
    for (auto* l : {&line, &fund}) {
      (owed ? l->count : l->recovered_count) += 1;
      (owed ? l->total_fen : l->recovered_fen) += r.face_value_fen;
    }
    (owed ? out.count : out.recovered_count) += 1;
    (owed ? out.total_fen : out.recovered_fen) += r.face_value_fen;
  }
  for (const auto& [key, line] : lines) out.lines.push_back(line);
  for (const auto& [key, line] : funds) out.by_fund.push_back(line);
  return out;
}

// ---------------------------------------------------------------------------------------------
// P17.

std::string_view to_string(DifferenceKind kind) noexcept {
  switch (kind) {
    case DifferenceKind::BudgetCommitted:
      return "budget_committed";
    case DifferenceKind::BudgetSpent:
      return "budget_spent";
    case DifferenceKind::RedemptionsSpent:
      return "redemptions_spent";
    case DifferenceKind::RedeemedWithoutRedemption:
      return "redeemed_without_redemption";
    case DifferenceKind::RedemptionOnUnredeemedVoucher:
      return "redemption_on_unredeemed_voucher";
    case DifferenceKind::ReversedButNotVoided:
      return "reversed_but_not_voided";
    case DifferenceKind::RedemptionOfUnknownVoucher:
      return "redemption_of_unknown_voucher";
    case DifferenceKind::RedemptionOnOtherCard:
      return "redemption_on_other_card";
    case DifferenceKind::CounterGap:
      return "counter_gap";
    case DifferenceKind::CounterDuplicate:
      return "counter_duplicate";
    case DifferenceKind::NeverWritten:
      return "never_written";
  }
  return "?";
}

Reconciliation reconcile(const ReportInput& input, UtcSeconds now, UtcSeconds grace_seconds) {
  Reconciliation out;
  out.as_of = now;
  out.grace_seconds = grace_seconds;
  out.vouchers = input.vouchers.size();
  out.redemptions = input.redemptions.size();
  std::map<FundSource, FundReconciliation> funds;
  for (const auto f : kFunds) funds[f].fund = f;
  for (const auto& b : input.budgets) {
    auto& f = funds[b.fund];
    f.has_budget = true;
    f.budget_committed_fen = b.committed_fen;
    f.budget_spent_fen = b.spent_fen;
  }

  // What the redemptions say per voucher (by its index): a live one, a reversed one.
  const SerialIndex index(input.vouchers);
  struct Seen {
    const RedemptionRow* live = nullptr;
    const RedemptionRow* reversed = nullptr;
  };
  std::vector<Seen> seen(input.vouchers.size());
  std::vector<Difference> per_voucher;
  for (const auto& r : input.redemptions) {
    if (!r.reversed) {
      funds[r.fund].redemptions_fen += r.face_value_fen;
      ++funds[r.fund].redemptions;
    }
    const auto i = index.find(r.voucher);
    if (i == SerialIndex::kNone) continue;  // listed below, in the order of the redemptions
    (r.reversed ? seen[i].reversed : seen[i].live) = &r;
  }

  for (std::size_t i = 0; i < input.vouchers.size(); ++i) {
    const auto& v = input.vouchers[i];
    auto& f = funds[v.fund];
    using S = ledger::VoucherState;
    if (v.state == S::Issued || v.state == S::Written) f.vouchers_committed_fen += v.face_value_fen;
    if (v.state == S::Redeemed) f.vouchers_spent_fen += v.face_value_fen;
    const Seen s = seen[i];
    if (v.state == S::Redeemed && s.live == nullptr) {
      per_voucher.push_back({DifferenceKind::RedeemedWithoutRedemption, v.serial, v.card, v.fund, 1, 0,
                             "the voucher is redeemed but no redemption (not reversed) is recorded for it"});
    }
    if (s.live != nullptr && v.state != S::Redeemed) {
      per_voucher.push_back({DifferenceKind::RedemptionOnUnredeemedVoucher, v.serial, s.live->card, v.fund,
                             static_cast<std::int64_t>(S::Redeemed), static_cast<std::int64_t>(v.state),
                             "a redemption is recorded but the voucher is " + std::string(ledger::to_string(v.state))});
    }
    if (s.reversed != nullptr && s.live == nullptr && v.state != S::Voided) {
      per_voucher.push_back(
          {DifferenceKind::ReversedButNotVoided, v.serial, s.reversed->card, v.fund,
           static_cast<std::int64_t>(S::Voided), static_cast<std::int64_t>(v.state),
           "its redemption was reversed but the voucher is " + std::string(ledger::to_string(v.state))});
    }
    for (const auto* r : {s.live, s.reversed}) {
      if (r != nullptr && !v.card.empty() && r->card != v.card) {
        per_voucher.push_back({DifferenceKind::RedemptionOnOtherCard, v.serial, r->card, v.fund, 0, 0,
                               "bound to card " + v.card + ", receipt from card " + r->card});
      }
    }
    const auto on_this_card_since = std::max(v.issued_at, v.moved_at);
    if (v.state == S::Issued && on_this_card_since + grace_seconds < now) {
      per_voucher.push_back({DifferenceKind::NeverWritten, v.serial, v.card, v.fund,
                             static_cast<std::int64_t>(on_this_card_since + grace_seconds),
                             static_cast<std::int64_t>(now),
                             "issued (or moved to this card) and never written to it within the grace period"});
    }
  }
  for (const auto& r : input.redemptions) {
    if (index.find(r.voucher) == SerialIndex::kNone) {
      per_voucher.push_back({DifferenceKind::RedemptionOfUnknownVoucher, r.voucher, r.card, r.fund, 0, r.face_value_fen,
                             "the ledger has no such voucher"});
    }
  }

  for (auto& [fund, f] : funds) {
    if (f.has_budget || f.vouchers_committed_fen != 0 || f.vouchers_spent_fen != 0) {
      if (f.budget_committed_fen != f.vouchers_committed_fen) {
        out.differences.push_back({DifferenceKind::BudgetCommitted, std::nullopt, "", fund, f.vouchers_committed_fen,
                                   f.budget_committed_fen,
                                   "face value of issued and written vouchers vs the budget's committed total"});
      }
      if (f.budget_spent_fen != f.vouchers_spent_fen) {
        out.differences.push_back({DifferenceKind::BudgetSpent, std::nullopt, "", fund, f.vouchers_spent_fen,
                                   f.budget_spent_fen, "face value of redeemed vouchers vs the budget's spent total"});
      }
    }
    if (f.redemptions_fen != f.vouchers_spent_fen) {
      out.differences.push_back({DifferenceKind::RedemptionsSpent, std::nullopt, "", fund, f.vouchers_spent_fen,
                                 f.redemptions_fen,
                                 "face value of redeemed vouchers vs redemptions (not reversed) the cards reported"});
    }
    out.funds.push_back(f);
  }
  out.differences.insert(out.differences.end(), per_voucher.begin(), per_voucher.end());

  // Card counters: each card's receipts carry 1, 2, 3 … (reversed ones too: the card counted them).
  // Sorted as small values (card hash, counter, row) so that the sort stays in cache; equal
  // hashes of different cards are told apart by the card itself.
  struct CardKey {
    std::size_t hash;
    std::uint32_t counter;
    std::uint32_t row;
  };
  std::vector<CardKey> keys;
  keys.reserve(input.redemptions.size());
  for (std::size_t i = 0; i < input.redemptions.size(); ++i) {
    const auto& r = input.redemptions[i];
    keys.push_back({std::hash<std::string>{}(r.card), r.counter, static_cast<std::uint32_t>(i)});
  }
  std::sort(keys.begin(), keys.end(), [&](const CardKey& a, const CardKey& b) {
    if (a.hash != b.hash) return a.hash < b.hash;
    if (const int c = input.redemptions[a.row].card.compare(input.redemptions[b.row].card); c != 0) return c < 0;
    return a.counter < b.counter;
  });
  std::vector<const RedemptionRow*> by_card;
  by_card.reserve(keys.size());
  for (const auto& k : keys) by_card.push_back(&input.redemptions[k.row]);
  for (std::size_t begin = 0; begin < by_card.size();) {
    const auto& card = by_card[begin]->card;
    std::size_t end = begin;
    while (end < by_card.size() && by_card[end]->card == card) ++end;
    ++out.cards;
    std::uint32_t expected = 1;
    for (std::size_t i = begin; i < end; ++i) {
      const auto* r = by_card[i];
      if (i > begin && r->counter == by_card[i - 1]->counter) {
        out.differences.push_back({DifferenceKind::CounterDuplicate, r->voucher, card, r->fund, r->counter, r->counter,
                                   "counter " + std::to_string(r->counter) + " also on the receipt of voucher " +
                                       std::to_string(by_card[i - 1]->voucher)});
        continue;
      }
      if (r->counter > expected) {
        out.differences.push_back({DifferenceKind::CounterGap, r->voucher, card, r->fund, expected, r->counter,
                                   "counters " + std::to_string(expected) + ".." + std::to_string(r->counter - 1) +
                                       " never reported before counter " + std::to_string(r->counter)});
      }
      expected = std::max(expected, r->counter + 1);
    }
    begin = end;
  }
  return out;
}

}  // namespace skillcard::reports
