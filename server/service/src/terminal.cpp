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
  const auto tell = [&](std::string text) {
    if (problem) *problem = std::move(text);
  };
  std::error_code ec;
  const auto status = std::filesystem::status(file_, ec);
  std::lock_guard lock(mutex_);
  if (ec || !std::filesystem::exists(status)) {
    // Fail safe and say so, once: a list that vanished (a deploy, a slip) does not un-revoke
    // anyone; to revoke none, empty the file.
    if (!missing_told_) {
      tell(mtime_ ? "terminal revocation list " + file_.string() + " is gone; keeping the " +
                        std::to_string(ids_.size() + serials_.size()) +
                        " entries read before (empty the file to revoke none)"
                  : "no terminal revocation list at " + file_.string() + ": no terminal is revoked");
      missing_told_ = true;
    }
    return false;
  }
  missing_told_ = false;
  const auto mtime = std::filesystem::last_write_time(file_, ec);
  const auto size = std::filesystem::file_size(file_, ec);
  if (ec) {
    tell("cannot stat " + file_.string() + ": " + ec.message());
    return false;
  }
  if (mtime_ && *mtime_ == mtime && file_size_ == size) return false;
  std::ifstream in(file_);
  if (!in) {
    tell("cannot read " + file_.string() + "; keeping the previous list");
    return false;
  }
  const auto is_id = [](std::string_view id) {
    return !id.empty() && id.size() <= 32 && std::all_of(id.begin(), id.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
  };
  std::set<std::string, std::less<>> ids;
  std::set<std::string, std::less<>> serials;
  std::string bad;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    const auto entry = trim(line);
    if (entry.empty()) continue;
    // serial:3F9A, serial=3F9A (as `openssl x509 -serial` prints it), 0x3F9A, 3F:9A.
    if (entry.rfind("serial:", 0) == 0 || entry.rfind("serial=", 0) == 0) {
      const std::string trimmed = trim(std::string_view(entry).substr(7));
      std::string_view hex = trimmed;
      if (hex.rfind("0x", 0) == 0 || hex.rfind("0X", 0) == 0) hex.remove_prefix(2);
      const bool ok = !hex.empty() && std::all_of(hex.begin(), hex.end(), [](char c) {
        return c == ':' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      });
      if (ok) {
        serials.insert(canonical_serial(hex));
        continue;
      }
    } else if (is_id(entry)) {
      ids.insert(std::string(entry));
      continue;
    }
    bad += (bad.empty() ? "" : ", ") + std::to_string(number);
  }
  // Changed while read (written in place, not renamed over): read again at the next look.
  if (std::filesystem::last_write_time(file_, ec) != mtime || std::filesystem::file_size(file_, ec) != size || ec) {
    return false;
  }
  if (!bad.empty()) {
    tell("terminal revocation list " + file_.string() + ": line " + bad +
         " is not a terminal id or serial:<hex>; ignored, the other lines apply");
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
