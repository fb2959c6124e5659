// Plain-text tables for terminal screens and slips: columns padded to the widest cell as a
// terminal shows it, where a Chinese character takes two columns and a Latin one takes one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace skillcard::host {

// Columns a UTF-8 text takes on a terminal: 2 for East Asian wide and fullwidth characters
// (CJK ideographs and punctuation, Hangul, fullwidth forms), 1 for others. Bytes that are not
// UTF-8 count one column each.
std::size_t display_width(std::string_view text);

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);
  // Shorter rows are padded with empty cells; longer ones throw std::invalid_argument. Control
  // characters (C0, DEL, C1) in a cell show as '?'.
  void add(std::vector<std::string> row);
  bool empty() const noexcept { return rows_.empty(); }
  // The header, a rule of '-', then the rows; columns two spaces apart, no trailing spaces.
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace skillcard::host
