// The terminal workflows of #10 as deployed: the host library (CardSession, the counter, site and
// kiosk workflows, JsonServiceClient over mutual TLS, the offline queue) drives a card that
// skillcard-sim serves through a real pcscd + vsmartcard vpcd (the PC/SC CardChannel of
// reader_driver), against the real skillcard-server process on SQLite with keytool-made
// certificates for every role. One service per test on a fresh ledger; the card is personalised
// by skillcard-personalise and registered by the counter. Scenarios: the service down (offline
// queue, then sync), the card pulled mid-REDEEM after it committed (GET RECEIPT on the next tap)
// and before (REDEEM once on the next tap), a wrong PIN three times (blocked, reset at the
// counter), a site trying to issue, a lost card's receipt, and a kiosk reading without the card.
// The outcomes are read back from the service's API (the token's ledger state, the same receipt
// answered as already recorded) and from the card's LIST.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <optional>

#include "../support/server_process.hpp"
#include "sim_process.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/crypto/x509.hpp"
#include "skillcard/host/encoding.hpp"
#include "skillcard/host/http_transport.hpp"
#include "skillcard/host/json_service_client.hpp"
#include "skillcard/host/workflows.hpp"

namespace skillcard::host {
namespace {

namespace fs = std::filesystem;
using crypto::CardRole;
using integration::ExistingImage;
using integration::reader_name;
using integration::SimProcess;
using integration::wait_for_card;
using json = nlohmann::json;

constexpr std::uint32_t kRegion = 420100;
constexpr std::uint32_t kSite = 10001;
constexpr const char* kPin = "123456";
constexpr const char* kCard = "4201000001";
constexpr const char* kReplacement = "4201000002";

std::uint64_t wall_clock() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void run(const std::string& command) { ASSERT_EQ(std::system((command + " >/dev/null").c_str()), 0) << command; }

// A terminal holds its own role's key set only (a site cannot open a counter session).
class OneRoleKeys final : public CardKeySource {
 public:
  OneRoleKeys(std::shared_ptr<const crypto::MasterKeyStore> store, CardRole role)
      : store_(std::move(store)), role_(role) {}
  crypto::SecretBytes card_key(CardRole role, crypto::scp03::KeyType type,
                               std::string_view card_number) const override {
    if (role != role_) throw std::invalid_argument("this terminal holds no " + std::string(to_string(role)) + " keys");
    return store_->card_key(role, type, card_number);
  }

 private:
  std::shared_ptr<const crypto::MasterKeyStore> store_;
  CardRole role_;
};

// Counts the commands that reach the reader, by INS (wrapped or not).
class CountingChannel final : public iso7816::CardChannel {
 public:
  explicit CountingChannel(iso7816::CardChannel& inner) : inner_(&inner) {}
  iso7816::ResponseApdu transmit(const iso7816::CommandApdu& command) override {
    ++by_ins[command.ins()];
    return inner_->transmit(command);
  }
  Bytes atr() const override { return inner_->atr(); }
  void reset() override { inner_->reset(); }
  std::map<std::uint8_t, std::size_t> by_ins;

 private:
  iso7816::CardChannel* inner_;
};

// One card image served by skillcard-sim on a vpcd slot, and the host's PC/SC connection to it.
class CardInReader {
 public:
  CardInReader(int slot, const fs::path& image, std::vector<std::string> sim_options = {}) : slot_(slot) {
    // pcscd notices a previous card leaving only after a moment: wait for the empty reader, so
    // that the card connected to is this one.
    if (!wait_for_card(context_, reader_name(slot), false)) throw std::runtime_error("the reader never emptied");
    sim_ = std::make_unique<SimProcess>(slot, ExistingImage{image}, std::move(sim_options));
    connect();
  }
  ~CardInReader() {
    channel_.reset();
    pcsc_.reset();
    connection_.reset();
    sim_.reset();
    wait_for_card(context_, reader_name(slot_), false);
  }
  CardInReader(const CardInReader&) = delete;
  CardInReader& operator=(const CardInReader&) = delete;

  CountingChannel& channel() { return *channel_; }

  // The next tap after the card was pulled: a new connection once pcscd sees the card back.
  void reconnect() {
    channel_.reset();
    pcsc_.reset();
    connection_.reset();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        connect();
        // SELECT answers only once the card is really back (not the stale handle of the pull).
        if (iso7816::transmit_all(*channel_, iso7816::CommandApdu::select_by_aid(apdu::training_aid())).is_success()) {
          channel_->by_ins.clear();
          return;
        }
      } catch (const iso7816::CardError&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("the pulled card never came back");
  }

 private:
  void connect() {
    if (!wait_for_card(context_, reader_name(slot_), true)) throw std::runtime_error("the card never appeared");
    connection_ = context_.connect(reader_name(slot_));
    pcsc_ = std::make_unique<reader::PcscChannel>(*connection_);
    channel_ = std::make_unique<CountingChannel>(*pcsc_);
  }

  int slot_;
  reader::Context context_;
  std::unique_ptr<SimProcess> sim_;
  std::unique_ptr<reader::Connection> connection_;
  std::unique_ptr<reader::PcscChannel> pcsc_;
  std::unique_ptr<CountingChannel> channel_;
};

// Keys, certificates for every role, the registry and the policy: made once for all tests.
struct Environment {
  fs::path dir;
  std::string holder;  // citizen ID of the card holder
  std::shared_ptr<const crypto::MasterKeyStore> master;
  std::optional<crypto::EcPublicKey> root;
};
Environment& env() {
  static Environment e;
  return e;
}

class WorkflowsPcsc : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto& e = env();
    e.dir = fs::temp_directory_path() / ("skillcard-workflows-pcsc-" + std::to_string(::getpid()));
    fs::remove_all(e.dir);
    fs::create_directories(e.dir);
    const std::string tool = SKILLCARD_KEYTOOL;
    const auto keys = (e.dir / "keys").string();
    const auto terminals = (e.dir / "terminals").string();
    run(tool + " init --out " + keys + " --bureau " + std::to_string(kRegion));
    run(tool + " server --keys " + keys + " --out " + (e.dir / "service").string() + " --ip 127.0.0.1");
    for (const auto& [id, role] :
         std::vector<std::pair<std::string, std::string>>{{"C1", "counter"}, {"K1", "kiosk"}, {"O1", "operator"}}) {
      run(tool + " terminal --keys " + keys + " --out " + terminals + " --id " + id + " --role " + role + " --region " +
          std::to_string(kRegion));
    }
    run(tool + " terminal --keys " + keys + " --out " + terminals + " --id S1 --role site --region " +
        std::to_string(kRegion) + " --site " + std::to_string(kSite));
    const std::string first17 = "42010219900307123";
    e.holder = first17 + crypto::citizen_id_check_character(first17);
    std::ofstream(e.dir / "people.csv")
        << "citizen_id,name,region,date_of_birth,insured,employed,retired_fisherman,key_groups\n"
        << e.holder << ",Zhang San," << kRegion << ",1990-03-07,1,0,0,registered_unemployed\n";
    std::ofstream(e.dir / "policy.toml") << "[[standards]]\nprogramme = 3\noccupation = \"*\"\nlevel = 4\n"
                                            "amount_fen = 150000\n";
    e.master = crypto::FileMasterKeyStore::load(e.dir / "keys/master-keys.toml");
    e.root = crypto::Certificate::load(e.dir / "keys/province-root.cert.pem").public_key();
  }
  static void TearDownTestSuite() { fs::remove_all(env().dir); }

  void SetUp() override {
    ASSERT_TRUE(env().master && env().root) << "the keys, certificates or registry were not made";
    dir = env().dir / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir);
    start_service();
    // The operator funds the special account (P16), as scripts/demo.sh does.
    const auto funded = operator_call("POST", "/v1/budgets", json{{"fund", 1}, {"allocated_fen", 100'000'000}});
    ASSERT_EQ(funded.status, 200) << funded.body;
    counter_keys = std::make_unique<OneRoleKeys>(env().master, CardRole::Counter);
    site_keys = std::make_unique<OneRoleKeys>(env().master, CardRole::Site);
    kiosk_keys = std::make_unique<OneRoleKeys>(env().master, CardRole::Kiosk);
    trust = TrustAnchors::from_trust_list(client("C1")->trust_list().trust_list, *env().root);
  }
  void TearDown() override {
    server.reset();
    fs::remove_all(dir);
  }

  // skillcard-server on this test's ledger (kept across a restart).
  void start_service() {
    const auto& d = env().dir;
    server = std::make_unique<skillcard::testing::ServerProcess>(
        SKILLCARD_SERVER,
        std::vector<std::string>{"--keys", (d / "keys").string(), "--tls-cert",
                                 (d / "service/service.cert.pem").string(), "--tls-key",
                                 (d / "service/service.key.pem").string(), "--ledger", (dir / "ledger.sqlite").string(),
                                 "--policy", (d / "policy.toml").string(), "--registry", (d / "people.csv").string()},
        dir);
    counter.reset();
    site.reset();
    kiosk.reset();
  }

  HttpsOptions https(const std::string& terminal) const {
    HttpsOptions h;
    h.host = "127.0.0.1";
    h.port = server->port();
    h.ca_file = env().dir / "keys/province-root.cert.pem";
    h.certificate_file = env().dir / "terminals" / (terminal + ".cert.pem");
    h.key_file = env().dir / "terminals" / (terminal + ".key.pem");
    h.timeout = std::chrono::milliseconds(5000);
    return h;
  }
  // The terminal's client of the service now running (made anew after a restart: new port).
  std::unique_ptr<ServiceClient> client(const std::string& terminal) const {
    return make_https_service_client(https(terminal), terminal == "K1" ? "" : "CLERK1");
  }
  ServiceClient& counter_service() { return *(counter ? counter : counter = client("C1")); }
  ServiceClient& site_service() { return *(site ? site : site = client("S1")); }
  ServiceClient& kiosk_service() { return *(kiosk ? kiosk : kiosk = client("K1")); }

  HttpResponse operator_call(const std::string& method, const std::string& target, const json& body) const {
    BeastHttpTransport transport(https("O1"));
    return transport.send({method,
                           target,
                           {{"Skillcard-Clerk", "OP1"}, {"Content-Type", "application/json"}},
                           body.is_null() ? "" : body.dump()});
  }

  // skillcard-personalise makes the card image; the counter registers the card for the holder.
  fs::path personalised_card(const std::string& number) {
    const auto image = dir / ("card-" + number + ".img");
    const auto register_file = dir / "cards.jsonl";
    const auto pin_file = dir / "initial-pin";
    std::ofstream(pin_file) << kPin << "\n";
    run(std::string(SKILLCARD_PERSONALISE) + " --keys " + (env().dir / "keys").string() + " --card-number " + number +
        " --citizen-id " + env().holder + " --region " + std::to_string(kRegion) + " --pin-fd 3 3<" +
        pin_file.string() + " --image " + image.string() + " --register " + register_file.string());
    std::ifstream in(register_file);
    std::string line;
    std::optional<Bytes> certificate;
    while (std::getline(in, line)) {
      const auto entry = json::parse(line);
      if (entry.value("card", entry.value("card_number", "")) == number)
        certificate = base64url_decode(entry.at("certificate").get<std::string>());
    }
    if (!certificate) throw std::runtime_error("card " + number + " is not in " + register_file.string());
    const auto registered = counter_service().register_card(*certificate, env().holder);
    EXPECT_EQ(registered.card, number);
    EXPECT_EQ(registered.state, "active");
    return image;
  }

  // The counter issues a voucher usable at kSite and writes it onto the card in the reader.
  IssueOutcome issue(iso7816::CardChannel& channel, const std::string& occupation = "4-04-05-05") {
    CardSession session(channel, *counter_keys);
    CounterWorkflow w(session, counter_service(), *trust, wall_clock);
    IssueInput in;
    in.citizen_id = env().holder;
    in.programme = 3;
    in.occupation = occupation;
    in.level = 4;
    in.fund = 1;
    in.planned_hours = 120;
    in.planned_online_hours = 36;
    in.eligible_providers = std::vector<std::uint32_t>{kSite};
    auto out = w.issue(in);
    EXPECT_EQ(out.state, WriteState::Written) << out.problem;
    return out;
  }

  // The tap after a redemption left in doubt: the site redeems again with the same queue. The
  // card answers with GET RECEIPT when its REDEEM had committed (`recovered`), else with one
  // REDEEM — never both; the in-doubt record is settled, the card and the ledger say redeemed once.
  RedeemOutcome next_tap_settles(CountingChannel& channel, OfflineQueue& queue, const IssueOutcome& issued,
                                 bool recovered) {
    CardSession session(channel, *site_keys);
    SiteWorkflow w(session, site_service(), queue, {kSite, kRegion}, wall_clock);
    auto out = w.redeem(w.prepare(), Pin(kPin), 84, 36);
    EXPECT_EQ(out.recovered, recovered);
    EXPECT_EQ(out.status, RedeemStatus::Recorded);
    EXPECT_EQ(out.voucher_id, issued.voucher_id);
    EXPECT_EQ(out.counter, 1u);
    EXPECT_EQ(channel.by_ins[apdu::kInsRedeem], recovered ? 0u : 1u);
    EXPECT_EQ(channel.by_ins[apdu::kInsGetReceipt], recovered ? 1u : 0u);
    EXPECT_TRUE(queue.all_in_doubt().empty());
    const auto list = card_list(channel);
    EXPECT_EQ(list.redemption_counter, 1u);  // the card redeemed once
    EXPECT_EQ(slot_state(list, issued.voucher_id), SlotState::Redeemed);
    EXPECT_EQ(ledger_state(issued.token), "P15_ALREADY_REDEEMED");
    return out;
  }

  // The card's own record (a counter session's LIST).
  VoucherList card_list(iso7816::CardChannel& channel) {
    CardSession session(channel, *counter_keys);
    session.select();
    session.open(CardRole::Counter);
    return session.list_vouchers(apdu::kListAll);
  }
  static std::optional<SlotState> slot_state(const VoucherList& list, const VoucherId& id) {
    for (const auto& slot : list.slots)
      if (slot.id == id) return slot.state;
    return std::nullopt;
  }
  // The voucher's state in the ledger as POST /v1/vouchers/verify reports it: the state of a
  // usable voucher (issued, written), else the refusal with its detail (P15_ALREADY_REDEEMED;
  // P15_VOUCHER_VOIDED moved).
  std::string ledger_state(const Bytes& token) {
    try {
      return counter_service().verify_token(token).state;
    } catch (const ServiceRefusal& e) {
      return e.detail().empty() ? e.code() : e.code() + " " + e.detail();
    }
  }

  fs::path dir;
  std::unique_ptr<skillcard::testing::ServerProcess> server;
  std::unique_ptr<ServiceClient> counter, site, kiosk;
  std::unique_ptr<CardKeySource> counter_keys, site_keys, kiosk_keys;
  std::optional<TrustAnchors> trust;
};

// (1) The service is down at the site: the card-signed receipt waits in the offline queue and
// sync delivers it once the service is back; the ledger records it exactly once.
TEST_F(WorkflowsPcsc, ServiceDownQueuesTheReceiptAndSyncRecordsItOnce) {
  CardInReader reader(0, personalised_card(kCard));
  const auto issued = issue(reader.channel());
  ASSERT_EQ(ledger_state(issued.token), "written");

  OfflineQueue queue(dir / "site-queue.sqlite");
  CardSession session(reader.channel(), *site_keys);
  SiteWorkflow w(session, site_service(), queue, {kSite, kRegion}, wall_clock);
  EXPECT_FALSE(w.prepare().offline);  // the online contact the offline bounds start from
  EXPECT_EQ(server->stop(SIGTERM), 0) << server->log();

  const auto nonce = w.prepare();
  EXPECT_TRUE(nonce.offline);
  EXPECT_EQ(nonce.nonce[0], 0x02);
  const auto out = w.redeem(nonce, Pin(kPin), 84, 36);
  EXPECT_EQ(out.status, RedeemStatus::Queued);
  EXPECT_EQ(out.voucher_id, issued.voucher_id);
  ASSERT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.pending(wall_clock())[0].receipt, out.receipt);
  EXPECT_EQ(slot_state(card_list(reader.channel()), issued.voucher_id), SlotState::Redeemed);

  // Still down: nothing is lost, the attempt is recorded.
  const auto down = queue.sync(site_service());
  EXPECT_TRUE(down.service_unavailable);
  EXPECT_EQ(down.remaining, 1u);
  EXPECT_EQ(queue.pending(wall_clock())[0].attempts, 1u);

  start_service();  // the same ledger, a new port
  ASSERT_EQ(ledger_state(issued.token), "written");
  const auto synced = queue.sync(site_service());
  EXPECT_FALSE(synced.service_unavailable);
  EXPECT_EQ(synced.acknowledged, 1u);
  EXPECT_EQ(synced.remaining, 0u);
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_EQ(ledger_state(issued.token), "P15_ALREADY_REDEEMED");
  // Recorded once: the same receipt again is the record already there, not a second one.
  const auto again = site_service().submit_redemption({issued.voucher_id, out.receipt, std::string(kCard)});
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.redemption.receipt_id, out.receipt_id);
  EXPECT_EQ(again.redemption.counter, 1u);
}

// (2) The card is pulled right after it ran REDEEM (skillcard-sim --pull-on: the card commits,
// the answer never reaches the host). The next tap — after a site host restart — recovers the
// receipt with GET RECEIPT: no second REDEEM, the redemption recorded once, not lost.
TEST_F(WorkflowsPcsc, CardPulledMidRedeemIsRecoveredByGetReceiptOnTheNextTap) {
  // 84 36: REDEEM inside the secure channel (CLA 80 with the secure-messaging bit).
  const auto redeem_header = to_hex(Bytes{0x84, apdu::kInsRedeem});
  CardInReader reader(0, personalised_card(kCard), {"--pull-on", redeem_header, "--reinsert-delay-ms", "300"});
  const auto issued = issue(reader.channel());
  const auto queue_file = dir / "site-queue.sqlite";
  {
    OfflineQueue queue(queue_file);
    CardSession session(reader.channel(), *site_keys);
    SiteWorkflow w(session, site_service(), queue, {kSite, kRegion}, wall_clock);
    try {
      w.redeem(w.prepare(), Pin(kPin), 84, 36);
      FAIL() << "the lost answer went unnoticed";
    } catch (const RedemptionInDoubt& e) {
      EXPECT_EQ(e.code(), "UNKNOWN_OUTCOME");
      EXPECT_EQ(e.pending().voucher, issued.voucher_id);
      EXPECT_EQ(e.pending().card, kCard);
      EXPECT_EQ(e.pending().counter_before, 0u);
    }
    EXPECT_EQ(reader.channel().by_ins[apdu::kInsRedeem], 1u);
    EXPECT_EQ(queue.all_in_doubt().size(), 1u);
  }
  EXPECT_EQ(ledger_state(issued.token), "written");  // nothing reached the service

  reader.reconnect();
  OfflineQueue queue(queue_file);  // the site host restarted between the two taps
  ASSERT_EQ(queue.all_in_doubt().size(), 1u);
  const auto out = next_tap_settles(reader.channel(), queue, issued, /*recovered=*/true);
  EXPECT_EQ(queue.size(), 0u);
  const auto again = site_service().submit_redemption({issued.voucher_id, out.receipt, std::string(kCard)});
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.redemption.receipt_id, out.receipt_id);
}

// (2b) The power goes inside REDEEM before it completes (skillcard-sim --cut-on: the card's
// journal write is cut, its recovery at the next power-on undoes the command). The next tap
// finds the card's counter unmoved and redeems — once; the in-doubt record is settled.
TEST_F(WorkflowsPcsc, CardPulledBeforeRedeemCompletesRedeemsOnceOnTheNextTap) {
  const auto redeem_header = to_hex(Bytes{0x84, apdu::kInsRedeem});
  CardInReader reader(0, personalised_card(kCard), {"--cut-on", redeem_header + ":2", "--reinsert-delay-ms", "300"});
  const auto issued = issue(reader.channel());
  OfflineQueue queue(dir / "site-queue.sqlite");
  {
    CardSession session(reader.channel(), *site_keys);
    SiteWorkflow w(session, site_service(), queue, {kSite, kRegion}, wall_clock);
    EXPECT_THROW(w.redeem(w.prepare(), Pin(kPin), 84, 36), RedemptionInDoubt);
  }
  EXPECT_EQ(queue.all_in_doubt().size(), 1u);
  EXPECT_EQ(ledger_state(issued.token), "written");

  reader.reconnect();
  EXPECT_EQ(card_list(reader.channel()).redemption_counter, 0u);  // the cut REDEEM left no trace
  (void)next_tap_settles(reader.channel(), queue, issued, /*recovered=*/false);
}

// (3) A wrong PIN three times blocks it; the card refuses the right one too until the counter
// resets it (after checking the holder's identity document); then the redemption goes through.
TEST_F(WorkflowsPcsc, WrongPinThreeTimesBlocksItAndTheCounterResetsIt) {
  CardInReader reader(0, personalised_card(kCard));
  const auto issued = issue(reader.channel());
  OfflineQueue queue(dir / "site-queue.sqlite");
  CardSession session(reader.channel(), *site_keys);
  SiteWorkflow w(session, site_service(), queue, {kSite, kRegion}, wall_clock);
  for (int tries_left = 2; tries_left >= 0; --tries_left) {
    try {
      w.redeem(w.prepare(), Pin("999999"), 84, 36);
      FAIL() << "a wrong PIN redeemed";
    } catch (const CardRefusal& e) {
      EXPECT_EQ(e.code(), tries_left == 0 ? "PIN_BLOCKED" : "PIN_WRONG");  // the last try blocks it
      EXPECT_EQ(e.tries_left(), tries_left);
    }
  }
  try {
    w.redeem(w.prepare(), Pin(kPin), 84, 36);
    FAIL() << "a blocked PIN redeemed";
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "PIN_BLOCKED");
    EXPECT_EQ(e.sw(), iso7816::StatusWord::AuthenticationMethodBlocked);
  }
  EXPECT_EQ(reader.channel().by_ins[apdu::kInsRedeem], 0u);
  EXPECT_EQ(ledger_state(issued.token), "written");
  EXPECT_EQ(slot_state(card_list(reader.channel()), issued.voucher_id), SlotState::Stored);

  {
    CardSession counter_session(reader.channel(), *counter_keys);
    CounterWorkflow c(counter_session, counter_service(), *trust, wall_clock);
    // Another person's identity document: the service refuses, the card is not touched.
    const std::string first17 = "11010519491231002";
    try {
      c.reset_pin(first17 + crypto::citizen_id_check_character(first17), Pin("246810"));
      FAIL() << "reset for another person";
    } catch (const ServiceRefusal& e) {
      EXPECT_EQ(e.code(), "P13_REGISTRY_MISMATCH");
      EXPECT_EQ(e.http_status(), 422);
    }
    EXPECT_EQ(reader.channel().by_ins[apdu::kInsResetRetryCounter], 0u);
    EXPECT_EQ(c.reset_pin(env().holder, Pin("246810")).card, kCard);
    EXPECT_EQ(reader.channel().by_ins[apdu::kInsResetRetryCounter], 1u);
  }
  try {
    w.redeem(w.prepare(), Pin(kPin), 84, 36);
    FAIL() << "the old PIN still works after the reset";
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "PIN_WRONG");
    EXPECT_EQ(e.tries_left(), 2);
  }
  const auto out = w.redeem(w.prepare(), Pin("246810"), 84, 36);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  EXPECT_EQ(reader.channel().by_ins[apdu::kInsRedeem], 1u);
  EXPECT_EQ(ledger_state(issued.token), "P15_ALREADY_REDEEMED");
  EXPECT_EQ(slot_state(card_list(reader.channel()), issued.voucher_id), SlotState::Redeemed);
}

// (4) A training site trying to issue: the service refuses the site's certificate for
// POST /v1/vouchers, the site holds no counter keys, and the card refuses STORE VOUCHER in a
// site session — nothing new in the ledger or on the card.
TEST_F(WorkflowsPcsc, ASiteTryingToIssueIsRefused) {
  CardInReader reader(0, personalised_card(kCard));
  const auto issued = issue(reader.channel());  // a real voucher, for the card-side attempt

  CardSession session(reader.channel(), *site_keys);
  CounterWorkflow as_site(session, site_service(), *trust, wall_clock);
  IssueInput in;
  in.citizen_id = env().holder;
  in.programme = 3;
  in.occupation = "4-04-05-06";
  in.level = 4;
  in.fund = 1;
  in.planned_hours = 120;
  in.planned_online_hours = 36;
  try {
    as_site.issue(in);
    FAIL() << "a site issued a voucher";
  } catch (const ServiceRefusal& e) {
    EXPECT_EQ(e.code(), "TERMINAL_ROLE_FORBIDDEN");
    EXPECT_EQ(e.http_status(), 403);
  }
  session.select();
  EXPECT_THROW(session.open(CardRole::Counter), std::invalid_argument);
  session.select();
  session.open(CardRole::Site);
  try {
    session.store_voucher(issued.token);
    FAIL() << "the card stored a voucher in a site session";
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "TERMINAL_ROLE_FORBIDDEN");
    EXPECT_EQ(e.sw(), iso7816::StatusWord::SecurityStatusNotSatisfied);
  }
  EXPECT_EQ(reader.channel().by_ins[apdu::kInsStoreVoucher], 2u);  // the counter's and the refused one

  const auto list = card_list(reader.channel());
  std::size_t used = 0;
  for (const auto& slot : list.slots) used += slot.state != SlotState::Empty;
  EXPECT_EQ(used, 1u);
  EXPECT_EQ(slot_state(list, issued.voucher_id), SlotState::Stored);
  // The holder's vouchers at the service: only the counter's (read with the card's proof).
  CardSession kiosk_session(reader.channel(), *kiosk_keys);
  KioskWorkflow kiosk_w(kiosk_session, kiosk_service(), *trust, wall_clock);
  const auto view = kiosk_w.lookup(Pin(kPin), true, false);
  ASSERT_EQ(view.vouchers.size(), 1u);
  EXPECT_EQ(view.vouchers[0].service.voucher_id, issued.voucher_id);
}

// (5) A card reported lost: its unredeemed voucher moves to the replacement (written there at
// the counter); the lost card still holds the old voucher, and its receipt is refused and kept.
TEST_F(WorkflowsPcsc, ALostCardsReceiptIsRefused) {
  const auto lost_image = personalised_card(kCard);
  const auto new_image = personalised_card(kReplacement);
  CardInReader lost(0, lost_image);
  CardInReader replacement(1, new_image);
  const auto original = issue(lost.channel());

  CardSession counter_session(replacement.channel(), *counter_keys);
  CounterWorkflow c(counter_session, counter_service(), *trust, wall_clock);
  const auto moved = c.replace_lost_card(kCard, env().holder);
  EXPECT_EQ(moved.answer.state, "lost");
  ASSERT_EQ(moved.moved.size(), 1u);
  EXPECT_EQ(moved.moved[0].state, WriteState::Written) << moved.moved[0].problem;
  EXPECT_EQ(ledger_state(original.token), "P15_VOUCHER_VOIDED moved");
  EXPECT_EQ(ledger_state(moved.moved[0].token), "written");
  EXPECT_EQ(slot_state(card_list(replacement.channel()), moved.moved[0].voucher_id), SlotState::Stored);
  const auto revoked = site_service().revocations();
  EXPECT_NE(std::find(revoked.cards.begin(), revoked.cards.end(), kCard), revoked.cards.end());

  OfflineQueue queue(dir / "site-queue.sqlite");
  CardSession lost_session(lost.channel(), *site_keys);
  SiteWorkflow at_site(lost_session, site_service(), queue, {kSite, kRegion}, wall_clock);
  try {
    at_site.redeem(at_site.prepare(), Pin(kPin), 84, 36);
    FAIL() << "a lost card's receipt was accepted";
  } catch (const ServiceRefusal& e) {
    EXPECT_EQ(e.code(), "CARD_REVOKED");
    EXPECT_EQ(e.http_status(), 403);
  }
  const auto kept = queue.pending(wall_clock());
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_TRUE(kept[0].refused);
  EXPECT_EQ(kept[0].last_error, "CARD_REVOKED");
  EXPECT_EQ(ledger_state(original.token), "P15_VOUCHER_VOIDED moved");

  CardSession new_session(replacement.channel(), *site_keys);
  SiteWorkflow at_site_new(new_session, site_service(), queue, {kSite, kRegion}, wall_clock);
  const auto out = at_site_new.redeem(at_site_new.prepare(), Pin(kPin), 84, 36);
  EXPECT_EQ(out.status, RedeemStatus::Recorded);
  EXPECT_EQ(out.voucher_id, moved.moved[0].voucher_id);
  EXPECT_EQ(ledger_state(moved.moved[0].token), "P15_ALREADY_REDEEMED");
}

// (6) A kiosk reads the holder's data only with the card's proof made after the PIN: no proof,
// a proof without the PIN and a wrong PIN are all refused; with the PIN it reads.
TEST_F(WorkflowsPcsc, AKioskReadingWithoutTheCardIsRefused) {
  CardInReader reader(0, personalised_card(kCard));
  const auto issued = issue(reader.channel());
  const auto holder = lower_hex(env().master->holder_ref(env().holder));

  BeastHttpTransport kiosk_http(https("K1"));
  const auto no_card = kiosk_http.send({"GET", "/v1/holders/" + holder + "/vouchers", {}, ""});
  EXPECT_EQ(no_card.status, 403) << no_card.body;
  EXPECT_EQ(json::parse(no_card.body).value("error", ""), "CARD_PROOF_REQUIRED");

  CardSession session(reader.channel(), *kiosk_keys);
  session.select();
  const auto grant = kiosk_service().create_nonce();
  const auto auth = session.internal_authenticate(grant.nonce);
  EXPECT_FALSE(auth.pin_verified);
  const CardProof without_pin{kCard, grant.nonce, auth.counter, auth.pin_verified, auth.signature};
  try {
    kiosk_service().holder_vouchers(env().master->holder_ref(env().holder), without_pin);
    FAIL() << "read with a proof made without the PIN";
  } catch (const ServiceRefusal& e) {
    // contract v1: a proof that does not say "PIN verified" is not good enough for a kiosk read.
    EXPECT_EQ(e.code(), "CARD_PROOF_INVALID");
    EXPECT_EQ(e.http_status(), 422);
  }

  KioskWorkflow w(session, kiosk_service(), *trust, wall_clock);
  try {
    w.lookup(Pin("000000"));
    FAIL() << "read with a wrong PIN";
  } catch (const CardRefusal& e) {
    EXPECT_EQ(e.code(), "PIN_WRONG");
  }
  const auto view = w.lookup(Pin(kPin));
  EXPECT_EQ(view.card, kCard);
  ASSERT_EQ(view.vouchers.size(), 1u);
  EXPECT_EQ(view.vouchers[0].service.voucher_id, issued.voucher_id);
  EXPECT_EQ(view.vouchers[0].service.state, "written");
  EXPECT_TRUE(view.vouchers[0].token_verified) << view.vouchers[0].problem;
  EXPECT_EQ(view.vouchers[0].on_card, SlotState::Stored);
}

}  // namespace
}  // namespace skillcard::host
