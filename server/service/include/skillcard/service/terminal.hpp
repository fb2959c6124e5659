// Who is asking: the terminal identity the service reads from a verified client certificate
// (docs/design.md, "Terminal certificates"), and the terminal revocation list the service
// reloads without a restart.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "skillcard/crypto/x509.hpp"

namespace skillcard::service {

enum class Role : std::uint8_t { Counter, Site, Kiosk, Operator };
std::string_view to_string(Role role) noexcept;
std::optional<Role> parse_role(std::string_view text) noexcept;

struct Terminal {
  std::string id;                     // certificate CN, 1-32 of A-Z a-z 0-9 - _
  Role role = Role::Kiosk;            // OU
  std::uint32_t region = 0;           // L, 6 digits
  std::optional<std::uint32_t> site;  // serialNumber, site role only
  bool operator==(const Terminal&) const = default;
};

bool valid_terminal_id(std::string_view id) noexcept;

// The terminal named by a certificate subject, or a reason why the subject names none (role
// unknown, region not 6 digits, a site without serialNumber or another role with one, ...).
struct SubjectVerdict {
  std::optional<Terminal> terminal;
  std::string reason;
};
SubjectVerdict terminal_from_subject(const crypto::DistinguishedName& subject);

// The terminal revocation list: a text file, one terminal id or certificate serial (hex,
// "serial:" prefix) per line, '#' starts a comment. reload_if_changed() re-reads the file when
// its modification time or size changed (the service calls it on every new connection); a file
// that cannot be read, or that vanished, keeps the last good list (and says so, once); a file
// that never existed means none revoked (said once). A line that is neither a terminal id
// ([A-Za-z0-9_-]{1,32}) nor serial:/serial=<hex> is named in `problem` and ignored; a file
// changed while it is read is read again at the next look.
class TerminalRevocations {
 public:
  TerminalRevocations() = default;
  explicit TerminalRevocations(std::filesystem::path file) : file_(std::move(file)) {}

  // True when the list changed. Throws nothing.
  bool reload_if_changed(std::string* problem = nullptr);
  bool is_revoked(std::string_view terminal_id, std::string_view serial_hex) const;
  std::size_t size() const;
  // Every revoked terminal id, then every revoked serial as "serial:<hex>".
  std::vector<std::string> list() const;

 private:
  std::filesystem::path file_;
  mutable std::mutex mutex_;
  std::optional<std::filesystem::file_time_type> mtime_;
  std::uintmax_t file_size_ = 0;
  std::set<std::string, std::less<>> ids_;
  std::set<std::string, std::less<>> serials_;  // lower-case hex without leading zeros
  bool missing_told_ = false;
};

}  // namespace skillcard::service
