// skillcard-personalise: makes a personalised card image for the simulator from the key set of
// skillcard-keytool init (docs/personalisation.md): the card's RECEIPT and AUTH keys, its card
// certificate signed by the card CA, the three role key sets diversified from the SCP03
// masters, the holder reference (never the citizen ID), the initial PIN — and appends the card
// to the register file the service imports. It never overwrites an image.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "skillcard/card/persistent_memory.hpp"
#include "skillcard/card/training_applet.hpp"
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/signer.hpp"
#include "skillcard/host/pin_entry.hpp"
#include "skillcard/host/refusal.hpp"
#include "skillcard/schemas/card_certificate.hpp"

namespace fs = std::filesystem;
using namespace skillcard;
using namespace skillcard::crypto;

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitKeys = 3;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool digits(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string base64url(ByteView data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
    for (int k = 18; k >= 0; k -= 6) out.push_back(kAlphabet[(v >> k) & 63]);
  }
  if (data.size() - i == 1) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (data.size() - i == 2) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::string lower_hex(ByteView data) {
  std::string h = to_hex(data);
  std::transform(h.begin(), h.end(), h.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  return h;
}

// The register holds one JSON object per line; a card number may appear once.
void refuse_registered(const fs::path& path, const std::string& card_number) {
  std::ifstream in(path);
  if (!in) return;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    nlohmann::json entry;
    try {
      entry = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw UsageError("register " + path.string() + " line " + std::to_string(number) + " is not JSON");
    }
    // Every line is a card's entry: anything else means the file is not the register (or was
    // edited by hand), and a card number could hide in it unseen.
    if (!entry.is_object() || !entry.contains("card") || !entry.at("card").is_string()) {
      throw UsageError("register " + path.string() + " line " + std::to_string(number) +
                       " is not a card entry (an object with a \"card\" string)");
    }
    if (entry.at("card").get<std::string>() == card_number) {
      throw UsageError("card " + card_number + " is already in the register " + path.string() + " (line " +
                       std::to_string(number) + ")");
    }
  }
}

// One write() of the whole line with O_APPEND, then fsync: a crash leaves the line or nothing.
void append_line(const fs::path& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open register " + path.string() + ": " + std::strerror(errno));
  const std::string text = line + "\n";
  const auto written = ::write(fd, text.data(), text.size());
  const bool ok = written == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write register " + path.string() + ": " + std::strerror(saved));
}

// A .partial image left by an interrupted run: no card (it is linked to its name only once
// whole), so it is removed — unless a running personalisation holds its lock.
void clear_abandoned(const fs::path& partial) {
  const int fd = ::open(partial.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return;
    throw UsageError("cannot open " + partial.string() + ": " + std::strerror(errno));
  }
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (free) ::unlink(partial.c_str());
  ::close(fd);
  if (!free) throw UsageError("another personalisation is writing " + partial.string());
}

// The folder's entry for a new name reaches the disk (a power cut after the message must not
// lose the image).
void sync_folder(const fs::path& file) {
  const auto folder = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) throw std::runtime_error("cannot sync folder " + folder.string() + ": " + std::strerror(err));
}

struct Options {
  fs::path keys;
  std::string card_number;
  std::string citizen_id;
  std::string region;
  std::optional<int> pin_fd;
  fs::path image;
  std::optional<fs::path> register_file;
  int days = 3650;
};

void validate(const Options& o) {
  if (o.card_number.size() != 10 || !digits(o.card_number)) {
    throw UsageError("--card-number must be 10 digits, got '" + o.card_number + "'");
  }
  if (const auto problem = citizen_id_problem(o.citizen_id); !problem.empty()) {
    // CITIZEN_ID_INVALID; the ID itself is never printed.
    throw UsageError("--citizen-id: " + problem);
  }
  if (o.region.size() != 6 || o.region[0] == '0' || !digits(o.region)) {
    throw UsageError("--region must be a 6-digit GB/T 2260 region code, got '" + o.region + "'");
  }
  if (fs::exists(o.image) || fs::is_symlink(o.image)) {
    throw UsageError("image " + o.image.string() + " already exists: personalisation never overwrites a card");
  }
  const auto parent = o.image.has_parent_path() ? o.image.parent_path() : fs::path(".");
  if (!fs::is_directory(parent)) throw UsageError("folder " + parent.string() + " does not exist");
  if (o.register_file) {
    const auto rparent = o.register_file->has_parent_path() ? o.register_file->parent_path() : fs::path(".");
    if (!fs::is_directory(rparent)) throw UsageError("folder " + rparent.string() + " does not exist");
    if (fs::exists(*o.register_file) && !fs::is_regular_file(*o.register_file)) {
      throw UsageError("register " + o.register_file->string() + " is not a regular file");
    }
    refuse_registered(*o.register_file, o.card_number);
  }
}

// The initial PIN: a line from --pin-fd (a PIN pad, a script), else typed twice at the terminal
// with echo off. Never an argument: every local user can read a command line (ps, /proc).
host::Pin initial_pin(const Options& o) {
  try {
    if (o.pin_fd) return host::read_pin_line(*o.pin_fd);
    const auto tty = host::ControllingTerminal::open();
    if (!tty) throw UsageError("no terminal to type the initial PIN at: give --pin-fd N");
    auto pin = host::read_pin_from_terminal(tty->fd(), "Initial PIN (4-12 digits) / 初始密码（4-12 位数字）: ");
    const auto again = host::read_pin_from_terminal(tty->fd(), "Again / 再次输入: ");
    if (pin.size() != again.size() || !OpenSsl::equal_ct(pin.block().view(), again.block().view())) {
      throw UsageError("the two PINs typed differ; nothing was written");
    }
    return pin;
  } catch (const host::HostRefusal& e) {
    throw UsageError(std::string("initial PIN: ") + e.what());  // PIN_FORMAT; the PIN is never printed
  }
}

int run(const Options& o) {
  validate(o);
  // Keys first: nothing is written unless every key loads, and no PIN is asked for in vain.
  const auto store = FileMasterKeyStore::load(o.keys / "master-keys.toml");
  const auto card_ca = KeyFileSigner::load(o.keys / "card-ca.key.pem");
  const auto pin = initial_pin(o);

  card::training::Personalisation p;
  p.card_number = o.card_number;
  p.region = static_cast<std::uint32_t>(std::stoul(o.region));
  p.holder = store->holder_ref(o.citizen_id);
  {
    const auto block = pin.block();  // the digits, padded with FF
    p.pin.assign(block.view().begin(), block.view().begin() + static_cast<std::ptrdiff_t>(pin.size()));
  }
  const ScopedWipe wipe_pin(p.pin);
  // On a real card the card makes its own keys and only the public halves leave it; here the
  // station makes them with the card's crypto library and writes the scalars into the image.
  const auto receipt_key = MbedTls::PrivateKey::generate();
  const auto auth_key = MbedTls::PrivateKey::generate();
  p.receipt_scalar = receipt_key.scalar();
  p.auth_scalar = auth_key.scalar();
  const CardRole roles[] = {CardRole::Counter, CardRole::Site, CardRole::Kiosk};
  const scp03::KeyType types[] = {scp03::KeyType::Enc, scp03::KeyType::Mac, scp03::KeyType::Dek};
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t t = 0; t < 3; ++t) p.keys[r][t] = store->card_key(roles[r], types[t], o.card_number);
  }

  schemas::CardCertificateClaims claims;
  claims.card_number = o.card_number;
  claims.region = p.region;
  claims.receipt_key = receipt_key.public_key().compressed();
  claims.auth_key = auth_key.public_key().compressed();
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  claims.not_before = static_cast<std::uint64_t>(now.count());
  claims.not_after = claims.not_before + static_cast<std::uint64_t>(o.days) * 86'400;
  p.certificate = schemas::sign_card_certificate(claims, card_ca->kid(), [&](ByteView m) { return card_ca->sign(m); });

  // The image is made under IMAGE.partial — created exclusively (mode 0600, locked), formatted,
  // personalised in one durable commit — and only then linked to its name, which never
  // replaces an existing file. So whatever stops this run (a kill, a power cut, a full disk),
  // IMAGE is either absent or a whole card; a .partial left behind is no card and the next run
  // removes it. The register line comes last: a card is registered only once it exists.
  const fs::path partial = o.image.string() + ".partial";
  clear_abandoned(partial);
  bool created = false;
  try {
    card::Eeprom eeprom = card::Eeprom::create_file(partial, card::training::kImagePages, card::Durability::System);
    created = true;
    card::PersistentMemory::format(eeprom);
    card::PersistentMemory memory(std::move(eeprom));
    memory.mount();
    card::training::personalise(memory, p);
    memory.unmount();
  } catch (const card::ImageError& e) {
    if (created) fs::remove(partial);
    throw UsageError(std::string(e.what()) + (created ? "" : " (another personalisation of this image running?)"));
  } catch (...) {
    if (created) fs::remove(partial);
    throw;
  }
  if (::link(partial.c_str(), o.image.c_str()) != 0) {
    const int err = errno;
    fs::remove(partial);
    if (err == EEXIST) {
      throw UsageError("image " + o.image.string() + " appeared meanwhile: personalisation never overwrites a card");
    }
    throw std::runtime_error("cannot name image " + o.image.string() + ": " + std::strerror(err));
  }
  ::unlink(partial.c_str());
  sync_folder(o.image);

  const auto holder_hex = lower_hex(p.holder);
  if (o.register_file) {
    nlohmann::ordered_json entry;
    entry["card"] = o.card_number;
    entry["region"] = p.region;
    entry["holder_ref"] = holder_hex;
    entry["certificate"] = base64url(p.certificate);
    try {
      append_line(*o.register_file, entry.dump());
    } catch (const std::runtime_error& e) {
      // The card exists; only its line is missing. Say so, with the line (no secret in it).
      throw std::runtime_error(std::string(e.what()) + "; the card image " + o.image.string() +
                               " was made: append this line to the register by hand:\n" + entry.dump());
    }
  }
  std::cout << "card " << o.card_number << " region " << o.region << " holder " << holder_hex << "\n"
            << "receipt key kid " << lower_hex(kid_of<MbedTls>(receipt_key.public_key())) << ", auth key kid "
            << lower_hex(kid_of<MbedTls>(auth_key.public_key())) << "\n"
            << "certificate " << p.certificate.size() << " bytes by card CA " << lower_hex(card_ca->kid()) << "\n"
            << "image " << o.image.string() << " (" << card::training::kImagePages << " pages)"
            << (o.register_file ? ", registered in " + o.register_file->string() : std::string()) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skillcard-personalise: a personalised card image for skillcard-sim, and its register entry"};
  Options o;
  std::string register_file;
  app.add_option("--keys", o.keys, "key folder made by skillcard-keytool init")->required();
  app.add_option("--card-number", o.card_number, "10-digit card number")->required();
  app.add_option("--citizen-id", o.citizen_id, "18-character citizen ID (only its holder reference is stored)")
      ->required();
  app.add_option("--region", o.region, "6-digit region code of the issuing bureau")->required();
  app.add_option("--pin-fd", o.pin_fd,
                 "read the initial PIN (4-12 digits) as a line from this descriptor; "
                 "without it the PIN is typed twice at the terminal")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--image", o.image, "card image to create (never overwritten)")->required();
  app.add_option("--register", register_file, "register file (JSON lines) to append the card to");
  app.add_option("--days", o.days, "certificate validity in days (default 3650)")->check(CLI::Range(1, 36500));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (!register_file.empty()) o.register_file = register_file;
  try {
    return run(o);
  } catch (const UsageError& e) {
    std::cerr << "skillcard-personalise: " << e.what() << "\n";
    return kExitUsage;
  } catch (const KeyFileError& e) {
    std::cerr << "skillcard-personalise: " << e.what() << "\n";
    return kExitKeys;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-personalise: " << e.what() << "\n";
    return kExitError;
  }
}
