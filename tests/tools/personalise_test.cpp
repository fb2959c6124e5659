// skillcard-personalise end to end: from a key set of skillcard-keytool init to a card image
// that the training applet serves — certificate by the card CA, role keys diversified from the
// masters (a terminal holding only its role master opens a session), holder reference, PIN,
// card keys that sign receipts and card proofs the certificate names — and the register line.
// Then its refusals: existing image, bad citizen ID, PIN, card number, region, missing keys,
// a card already registered; none of them writes anything.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "skillcard/card/card.hpp"
#include "skillcard/card/in_process_channel.hpp"
#include "skillcard/card/training_applet.hpp"
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/scp03_session.hpp"
#include "skillcard/iso7816/card_channel.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/voucher.hpp"

using namespace skillcard;
using namespace skillcard::crypto;
using iso7816::CommandApdu;
using iso7816::ResponseApdu;
using iso7816::StatusWord;
namespace fs = std::filesystem;

namespace {

constexpr const char* kCitizen = "11010519491231002X";

struct Run {
  int exit_code;
  std::string output;
};

Run run(const std::string& exe, const std::string& args) {
  const std::string cmd = exe + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// In a session of its own (setsid): no controlling terminal, so nothing can wait at a prompt.
Run personalise(const std::string& args) { return run(std::string("setsid -w ") + SKILLCARD_PERSONALISE, args); }

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Bytes base64url_decode(const std::string& s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    throw std::invalid_argument("not base64url");
  };
  Bytes out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    acc = (acc << 6) | static_cast<std::uint32_t>(value(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
    }
  }
  return out;
}

class Personalise : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("skillcard-personalise-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const auto r = run(SKILLCARD_KEYTOOL, "init --out " + (dir_ / "keys").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  void SetUp() override {
    work_ = dir_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(work_);
  }
  std::string base(const std::string& number = "4201000001", const std::string& citizen = kCitizen,
                   const std::string& pin = "246810") const {
    return "--keys " + (dir_ / "keys").string() + " --card-number " + number + " --citizen-id " + citizen +
           " --region 420100" + pin_from_fd(pin);
  }
  // The PIN as the tool takes it: a line from a descriptor, never an argument.
  std::string pin_from_fd(const std::string& pin) const {
    const auto file = work_ / ("pin-" + pin);
    std::ofstream(file) << pin << "\n";
    return " --pin-fd 3 3<" + file.string();
  }
  fs::path keys() const { return dir_ / "keys"; }
  static fs::path dir_;
  fs::path work_;
};
fs::path Personalise::dir_;

// A terminal of one role: holds only that role's master (through the key store).
struct Terminal {
  Terminal(card::Card& c, const MasterKeyStore& store) : channel(c), keys(&store) {}
  card::InProcessChannel channel;
  const MasterKeyStore* keys;
  scp03::HostSession<OpenSsl> host;

  ResponseApdu send(const CommandApdu& plain) {
    if (!host.is_open()) return iso7816::transmit_all(channel, plain);
    return host.unwrap(iso7816::transmit_all(channel, host.wrap(plain)));
  }
  StatusWord open(CardRole role) {
    host.close();
    const auto iu = iso7816::transmit_all(channel, host.initialize_update(key_version(role)));
    if (!iu.is_success()) return iu.sw();
    const auto info = decltype(host)::parse_initialize_update_response(iu.data());
    const std::string number(info.diversification_data.begin(), info.diversification_data.end());
    const auto enc = keys->card_key(role, scp03::KeyType::Enc, number);
    const auto mac = keys->card_key(role, scp03::KeyType::Mac, number);
    return iso7816::transmit_all(channel, host.external_authenticate(enc.view(), mac.view(), info, 0x33)).sw();
  }
};

}  // namespace

TEST_F(Personalise, MakesACardTheTrainingAppletServes) {
  const auto image = work_ / "card.img";
  const auto reg = work_ / "register.jsonl";
  const auto r = personalise(base() + " --image " + image.string() + " --register " + reg.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find(kCitizen), std::string::npos) << "the citizen ID is never printed";
  EXPECT_EQ(r.output.find("246810"), std::string::npos) << "the PIN is never printed";
  EXPECT_EQ(fs::file_size(image), 12288u);
  struct stat st {};
  ::stat(image.c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto image_bytes = read_text(image);
  EXPECT_EQ(image_bytes.find(kCitizen), std::string::npos) << "the citizen ID is never on the card";

  const auto store = FileMasterKeyStore::load(keys() / "master-keys.toml");
  const auto holder = store->holder_ref(kCitizen);

  // The register line.
  const auto lines = read_text(reg);
  ASSERT_EQ(std::count(lines.begin(), lines.end(), '\n'), 1);
  const auto entry = nlohmann::json::parse(lines);
  EXPECT_EQ(entry.size(), 4u);
  EXPECT_EQ(entry["card"], "4201000001");
  EXPECT_EQ(entry["region"], 420100);
  EXPECT_EQ(entry["holder_ref"], [&] {
    auto h = to_hex(ByteView(holder));
    std::transform(h.begin(), h.end(), h.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
    return h;
  }());
  const Bytes certificate = base64url_decode(entry["certificate"].get<std::string>());

  // The certificate: card CA signature, card number, region.
  const auto cert = schemas::decode_card_certificate(certificate);
  const auto ca = load_public_key(keys() / "card-ca.pub.pem");
  EXPECT_EQ(cert.kid, kid_of<OpenSsl>(ca.public_key()));
  EXPECT_TRUE(cert.envelope.verify([&](ByteView m, const EcSignature& s) { return OpenSsl::verify(ca, m, s); }).ok());
  EXPECT_EQ(cert.claims.card_number, "4201000001");
  EXPECT_EQ(cert.claims.region, 420100u);
  EXPECT_GT(cert.claims.not_after, cert.claims.not_before + 3649ull * 86'400);
  const auto receipt_key = OpenSsl::decompress(cert.claims.receipt_key);
  const auto auth_key = OpenSsl::decompress(cert.claims.auth_key);

  // The card: the training applet by default, the same certificate, sessions for every role.
  card::Card c(card::Eeprom::open_file(image));
  card::training::install(c);
  c.power_on();
  Terminal t(c, *store);
  ASSERT_EQ(t.send(CommandApdu::select_by_aid(card::training::aid())).sw(), StatusWord::Success);
  EXPECT_EQ(t.send(CommandApdu(0x00, 0xCA, 0x01, 0x03, 256)).data(), certificate);
  const Bytes nonce(17, 0x01);
  const auto proof = t.send(CommandApdu(0x00, 0x88, 0x00, 0x00, nonce, 256)).data();
  ASSERT_EQ(proof.size(), 69u);
  Bytes m(as_bytes("skillcard/card-auth/v1").begin(), as_bytes("skillcard/card-auth/v1").end());
  m.push_back(0);
  m.insert(m.end(), {'4', '2', '0', '1', '0', '0', '0', '0', '0', '1'});
  m.insert(m.end(), proof.begin(), proof.begin() + 5);
  m.insert(m.end(), nonce.begin(), nonce.end());
  EcSignature sig{};
  std::copy_n(proof.begin() + 5, 64, sig.begin());
  EXPECT_TRUE(OpenSsl::verify(auth_key, m, sig));

  for (auto role : {CardRole::Counter, CardRole::Site, CardRole::Kiosk}) {
    EXPECT_EQ(t.open(role), StatusWord::Success) << to_string(role);
  }
  ASSERT_EQ(t.open(CardRole::Counter), StatusWord::Success);
  EXPECT_EQ(t.send(CommandApdu(0x00, 0x20, 0x00, 0x81, card::training::pin_block("123456"), 256)).sw(),
            iso7816::make_verification_failed(2));
  EXPECT_EQ(t.send(CommandApdu(0x00, 0x20, 0x00, 0x81, card::training::pin_block("246810"), 256)).sw(),
            StatusWord::Success);
  const auto list = t.send(CommandApdu(0x80, 0x32, 0x00, 0x00, 256)).data();
  ASSERT_EQ(list.size(), 24u);
  EXPECT_TRUE(std::equal(holder.begin(), holder.end(), list.begin()));

  // A voucher for this holder, redeemed: the receipt verifies with the certificate's key.
  schemas::VoucherClaims v;
  v.issuer = 420100;
  v.id = {0, 0, 0, 0, 0, 0, 0, 9};
  v.holder = holder;
  v.occupation = 4040505;
  v.level = 4;
  v.face_value_fen = 180000;
  v.planned_hours = 120;
  v.planned_online_hours = 36;
  v.eligible_regions = {420100};
  v.issued_at = 1'767'225'600;
  v.not_before = v.issued_at;
  v.expires_at = v.issued_at + 7'776'000;
  const auto signer = OpenSsl::PrivateKey::generate();
  const auto token =
      schemas::sign_voucher(v, kid_of<OpenSsl>(signer.public_key()), [&](ByteView b) { return signer.sign(b); });
  ASSERT_EQ(t.send(CommandApdu(0x80, 0x30, 0x00, 0x00, token, 256)).sw(), StatusWord::Success);
  ASSERT_EQ(t.open(CardRole::Site), StatusWord::Success);
  ASSERT_EQ(t.send(CommandApdu(0x00, 0x20, 0x00, 0x81, card::training::pin_block("246810"), 256)).sw(),
            StatusWord::Success);
  Bytes redeem{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0x27, 0x11, 0x01};
  redeem.resize(29, 0x77);
  redeem.insert(redeem.end(), {0x69, 0x57, 0x00, 0x00, 0, 84, 0, 36});
  const auto receipt = t.send(CommandApdu(0x80, 0x36, 0x00, 0x00, redeem, 256));
  ASSERT_EQ(receipt.sw(), StatusWord::Success);
  const auto decoded = schemas::decode_receipt(receipt.data());
  EXPECT_EQ(decoded.kid, kid_of<OpenSsl>(receipt_key));
  EXPECT_TRUE(
      decoded.envelope.verify([&](ByteView b, const EcSignature& s) { return OpenSsl::verify(receipt_key, b, s); })
          .ok());

  // A second card goes on the next register line.
  const auto r2 = personalise(base("4201000002", "110105198001010016") + " --image " + (work_ / "card2.img").string() +
                              " --register " + reg.string());
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  const auto both = read_text(reg);
  EXPECT_EQ(std::count(both.begin(), both.end(), '\n'), 2);
}

// At a station's terminal the PIN is typed twice with echo off (a pseudo-terminal that becomes
// the tool's controlling terminal, as /dev/tty): the same twice writes the card, two different
// entries write nothing, and the digits never show.
TEST_F(Personalise, TheInitialPinIsTypedTwiceAtTheTerminal) {
  struct Case {
    const char* again;
    int code;
  };
  for (const Case c : {Case{"246810", 0}, Case{"246811", 2}}) {
    const auto image = work_ / (c.code == 0 ? "card-same.img" : "card-differ.img");
    const std::string cmd = std::string(SKILLCARD_PERSONALISE) + " --keys " + keys().string() +
                            " --card-number 4201000001 --citizen-id " + kCitizen + " --region 420100 --image " +
                            image.string();
    int master = -1;
    const pid_t child = ::forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::string seen;
    // Reads what the tool writes until `text` shows (or 20 s pass, or the tool has gone).
    const auto read_until = [&](std::string_view text) {
      for (int i = 0; i < 2000 && seen.find(text) == std::string::npos; ++i) {
        pollfd p{master, POLLIN, 0};
        if (::poll(&p, 1, 10) <= 0) continue;
        char buf[256];
        const auto n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;  // EIO: the tool has closed the terminal
        seen.append(buf, static_cast<std::size_t>(n));
      }
      return seen.find(text) != std::string::npos;
    };
    EXPECT_TRUE(read_until("Initial PIN")) << seen;
    (void)!::write(master, "246810\n", 7);
    EXPECT_TRUE(read_until("Again")) << seen;
    (void)!::write(master, (std::string(c.again) + "\n").data(), 7);
    read_until("\x04never");  // to the end
    ::close(master);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), c.code) << seen;
    EXPECT_EQ(fs::exists(image), c.code == 0) << seen;
    EXPECT_EQ(seen.find("24681"), std::string::npos) << "a typed PIN was echoed: " << seen;
    if (c.code != 0) {
      EXPECT_NE(seen.find("the two PINs typed differ"), std::string::npos) << seen;
    }
  }
}

// A run stopped while it wrote (a kill, a power cut) leaves only IMAGE.partial, never a half card
// under the image's name; the next run removes the abandoned partial and makes the card. A
// partial that a running personalisation holds (its lock) is left alone, and nothing is written.
TEST_F(Personalise, AnInterruptedRunLeavesNoCardAndTheNextOneMakesIt) {
  const auto image = work_ / "card.img";
  const auto partial = work_ / "card.img.partial";
  const auto reg = work_ / "register.jsonl";
  const std::string out = " --image " + image.string() + " --register " + reg.string();
  {
    std::ofstream(partial) << std::string(4096, '\0');  // what a killed run leaves
  }
  const int held = ::open(partial.c_str(), O_RDWR);
  ASSERT_GE(held, 0);
  ASSERT_EQ(::flock(held, LOCK_EX | LOCK_NB), 0);  // as a running personalisation holds it
  auto r = personalise(base() + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("another personalisation is writing"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(partial));
  EXPECT_FALSE(fs::exists(image));
  EXPECT_FALSE(fs::exists(reg));
  ::close(held);  // that run is gone: its partial is abandoned

  r = personalise(base() + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(image));
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(image), card::training::kImagePages * card::kPageSize);
  EXPECT_EQ(fs::status(image).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_NE(read_text(reg).find("\"card\":\"4201000001\""), std::string::npos);
}

TEST_F(Personalise, RefusesAndWritesNothing) {
  const auto image = work_ / "card.img";
  const auto reg = work_ / "register.jsonl";
  const std::string out = " --image " + image.string() + " --register " + reg.string();
  struct Case {
    std::string args;
    int code;
    std::string says;
  };
  const Case cases[] = {
      {base("4201000001", "110105194912310021") + out, 2, "check character"},
      {base("4201000001", "11010519491231002") + out, 2, "18 characters"},
      {base("4201000001", kCitizen, "123") + out, 2, "4-12 digits"},
      {base("4201000001", kCitizen, "12345a") + out, 2, "4-12 digits"},
      {base() + " --pin 246810" + out, 2, "--pin"},  // a command line is readable by every local user
      {"--keys " + keys().string() + " --card-number 4201000001 --citizen-id " + kCitizen + " --region 420100" + out, 2,
       "give --pin-fd"},  // run without a terminal (setsid below)
      {base("420100000", kCitizen) + out, 2, "10 digits"},
      {base() + " --region 42010" + out, 2, "region"},
      {"--keys " + (work_ / "nokeys").string() + " --card-number 4201000001 --citizen-id " + kCitizen +
           " --region 420100" + pin_from_fd("1234") + out,
       3, "missing"},
      {base() + " --image " + (work_ / "no-such-folder" / "card.img").string(), 2, "does not exist"},
  };
  for (const auto& c : cases) {
    const auto r = personalise(c.args);
    EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("110105194912310021"), std::string::npos) << "no citizen ID in messages";
    EXPECT_FALSE(fs::exists(image)) << c.args;
    EXPECT_FALSE(fs::exists(reg)) << c.args;
  }
  // A malformed master-keys.toml is a key-file problem (3), not an internal error (1).
  {
    const auto bad = work_ / "badkeys";
    fs::create_directories(bad);
    fs::copy(keys(), bad, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    std::ofstream(bad / "master-keys.toml", std::ios::trunc) << "version = 1\n[scp03]\ncounter = \"00\"\n";
    const auto r = personalise("--keys " + bad.string() + " --card-number 4201000001 --citizen-id " + kCitizen +
                               " --region 420100" + pin_from_fd("1234") + out);
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("malformed"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(image));
    fs::remove_all(bad);
  }
  // An existing image is never overwritten.
  { std::ofstream(image) << "keep me"; }
  const auto r = personalise(base() + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("already exists"), std::string::npos) << r.output;
  EXPECT_EQ(read_text(image), "keep me");
  EXPECT_FALSE(fs::exists(reg));
  fs::remove(image);
  // A register line that is not a card's entry (a number where the card is, an array): refused by
  // line, not an internal error.
  for (const std::string bad : {R"({"card":1})", "[]", R"({"region":420100})"}) {
    const auto odd = work_ / "odd.jsonl";
    std::ofstream(odd, std::ios::trunc) << R"({"card":"4201000009"})"
                                        << "\n"
                                        << bad << "\n";
    const auto refused = personalise(base() + " --image " + image.string() + " --register " + odd.string());
    EXPECT_EQ(refused.exit_code, 2) << bad << "\n" << refused.output;
    EXPECT_NE(refused.output.find("line 2 is not a card entry"), std::string::npos) << refused.output;
    EXPECT_FALSE(fs::exists(image));
  }
  // A card number already registered.
  ASSERT_EQ(personalise(base() + out).exit_code, 0);
  const auto again = personalise(base() + " --image " + (work_ / "other.img").string() + " --register " + reg.string());
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.output.find("already in the register"), std::string::npos) << again.output;
  EXPECT_FALSE(fs::exists(work_ / "other.img"));
}
