// File-backed master key store (TOML via toml++), holder references and citizen ID checks.
#include "skillcard/crypto/master_keys.hpp"

#include <toml++/toml.h>
#include <cctype>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/openssl.hpp"

namespace skillcard::crypto {

namespace {

constexpr std::string_view kHolderRefLabel = "skillcard/holder-ref/v1";

SecretBytes read_hex_key(const toml::table& doc, std::string_view section, std::string_view name, std::size_t size,
                         const std::filesystem::path& path) {
  const auto node = doc[section][name];
  const auto* value = node.as_string();
  const std::string where = "[" + std::string(section) + "] " + std::string(name);
  const auto malformed = [&](const std::string& why) {
    return KeyFileError(KeyFileError::Reason::Malformed, path, why);
  };
  if (value == nullptr) throw malformed(where + " is missing or not a string");
  try {
    auto bytes = from_hex(value->get());
    SecretBytes key(bytes);
    secure_wipe(bytes.data(), bytes.size());
    if (key.size() != size) {
      throw malformed(where + " (line " + std::to_string(value->source().begin.line) + ") must be " +
                      std::to_string(size) + " bytes of hex, got " + std::to_string(key.size()));
    }
    return key;
  } catch (const HexError& e) {
    throw malformed(where + " (line " + std::to_string(value->source().begin.line) + "): " + e.what());
  }
}

// Appends the hex of a secret to a text reserved beforehand, so that no temporary string and no
// reallocation leaves a copy behind (the text itself is wiped by write_new_secret_file).
void append_hex(std::string& out, ByteView bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";  // as to_hex writes it
  for (const auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0F]);
  }
}

void append_random_hex(std::string& out, std::size_t size) {
  SecretBytes key(size);
  OpenSsl::random_bytes(key.mutable_view());
  append_hex(out, key.view());
}

// Enough for every key file this store writes, comments included: reserved once, never grown.
constexpr std::size_t kKeyFileCapacity = 1024;

}  // namespace

std::string_view to_string(CardRole role) noexcept {
  switch (role) {
    case CardRole::Counter:
      return "counter";
    case CardRole::Site:
      return "site";
    case CardRole::Kiosk:
      return "kiosk";
  }
  return "unknown";
}

std::uint8_t key_version(CardRole role) noexcept {
  switch (role) {
    case CardRole::Counter:
      return 0x21;
    case CardRole::Site:
      return 0x22;
    case CardRole::Kiosk:
      return 0x23;
  }
  return 0;
}

char citizen_id_check_character(std::string_view first17) {
  static constexpr int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  static constexpr char kCheck[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
  int sum = 0;
  for (std::size_t i = 0; i < 17 && i < first17.size(); ++i) sum += (first17[i] - '0') * kWeights[i];
  return kCheck[sum % 11];
}

std::string citizen_id_problem(std::string_view id) {
  if (id.size() != 18) return "citizen ID must be 18 characters, got " + std::to_string(id.size());
  for (std::size_t i = 0; i < 17; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(id[i]))) {
      return "citizen ID character " + std::to_string(i + 1) + " must be a digit";
    }
  }
  const char last = static_cast<char>(std::toupper(static_cast<unsigned char>(id[17])));
  const char expected = citizen_id_check_character(id.substr(0, 17));
  if (last != expected) {
    return std::string("citizen ID check character is '") + id[17] + "', expected '" + expected +
           "' (ISO 7064 MOD 11-2)";
  }
  return {};
}

std::string canonical_citizen_id(std::string_view id) {
  std::string out(id);
  if (out.size() == 18 && out[17] == 'x') out[17] = 'X';
  return out;
}

namespace {

void wipe_strings(toml::node& node) {
  if (auto* text = node.as_string()) {
    auto& value = text->get();
    secure_wipe(value.data(), value.size());
  } else if (auto* table = node.as_table()) {
    for (auto&& [key, child] : *table) wipe_strings(child);
  } else if (auto* array = node.as_array()) {
    for (auto& child : *array) wipe_strings(child);
  }
}

// The parsed file, its version checked. Every string in it — the other sections' keys too — is
// wiped when it goes, and the file's text as soon as it is parsed. (toml++ builds each string as
// it reads it; fragments of a growing string may stay in freed memory, which the parser does not
// let us reach.)
struct KeyDocument {
  toml::table doc;
  KeyDocument() = default;
  KeyDocument(const KeyDocument&) = delete;
  KeyDocument& operator=(const KeyDocument&) = delete;
  ~KeyDocument() { wipe_strings(doc); }
};

std::unique_ptr<KeyDocument> parse_key_file(const std::filesystem::path& path) {
  auto text = read_key_file(path, KeyFileKind::Secret);
  const ScopedWipe wipe(text);
  auto parsed = std::make_unique<KeyDocument>();
  try {
    parsed->doc = toml::parse(text, path.string());
  } catch (const toml::parse_error& e) {
    throw KeyFileError(KeyFileError::Reason::Malformed, path,
                       "line " + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  const auto version = parsed->doc["version"].value<std::int64_t>();
  if (!version) throw KeyFileError(KeyFileError::Reason::Malformed, path, "'version' is missing");
  if (*version != 1)
    throw KeyFileError(KeyFileError::Reason::Malformed, path,
                       "master key file version " + std::to_string(*version) + " is not supported (expected 1)");
  return parsed;
}

}  // namespace

std::unique_ptr<FileMasterKeyStore> FileMasterKeyStore::load(const std::filesystem::path& path) {
  const auto parsed = parse_key_file(path);
  std::unique_ptr<FileMasterKeyStore> store(new FileMasterKeyStore());
  store->counter_ = read_hex_key(parsed->doc, "scp03", "counter", 16, path);
  store->site_ = read_hex_key(parsed->doc, "scp03", "site", 16, path);
  store->kiosk_ = read_hex_key(parsed->doc, "scp03", "kiosk", 16, path);
  store->holder_secret_ = read_hex_key(parsed->doc, "holder_ref", "secret", 32, path);
  return store;
}

std::unique_ptr<FileMasterKeyStore> FileMasterKeyStore::load_holder_secret(const std::filesystem::path& path) {
  const auto parsed = parse_key_file(path);
  std::unique_ptr<FileMasterKeyStore> store(new FileMasterKeyStore());
  store->holder_secret_ = read_hex_key(parsed->doc, "holder_ref", "secret", 32, path);
  return store;
}

std::string FileMasterKeyStore::holder_toml(const std::filesystem::path& province_file) {
  const auto store = load_holder_secret(province_file);
  std::string out;
  out.reserve(kKeyFileCapacity);
  out +=
      "# skillcard service key file (docs/design.md, \"Where keys live\"): the holder-reference\n"
      "# secret only, no SCP03 master. Keep this file mode 0600; an HSM replaces it in production.\n"
      "version = 1\n\n[holder_ref]\nsecret = \"";
  append_hex(out, store->holder_secret_.view());
  out += "\"\n";
  return out;
}

SecretBytes FileMasterKeyStore::load_role_master(const std::filesystem::path& path, CardRole role) {
  return read_hex_key(parse_key_file(path)->doc, "scp03", to_string(role), 16, path);
}

std::string FileMasterKeyStore::role_toml(CardRole role, ByteView master) {
  if (master.size() != 16) throw std::invalid_argument("a role master is 16 bytes");
  const std::string_view name = to_string(role);
  std::string out;
  out.reserve(kKeyFileCapacity);
  out += "# skillcard terminal key file (docs/design.md, \"Where keys live\"): the ";
  out += name;
  out += " role's SCP03 master\n# only. Keep this file mode 0600 on the ";
  out += name;
  out += " terminal; a SAM replaces it in production.\nversion = 1\n\n[scp03]\n";
  out += name;
  out += " = \"";
  append_hex(out, master);
  out += "\"\n";
  return out;
}

std::string FileMasterKeyStore::generate_toml() {
  std::string out;
  out.reserve(kKeyFileCapacity);
  out +=
      "# skillcard master keys (docs/design.md, \"Keys and roles\"). Keep this file mode 0600;\n"
      "# a SAM or HSM replaces it in production.\n"
      "version = 1\n\n"
      "# SCP03 role masters (AES-128); each card's keys are diversified from these.\n"
      "[scp03]\n";
  for (const char* role : {"counter", "site", "kiosk"}) {
    out += role;
    out += " = \"";
    append_random_hex(out, 16);
    out += "\"\n";
  }
  out += "\n# Province secret for holder references (HMAC-SHA256 key).\n[holder_ref]\nsecret = \"";
  append_random_hex(out, 32);
  out += "\"\n";
  return out;
}

SecretBytes FileMasterKeyStore::card_key(CardRole role, scp03::KeyType type, std::string_view card_number) const {
  const SecretBytes& master = role == CardRole::Counter ? counter_ : role == CardRole::Site ? site_ : kiosk_;
  if (master.size() == 0) throw std::logic_error("this key store holds no SCP03 master (the holder secret only)");
  return scp03::diversify_card_key<OpenSsl>(master.view(), type, card_number);
}

HolderRef FileMasterKeyStore::holder_ref(std::string_view citizen_id) const {
  if (const auto problem = citizen_id_problem(citizen_id); !problem.empty()) throw std::invalid_argument(problem);
  std::string message(kHolderRefLabel);
  message.push_back('\0');
  for (char c : citizen_id) message.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  const auto mac = OpenSsl::hmac_sha256(holder_secret_.view(), as_bytes(message));
  HolderRef ref{};
  std::copy_n(mac.begin(), ref.size(), ref.begin());
  return ref;
}

}  // namespace skillcard::crypto
