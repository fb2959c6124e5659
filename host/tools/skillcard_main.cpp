// skillcard: the terminal CLI for the service counter, the training site and the kiosk
// (docs/cli.md). A thin shell over the host library: it reads options and the PIN, opens the
// reader and the service, runs one workflow and turns its result or refusal into text (zh-CN or
// English), JSON (--json) and a stable exit code.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/x509.hpp"
#include "skillcard/host/encoding.hpp"
#include "skillcard/host/json_service_client.hpp"
#include "skillcard/host/pin_entry.hpp"
#include "skillcard/host/text_table.hpp"
#include "skillcard/host/workflows.hpp"
#include "skillcard/reader/pcsc.hpp"
#include "skillcard/schemas/common.hpp"
#include "skillcard/schemas/refusals.hpp"

namespace {

using namespace skillcard;
using namespace skillcard::host;
using nlohmann::json;

// Exit codes (docs/cli.md): stable, scripts depend on them.
enum Exit : int {
  kOk = 0,
  kUsage = 1,
  kCardRefused = 2,
  kServiceRefused = 3,
  kServiceUnavailable = 4,
  kCardLink = 5,
  kInDoubt = 6,
  kHostRefused = 7,
  kQueued = 10,
  kInternal = 70,
};

// A configuration problem the operator fixes: an option that is missing, or a file it names that
// is missing, unreadable or not what the option wants. Exit 1 (kUsage), with option and file
// named — never 4 (the service was not even tried) nor 70.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A counter write whose answer never came: it may have been carried out, so not the catalogue's
// SERVICE_UNAVAILABLE ("nothing was changed") but `code` (ISSUE_ANSWER_LOST, ANSWER_LOST), exit 4.
struct AnswerLost : std::runtime_error {
  AnswerLost(std::string_view lost_code, const std::string& detail) : std::runtime_error(detail), code(lost_code) {}
  std::string_view code;
};

template <class F>
auto answer_may_be_lost(std::string_view code, F&& write) {
  try {
    return write();
  } catch (const WriteAnswerLost& e) {
    throw AnswerLost(code, e.what());  // a plain ServiceUnavailable (no write asked yet) is not
  }
}

// `path`, given with `option`, names a regular file this process can open for reading.
void require_readable(const char* option, const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  const auto prefix = std::string(option) + " " + path + ": ";
  if (!std::filesystem::exists(status)) throw ConfigError(prefix + "no such file");
  if (!std::filesystem::is_regular_file(status)) throw ConfigError(prefix + "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(prefix + "cannot be read (" + std::strerror(errno) + ")");
}

struct Options {
  std::string lang_text;
  bool json_out = false;
  std::string service = "127.0.0.1:8443";
  bool plain_http = false;
  std::string ca, cert, key, clerk;
  std::string root, trust_list_file;
  std::string master_keys;
  crypto::CardRole card_role = crypto::CardRole::Kiosk;  // the command's: counter, site or kiosk
  std::string reader;
  int pin_fd = -1;
  unsigned pin_timeout = 60;  // seconds
  bool chain = false;
};

Lang lang_of(const Options& o) {
  if (!o.lang_text.empty()) return parse_lang(o.lang_text);
  const char* env = std::getenv("LANG");
  return env && std::string_view(env).starts_with("zh") ? Lang::ZhCn : Lang::En;
}

std::uint64_t now() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// One line from the fd, or from the terminal without echo. Read with read(2) into one fixed
// buffer on the stack — no stdio buffer, no growing string leaving copies in freed heap — which is
// wiped before returning, whatever happens. A line longer than the buffer is no PIN (PIN_FORMAT).
Pin read_pin(const Options& o, const char* prompt) {
  const std::chrono::milliseconds limit = std::chrono::seconds(o.pin_timeout);
  if (o.pin_fd >= 0) return read_pin_line(o.pin_fd, limit);
  const auto tty = ControllingTerminal::open();
  // Nobody typed a wrong PIN: this terminal is set up without a keyboard for it (exit 1).
  if (!tty) throw ConfigError("no terminal to read the PIN from: give --pin-fd N (a PIN pad or script)");
  return read_pin_from_terminal(tty->fd(), prompt, limit);
}

// A new PIN: one line from --pin-fd (a PIN pad confirms on its own), or typed twice at the
// terminal (PIN_MISMATCH when the two differ, before the card is touched).
Pin read_new_pin(const Options& o, bool chinese) {
  const std::chrono::milliseconds limit = std::chrono::seconds(o.pin_timeout);
  if (o.pin_fd >= 0) return read_pin_line(o.pin_fd, limit);
  const auto tty = ControllingTerminal::open();
  if (!tty) throw ConfigError("no terminal to read the PIN from: give --pin-fd N (a PIN pad or script)");
  return read_new_pin_from_terminal(
      tty->fd(), chinese ? "请输入新密码：" : "New PIN: ", chinese ? "请再次输入新密码：" : "New PIN again: ", limit);
}

// The holder's choice among the vouchers usable here, asked on the terminal when there are
// several and a person is at it (no --pin-fd); otherwise the first.
std::size_t ask_choice(std::size_t count, bool chinese, std::chrono::milliseconds limit) {
  const auto tty = ControllingTerminal::open();
  if (!tty) return 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const auto prompt = chinese ? "请选择 1-" + std::to_string(count) + "（q：取消）："
                                : "1-" + std::to_string(count) + " (q: cancel): ";
    (void)::write(tty->fd(), prompt.data(), prompt.size());
    // One limit for the whole choice, however many wrong answers come first: the reader is held.
    const auto left =
        std::max(std::chrono::milliseconds(0),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    const auto line = read_answer_line(tty->fd(), left);
    // Nothing chosen (end of input, q): nothing is redeemed — the card has not been asked yet.
    if (!line || *line == "q") throw HostRefusal("CANCELLED", "the holder chose no voucher");
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(line->data(), line->data() + line->size(), n);
    if (ec == std::errc() && end == line->data() + line->size() && n >= 1 && n <= count) return n - 1;
  }
}

// Replaces `path` with `bytes` so that a crash or power cut leaves the old file or the new one,
// never a torn or empty one: a temporary file written and synced, renamed over, the folder synced.
void replace_file_durably(const std::string& path, ByteView bytes, const char* option) {
  const auto tmp = path + ".new";
  const auto fail = [&](const std::string& what) {
    throw ConfigError(std::string(option) + ": cannot " + what + " " + tmp + ": " + std::strerror(errno));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("create");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      fail("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("sync");
  }
  if (::close(fd) != 0) fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
  auto folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

// Everything a workflow needs, opened lazily in dependency order.
struct Terminal {
  const Options& o;
  std::unique_ptr<ServiceClient> service;
  std::optional<crypto::EcPublicKey> root_key;
  std::optional<TrustAnchors> trust;
  bool held_read = false;
  std::optional<TrustAnchors> held;  // the --trust-list file's copy, once held_read
  std::unique_ptr<CardKeySource> keys;
  std::unique_ptr<reader::Context> context;
  std::unique_ptr<reader::Connection> connection;
  // Held for the whole command: no other application's APDU (middleware probing a card just
  // put in) lands between two of ours — in a GET RESPONSE sequence or a command chain, or
  // between SELECT and a secure-messaging session (docs/readers.md).
  std::optional<reader::Transaction> transaction;
  std::unique_ptr<reader::PcscChannel> channel;
  std::unique_ptr<CardSession> card;

  explicit Terminal(const Options& options) : o(options) {}

  // Opened on first use: listing the queue needs no service.
  ServiceClient& svc() {
    if (service) return *service;
    HttpsOptions h;
    const auto colon = o.service.rfind(':');
    std::uint16_t port = 0;
    bool valid = colon != std::string::npos && colon > 0;
    if (valid) {
      const char* end = o.service.data() + o.service.size();
      const auto [ptr, ec] = std::from_chars(o.service.data() + colon + 1, end, port);
      valid = ec == std::errc() && ptr == end && port != 0;
    }
    if (!valid) throw ConfigError("--service must be HOST:PORT (port 1-65535), got '" + o.service + "'");
    h.host = o.service.substr(0, colon);
    h.port = port;
    h.plain_http_loopback = o.plain_http;
    h.ca_file = o.ca;
    h.certificate_file = o.cert;
    h.key_file = o.key;
    if (!o.plain_http) {
      const std::pair<const char*, const std::string*> files[] = {
          {"--ca", &o.ca}, {"--cert", &o.cert}, {"--key", &o.key}};
      for (const auto& [option, file] : files) {
        if (file->empty())
          throw ConfigError(std::string(option) + " is required for TLS (or --plain-http to 127.0.0.1)");
        require_readable(option, *file);
      }
      try {
        crypto::require_private_file(o.key);
      } catch (const crypto::KeyFileError& e) {
        throw ConfigError(std::string("--key: ") + e.what());
      }
    }
    try {
      service = make_https_service_client(h, o.clerk);
    } catch (const ServiceUnavailable& e) {
      // Making the client opens no connection: what fails here is the content of a TLS file
      // (not PEM, not a certificate, a key that does not match the certificate).
      const std::string_view what = e.what();
      const char* option = what.starts_with("CA file")                ? "--ca"
                           : what.starts_with("terminal certificate") ? "--cert"
                           : what.starts_with("terminal key")         ? "--key"
                                                                      : "--ca/--cert/--key";
      throw ConfigError(std::string(option) + ": " + std::string(what));
    }
    return *service;
  }

  // The pinned root's key (--root), read once.
  const crypto::EcPublicKey& root() {
    if (root_key) return *root_key;
    if (o.root.empty()) throw ConfigError("--root (the province root certificate, PEM) is required");
    require_readable("--root", o.root);
    try {
      root_key = crypto::Certificate::load(o.root).public_key();
    } catch (const std::exception& e) {
      throw ConfigError("--root " + o.root + ": not a usable certificate: " + e.what());
    }
    return *root_key;
  }

  // The command's role master alone (--master-keys), read once; before the reader is opened.
  // A terminal holds its own role's master only (design.md, "Where keys live"): the file may be
  // a terminal's (skillcard-keytool role-keys) or the province's master-keys.toml, and only the
  // one master is kept either way.
  CardKeySource& key_source() {
    if (keys) return *keys;
    if (o.master_keys.empty()) throw ConfigError("--master-keys is required to talk to the card");
    require_readable("--master-keys", o.master_keys);
    try {
      keys = std::make_unique<RoleMasterKeySource>(
          o.card_role, crypto::FileMasterKeyStore::load_role_master(o.master_keys, o.card_role));
    } catch (const std::exception& e) {
      throw ConfigError("--master-keys " + o.master_keys + ": " + e.what());
    }
    return *keys;
  }

  // The held copy (--trust-list FILE) is replaced by the service's list at every online
  // contact — never by an older one (TRUST_LIST_ROLLBACK); offline the held copy is used until
  // next-update + 7 days (the workflows check).
  // The held copy (--trust-list FILE), read and checked against --root once: a file that is
  // there but not a trust list the root signed is a configuration error naming it.
  const std::optional<TrustAnchors>& held_anchors() {
    if (held_read) return held;
    const auto& root_public = root();
    if (!o.trust_list_file.empty() && std::filesystem::exists(o.trust_list_file)) {
      require_readable("--trust-list", o.trust_list_file);
      std::ifstream in(o.trust_list_file, std::ios::binary);
      if (!in) throw ConfigError("--trust-list " + o.trust_list_file + ": cannot be read");
      const Bytes bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      try {
        held = TrustAnchors::from_trust_list(bytes, root_public);
      } catch (const std::exception& e) {
        throw ConfigError("--trust-list " + o.trust_list_file + ": not a trust list signed by --root (" + e.what() +
                          "); restore it, or remove it to take the service's at the next online contact");
      }
    }
    held_read = true;
    return held;
  }

  const TrustAnchors& anchors() {
    if (trust) return *trust;
    const auto& root_public = root();
    const auto& held_copy = held_anchors();
    try {
      const auto fetched = svc().trust_list().trust_list;
      trust = TrustAnchors::from_trust_list(
          fetched, root_public, held_copy ? std::optional<std::uint64_t>(held_copy->claims().sequence) : std::nullopt);
      if (!o.trust_list_file.empty() && (!held_copy || trust->replaces(*held_copy)))
        replace_file_durably(o.trust_list_file, fetched, "--trust-list");
    } catch (const ServiceUnavailable&) {
      if (!held_copy) throw;
      trust = held_copy;
    }
    return *trust;
  }

  CardSession& session() {
    if (!card) {
      auto& role_keys = key_source();
      context = std::make_unique<reader::Context>();
      const auto readers = context->readers();
      if (readers.empty()) {
        throw reader::NoReadersError(reader::code::kNoReadersAvailable, "SCardListReaders", "", CallSite::current());
      }
      if (!o.reader.empty()) {
        connection = context->connect(o.reader);  // UnknownReaderError: NO_READER, naming it
      } else {
        // The first reader with a card: a dual-interface reader may list its empty slot first.
        for (const auto& r : readers) {
          try {
            connection = context->connect(r);
            break;
          } catch (const reader::NoCardError&) {
          }
        }
        if (!connection) connection = context->connect(readers.front());  // NoCardError: "insert the card"
      }
      transaction.emplace(*connection);
      // T=0 carries no extended APDU: long commands are chained there whatever --chain says.
      const bool short_only = o.chain || connection->protocol() == reader::Protocol::T0;
      channel = std::make_unique<reader::PcscChannel>(
          *connection, short_only ? reader::LengthMode::ShortWithChaining : reader::LengthMode::Extended);
      card = std::make_unique<CardSession>(*channel, role_keys);
    }
    return *card;
  }
};

// The kiosk's records leave the screen (scrollback too) whatever ends the wait for the card to be
// taken out: the card out, the time limit, a PC/SC failure, or a signal (threat model T12).
constexpr char kClearScreen[] = "\x1b[3J\x1b[H\x1b[2J";
extern "C" void clear_screen_then_end(int signal) {
  (void)!::write(STDOUT_FILENO, kClearScreen, sizeof kClearScreen - 1);  // async-signal-safe
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}
struct ClearScreenOnExit {
  bool armed;
  explicit ClearScreenOnExit(bool on) : armed(on) {
    if (!armed) return;
    for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::signal(s, clear_screen_then_end);
  }
  ~ClearScreenOnExit() {
    if (!armed) return;
    std::cout << kClearScreen << std::flush;
    for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::signal(s, SIG_DFL);
  }
  ClearScreenOnExit(const ClearScreenOnExit&) = delete;
  ClearScreenOnExit& operator=(const ClearScreenOnExit&) = delete;
};

struct Output {
  Lang lang;
  bool as_json;
  json result = json::object();
  void line(const std::string& zh, const std::string& en, const std::string& value) {
    if (!as_json) std::cout << (lang == Lang::ZhCn ? zh : en) << ": " << value << "\n";
  }
  std::string word(const char* zh, const char* en) const { return lang == Lang::ZhCn ? zh : en; }
  void table(const TextTable& t) const {
    if (!as_json && !t.empty()) std::cout << t.render();
  }
};

// A state or check word of the API (docs/api.yaml) as a holder reads it.
std::string state_text(const Output& out, std::string_view code) {
  struct Word {
    std::string_view code, zh, en;
  };
  static constexpr Word kWords[] = {
      {"issued", "已发放", "issued"},
      {"written", "已写卡", "on the card"},
      {"redeemed", "已核销", "redeemed"},
      {"voided", "已作废", "voided"},
      {"moved", "已转至新卡", "moved to a new card"},
      {"expired", "已过期", "expired"},
      {"stored", "可使用", "usable"},
      {"purged-pending", "待清理", "to be purged"},
      {"active", "正常", "active"},
      {"lost", "已挂失", "reported lost"},
      {"replaced", "已换卡", "replaced"},
      {"on-card", "与卡内摘要一致", "matches the card"},
      {"card-digest-out-of-date", "卡内摘要待更新", "card digest out of date"},
      {"not-on-card-digest", "不在卡内摘要中", "not on the card's digest"},
      {"mismatch", "与卡内摘要不符", "does not match the card"},
      {"no-card-digest", "卡内无摘要", "no digest on the card"},
      {"unknown", "结果未知，请重新刷卡核对（counter settle）", "outcome unknown: tap the card again (counter settle)"},
      {"not-written", "未写入卡内，券仍有效：处理后重新刷卡写入（counter settle）",
       "not on the card, still valid: write it with the card in the reader (counter settle)"},
      {"recorded", "已记录", "recorded"},
      {"already-recorded", "此前已记录", "recorded before"},
      {"queued", "已存入离线队列，联网后上传", "queued offline, sent when the service is reachable"},
      {"changed", "已修改", "changed"},
      {"reset", "已重置", "reset"},
  };
  for (const auto& w : kWords)
    if (w.code == code) return std::string(out.lang == Lang::ZhCn ? w.zh : w.en);
  return std::string(code);
}

// Where a voucher may be used: its regions and training providers.
std::string usable_at(const Output& out, const std::vector<std::uint32_t>& regions,
                      const std::vector<std::uint32_t>& providers) {
  std::string text;
  const auto list = [&](const char* zh, const char* en, const std::vector<std::uint32_t>& codes) {
    if (codes.empty()) return;
    if (!text.empty()) text += "; ";
    text += out.word(zh, en);
    for (std::size_t i = 0; i < codes.size(); ++i) text += (i ? "," : " ") + std::to_string(codes[i]);
  };
  list("地区", "region", regions);
  list("机构", "provider", providers);
  return text;
}

// China Standard Time, as the bureau's rules count days (P12): "2026-06-30 14:05 +08:00".
std::string cst_time(std::uint64_t utc) {
  using namespace std::chrono;
  // Beyond 9999-12-31 (a certificate may say "never"): no calendar date to show.
  if (utc > 253402300799ULL - 8 * 3600) return "—";
  const sys_seconds at{seconds{static_cast<std::int64_t>(utc) + 8 * 3600}};
  const auto day = floor<days>(at);
  const year_month_day ymd{day};
  const hh_mm_ss hms{at - day};
  char text[32];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u %02ld:%02ld +08:00", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()));
  return text;
}

std::string yuan(std::uint64_t fen) {
  return "¥" + std::to_string(fen / 100) + "." + (fen % 100 < 10 ? "0" : "") + std::to_string(fen % 100);
}

// A workflow's problem note in the holder's words: a bare catalogue code (CARD_SLOTS_FULL) as
// "CODE [rules]: message", anything else (a note with details) as it stands.
std::string problem_text(const Output& out, const std::string& problem, const Placeholders& values = {}) {
  for (const auto& r : schemas::refusal_catalogue()) {
    if (r.code != problem) continue;
    std::string rules;
    for (const auto& id : r.rules) rules += (rules.empty() ? " [" : ",") + std::string(id);
    if (!rules.empty()) rules += "]";
    return problem + rules + ": " + schemas::render(out.lang == Lang::ZhCn ? r.zh_cn : r.en, values);
  }
  return problem;
}

// A queued receipt's note: a refusal in the service's own words (its placeholders filled) with
// its rules, else as problem_text says it.
std::string queue_note(const Output& out, const QueuedReceipt& q) {
  const auto code = q.last_error.value_or("");
  if (!q.refused || q.message.in(out.lang).empty()) return problem_text(out, code);
  std::string rules;
  for (const auto& id : q.rules) rules += (rules.empty() ? " [" : ",") + id;
  if (!rules.empty()) rules += "]";
  return code + rules + ": " + q.message.in(out.lang);
}

// Receipts still waiting whose P12 window closes within a day (the last third of a shorter
// window, as the service states it at each contact): said on every `site redeem` and
// `site sync`, so that an offline weekend is noticed before receipts can no longer be paid. JSON:
// `warnings`, one {voucher_id, seconds_left} each.
json window_warnings(const Output& out, const OfflineQueue& queue) {
  json warnings = json::array();
  std::uint64_t soonest = 0;
  // The last day of a 72-hour window; the last third of a shorter one.
  const auto warn_within = std::min<std::uint64_t>(24 * 3600, queue.window() / 3);
  for (const auto& q : queue.pending(now())) {
    if (q.refused || q.seconds_left == 0 || q.seconds_left >= warn_within) continue;
    warnings.push_back({{"voucher_id", lower_hex(q.voucher_id)}, {"seconds_left", q.seconds_left}});
    soonest = soonest == 0 ? q.seconds_left : std::min(soonest, q.seconds_left);
  }
  if (!warnings.empty() && !out.as_json) {
    const auto hours = std::to_string((soonest + 3599) / 3600);
    const auto limit = std::to_string(queue.window() / 3600);
    std::cerr << (out.lang == Lang::ZhCn
                      ? "警告：离线队列中有 " + std::to_string(warnings.size()) + " 张核销凭据将在 " + hours +
                            " 小时内超过" + limit + "小时补传时限（P12），超时将不予结算，请尽快联网执行 site sync。"
                      : "warning: " + std::to_string(warnings.size()) + " queued receipt(s) reach the " + limit +
                            "-hour sync limit (P12) within " + hours +
                            " h and will then not be paid; run site sync as soon as the network is back.")
              << "\n";
  }
  return warnings;
}

// {"zh-CN": …, "en": …} for a catalogue code; null for anything else.
json refusal_message_json(const std::string& code) {
  for (const auto& r : schemas::refusal_catalogue()) {
    if (r.code == code) return {{"zh-CN", std::string(r.zh_cn)}, {"en", std::string(r.en)}};
  }
  return nullptr;
}

// A failure that is no Refusal (the link to the card or the service): one stderr line, its code,
// the catalogue's words in the user's language, then the technical detail.
int report_failure(const Output& out, std::string_view code, const std::string& detail, int exit_code,
                   const Placeholders& values = {}) {
  const auto& entry = schemas::refusal(code);
  std::cerr << code << ": " << schemas::render(out.lang == Lang::ZhCn ? entry.zh_cn : entry.en, values);
  if (!values.count("detail")) std::cerr << " (" << detail << ")";
  std::cerr << "\n";
  return exit_code;
}

int report_refusal(const Output& out, const Refusal& r, int code, const json& extra = json::object()) {
  json j = {{"error", r.code()}, {"message", {{"zh-CN", r.message(Lang::ZhCn)}, {"en", r.message(Lang::En)}}}};
  if (const auto* s = dynamic_cast<const ServiceRefusal*>(&r)) {
    j["http_status"] = s->http_status();
    j["rules"] = s->rules();
    json v = json::array();
    for (const auto& x : s->violations())
      v.push_back(
          {{"error", x.code}, {"rules", x.rules}, {"message", {{"zh-CN", x.message.zh_cn}, {"en", x.message.en}}}});
    j["violations"] = v;
  } else {
    // The card's and the terminal's own refusals name their rule too, from the catalogue
    // (CARD_TIME_REGRESSION [P12], P15_ALREADY_REDEEMED [P15], …).
    json rules = json::array();
    for (const auto& e : schemas::refusal_catalogue()) {
      if (e.code != r.code()) continue;
      for (const auto id : e.rules) rules.push_back(std::string(id));
    }
    j["rules"] = rules;
  }
  if (const auto* c = dynamic_cast<const CardRefusal*>(&r)) j["sw"] = iso7816::to_string(c->sw());
  j.update(extra);
  if (out.as_json) {
    std::cout << j.dump() << "\n";
  } else {
    std::cerr << r.code();
    if (j.contains("rules") && !j["rules"].empty()) {
      std::cerr << " [";
      for (std::size_t i = 0; i < j["rules"].size(); ++i)
        std::cerr << (i ? "," : "") << j["rules"][i].get<std::string>();
      std::cerr << "]";
    }
    std::cerr << ": " << r.message(out.lang) << "\n";
    if (const auto* s = dynamic_cast<const ServiceRefusal*>(&r))
      for (const auto& x : s->violations()) std::cerr << "  - " << x.code << ": " << x.message.in(out.lang) << "\n";
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skillcard: counter, training site and kiosk terminal"};
  app.require_subcommand(1);
  Options o;
  app.add_option("--lang", o.lang_text, "zh-CN or en (default: from LANG)");
  app.add_flag("--json", o.json_out, "machine-readable output on stdout");
  app.add_option("--service", o.service, "service HOST:PORT");
  app.add_flag("--plain-http", o.plain_http, "no TLS (only to 127.0.0.1; tests and demos)");
  app.add_option("--ca", o.ca, "terminal CA certificate (PEM) that issued the service's certificate");
  app.add_option("--cert", o.cert, "this terminal's certificate (PEM)");
  app.add_option("--key", o.key, "this terminal's key (PEM, 0600)");
  app.add_option("--clerk", o.clerk, "operator logged in at the terminal, sent with every write (counter, site)");
  app.add_option("--root", o.root, "province root certificate (PEM), pinned");
  app.add_option("--trust-list", o.trust_list_file, "held trust list (COSE), refreshed from the service when online");
  app.add_option("--master-keys", o.master_keys, "master key file of this terminal's role");
  app.add_option("--reader", o.reader, "PC/SC reader name (default: the first)");
  app.add_option("--pin-fd", o.pin_fd, "read PINs, one per line, from this file descriptor");
  app.add_option("--pin-timeout", o.pin_timeout,
                 "seconds to wait for a PIN to be entered before giving up and freeing the reader (default 60)")
      ->check(CLI::Range(5u, 3600u));
  app.add_flag("--chain", o.chain, "short APDUs with command chaining (readers without extended length)");

  auto* counter = app.add_subcommand("counter", "service counter");
  counter->require_subcommand(1);
  auto* c_read = counter->add_subcommand("read", "prove the card genuine; show it as the service and the card hold it");
  IssueInput issue;
  std::vector<std::uint32_t> regions, providers;
  auto* c_issue = counter->add_subcommand("issue", "issue a voucher and write it to the card");
  c_issue->add_option("--citizen-id", issue.citizen_id)->required();
  c_issue->add_option("--programme", issue.programme)->required();
  c_issue->add_option("--occupation", issue.occupation)->required();
  c_issue->add_option("--level", issue.level)->required();
  c_issue->add_option("--fund", issue.fund)->required();
  c_issue->add_option("--hours", issue.planned_hours)->required();
  c_issue->add_option("--online-hours", issue.planned_online_hours)->required();
  c_issue->add_option("--region", regions, "eligible regions (default: the terminal's)");
  c_issue->add_option("--provider", providers, "eligible training providers");
  std::string voucher_hex;
  auto* c_settle = counter->add_subcommand(
      "settle",
      "after an unknown write (--voucher): written or void by the card's list; without --voucher, after an issue "
      "whose answer was lost: every issued-but-unwritten voucher of the card's holder is written");
  c_settle->add_option("--voucher", voucher_hex);
  CertificateRequest cert;
  auto* c_cert = counter->add_subcommand("certificate", "record a certificate and write the new digest");
  c_cert->add_option("--citizen-id", cert.citizen_id)->required();
  c_cert->add_option("--kind", cert.kind)->required();
  c_cert->add_option("--occupation", cert.occupation)->required();
  c_cert->add_option("--level", cert.level)->required();
  c_cert->add_option("--issuer", cert.issuer)->required();
  c_cert->add_option("--number", cert.number)->required();
  c_cert->add_option("--date", cert.date, "YYYY-MM-DD")->required();
  auto* c_change = counter->add_subcommand("change-pin", "holder changes the PIN (old, then new)");
  std::string reset_citizen;
  auto* c_reset = counter->add_subcommand("reset-pin", "set a new PIN after checking the identity document");
  c_reset->add_option("--citizen-id", reset_citizen, "the citizen ID on the holder's identity document")->required();
  std::string lost_card, lost_citizen;
  auto* c_lost = counter->add_subcommand("lost", "report a card lost; the card in the reader replaces it");
  c_lost->add_option("--card", lost_card, "the lost card's number")->required();
  c_lost->add_option("--citizen-id", lost_citizen)->required();
  auto* c_purge = counter->add_subcommand("purge", "purge redeemed vouchers the service confirms");

  auto* site = app.add_subcommand("site", "training site");
  site->require_subcommand(1);
  SiteConfig site_config;
  std::string queue_file = "skillcard-queue.db";
  std::uint16_t classroom = 0, online = 0;
  site->add_option("--queue", queue_file,
                   "offline queue file (SQLite; default: skillcard-queue.db in the current folder, so another "
                   "folder means another queue: on a terminal always pass --queue)");
  auto* s_redeem = site->add_subcommand("redeem", "redeem a voucher with the holder's PIN");
  s_redeem->add_option("--site", site_config.site_id)->required();
  s_redeem->add_option("--region", site_config.region)->required();
  s_redeem->add_option("--classroom-hours", classroom)->required();
  s_redeem->add_option("--online-hours", online)->required();
  s_redeem->add_option("--voucher", voucher_hex,
                       "voucher id (default: the one usable here; with several the holder picks 1-N at the "
                       "terminal, or the first with --pin-fd, --json or no terminal)");
  auto* s_sync = site->add_subcommand("sync", "deliver queued receipts");
  auto* s_queue = site->add_subcommand("queue", "show queued receipts and the time left (P12)");

  auto* kiosk = app.add_subcommand("kiosk", "read-only lookup");
  bool want_vouchers = false, want_portfolio = false;
  auto* k_show = kiosk->add_subcommand("show", "show vouchers and certificates after the PIN");
  k_show->add_flag("--vouchers", want_vouchers);
  k_show->add_flag("--portfolio", want_portfolio);
  bool clear_on_removal = false;
  unsigned clear_after = 120;
  k_show->add_flag("--clear-on-removal", clear_on_removal,
                   "then wait until the card is taken out (or --clear-after seconds) and clear the screen, so the "
                   "next person sees nothing of this holder (not with --json)");
  k_show->add_option("--clear-after", clear_after, "seconds to wait for the card's removal (default 120)")
      ->check(CLI::Range(0U, 3600U));
  kiosk->require_subcommand(1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; any other parse error is a usage error, code 1 (docs/cli.md).
    return app.exit(e) == 0 ? kOk : kUsage;
  }

  Output out{Lang::En, o.json_out};
  try {
    out.lang = lang_of(o);
    if (counter->parsed()) o.card_role = crypto::CardRole::Counter;
    if (site->parsed()) o.card_role = crypto::CardRole::Site;
    // The service records who did every write and refuses one without a clerk: said here, before
    // a reader or the network is touched (a kiosk writes nothing; `site queue` is local).
    if ((counter->parsed() || (site->parsed() && !s_queue->parsed())) && o.clerk.empty()) {
      throw ConfigError("--clerk is required for counter and site commands (the operator logged in at the terminal)");
    }
    Terminal t(o);
    const Clock clock = now;
    // Every file the command needs is read before a reader or the network is touched, so that a
    // configuration problem is exit 1 whatever else is wrong (making the service client opens no
    // connection).
    if (!s_queue->parsed()) t.svc();
    if (counter->parsed() || kiosk->parsed()) t.held_anchors();  // and --root
    if (counter->parsed() || kiosk->parsed() || s_redeem->parsed()) t.key_source();
    if (c_read->parsed()) {
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      const auto r = w.read_card();
      const auto& claims = r.genuine.card.claims;
      json slots = json::array();
      out.line("社保卡", "card", claims.card_number + (out.lang == Lang::ZhCn ? " (真卡)" : " (genuine)"));
      out.line("有效期至", "valid until", cst_time(claims.not_after));
      out.line(
          "登记状态", "registered state",
          state_text(out, r.at_service.state) + (r.at_service.replaced_by ? " → " + *r.at_service.replaced_by : ""));
      out.line("核销计数", "redemption counter", std::to_string(r.on_card.redemption_counter));
      TextTable table({out.word("卡内培训券", "vouchers on the card"), out.word("状态", "state"),
                       out.word("有效期至", "valid until"), out.word("适用", "usable at")});
      for (const auto& s : r.on_card.slots) {
        if (s.state == SlotState::Empty) continue;
        slots.push_back({{"voucher_id", lower_hex(s.id)}, {"state", to_string(s.state)}, {"expires_at", s.expiry}});
        table.add({lower_hex(s.id), state_text(out, to_string(s.state)), cst_time(s.expiry),
                   usable_at(out, s.regions, s.providers)});
      }
      out.table(table);
      out.result = {{"card", claims.card_number},
                    {"genuine", true},
                    {"region", claims.region},
                    {"not_after", claims.not_after},
                    {"state", r.at_service.state},
                    {"holder", lower_hex(r.at_service.holder)},
                    {"redemption_counter", r.on_card.redemption_counter},
                    {"vouchers", slots}};
      if (r.at_service.replaced_by) out.result["replaced_by"] = *r.at_service.replaced_by;
    } else if (c_issue->parsed()) {
      if (!regions.empty()) issue.eligible_regions = regions;
      if (!providers.empty()) issue.eligible_providers = providers;
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      // The holder's vouchers issued but not yet on the card (an earlier issue whose answer was
      // lost) are written first and shown, also when this issue is then refused.
      std::vector<IssueOutcome> settled_first;
      json settled = json::array();
      const auto show_settled = [&] {
        for (const auto& p : settled_first) {
          settled.push_back({{"voucher_id", lower_hex(p.voucher_id)},
                             {"state", to_string(p.state)},
                             {"face_value_fen", p.voucher.face_value_fen},
                             {"problem", p.problem}});
          out.line("先写入之前签发的培训券", "first, a voucher issued earlier",
                   lower_hex(p.voucher_id) + " " + state_text(out, to_string(p.state)));
          if (!p.problem.empty()) out.line("原因", "reason", problem_text(out, p.problem, p.problem_values));
        }
      };
      IssueOutcome r;
      try {
        // Issued with only the answer lost: the next `counter issue` or `counter settle` writes it.
        r = answer_may_be_lost("ISSUE_ANSWER_LOST", [&] { return w.issue(issue, &settled_first); });
      } catch (...) {
        show_settled();
        throw;
      }
      show_settled();
      out.result = {{"voucher_id", lower_hex(r.voucher_id)},
                    {"state", to_string(r.state)},
                    {"face_value_fen", r.voucher.face_value_fen},
                    {"expires_at", r.voucher.expires_at},
                    {"problem", r.problem},
                    {"token", base64url_encode(r.token)},
                    {"settled_first", settled}};
      out.line("培训券", "voucher", lower_hex(r.voucher_id));
      out.line("面值", "value", yuan(r.voucher.face_value_fen));
      out.line("状态", "state", state_text(out, to_string(r.state)));
      if (!r.problem.empty()) out.line("原因", "reason", problem_text(out, r.problem, r.problem_values));
      if (out.as_json) std::cout << out.result.dump() << "\n";
      return r.state == WriteState::Written ? kOk : r.state == WriteState::Voided ? kCardRefused : kInDoubt;
    }
    if (c_settle->parsed() && !voucher_hex.empty()) {
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      const auto state = w.settle(fixed_from_hex<8>(voucher_hex, "--voucher"));
      out.result = {{"voucher_id", voucher_hex}, {"state", to_string(state)}};
      out.line("状态", "state", state_text(out, to_string(state)));
      if (state != WriteState::Written) {  // as counter issue: 2 voided or not written, 6 unknown
        if (out.as_json) std::cout << out.result.dump() << "\n";
        return state == WriteState::Unknown ? kInDoubt : kCardRefused;
      }
    } else if (c_settle->parsed()) {
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      json settled = json::array();
      bool unknown = false;
      bool not_written = false;
      for (const auto& r : w.settle_unwritten()) {
        settled.push_back({{"voucher_id", lower_hex(r.voucher_id)},
                           {"state", to_string(r.state)},
                           {"face_value_fen", r.voucher.face_value_fen},
                           {"problem", r.problem}});
        out.line("培训券", "voucher", lower_hex(r.voucher_id) + " " + state_text(out, to_string(r.state)));
        if (!r.problem.empty()) out.line("原因", "reason", problem_text(out, r.problem, r.problem_values));
        unknown |= r.state == WriteState::Unknown;
        not_written |= r.state == WriteState::NotWritten || r.state == WriteState::Voided;
      }
      if (settled.empty()) out.line("培训券", "vouchers", out.word("无待写入的培训券", "none waiting to be written"));
      out.result = {{"settled", settled}};
      if (unknown || not_written) {
        if (out.as_json) std::cout << out.result.dump() << "\n";
        return unknown ? kInDoubt : kCardRefused;
      }
    } else if (c_cert->parsed()) {
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      // Recorded with only the answer lost: the same command again is refused P14 and puts the
      // current digest on the card.
      const auto r = answer_may_be_lost("ANSWER_LOST", [&] { return w.record_certificate(cert); });
      out.result = {{"digest_version", r.digest_version}, {"record", base64url_encode(r.record)}};
      out.line("电子档案版本", "portfolio digest version", std::to_string(r.digest_version));
    } else if (c_change->parsed()) {
      const auto old_pin = read_pin(o, out.word("请输入密码：", "PIN: ").c_str());
      const auto new_pin = read_new_pin(o, out.lang == Lang::ZhCn);
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      w.change_pin(old_pin, new_pin);
      out.result = {{"pin", "changed"}};
      out.line("密码", "PIN", state_text(out, "changed"));
    } else if (c_reset->parsed()) {
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      const auto card = w.reset_pin(reset_citizen, [&] { return read_new_pin(o, out.lang == Lang::ZhCn); });
      out.result = {{"pin", "reset"}, {"card", card.card}};
      out.line("密码", "PIN", state_text(out, "reset"));
    } else if (c_lost->parsed()) {
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      // Reported with only the answer lost: the same command again returns the moved vouchers
      // still waiting to be written.
      const auto r = answer_may_be_lost("ANSWER_LOST", [&] { return w.replace_lost_card(lost_card, lost_citizen); });
      json moved = json::array();
      bool unknown = false;
      bool voided = false;
      out.line("挂失社保卡", "lost card", r.answer.card + " " + state_text(out, r.answer.state));
      for (const auto& m : r.moved) {
        moved.push_back(
            {{"voucher_id", lower_hex(m.voucher_id)}, {"state", to_string(m.state)}, {"problem", m.problem}});
        out.line("转移培训券", "moved voucher", lower_hex(m.voucher_id) + " " + state_text(out, to_string(m.state)));
        if (!m.problem.empty()) out.line("原因", "reason", problem_text(out, m.problem, m.problem_values));
        unknown |= m.state == WriteState::Unknown;
        voided |= m.state == WriteState::Voided || m.state == WriteState::NotWritten;
      }
      if (r.moved.empty()) out.line("转移培训券", "moved vouchers", out.word("无", "none"));
      out.result = {{"card", r.answer.card}, {"state", r.answer.state}, {"moved", moved}};
      // As counter issue: a write in doubt (6: counter settle) or a voucher the card refused (2).
      if (unknown || voided) {
        if (out.as_json) std::cout << out.result.dump() << "\n";
        return unknown ? kInDoubt : kCardRefused;
      }
    } else if (c_purge->parsed()) {
      CounterWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      json purged = json::array();
      for (const auto& id : w.purge_redeemed()) {
        purged.push_back(lower_hex(id));
        out.line("已清理", "purged", lower_hex(id));
      }
      out.result = {{"purged", purged}};
    } else if (s_redeem->parsed()) {
      OfflineQueue queue(queue_file);
      SiteWorkflow w(t.session(), t.svc(), queue, site_config, clock);
      json usable_here = json::array();
      w.set_chooser([&](const std::vector<SlotSummary>& usable) {
        for (std::size_t i = 0; i < usable.size(); ++i) {
          usable_here.push_back({{"voucher_id", lower_hex(usable[i].id)}, {"expires_at", usable[i].expiry}});
          out.line("可用培训券 " + std::to_string(i + 1), "usable here " + std::to_string(i + 1),
                   lower_hex(usable[i].id) + " " + (out.lang == Lang::ZhCn ? "有效期至 " : "until ") +
                       cst_time(usable[i].expiry));
        }
        const bool ask = usable.size() > 1 && o.pin_fd < 0 && !out.as_json;
        return usable[ask ? ask_choice(usable.size(), out.lang == Lang::ZhCn, std::chrono::seconds(o.pin_timeout)) : 0]
            .id;
      });
      // Checked before the nonce and the PIN: a typo is not found after the holder typed the PIN.
      std::optional<VoucherId> chosen;
      if (!voucher_hex.empty()) chosen = fixed_from_hex<8>(voucher_hex, "--voucher");
      const auto nonce = w.prepare();
      const auto pin = read_pin(o, out.word("请输入密码：", "PIN: ").c_str());
      try {
        const auto r = w.redeem(nonce, pin, classroom, online, chosen);
        out.result = {{"voucher_id", lower_hex(r.voucher_id)},
                      {"status", to_string(r.status)},
                      {"receipt_id", r.receipt_id},
                      {"counter", r.counter},
                      {"terminal_time", r.terminal_time},
                      {"recovered", r.recovered},
                      {"receipt", base64url_encode(r.receipt)},
                      {"usable_here", usable_here}};
        if (r.redemption) out.result["face_value_fen"] = r.redemption->face_value_fen;
        if (r.redemption && r.redemption->reversed_at) {
          out.result["reversed_at"] = *r.redemption->reversed_at;
          out.result["reversal_reason"] = r.redemption->reversal_reason;
        }
        out.line("培训券", "voucher", lower_hex(r.voucher_id));
        if (r.redemption) out.line("金额", "value", yuan(r.redemption->face_value_fen));
        if (r.redemption && r.redemption->reversed_at) {
          out.line("已撤销", "reversed",
                   out.word("经办机构已撤销此核销，不予结算：", "by the bureau, not settled: ") +
                       r.redemption->reversal_reason);
        }
        out.line("时间", "time", cst_time(r.terminal_time));
        out.line("核销凭据号", "receipt id", r.receipt_id);
        out.line("状态", "status", state_text(out, to_string(r.status)));
        if (r.status == RedeemStatus::Queued) {
          out.line("须在此前联网上传", "upload before", cst_time(r.terminal_time + queue.window()));
        }
        if (r.synced) {
          out.result["synced"] = {{"acknowledged", r.synced->acknowledged},
                                  {"refused", r.synced->refused},
                                  {"remaining", r.synced->remaining},
                                  {"undecided", r.synced->undecided},
                                  {"service_unavailable", r.synced->service_unavailable}};
          out.line("补传离线凭据", "queued receipts delivered", std::to_string(r.synced->acknowledged));
          if (r.synced->refused != 0)
            out.line("离线凭据被拒绝（site queue 可查）", "queued receipts refused (see site queue)",
                     std::to_string(r.synced->refused));
          if (r.synced->undecided != 0)
            out.line("暂未受理，下次再传", "not decided yet, sent again next time",
                     std::to_string(r.synced->undecided));
          if (r.synced->remaining != 0)
            out.line("离线凭据待上传（site sync）", "queued receipts still waiting (site sync)",
                     std::to_string(r.synced->remaining));
        }
        if (!r.sync_problem.empty()) {
          out.result["sync_problem"] = r.sync_problem;
          out.line("离线凭据未能补传（请执行 site sync）", "queued receipts not sent (run site sync)", r.sync_problem);
        }
        out.result["warnings"] = window_warnings(out, queue);
        if (out.as_json) std::cout << out.result.dump() << "\n";
        return r.status == RedeemStatus::Queued ? kQueued : kOk;
      } catch (const RedemptionInDoubt& e) {
        return report_refusal(out, e, kInDoubt,
                              {{"card", e.pending().card}, {"voucher_id", lower_hex(e.pending().voucher)}});
      } catch (const ReceiptRefused& e) {
        // The card's part is done: the voucher is used up there. Say so, with the receipt that
        // the bureau will need, before the service's reason.
        const auto& r = e.outcome();
        if (!out.as_json) {
          std::cerr << out.word("培训券 ", "voucher ") << lower_hex(r.voucher_id)
                    << out.word("：已在社保卡上核销，但服务端拒绝了核销凭据（凭据号 ",
                                ": redeemed on the card, but the service refused its receipt (receipt id ")
                    << r.receipt_id
                    << out.word("），凭据留在离线队列中（site queue 可查），请联系经办机构处理。",
                                "), which stays in the offline queue (see site queue) for the bureau to resolve.")
                    << "\n";
        }
        return report_refusal(out, e, kServiceRefused,
                              {{"voucher_id", lower_hex(r.voucher_id)},
                               {"receipt_id", r.receipt_id},
                               {"counter", r.counter},
                               {"redeemed_on_card", true}});
      }
    } else if ((s_sync->parsed() || s_queue->parsed()) && !std::filesystem::exists(queue_file)) {
      // Read, never created here: a mistyped --queue must not pass for an empty queue unseen.
      std::cerr << out.word("离线队列文件不存在（尚无离线核销？）：",
                            "no offline queue at this path (nothing queued yet?): ")
                << queue_file << "\n";
      out.result = s_sync->parsed() ? json{{"acknowledged", 0},
                                           {"refused", 0},
                                           {"remaining", 0},
                                           {"undecided", 0},
                                           {"service_unavailable", false},
                                           {"warnings", json::array()}}
                                    : json{{"receipts", json::array()}, {"in_doubt", json::array()}};
    } else if (s_sync->parsed()) {
      OfflineQueue queue(queue_file);
      const auto r = queue.sync(t.svc());
      out.result = {{"acknowledged", r.acknowledged},
                    {"refused", r.refused},
                    {"remaining", r.remaining},
                    {"undecided", r.undecided},
                    {"service_unavailable", r.service_unavailable}};
      out.line("已上传", "acknowledged", std::to_string(r.acknowledged));
      out.line("被拒绝", "refused", std::to_string(r.refused));
      out.line("待上传", "remaining", std::to_string(r.remaining));
      if (r.undecided != 0)
        out.line("暂未受理，下次再传", "not decided yet, sent again next time", std::to_string(r.undecided));
      out.result["warnings"] = window_warnings(out, queue);
      if (out.as_json) std::cout << out.result.dump() << "\n";
      // Receipts the service could not decide are still to be sent: a script retries on 4.
      return r.service_unavailable || r.undecided != 0 ? kServiceUnavailable : kOk;
    } else if (s_queue->parsed()) {
      OfflineQueue queue(queue_file);
      json items = json::array();
      TextTable table({out.word("培训券", "voucher"), out.word("核销凭据号", "receipt id"), out.word("状态", "status"),
                       out.word("剩余时间", "time left"), out.word("原因", "last error")});
      for (const auto& q : queue.pending(now())) {
        items.push_back({{"voucher_id", lower_hex(q.voucher_id)},
                         {"card", q.card},
                         {"receipt_id", receipt_id(q.receipt)},
                         {"made_at", q.made_at},
                         {"attempts", q.attempts},
                         {"refused", q.refused},
                         {"last_error", q.last_error.value_or("")},
                         {"rules", q.rules},
                         {"message", q.message.zh_cn.empty() ? refusal_message_json(q.last_error.value_or(""))
                                                             : json{{"zh-CN", q.message.zh_cn}, {"en", q.message.en}}},
                         {"seconds_left", q.seconds_left}});
        // A refusal in the clerk's words, with its rule (problem_text); a network note as it is.
        table.add({lower_hex(q.voucher_id), receipt_id(q.receipt),
                   q.refused ? out.word("被拒绝", "refused") : out.word("待上传", "waiting"),
                   std::to_string(q.seconds_left / 3600) + out.word(" 小时", " h"), queue_note(out, q)});
      }
      out.table(table);
      // Redemptions whose card answered nothing: the receipt may be on the card only. Only a tap
      // of that card here fetches it (site redeem), and only within the P12 window.
      json doubts = json::array();
      TextTable doubt_table({out.word("社保卡", "card"), out.word("培训券", "voucher"), out.word("状态", "status"),
                             out.word("剩余时间", "time left")});
      for (const auto& d : queue.all_in_doubt()) {
        const auto deadline = d.since + queue.window();
        const auto left = d.since == 0 || deadline <= now() ? 0 : deadline - now();
        doubts.push_back(
            {{"card", d.card}, {"voucher_id", lower_hex(d.voucher)}, {"since", d.since}, {"seconds_left", left}});
        doubt_table.add({d.card, lower_hex(d.voucher),
                         out.word("核销结果未知：请持卡人回到本终端刷卡（site redeem）",
                                  "outcome unknown: the holder's card must be tapped here again (site redeem)"),
                         d.since == 0 ? "?" : std::to_string(left / 3600) + out.word(" 小时", " h")});
      }
      if (!doubts.empty()) out.table(doubt_table);
      out.result = {{"receipts", items}, {"in_doubt", doubts}};
    } else if (k_show->parsed()) {
      const bool both = !want_vouchers && !want_portfolio;
      KioskWorkflow w(t.session(), t.svc(), t.anchors(), clock);
      const auto pin = read_pin(o, out.word("请输入密码：", "PIN: ").c_str());
      const auto v = w.lookup(pin, both || want_vouchers, both || want_portfolio);
      // From the first line of the holder's records on: cleared on every way out.
      const ClearScreenOnExit clear_guard(clear_on_removal && !out.as_json);
      json vouchers = json::array(), records = json::array();
      TextTable voucher_table({out.word("培训券", "voucher"), out.word("状态", "state"), out.word("面值", "value"),
                               out.word("有效期至", "valid until"), out.word("适用", "usable at"),
                               out.word("签名核验", "signature")});
      TextTable record_table({out.word("证书编号", "certificate"), out.word("发证机构", "issuer"),
                              out.word("职业", "occupation"), out.word("等级", "level"), out.word("核验", "check")});
      for (const auto& k : v.vouchers) {
        vouchers.push_back({{"voucher_id", lower_hex(k.service.voucher_id)},
                            {"state", k.service.state},
                            {"face_value_fen", k.service.voucher.face_value_fen},
                            {"expires_at", k.service.voucher.expires_at},
                            {"eligible_regions", k.service.voucher.eligible_regions},
                            {"eligible_providers", k.service.voucher.eligible_providers},
                            {"on_card", k.on_card ? std::string(to_string(*k.on_card)) : std::string()},
                            {"verified", k.token_verified}});
        voucher_table.add({lower_hex(k.service.voucher_id), state_text(out, k.service.state),
                           yuan(k.service.voucher.face_value_fen), cst_time(k.service.voucher.expires_at),
                           usable_at(out, k.service.voucher.eligible_regions, k.service.voucher.eligible_providers),
                           k.token_verified ? out.word("有效", "valid") : "✗ " + problem_text(out, k.problem)});
      }
      for (const auto& r : v.records) {
        json rec = {{"check", to_string(r.check)}, {"digest_version", r.raw.digest_version}};
        if (r.record) {
          rec["kind"] = static_cast<int>(r.record->kind);
          rec["occupation"] = schemas::format_occupation(r.record->occupation);
          rec["level"] = r.record->level;
          rec["issuer"] = r.record->issuer;
          rec["number"] = r.record->number;
        }
        records.push_back(rec);
        if (r.record) {
          record_table.add({r.record->number, r.record->issuer, schemas::format_occupation(r.record->occupation),
                            std::to_string(r.record->level), state_text(out, to_string(r.check))});
        } else {
          record_table.add({"?", "", "", "", state_text(out, to_string(r.check))});
        }
      }
      out.table(voucher_table);
      if (!voucher_table.empty() && !record_table.empty() && !out.as_json) std::cout << "\n";
      out.table(record_table);
      out.result = {{"card", v.card},
                    {"holder", lower_hex(v.holder)},
                    {"card_digest_out_of_date", v.card_digest_out_of_date},
                    {"vouchers", vouchers},
                    {"records", records}};
      if (clear_on_removal && !out.as_json) {
        // The holder's records stay on screen only while the card is in the reader (threat
        // model T12): taken out, or left behind past the limit, the screen (scrollback too) is
        // cleared.
        out.line("请取走社保卡", "take the card", out.word("取卡后屏幕将清空", "the screen clears when it is out"));
        std::cout.flush();
        // A card swapped while the kiosk was busy or waiting (the holder gone, the next person's
        // card in) clears at once: only the holder's own card keeps the records up.
        (void)t.context->wait_until_removed(*t.connection, std::chrono::seconds(clear_after));
      }
    }
    if (out.as_json) std::cout << out.result.dump() << "\n";
    return kOk;
  } catch (const ConfigError& e) {
    std::cerr << "configuration error: " << e.what() << "\n";
    return kUsage;
  } catch (const CardRefusal& e) {
    return report_refusal(out, e, kCardRefused);
  } catch (const ServiceRefusal& e) {
    return report_refusal(out, e, kServiceRefused);
  } catch (const HostRefusal& e) {
    return report_refusal(out, e, kHostRefused);
  } catch (const AnswerLost& e) {
    return report_failure(out, e.code, e.what(), kServiceUnavailable);
  } catch (const ServiceUnavailable& e) {
    return report_failure(out, "SERVICE_UNAVAILABLE", e.what(), kServiceUnavailable, {{"detail", e.what()}});
  } catch (const iso7816::UnknownOutcomeError& e) {
    return report_failure(out, "UNKNOWN_OUTCOME", e.what(), kInDoubt);
  } catch (const iso7816::CardError& e) {
    return report_failure(out, reader::card_link_code(e), e.what(), kCardLink);
  } catch (const MalformedCardAnswer& e) {
    // The card answered, but not as a card of ours does: nothing the clerk typed is wrong.
    return report_refusal(out, HostRefusal("CARD_ANSWER_MALFORMED", e.what()), kCardRefused);
  } catch (const std::invalid_argument& e) {
    std::cerr << "usage: " << e.what() << "\n";
    return kUsage;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kInternal;
  }
}
