// Plain-text tables with East Asian display widths (see text_table.hpp).
#include "skillcard/host/text_table.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace skillcard::host {

namespace {

// Unicode East Asian Width W and F ranges that terminals show two columns wide (the common
// blocks; rarer wide symbols count one, which at worst misaligns a cell, never drops text).
bool wide(std::uint32_t cp) {
  return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) || (cp >= 0x3041 && cp <= 0x33FF) ||
         (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
         (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
         (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

}  // namespace

std::size_t display_width(std::string_view text) {
  std::size_t width = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<std::uint8_t>(text[i]);
    std::size_t length = lead < 0x80           ? 1
                         : (lead >> 5) == 0x6  ? 2
                         : (lead >> 4) == 0xE  ? 3
                         : (lead >> 3) == 0x1E ? 4
                                               : 0;
    if (length == 0 || i + length > text.size()) {
      ++width;  // not UTF-8: one column a byte
      ++i;
      continue;
    }
    std::uint32_t cp = length == 1 ? lead : lead & (0x7FU >> length);
    bool ok = true;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<std::uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (next & 0x3FU);
    }
    if (!ok) {
      ++width;
      ++i;
      continue;
    }
    width += wide(cp) ? 2U : 1U;
    i += length;
  }
  return width;
}

TextTable::TextTable(std::vector<std::string> header) : header_(std::move(header)) {}

void TextTable::add(std::vector<std::string> row) {
  if (row.size() > header_.size()) throw std::invalid_argument("table row has more cells than the header");
  row.resize(header_.size());
  // Cells carry text from elsewhere (a certificate's issuer, a service's error): control
  // characters would break the layout or drive the terminal (escape sequences), so each C0, DEL
  // and C1 (U+0080-U+009F, C2 80-9F in UTF-8) character shows as '?'.
  for (auto& cell : row) {
    std::string clean;
    clean.reserve(cell.size());
    for (std::size_t i = 0; i < cell.size(); ++i) {
      const auto b = static_cast<unsigned char>(cell[i]);
      if (b < 0x20 || b == 0x7F) {
        clean += '?';
      } else if (b == 0xC2 && i + 1 < cell.size() && static_cast<unsigned char>(cell[i + 1]) >= 0x80 &&
                 static_cast<unsigned char>(cell[i + 1]) <= 0x9F) {
        clean += '?';
        ++i;
      } else {
        clean += cell[i];
      }
    }
    cell = std::move(clean);
  }
  rows_.push_back(std::move(row));
}

std::string TextTable::render() const {
  std::vector<std::size_t> widths(header_.size());
  for (std::size_t c = 0; c < header_.size(); ++c) {
    widths[c] = display_width(header_[c]);
    for (const auto& row : rows_) widths[c] = std::max(widths[c], display_width(row[c]));
  }
  std::string out;
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) text += "  ";
      text += cells[c];
      if (c + 1 < cells.size()) text.append(widths[c] - display_width(cells[c]), ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text;
    out += '\n';
  };
  line(header_);
  std::size_t total = 0;
  for (std::size_t c = 0; c < widths.size(); ++c) total += widths[c] + (c > 0 ? 2 : 0);
  out.append(total, '-');
  out += '\n';
  for (const auto& row : rows_) line(row);
  return out;
}

}  // namespace skillcard::host
