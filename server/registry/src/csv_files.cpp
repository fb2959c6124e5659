// CSV import and export of the registry's files over libcsv (RFC 4180: quotes, embedded commas).
#include <csv.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/registry/registry.hpp"
#include "skillcard/schemas/cst.hpp"

namespace skillcard::registry {

namespace {

using Row = std::vector<std::string>;

struct Parser {
  csv_parser p{};
  Parser() {
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) throw std::bad_alloc();
  }
  ~Parser() { csv_free(&p); }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;
};

// Rows and the line each starts on: a quoted field may hold line breaks and blank lines are
// skipped, so a record's number is not its line, and the operator fixes the file by line.
struct Table {
  std::vector<Row> rows;
  std::vector<std::size_t> lines;
};

struct Collect {
  Row row;
  Table table;
  std::size_t line = 1;  // the line being parsed
};

void on_field(void* data, std::size_t size, void* out) {
  auto* c = static_cast<Collect*>(out);
  if (c->row.empty()) {
    // The first field ends on the line being parsed; its own line breaks go back to its start.
    const auto* text = static_cast<const char*>(data);
    c->table.lines.push_back(c->line - static_cast<std::size_t>(std::count(text, text + size, '\n')));
  }
  c->row.emplace_back(static_cast<const char*>(data), size);
}
void on_record(int, void* out) {
  auto* c = static_cast<Collect*>(out);
  c->table.rows.push_back(std::move(c->row));
  c->row.clear();
}

Table read_rows(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CsvError(path.string() + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  auto text = ss.str();
  // A UTF-8 byte order mark (Excel's "CSV UTF-8") is not part of the first column's name.
  if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
  Parser parser;
  Collect collect;
  const auto invalid = [&] {
    return CsvError(path.string() + ": line " + std::to_string(collect.line) +
                    ": not valid CSV: " + csv_strerror(csv_error(&parser.p)));
  };
  // Fed a line at a time, so that every callback knows the line it is on.
  for (std::size_t at = 0; at < text.size(); ++collect.line) {
    const auto end = std::min(text.find('\n', at), text.size() - 1) + 1;
    if (csv_parse(&parser.p, text.data() + at, end - at, on_field, on_record, &collect) != end - at) throw invalid();
    at = end;
  }
  if (!text.empty()) --collect.line;  // fini finishes the last line
  if (csv_fini(&parser.p, on_field, on_record, &collect) != 0) throw invalid();
  return std::move(collect.table);
}

// Maps the header's column names to positions, requiring every expected column.
std::map<std::string, std::size_t> columns(const Table& table, const std::vector<std::string>& expected,
                                           const std::filesystem::path& path) {
  if (table.rows.empty()) throw CsvError(path.string() + ": empty file, expected a header row");
  std::map<std::string, std::size_t> index;
  const auto& header = table.rows[0];
  for (std::size_t i = 0; i < header.size(); ++i) index[header[i]] = i;
  for (const auto& name : expected) {
    if (!index.count(name)) {
      throw CsvError(path.string() + ": line " + std::to_string(table.lines[0]) + ": missing column '" + name + "'");
    }
  }
  return index;
}

struct Cell {
  const std::filesystem::path& path;
  std::size_t line;
  const Row& row;
  const std::map<std::string, std::size_t>& index;

  [[noreturn]] void fail(const std::string& column, const std::string& why) const {
    throw CsvError(path.string() + ": line " + std::to_string(line) + ": " + column + ": " + why);
  }
  const std::string& text(const std::string& column) const {
    const auto i = index.at(column);
    if (i >= row.size()) fail(column, "missing (the row has " + std::to_string(row.size()) + " fields)");
    return row[i];
  }
  std::uint32_t number(const std::string& column, std::uint32_t min, std::uint32_t max) const {
    const auto& t = text(column);
    std::uint32_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size() || v < min || v > max) {
      fail(column, "'" + t + "' is not a number in " + std::to_string(min) + ".." + std::to_string(max));
    }
    return v;
  }
  bool flag(const std::string& column) const {
    const auto& t = text(column);
    if (t != "0" && t != "1") fail(column, "'" + t + "' must be 0 or 1");
    return t == "1";
  }
  std::chrono::year_month_day date(const std::string& column) const {
    const auto& t = text(column);
    // Exactly YYYY-MM-DD: "206-03-02" (a typo) must not become the year 206 and drop out of
    // every count of 2026, nor "+2026-3-2" pass for a date.
    const auto digits = [&](std::size_t from, std::size_t n) {
      unsigned v = 0;
      for (std::size_t i = from; i < from + n; ++i) {
        if (t[i] < '0' || t[i] > '9') return -1;
        v = v * 10 + static_cast<unsigned>(t[i] - '0');
      }
      return static_cast<int>(v);
    };
    const bool shaped = t.size() == 10 && t[4] == '-' && t[7] == '-';
    const int y = shaped ? digits(0, 4) : -1;
    const int m = shaped ? digits(5, 2) : -1;
    const int d = shaped ? digits(8, 2) : -1;
    const std::chrono::year_month_day date{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(m)},
                                           std::chrono::day{static_cast<unsigned>(d)}};
    if (y < 1900 || m < 0 || d < 0 || !date.ok()) fail(column, "'" + t + "' is not a date YYYY-MM-DD");
    return date;
  }
  std::string citizen_id(const std::string& column) const {
    const auto& t = text(column);
    if (const auto problem = crypto::citizen_id_problem(t); !problem.empty()) fail(column, problem);
    return crypto::canonical_citizen_id(t);
  }
};

const std::map<std::string, policy::KeyGroup> kGroups = {
    {"registered_unemployed", policy::KeyGroup::RegisteredUnemployed},
    {"poverty_alleviated", policy::KeyGroup::PovertyAlleviatedLabour},
    {"poor_family_child", policy::KeyGroup::PoorFamilyChild},
    {"unemployed_graduate", policy::KeyGroup::UnemployedRecentGraduate}};
const std::map<std::string, policy::SubsidyRecord::Source> kSources = {
    {"other_system", policy::SubsidyRecord::Source::OtherBusinessSystem},
    {"ui_training", policy::SubsidyRecord::Source::UnemploymentInsuranceTraining},
    {"skill_upgrade", policy::SubsidyRecord::Source::SkillUpgrade},
    {"other_department", policy::SubsidyRecord::Source::OtherDepartment},
    {"job_stabilisation", policy::SubsidyRecord::Source::JobStabilisationRefund}};
const std::map<std::string, schemas::FundSource> kFunds = {
    {"special_account", schemas::FundSource::SpecialAccount},
    {"employment_fund", schemas::FundSource::EmploymentSubsidyFund},
    {"unemployment_insurance", schemas::FundSource::UnemploymentInsuranceFund},
    {"other_department", schemas::FundSource::OtherDepartment}};

template <class Map>
std::string name_of(const Map& map, typename Map::mapped_type value) {
  for (const auto& [k, v] : map) {
    if (v == value) return k;
  }
  return "?";
}

template <class Map>
typename Map::mapped_type lookup(const Map& map, const Cell& cell, const std::string& column, const std::string& text) {
  const auto it = map.find(text);
  if (it == map.end()) {
    std::string known;
    for (const auto& [k, v] : map) known += (known.empty() ? "" : ", ") + k;
    cell.fail(column, "'" + text + "' is not one of " + known);
  }
  return it->second;
}

std::string quoted(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string iso_date(std::chrono::year_month_day d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                static_cast<unsigned>(d.day()));
  return buf;
}

}  // namespace

std::vector<Person> read_people_csv(const std::filesystem::path& path) {
  const auto table = read_rows(path);
  const auto index = columns(
      table,
      {"citizen_id", "name", "region", "date_of_birth", "insured", "employed", "retired_fisherman", "key_groups"},
      path);
  std::vector<Person> people;
  people.reserve(table.rows.size() - 1);
  std::unordered_map<std::string, std::size_t> line_of;
  for (std::size_t i = 1; i < table.rows.size(); ++i) {
    const Cell cell{path, table.lines[i], table.rows[i], index};
    Person p;
    p.citizen_id = cell.citizen_id("citizen_id");
    if (const auto [it, fresh] = line_of.emplace(p.citizen_id, cell.line); !fresh) {
      cell.fail("citizen_id", p.citizen_id.substr(0, 6) + "... already on line " + std::to_string(it->second));
    }
    p.name = cell.text("name");
    if (p.name.empty()) cell.fail("name", "empty");
    p.region = cell.number("region", 100000, 999999);
    p.facts.known = true;
    p.facts.date_of_birth = cell.date("date_of_birth");
    p.facts.insured = cell.flag("insured");
    p.facts.employed = cell.flag("employed");
    p.facts.retired_fisherman = cell.flag("retired_fisherman");
    std::stringstream groups(cell.text("key_groups"));
    for (std::string g; std::getline(groups, g, ';');) {
      if (!g.empty()) p.facts.key_groups.insert(lookup(kGroups, cell, "key_groups", g));
    }
    people.push_back(std::move(p));
  }
  return people;
}

void require_known_people(const std::vector<Person>& people, const std::vector<ExternalSubsidy>& subsidies,
                          const std::filesystem::path& people_csv, const std::filesystem::path& subsidies_csv) {
  std::unordered_set<std::string_view> known;
  for (const auto& p : people) known.insert(p.citizen_id);
  for (const auto& s : subsidies) {
    if (!known.count(s.citizen_id)) {
      throw CsvError(subsidies_csv.string() + ": line " + std::to_string(s.line) +
                     ": citizen_id: " + s.citizen_id.substr(0, 6) + "... is not in " + people_csv.string());
    }
  }
}

std::vector<ExternalSubsidy> read_subsidies_csv(const std::filesystem::path& path) {
  const auto table = read_rows(path);
  const auto index = columns(table, {"citizen_id", "source", "issued_on", "fund", "occupation", "level"}, path);
  std::vector<ExternalSubsidy> out;
  for (std::size_t i = 1; i < table.rows.size(); ++i) {
    const Cell cell{path, table.lines[i], table.rows[i], index};
    ExternalSubsidy s;
    s.line = cell.line;
    s.citizen_id = cell.citizen_id("citizen_id");
    s.record.source = lookup(kSources, cell, "source", cell.text("source"));
    s.record.issued_at = schemas::cst_start_of(cell.date("issued_on"));
    s.record.fund = lookup(kFunds, cell, "fund", cell.text("fund"));
    try {
      s.record.occupation = schemas::parse_occupation(cell.text("occupation"));
    } catch (const std::invalid_argument& e) {
      cell.fail("occupation", e.what());
    }
    s.record.level = static_cast<std::uint8_t>(cell.number("level", 1, 5));
    out.push_back(std::move(s));
  }
  return out;
}

void write_people_csv(const std::filesystem::path& path, const std::vector<Person>& people) {
  std::ofstream out(path, std::ios::binary);
  out << "citizen_id,name,region,date_of_birth,insured,employed,retired_fisherman,key_groups\r\n";
  for (const auto& p : people) {
    std::string groups;
    for (const auto g : p.facts.key_groups) groups += (groups.empty() ? "" : ";") + name_of(kGroups, g);
    out << p.citizen_id << ',' << quoted(p.name) << ',' << p.region << ',' << iso_date(p.facts.date_of_birth) << ','
        << p.facts.insured << ',' << p.facts.employed << ',' << p.facts.retired_fisherman << ',' << groups << "\r\n";
  }
  if (!out) throw CsvError(path.string() + ": write failed");
}

void write_subsidies_csv(const std::filesystem::path& path, const std::vector<ExternalSubsidy>& subsidies) {
  std::ofstream out(path, std::ios::binary);
  out << "citizen_id,source,issued_on,fund,occupation,level\r\n";
  for (const auto& s : subsidies) {
    out << s.citizen_id << ',' << name_of(kSources, s.record.source) << ','
        << iso_date(schemas::cst_date(s.record.issued_at)) << ',' << name_of(kFunds, s.record.fund) << ','
        << schemas::format_occupation(s.record.occupation) << ',' << unsigned{s.record.level} << "\r\n";
  }
  if (!out) throw CsvError(path.string() + ": write failed");
}

}  // namespace skillcard::registry
