// JSON, CSV and text-table renderings of the reports.
#include "skillcard/reports/render.hpp"

#include <algorithm>
#include <sstream>

#include "skillcard/ledger/export.hpp"

namespace skillcard::reports {

namespace {

using Json = nlohmann::ordered_json;

constexpr Category kAll[] = {Category::EnterpriseStaff, Category::Apprenticeship, Category::KeyGroup,
                             Category::OtherDepartment, Category::JobStabilisation};

Json tally_json(const Tally& t) {
  Json j;
  for (const auto c : kAll) j[std::string(to_string(c))] = t.of(c);
  j["person_times"] = t.total_person_times();
  j["technician_certificates"] = t.technician;
  j["senior_technician_certificates"] = t.senior_technician;
  return j;
}

std::string opt(const std::optional<std::uint64_t>& v) { return v ? std::to_string(*v) : ""; }
std::string percent(const std::optional<std::uint64_t>& permille) {
  if (!permille) return "-";
  return std::to_string(*permille / 10) + "." + std::to_string(*permille % 10) + "%";
}

// A plain text table: columns padded to their widest cell (byte width; our cells are ASCII).
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string str() const {
    std::vector<std::size_t> width(rows_[0].size(), 0);
    for (const auto& r : rows_) {
      for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
    }
    std::ostringstream out;
    for (std::size_t n = 0; n < rows_.size(); ++n) {
      for (std::size_t i = 0; i < rows_[n].size(); ++i) {
        const auto& cell = rows_[n][i];
        const auto pad = std::string(width[i] - cell.size(), ' ');
        // The first column is a label (an indented region code, a provider): always left.
        out << (i == 0 ? "" : "  ") << (i > 0 && numeric(cell) ? pad + cell : cell + pad);
      }
      out << "\n";
      if (n == 0) {
        std::size_t total = 0;
        for (auto w : width) total += w + 2;
        out << std::string(total - 2, '-') << "\n";
      }
    }
    return out.str();
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  // Numbers (counts, yuan, percentages) are right-aligned, text left-aligned.
  static bool numeric(const std::string& cell) {
    return !cell.empty() && cell.find_first_not_of("0123456789.-%") == std::string::npos;
  }
};

std::string indent(const RegionLine& l) {
  const std::string label = region_label(l.region);
  if (l.region == 0) return label;
  switch (l.level) {
    case RegionLevel::Province:
      return label;
    case RegionLevel::City:
      return "  " + label;
    case RegionLevel::County:
      return "    " + label;
  }
  return label;
}

}  // namespace

std::string_view fund_name(FundSource fund) noexcept {
  switch (fund) {
    case FundSource::SpecialAccount:
      return "special_account";
    case FundSource::EmploymentSubsidyFund:
      return "employment_fund";
    case FundSource::UnemploymentInsuranceFund:
      return "unemployment_insurance";
    case FundSource::OtherDepartment:
      return "other_department";
  }
  return "?";
}

std::string region_label(std::uint32_t region) { return region == 0 ? "unknown" : std::to_string(region); }

std::string yuan(std::int64_t fen) {
  const bool negative = fen < 0;
  const auto abs = negative ? -fen : fen;
  const auto cents = abs % 100;
  return (negative ? "-" : "") + std::to_string(abs / 100) + "." + (cents < 10 ? "0" : "") + std::to_string(cents);
}

// --- monthly report ----------------------------------------------------------------------------

Json to_json(const MonthlyReport& r) {
  Json j;
  j["report"] = "monthly";
  j["year"] = r.year;
  j["month"] = r.month;
  j["duplicates_month"] = r.duplicates_month;
  j["duplicates_year_to_date"] = r.duplicates_year_to_date;
  j["regions"] = Json::array();
  for (const auto& l : r.lines) {
    Json line;
    line["region"] = region_label(l.region);
    line["level"] = to_string(l.level);
    line["month"] = tally_json(l.month);
    line["year_to_date"] = tally_json(l.year_to_date);
    j["regions"].push_back(std::move(line));
  }
  return j;
}

std::string to_csv(const MonthlyReport& r) {
  std::ostringstream out;
  out << "year,month,region,level,period";
  for (const auto c : kAll) out << ',' << to_string(c);
  out << ",person_times,technician_certificates,senior_technician_certificates\r\n";
  for (const auto& l : r.lines) {
    for (const auto& [name, t] : {std::pair{"month", &l.month}, std::pair{"year_to_date", &l.year_to_date}}) {
      out << r.year << ',' << r.month << ',' << region_label(l.region) << ',' << to_string(l.level) << ',' << name;
      for (const auto c : kAll) out << ',' << t->of(c);
      out << ',' << t->total_person_times() << ',' << t->technician << ',' << t->senior_technician << "\r\n";
    }
  }
  return out.str();
}

std::string to_table(const MonthlyReport& r) {
  Table t({"region", "staff", "apprent.", "key group", "other dept", "job stab.", "person-times", "YTD", "technician",
           "senior tech.", "YTD cert."});
  for (const auto& l : r.lines) {
    t.add({indent(l), std::to_string(l.month.of(Category::EnterpriseStaff)),
           std::to_string(l.month.of(Category::Apprenticeship)), std::to_string(l.month.of(Category::KeyGroup)),
           std::to_string(l.month.of(Category::OtherDepartment)),
           std::to_string(l.month.of(Category::JobStabilisation)), std::to_string(l.month.total_person_times()),
           std::to_string(l.year_to_date.total_person_times()), std::to_string(l.month.technician),
           std::to_string(l.month.senior_technician),
           std::to_string(l.year_to_date.technician + l.year_to_date.senior_technician)});
  }
  std::ostringstream out;
  out << "Monthly report (P18) " << r.year << "-" << (r.month < 10 ? "0" : "") << r.month
      << " (CST); person-times counted once: " << r.duplicates_month << " duplicate reports this month, "
      << r.duplicates_year_to_date << " this year\n"
      << t.str();
  return out.str();
}

// --- progress ----------------------------------------------------------------------------------

Json to_json(const Progress& p) {
  Json j;
  j["report"] = "progress";
  j["year"] = p.year;
  j["through_month"] = p.through_month;
  j["regions"] = Json::array();
  for (const auto& l : p.lines) {
    Json line;
    line["region"] = region_label(l.region);
    line["level"] = to_string(l.level);
    line["target_person_times"] = l.target.person_times;
    line["person_times"] = l.person_times;
    line["permille"] = l.permille() ? Json(*l.permille()) : Json(nullptr);
    line["target_apprenticeships"] = l.target.apprenticeships;
    line["apprenticeships"] = l.apprenticeships;
    line["apprenticeship_permille"] = l.apprenticeship_permille() ? Json(*l.apprenticeship_permille()) : Json(nullptr);
    j["regions"].push_back(std::move(line));
  }
  j["bases"] = Json::array();
  for (const auto& b : p.bases) {
    j["bases"].push_back({{"provider", b.provider},
                          {"name", b.name},
                          {"person_times", b.person_times},
                          {"floor", b.floor},
                          {"met", b.met()}});
  }
  return j;
}

std::string to_csv(const Progress& p) {
  std::ostringstream out;
  out << "year,through_month,kind,id,level,target,actual,permille,target_apprenticeships,apprenticeships,met\r\n";
  for (const auto& l : p.lines) {
    out << p.year << ',' << p.through_month << ",region," << region_label(l.region) << ',' << to_string(l.level) << ','
        << l.target.person_times << ',' << l.person_times << ',' << opt(l.permille()) << ',' << l.target.apprenticeships
        << ',' << l.apprenticeships << ',' << (l.person_times >= l.target.person_times ? 1 : 0) << "\r\n";
  }
  for (const auto& b : p.bases) {
    out << p.year << ',' << p.through_month << ",base," << b.provider << ',' << ledger::csv_text(b.name) << ','
        << b.floor << ',' << b.person_times << ',' << (b.floor ? std::to_string(b.person_times * 1000 / b.floor) : "")
        << ",,," << (b.met() ? 1 : 0) << "\r\n";
  }
  return out.str();
}

std::string to_table(const Progress& p) {
  Table t({"region", "target", "actual", "reached", "apprent. target", "apprent.", "reached"});
  for (const auto& l : p.lines) {
    const std::string pad = l.level == RegionLevel::City ? "  " : l.level == RegionLevel::County ? "    " : "";
    t.add({pad + region_label(l.region), std::to_string(l.target.person_times), std::to_string(l.person_times),
           percent(l.permille()), std::to_string(l.target.apprenticeships), std::to_string(l.apprenticeships),
           percent(l.apprenticeship_permille())});
  }
  Table b({"base", "name", "floor", "actual", "met"});
  for (const auto& base : p.bases) {
    b.add({std::to_string(base.provider), base.name, std::to_string(base.floor), std::to_string(base.person_times),
           base.met() ? "yes" : "NO"});
  }
  std::ostringstream out;
  out << "Progress against targets (P19) " << p.year << ", January to month " << p.through_month << "\n"
      << t.str() << "\nHigh-skill training bases\n"
      << b.str();
  return out.str();
}

// --- settlement --------------------------------------------------------------------------------

Json to_json(const Settlement& s) {
  const auto line_json = [](const SettlementLine& l, bool with_provider) {
    Json j;
    if (with_provider) j["provider"] = l.provider;
    j["fund"] = fund_name(l.fund);
    j["count"] = l.count;
    j["total_fen"] = l.total_fen;
    j["recovered_count"] = l.recovered_count;
    j["recovered_fen"] = l.recovered_fen;
    j["net_fen"] = l.net_fen();
    return j;
  };
  Json j;
  j["report"] = "settlement";
  j["from"] = s.period.from;
  j["to"] = s.period.to;
  j["lines"] = Json::array();
  for (const auto& l : s.lines) j["lines"].push_back(line_json(l, true));
  j["by_fund"] = Json::array();
  for (const auto& l : s.by_fund) j["by_fund"].push_back(line_json(l, false));
  j["count"] = s.count;
  j["total_fen"] = s.total_fen;
  j["recovered_count"] = s.recovered_count;
  j["recovered_fen"] = s.recovered_fen;
  j["net_fen"] = s.net_fen();
  j["reversed_excluded"] = s.reversed_excluded;
  return j;
}

// Per provider and fund, then per fund (provider "all") and the whole (provider and fund "all"):
// the same totals the table and the JSON carry.
std::string to_csv(const Settlement& s) {
  std::ostringstream out;
  out << "from,to,provider,fund,count,total_fen,recovered_count,recovered_fen,net_fen\r\n";
  const auto row = [&](const std::string& provider, std::string_view fund, std::uint64_t count, std::int64_t total,
                       std::uint64_t recovered_count, std::int64_t recovered, std::int64_t net) {
    out << s.period.from << ',' << s.period.to << ',' << provider << ',' << fund << ',' << count << ',' << total << ','
        << recovered_count << ',' << recovered << ',' << net << "\r\n";
  };
  for (const auto& l : s.lines) {
    row(std::to_string(l.provider), fund_name(l.fund), l.count, l.total_fen, l.recovered_count, l.recovered_fen,
        l.net_fen());
  }
  for (const auto& l : s.by_fund) {
    row("all", fund_name(l.fund), l.count, l.total_fen, l.recovered_count, l.recovered_fen, l.net_fen());
  }
  row("all", "all", s.count, s.total_fen, s.recovered_count, s.recovered_fen, s.net_fen());
  return out.str();
}

std::string to_table(const Settlement& s) {
  Table t({"provider", "fund", "redemptions", "owed (yuan)", "reversed later", "recovered (yuan)", "net (yuan)"});
  const auto add = [&](std::string provider, std::string fund, const SettlementLine& l) {
    t.add({std::move(provider), std::move(fund), std::to_string(l.count), yuan(l.total_fen),
           std::to_string(l.recovered_count), yuan(l.recovered_fen), yuan(l.net_fen())});
  };
  for (const auto& l : s.lines) add(std::to_string(l.provider), std::string(fund_name(l.fund)), l);
  for (const auto& l : s.by_fund) add("all", std::string(fund_name(l.fund)), l);
  add("all", "all",
      SettlementLine{0, FundSource::SpecialAccount, s.count, s.total_fen, s.recovered_count, s.recovered_fen});
  std::ostringstream out;
  out << "Settlement, server time [" << s.period.from << ", " << s.period.to << ") UTC seconds; " << s.reversed_excluded
      << " redeemed and reversed within the period, owed nothing; " << s.recovered_count
      << " redeemed earlier and reversed in it, recovered\n"
      << t.str();
  return out.str();
}

// --- reconciliation ----------------------------------------------------------------------------

Json to_json(const Reconciliation& r) {
  Json j;
  j["report"] = "reconciliation";
  j["as_of"] = r.as_of;
  j["grace_seconds"] = r.grace_seconds;
  j["vouchers"] = r.vouchers;
  j["redemptions"] = r.redemptions;
  j["cards"] = r.cards;
  j["agrees"] = r.agrees();
  j["funds"] = Json::array();
  for (const auto& f : r.funds) {
    j["funds"].push_back({{"fund", fund_name(f.fund)},
                          {"vouchers_committed_fen", f.vouchers_committed_fen},
                          {"budget_committed_fen", f.budget_committed_fen},
                          {"vouchers_spent_fen", f.vouchers_spent_fen},
                          {"budget_spent_fen", f.budget_spent_fen},
                          {"redemptions_fen", f.redemptions_fen},
                          {"redemptions", f.redemptions},
                          {"has_budget", f.has_budget}});
  }
  j["differences"] = Json::array();
  for (const auto& d : r.differences) {
    Json x;
    x["kind"] = to_string(d.kind);
    x["voucher"] = d.voucher ? Json(*d.voucher) : Json(nullptr);
    x["card"] = d.card;
    x["fund"] = d.fund ? Json(fund_name(*d.fund)) : Json(nullptr);
    x["expected"] = d.expected;
    x["found"] = d.found;
    x["detail"] = d.detail;
    j["differences"].push_back(std::move(x));
  }
  return j;
}

std::string to_csv(const Reconciliation& r) {
  std::ostringstream out;
  out << "kind,voucher,card,fund,expected,found,detail\r\n";
  for (const auto& d : r.differences) {
    out << to_string(d.kind) << ',' << (d.voucher ? std::to_string(*d.voucher) : "") << ',' << d.card << ','
        << (d.fund ? fund_name(*d.fund) : "") << ',' << d.expected << ',' << d.found << ','
        << ledger::csv_text(d.detail) << "\r\n";
  }
  return out.str();
}

std::string to_table(const Reconciliation& r) {
  Table f({"fund", "vouchers committed", "budget committed", "vouchers spent", "budget spent", "cards reported"});
  for (const auto& x : r.funds) {
    f.add({std::string(fund_name(x.fund)), yuan(x.vouchers_committed_fen), yuan(x.budget_committed_fen),
           yuan(x.vouchers_spent_fen), yuan(x.budget_spent_fen), yuan(x.redemptions_fen)});
  }
  Table d({"difference", "voucher", "card", "fund", "expected", "found", "detail"});
  for (const auto& x : r.differences) {
    d.add({std::string(to_string(x.kind)), x.voucher ? std::to_string(*x.voucher) : "", x.card,
           x.fund ? std::string(fund_name(*x.fund)) : "", std::to_string(x.expected), std::to_string(x.found),
           x.detail});
  }
  std::ostringstream out;
  out << "Reconciliation (P17) as of " << r.as_of << " UTC seconds: " << r.vouchers << " vouchers, " << r.redemptions
      << " redemptions, " << r.cards << " cards; "
      << (r.agrees() ? "everything agrees" : std::to_string(r.differences.size()) + " differences") << "\n"
      << f.str();
  if (!r.agrees()) out << "\n" << d.str();
  return out.str();
}

}  // namespace skillcard::reports
