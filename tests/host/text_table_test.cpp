// Tables on terminal screens: Chinese characters take two columns, so columns line up for a
// holder reading Chinese as they do in English.
#include "skillcard/host/text_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace skillcard::host {
namespace {

TEST(DisplayWidth, ChineseIsTwoColumnsLatinAndYuanSignOne) {
  EXPECT_EQ(display_width(""), 0u);
  EXPECT_EQ(display_width("voucher"), 7u);
  EXPECT_EQ(display_width("培训券"), 6u);
  EXPECT_EQ(display_width("¥1800.00"), 8u);
  EXPECT_EQ(display_width("有效期至 2027-02-28"), 8u + 1 + 10);
  EXPECT_EQ(display_width("，（）"), 6u);  // fullwidth punctuation
}

TEST(DisplayWidth, BytesThatAreNotUtf8CountOneEach) {
  EXPECT_EQ(display_width("\xff\xfe"), 2u);
  EXPECT_EQ(display_width("\xe5\x9f"), 2u);  // a cut-off 3-byte sequence
  EXPECT_EQ(display_width("\xe5"
                          "ab"),
            3u);  // a lead byte without continuation
}

TEST(TextTable, ColumnsLineUpWhateverTheScript) {
  TextTable table({"培训券", "状态", "面值"});
  table.add({"0000000000000001", "已核销", "¥1800.00"});
  table.add({"0000000000000002", "已写卡"});
  const auto text = table.render();
  std::istringstream lines(text);
  std::string header, rule, first, second;
  std::getline(lines, header);
  std::getline(lines, rule);
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(header, "培训券            状态    面值");
  EXPECT_EQ(rule, std::string(16 + 2 + 6 + 2 + 8, '-'));
  EXPECT_EQ(first, "0000000000000001  已核销  ¥1800.00");
  EXPECT_EQ(second, "0000000000000002  已写卡");  // no trailing spaces
  // Each state column starts at the same display column.
  EXPECT_EQ(display_width(header.substr(0, header.find("状态"))), display_width(first.substr(0, first.find("已核销"))));
}

// A cell's text may come from elsewhere: no escape sequence or line break reaches the terminal.
TEST(TextTable, ControlCharactersInACellShowAsQuestionMarks) {
  TextTable table({"issuer"});
  table.add(
      {"\x1b[2Jevil\nline\x7f\xc2\x9b"
       "31m中心"});
  const auto text = table.render();
  EXPECT_EQ(text.substr(text.rfind('-') + 2), "?[2Jevil?line??31m中心\n");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
}

TEST(TextTable, ARowWiderThanTheHeaderIsRefused) {
  TextTable table({"a"});
  EXPECT_THROW(table.add({"1", "2"}), std::invalid_argument);
  EXPECT_TRUE(table.empty());
}

}  // namespace
}  // namespace skillcard::host
