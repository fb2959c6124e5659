// The refusal catalogue: code and design note agree row by row, every rule P1-P19 that can be
// refused has a code, and messages render.
#include "skillcard/schemas/refusals.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

using namespace skillcard::schemas;

namespace {

std::vector<std::vector<std::string>> design_note_rows() {
  std::ifstream in(std::string(SKILLCARD_SOURCE_DIR) + "/docs/design.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const auto section = doc.find("## Refusal catalogue");
  EXPECT_NE(section, std::string::npos);
  std::istringstream lines(doc.substr(section));
  std::vector<std::vector<std::string>> rows;
  std::string line;
  bool in_table = false;
  while (std::getline(lines, line)) {
    if (line.rfind("| Code", 0) == 0) {
      in_table = true;
      std::getline(lines, line);  // the |---| row
      continue;
    }
    if (!in_table) continue;
    if (line.rfind("|", 0) != 0) break;
    std::vector<std::string> cells;
    std::size_t pos = 1;
    while (pos < line.size()) {
      const auto bar = line.find('|', pos);
      if (bar == std::string::npos) break;
      auto cell = line.substr(pos, bar - pos);
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
      pos = bar + 1;
    }
    rows.push_back(cells);
  }
  return rows;
}

std::string join(const std::vector<std::string_view>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + std::string(s);
  return out.empty() ? "—" : out;
}

}  // namespace

TEST(RefusalCatalogue, MatchesTheDesignNoteRowByRow) {
  const auto rows = design_note_rows();
  const auto catalogue = refusal_catalogue();
  ASSERT_EQ(rows.size(), catalogue.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    const auto& r = catalogue[i];
    ASSERT_EQ(row.size(), 6u) << "row " << i;
    auto code = row[0];
    if (const auto p = code.find(" (added)"); p != std::string::npos) code.erase(p);
    EXPECT_EQ(code, r.code);
    EXPECT_EQ(row[1], join(r.rules)) << code;
    EXPECT_EQ(row[2], r.http_status == 0 ? "—" : std::to_string(r.http_status)) << code;
    EXPECT_EQ(row[3], r.card_status.empty() ? "—" : std::string(r.card_status)) << code;
    EXPECT_EQ(row[4], r.zh_cn) << code;
    EXPECT_EQ(row[5], r.en) << code;
  }
}

TEST(RefusalCatalogue, CodesAreUniqueAndMessagesComplete) {
  std::set<std::string_view> codes;
  for (const auto& r : refusal_catalogue()) {
    EXPECT_TRUE(codes.insert(r.code).second) << r.code;
    EXPECT_FALSE(r.zh_cn.empty()) << r.code;
    EXPECT_FALSE(r.en.empty()) << r.code;
    // Refusals are 4xx; only the service's own trouble (not the request's) is 5xx.
    const bool service_trouble = r.code == "NOT_IMPLEMENTED" || r.code == "SERVICE_UNAVAILABLE" ||
                                 r.code == "OUTCOME_UNKNOWN" || r.code == "INTERNAL";
    EXPECT_TRUE(r.http_status == 0 || (r.http_status >= 400 && r.http_status < 500) ||
                (service_trouble && r.http_status >= 500))
        << r.code;
  }
  // Every rule the service can refuse on has at least one code naming it.
  std::set<std::string_view> rules;
  for (const auto& r : refusal_catalogue()) rules.insert(r.rules.begin(), r.rules.end());
  for (const auto* rule : {"P1", "P2", "P3", "P4", "P6", "P8", "P9", "P10", "P11", "P12", "P13", "P14", "P15", "P16"}) {
    EXPECT_TRUE(rules.count(rule)) << rule;
  }
  EXPECT_THROW(refusal("NO_SUCH_CODE"), std::out_of_range);
}

TEST(RefusalCatalogue, MessagesRender) {
  const auto& p1 = refusal("P1_ANNUAL_LIMIT");
  EXPECT_EQ(p1.rules, std::vector<std::string_view>{"P1"});
  const auto zh = render(p1.zh_cn, {{"limit", "3"}});
  EXPECT_NE(zh.find("已享受3次"), std::string::npos) << zh;
  EXPECT_EQ(zh.find('{'), std::string::npos);
  EXPECT_NE(render(p1.en, {}).find("{limit}"), std::string::npos);  // a missing value stays visible
  EXPECT_EQ(render("a{x}b{y}c", {{"x", "1"}, {"y", "2"}}), "a1b2c");
  EXPECT_EQ(render("unclosed {x", {{"x", "1"}}), "unclosed {x");
}
