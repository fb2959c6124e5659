#include "skillcard/service/terminal.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace skillcard::service {

namespace {
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

std::string trim(std::string_view s) {
  const auto* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

std::string canonical_serial(std::string_view hex) {
  std::string out;
  out.reserve(hex.size());
  for (const char c : hex) {
    if (c == ':') continue;
    out += static_cast<char>((c >= 'A' && c <= 'F') ? c - 'A' + 'a' : c);
  }
  const auto nz = out.find_first_not_of('0');
  return nz == std::string::npos ? std::string("0") : out.substr(nz);
}
}  // namespace

std::string_view to_string(Role role) noexcept {
  switch (role) {
    case Role::Counter:
      return "counter";
    case Role::Site:
      return "site";
    case Role::Kiosk:
      return "kiosk";
    case Role::Operator:
      return "operator";
  }
  return "unknown";
}

std::optional<Role> parse_role(std::string_view text) noexcept {
  if (text == "counter") return Role::Counter;
  if (text == "site") return Role::Site;
  if (text == "kiosk") return Role::Kiosk;
  if (text == "operator") return Role::Operator;
  return std::nullopt;
}

bool valid_terminal_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 32) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
  });
}

SubjectVerdict terminal_from_subject(const crypto::DistinguishedName& subject) {
  SubjectVerdict v;
  if (!valid_terminal_id(subject.common_name)) {
    v.reason = "CN is not a terminal id (1-32 of A-Z a-z 0-9 - _)";
    return v;
  }
  const auto role = parse_role(subject.organisational_unit);
  if (!role) {
    v.reason = "OU is not a terminal role (counter, site, kiosk, operator)";
    return v;
  }
  if (subject.locality.size() != 6 || !all_digits(subject.locality) || subject.locality[0] == '0') {
    v.reason = "L is not a 6-digit region code";
    return v;
  }
  Terminal t;
  t.id = subject.common_name;
  t.role = *role;
  t.region = static_cast<std::uint32_t>(std::stoul(subject.locality));
  if (*role == Role::Site) {
    if (!all_digits(subject.serial_number) || subject.serial_number.size() > 9) {
      v.reason = "a site certificate needs serialNumber = the site id (1-9 digits)";
      return v;
    }
    t.site = static_cast<std::uint32_t>(std::stoul(subject.serial_number));
  } else if (!subject.serial_number.empty()) {
    v.reason = "serialNumber is for site certificates only";
    return v;
  }
  v.terminal = std::move(t);
  return v;
}

bool TerminalRevocations::reload_if_changed(std::string* problem) {
  if (file_.empty()) return false;
  std::error_code ec;
  const auto status = std::filesystem::status(file_, ec);
  std::lock_guard lock(mutex_);
  if (ec || !std::filesystem::exists(status)) {
    if (!mtime_ && ids_.empty() && serials_.empty()) return false;
    mtime_.reset();
    ids_.clear();
    serials_.clear();
    return true;
  }
  const auto mtime = std::filesystem::last_write_time(file_, ec);
  const auto size = std::filesystem::file_size(file_, ec);
  if (ec) {
    if (problem) *problem = "cannot stat " + file_.string() + ": " + ec.message();
    return false;
  }
  if (mtime_ && *mtime_ == mtime && file_size_ == size) return false;
  std::ifstream in(file_);
  if (!in) {
    if (problem) *problem = "cannot read " + file_.string() + "; keeping the previous list";
    return false;
  }
  std::set<std::string, std::less<>> ids;
  std::set<std::string, std::less<>> serials;
  std::string line;
  while (std::getline(in, line)) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    const auto entry = trim(line);
    if (entry.empty()) continue;
    if (entry.rfind("serial:", 0) == 0) {
      serials.insert(canonical_serial(trim(std::string_view(entry).substr(7))));
    } else {
      ids.insert(entry);
    }
  }
  ids_ = std::move(ids);
  serials_ = std::move(serials);
  mtime_ = mtime;
  file_size_ = size;
  return true;
}

bool TerminalRevocations::is_revoked(std::string_view terminal_id, std::string_view serial_hex) const {
  std::lock_guard lock(mutex_);
  if (ids_.contains(terminal_id)) return true;
  // Asked on every request of a TLS connection: nothing to canonicalise when no serial is listed.
  return !serial_hex.empty() && !serials_.empty() && serials_.contains(canonical_serial(serial_hex));
}

std::size_t TerminalRevocations::size() const {
  std::lock_guard lock(mutex_);
  return ids_.size() + serials_.size();
}

std::vector<std::string> TerminalRevocations::list() const {
  const std::lock_guard lock(mutex_);
  std::vector<std::string> out(ids_.begin(), ids_.end());
  for (const auto& serial : serials_) out.push_back("serial:" + serial);
  return out;
}

}  // namespace skillcard::service
