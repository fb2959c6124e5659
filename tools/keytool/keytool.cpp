// skillcard-keytool: creates the province's keys and certificates as docs/design.md lays them
// out (province root, voucher signers, card CA, portfolio and audit signers, terminal CA,
// terminal and service TLS certificates, SCP03 role masters and the holder-reference secret),
// and prints key ids. It never overwrites a file.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>  // renameat2
#include <cstring>
#include <filesystem>
#include <iostream>

#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/x509.hpp"
#include "skillcard/schemas/base64url.hpp"
#include "skillcard/schemas/cose.hpp"
#include "skillcard/schemas/trust_list.hpp"
#include "skillcard/service/trust_store.hpp"

namespace fs = std::filesystem;
using namespace skillcard;
using namespace skillcard::crypto;

namespace {

// A usage problem the operator can fix; printed without a stack of context.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string kid_hex(const EcPublicKey& key) { return to_hex(ByteView(kid_of<OpenSsl>(key))); }

bool all_of(const std::string& s, bool (*ok)(char)) { return std::all_of(s.begin(), s.end(), ok); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_id_char(char c) {
  return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_';
}

void require_region(const std::string& code, const char* what) {
  if (code.size() != 6 || code[0] == '0' || !all_of(code, is_digit)) {
    throw UsageError(std::string(what) + " must be a 6-digit GB/T 2260 region code, got '" + code + "'");
  }
}

// Creates `dir` (not its parents: a missing parent is most likely a typo).
void make_output_dir(const fs::path& dir) {
  const auto parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  if (!fs::is_directory(parent)) throw UsageError("folder " + parent.string() + " does not exist");
  if (fs::exists(dir) && !fs::is_directory(dir)) throw UsageError(dir.string() + " exists and is not a folder");
  if (!fs::exists(dir) && ::mkdir(dir.c_str(), 0700) != 0) {
    throw UsageError("cannot create " + dir.string() + ": " + std::strerror(errno));
  }
}

// Every file `init` would write, checked before anything is written, so that a second run
// fails cleanly instead of leaving a half-made set next to the old one.
void refuse_existing(const std::vector<fs::path>& paths) {
  for (const auto& p : paths) {
    if (fs::exists(p)) throw KeyFileError(KeyFileError::Reason::Exists, p, "");
  }
}

CertificateSpec ca_spec(const std::string& name, int days, int path_length) {
  CertificateSpec spec;
  spec.subject = {name, "skillcard", "", "", ""};
  spec.usage = CertificateUsage::Ca;
  spec.validity = std::chrono::days(days);
  spec.path_length = path_length;
  return spec;
}

struct Signer {
  std::string file_stem;  // e.g. "card-ca"
  std::string role;       // trust-list role
  std::string region;     // bureau region for voucher signers
};

int run_init(const fs::path& out, const std::vector<std::string>& bureaus, const std::string& province) {
  require_region(province, "--province");
  for (const auto& b : bureaus) require_region(b, "--bureau");
  // Checked before anything is written: a repeated bureau would fail half-way, with keys on disk.
  for (std::size_t i = 0; i < bureaus.size(); ++i) {
    if (std::find(bureaus.begin(), bureaus.begin() + static_cast<std::ptrdiff_t>(i), bureaus[i]) !=
        bureaus.begin() + static_cast<std::ptrdiff_t>(i))
      throw UsageError("--bureau " + bureaus[i] + " is given twice");
  }
  std::vector<Signer> signers;
  for (const auto& b : bureaus) signers.push_back({"voucher-signer-" + b, "voucher", b});
  signers.push_back({"card-ca", "card-ca", province});
  signers.push_back({"portfolio-signer", "portfolio", province});
  signers.push_back({"audit-signer", "audit", province});

  std::vector<fs::path> planned = {out / "province-root.key.pem", out / "province-root.cert.pem",
                                   out / "terminal-ca.key.pem",   out / "terminal-ca.cert.pem",
                                   out / "master-keys.toml",      out / "kids.json"};
  for (const auto& s : signers) {
    planned.push_back(out / (s.file_stem + ".key.pem"));
    planned.push_back(out / (s.file_stem + ".pub.pem"));
  }
  // A new folder is built whole under OUT.partial and renamed to OUT at the end (never over an
  // existing one): a run that is killed leaves no half key set under OUT, only OUT.partial, which
  // is named in the next run's refusal. Into an existing folder each file is still written
  // atomically (write_new_file), and nothing is written if any of them exists.
  const bool fresh = !fs::exists(out);
  const fs::path final_out = out;
  const fs::path partial = out.string() + ".partial";
  if (fresh && fs::exists(fs::symlink_status(partial))) {
    throw UsageError(partial.string() +
                     " is left from an interrupted init (an incomplete key set, never used): remove it and run again");
  }
  make_output_dir(fresh ? partial : out);
  refuse_existing(planned);
  struct RemoveUnlessDone {
    fs::path dir;
    bool active;
    ~RemoveUnlessDone() {
      std::error_code ignored;
      if (active) fs::remove_all(dir, ignored);
    }
  } cleanup{partial, fresh};
  const fs::path into = fresh ? partial : out;
  const auto at = [&](const fs::path& p) { return into / p.filename(); };

  nlohmann::json kids = nlohmann::json::object();
  const auto root_key = OpenSsl::PrivateKey::generate();
  auto root_spec = ca_spec("skillcard province root " + province, 3650 * 2, 1);
  root_spec.subject.locality = province;
  const auto root = Certificate::issue(root_spec, root_key.public_key(), root_key, nullptr);
  write_private_key(at("province-root.key.pem"), root_key);
  write_new_file(at("province-root.cert.pem"), root.to_pem(), 0644);
  kids["province-root"] = {{"kid", kid_hex(root_key.public_key())}, {"role", "root"}, {"region", province}};

  const auto tca_key = OpenSsl::PrivateKey::generate();
  auto tca_spec = ca_spec("skillcard terminal CA " + province, 3650, 0);
  tca_spec.subject.locality = province;
  const auto tca = Certificate::issue(tca_spec, tca_key.public_key(), root_key, &root);
  write_private_key(at("terminal-ca.key.pem"), tca_key);
  write_new_file(at("terminal-ca.cert.pem"), tca.to_pem(), 0644);
  kids["terminal-ca"] = {{"kid", kid_hex(tca_key.public_key())}, {"role", "terminal-ca"}, {"region", province}};

  for (const auto& s : signers) {
    const auto key = OpenSsl::PrivateKey::generate();
    write_private_key(at(s.file_stem + ".key.pem"), key);
    write_public_key(at(s.file_stem + ".pub.pem"), key.public_key());
    kids[s.file_stem] = {{"kid", kid_hex(key.public_key())}, {"role", s.role}, {"region", s.region}};
  }
  write_new_secret_file(at("master-keys.toml"), FileMasterKeyStore::generate_toml());
  write_new_file(at("kids.json"), kids.dump(2) + "\n", 0644);

  if (fresh) {
    int renamed = ::renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, final_out.c_str(), RENAME_NOREPLACE);
    if (renamed != 0 && (errno == EINVAL || errno == ENOSYS) && !fs::exists(final_out)) {
      // A file system without RENAME_NOREPLACE: checked just before instead. In the narrow race
      // with another init of the same folder, rename(2) replaces only an empty folder: a key set
      // already there makes it fail.
      renamed = ::rename(partial.c_str(), final_out.c_str());
    }
    if (renamed != 0) {
      throw UsageError("cannot rename " + partial.string() + " to " + final_out.string() + ": " + std::strerror(errno));
    }
    cleanup.active = false;
    const auto parent = final_out.has_parent_path() ? final_out.parent_path() : fs::path(".");
    if (const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
      (void)::fsync(fd);
      ::close(fd);
    }
  }

  std::cout << "created the province key set in " << out.string() << ":\n";
  for (const auto& [name, entry] : kids.items()) {
    std::cout << "  " << name << "  kid " << entry["kid"].get<std::string>() << "  ("
              << entry["role"].get<std::string>() << ")\n";
  }
  std::cout << "  master-keys.toml  SCP03 masters for counter/site/kiosk and the holder-reference secret (0600)\n";
  return 0;
}

struct IssueOptions {
  fs::path keys;
  fs::path out;
  std::string id;
  std::string role;
  std::string region;
  std::string site;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  int days = 365;
};

int run_issue(const IssueOptions& o, bool server) {
  if (!server) {
    static const std::vector<std::string> roles = {"counter", "site", "kiosk", "operator"};
    if (std::find(roles.begin(), roles.end(), o.role) == roles.end()) {
      throw UsageError("--role must be counter, site, kiosk or operator, got '" + o.role + "'");
    }
    require_region(o.region, "--region");
    if (o.role == "site" && o.site.empty()) throw UsageError("a site terminal needs --site (the training site id)");
    // The service reads the site id as 1-9 digits (terminal_from_subject): anything else would be
    // a certificate refused on every connection.
    if (o.role == "site" &&
        (o.site.size() > 9 || !all_of(o.site, [](char c) { return c >= '0' && c <= '9'; }) || o.site[0] == '0')) {
      throw UsageError("--site must be the training site's id, 1-9 digits without a leading 0, got '" + o.site + "'");
    }
    if (o.role != "site" && !o.site.empty()) throw UsageError("--site is only for site terminals");
  }
  // The id names the files written under --out: '../x' or '/x' would write them elsewhere.
  if (o.id.empty() || o.id.size() > 32 || !all_of(o.id, is_id_char)) {
    throw UsageError("--id must be 1-32 letters, digits, '-' or '_', got '" + o.id + "'");
  }
  const auto ca_key = load_private_key(o.keys / "terminal-ca.key.pem");
  const auto ca = Certificate::load(o.keys / "terminal-ca.cert.pem");
  if (!(ca.public_key() == ca_key.public_key())) {
    throw UsageError("terminal-ca.key.pem does not belong to terminal-ca.cert.pem in " + o.keys.string());
  }
  make_output_dir(o.out);
  const auto key_path = o.out / (o.id + ".key.pem");
  const auto cert_path = o.out / (o.id + ".cert.pem");
  refuse_existing({key_path, cert_path});

  CertificateSpec spec;
  spec.subject = {o.id, "skillcard", server ? "service" : o.role, o.region, o.site};
  spec.usage = server ? CertificateUsage::TlsServer : CertificateUsage::TlsClient;
  spec.validity = std::chrono::days(o.days);
  spec.dns_names = o.dns;
  spec.ip_addresses = o.ips;
  const auto key = OpenSsl::PrivateKey::generate();
  const auto cert = Certificate::issue(spec, key.public_key(), ca_key, &ca);
  write_private_key(key_path, key);
  write_new_file(cert_path, cert.to_pem() + ca.to_pem(), 0644);  // leaf then CA: a ready chain
  std::cout << (server ? "service" : o.role) << " certificate for " << o.id << ": " << cert_path.string() << " (key "
            << key_path.string() << ", kid " << kid_hex(key.public_key()) << ")\n";
  return 0;
}

// kid of a public key, private key or certificate file.
int run_kid(const fs::path& file) {
  const auto text = read_key_file(file);
  EcPublicKey key = [&] {
    if (text.find("BEGIN CERTIFICATE") != std::string::npos) return Certificate::load(file).public_key();
    if (text.find("PRIVATE KEY") != std::string::npos) return load_private_key(file).public_key();
    if (text.find("-----BEGIN ") == std::string::npos) {
      // DER: a private key (PKCS#8 or SEC1) or else a SubjectPublicKeyInfo.
      try {
        return load_private_key(file).public_key();
      } catch (const KeyFileError&) {
      }
    }
    return load_public_key(file).public_key();
  }();
  std::cout << kid_hex(key) << "\n";
  return 0;
}

// Verifies a COSE_Sign1 (a voucher token, receipt, certificate, digest or trust list, in
// base64url) with a published public key: the signature, and that the protected kid is the
// key's. Exit 0 when it verifies, 4 when it does not.
int run_verify(const fs::path& key_file, const std::string& cose_text) {
  const auto key = load_public_key(key_file);
  const auto bytes = schemas::base64url_decode(cose_text);
  if (!bytes) throw UsageError("--cose: not base64url without padding");
  const auto cose = schemas::CoseSign1::decode(*bytes);
  const auto verdict =
      cose.verify([&](ByteView tbs, const EcSignature& sig) { return OpenSsl::verify(key, tbs, sig); });
  if (!verdict.ok()) {
    std::cout << "not verified: " << verdict.reason << "\n";
    return 4;
  }
  const auto kid = kid_hex(key.public_key());
  const auto named_hex = to_hex(cose.kid().value_or(Bytes{}));
  if (named_hex != kid) {
    std::cout << "not verified: the structure names kid " << named_hex << ", the key is " << kid << "\n";
    return 4;
  }
  std::cout << "verified: kid " << kid << ", payload " << cose.payload().size() << " bytes\n";
  return 0;
}

// A signing ceremony's trust list (docs/design.md, "Trust list, rotation and offline
// terminals"): every public key of the folder, signed with province-root.key.pem under
// `sequence`, written atomically to `out` — which skillcard-server then serves. The sequence
// must be higher than that of the list it replaces: terminals refuse to go back
// (TRUST_LIST_ROLLBACK), so a lower one would never reach them.
int run_trust_list(const fs::path& keys, std::uint64_t sequence, unsigned days, fs::path out) {
  if (out.empty()) out = keys / service::TrustStore::kCeremonyFile;
  if (fs::exists(out)) {
    std::ifstream in(out, std::ios::binary);
    const Bytes held{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::uint64_t held_sequence = 0;
    try {
      held_sequence = schemas::decode_trust_list(held).claims.sequence;
    } catch (const schemas::DecodeError& e) {
      throw UsageError(out.string() + " exists and is not a trust list (" + e.what() + "); move it away first");
    }
    if (sequence <= held_sequence) {
      throw UsageError(out.string() + " holds sequence " + std::to_string(held_sequence) +
                       ": the new list needs a higher --sequence");
    }
  }
  const auto now = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  const auto store = service::TrustStore::from_key_folder(keys, now, sequence, days);
  // Durably replaced: the new list written and synced beside the old one, renamed over it, the
  // folder synced — a crash leaves the old list or the new, never an empty file the service
  // would refuse to start on.
  const auto tmp = fs::path(out.string() + ".new");
  fs::remove(tmp);  // a leftover of an earlier crash
  const auto& list = store->signed_list();
  write_new_file(tmp, std::string_view(reinterpret_cast<const char*>(list.data()), list.size()), 0644);
  fs::rename(tmp, out);
  const auto folder = out.has_parent_path() ? out.parent_path() : fs::path(".");
  if (const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) throw std::runtime_error("cannot sync the folder of " + out.string());
  }
  std::cout << "trust list sequence " << sequence << ": " << store->claims().entries.size() << " keys, next update "
            << store->claims().next_update << " (unix time); written to " << out.string() << "\n";
  return 0;
}

// A terminal's key file: its role's SCP03 master alone, from the province's master-keys.toml
// (design.md, "Where keys live"). Never overwrites; mode 0600.
int run_role_keys(const fs::path& keys, const std::string& role_text, const fs::path& out) {
  if (role_text == "service") {
    // The verification service and the report tool: the holder-reference secret, no SCP03 master.
    refuse_existing({out});
    write_new_secret_file(out, FileMasterKeyStore::holder_toml(keys / "master-keys.toml"));
    std::cout << "service key file: " << out.string() << " (mode 0600; the holder-reference secret only)\n";
    return 0;
  }
  CardRole role{};
  if (role_text == "counter") {
    role = CardRole::Counter;
  } else if (role_text == "site") {
    role = CardRole::Site;
  } else if (role_text == "kiosk") {
    role = CardRole::Kiosk;
  } else {
    throw UsageError("--role must be counter, site, kiosk or service, got '" + role_text + "'");
  }
  refuse_existing({out});
  const auto master = FileMasterKeyStore::load_role_master(keys / "master-keys.toml", role);
  write_new_secret_file(out, FileMasterKeyStore::role_toml(role, master.view()));
  std::cout << role_text << " terminal key file: " << out.string() << " (mode 0600; the " << role_text
            << " master only)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skillcard-keytool: keys and certificates for the skillcard province (docs/design.md)"};
  app.require_subcommand(1);

  fs::path init_out;
  std::vector<std::string> bureaus{"420100"};
  std::string province = "420000";
  auto* init = app.add_subcommand("init", "create the province root, signers, CAs and master keys");
  init->add_option("--out", init_out, "folder to create the key set in (its parent must exist)")->required();
  init->add_option("--bureau", bureaus, "region code of a bureau that issues vouchers (repeatable)");
  init->add_option("--province", province, "province region code");

  IssueOptions term;
  auto* terminal = app.add_subcommand("terminal", "issue a terminal client certificate (mTLS)");
  terminal->add_option("--keys", term.keys, "folder made by 'init'")->required();
  terminal->add_option("--out", term.out, "folder for the terminal's key and certificate")->required();
  terminal->add_option("--id", term.id, "terminal id")->required();
  terminal->add_option("--role", term.role, "counter, site, kiosk or operator")->required();
  terminal->add_option("--region", term.region, "6-digit region code")->required();
  terminal->add_option("--site", term.site, "training site id (site terminals only)");
  terminal->add_option("--days", term.days, "validity in days")->check(CLI::Range(1, 3650));

  IssueOptions srv;
  srv.region = "420000";
  auto* server = app.add_subcommand("server", "issue the verification service's TLS server certificate");
  server->add_option("--keys", srv.keys, "folder made by 'init'")->required();
  server->add_option("--out", srv.out, "folder for the service's key and certificate")->required();
  server->add_option("--id", srv.id, "file name stem, e.g. 'service'")->default_val("service");
  server->add_option("--dns", srv.dns, "DNS name (repeatable)")->default_val(std::vector<std::string>{"localhost"});
  server->add_option("--ip", srv.ips, "IP address (repeatable)")->default_val(std::vector<std::string>{"127.0.0.1"});
  server->add_option("--days", srv.days, "validity in days")->check(CLI::Range(1, 3650));

  fs::path kid_file;
  auto* kid = app.add_subcommand("kid", "print the kid of a public key, private key or certificate file");
  kid->add_option("file", kid_file, "PEM or DER file")->required();

  fs::path verify_key;
  std::string verify_cose;
  auto* verify = app.add_subcommand("verify", "verify a COSE_Sign1 (base64url) with a published public key");
  verify->add_option("--key", verify_key, "public key (PEM), e.g. voucher-signer-420100.pub.pem")->required();
  verify->add_option("--cose", verify_cose, "the signed structure, base64url without padding")->required();

  fs::path list_keys;
  fs::path list_out;
  std::uint64_t list_sequence = 0;
  unsigned list_days = 3650;
  auto* trust =
      app.add_subcommand("trust-list", "sign a ceremony's trust list (KEYS/trust-list.cose, served by the service)");
  trust->add_option("--keys", list_keys, "folder made by 'init' (its public keys and province-root.key.pem)")
      ->required();
  trust->add_option("--sequence", list_sequence, "sequence number, higher than the list it replaces")
      ->required()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  trust->add_option("--days", list_days, "entries valid for this many days")->check(CLI::Range(1, 3650));
  trust->add_option("--out", list_out, "file to write (default KEYS/trust-list.cose)");

  fs::path role_keys_dir, role_keys_out;
  std::string role_keys_role;
  auto* role_keys = app.add_subcommand(
      "role-keys",
      "write a terminal's key file: its role's SCP03 master only; or the service's: the holder-reference secret "
      "only (0600)");
  role_keys->add_option("--keys", role_keys_dir, "folder made by 'init' (its master-keys.toml)")->required();
  role_keys->add_option("--role", role_keys_role, "counter, site, kiosk or service")->required();
  role_keys->add_option("--out", role_keys_out, "file to write (never overwritten)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; any other parse error is bad arguments, exit 2 (CLI11 prints why).
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*init) return run_init(init_out, bureaus, province);
    if (*terminal) return run_issue(term, false);
    if (*server) return run_issue(srv, true);
    if (*kid) return run_kid(kid_file);
    if (*verify) return run_verify(verify_key, verify_cose);
    if (*trust) return run_trust_list(list_keys, list_sequence, list_days, list_out);
    if (*role_keys) return run_role_keys(role_keys_dir, role_keys_role, role_keys_out);
  } catch (const UsageError& e) {
    std::cerr << "skillcard-keytool: " << e.what() << "\n";
    return 2;
  } catch (const schemas::DecodeError& e) {
    std::cout << "not verified: not a COSE_Sign1: " << e.what() << "\n";
    return 4;
  } catch (const KeyFileError& e) {
    std::cerr << "skillcard-keytool: " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-keytool: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
