// The service's write paths through the pure handler on a real SQLite ledger, the policy
// engine and a registry of record: card registration, issue (P1, P13, fail closed), written and
// void, online redemption with the card-signed receipt (every check and its precise code), the
// sync path (P12), lost card and replacement, certificates with the signed portfolio digest
// (P14), holder reads only with card proof, revocations, and bad input on every endpoint.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "service_support.hpp"
#include "skillcard/crypto/backend.hpp"
#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/ledger/sqlite_ledger.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/cst.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/refusals.hpp"
#include "skillcard/service/encoding.hpp"
#include "skillcard/service/expiry_sweeper.hpp"
#include "skillcard/service/handler.hpp"

namespace skillcard::service {
namespace {

using namespace skillcard::service::testing;
using json = nlohmann::json;
namespace fs = std::filesystem;

const std::string kAlice = citizen("42010219900101002");  // registered unemployed, born 1990
const std::string kBob = citizen("42010219850505003");    // another person

json body_of(const Response& r) { return json::parse(r.body); }

std::string terminal_id(Role role) {
  switch (role) {
    case Role::Counter:
      return "C0001";
    case Role::Site:
      return "SITE01";
    case Role::Kiosk:
      return "K0001";
    case Role::Operator:
      return "OP01";
  }
  return "X";
}

// The one standard the flows issue under (P7): key-group training, any occupation, level 4.
constexpr const char* kStandard = "[[standards]]\nprogramme = 3\noccupation = \"*\"\nlevel = 4\namount_fen = 150000\n";

void expect_refusal(const Response& r, std::string_view code) {
  EXPECT_EQ(r.status, schemas::refusal(code).http_status) << r.body;
  EXPECT_EQ(body_of(r).value("error", ""), code) << r.body;
}

class FlowTest : public ::testing::Test {
 protected:
  FlowTest() {
    dir = fs::temp_directory_path() / ("skillcard-flows-" + std::to_string(::getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    ledger = ledger::SqliteLedger::open(dir / "ledger.db");
    trust = keys.trust_store();
    config = policy::PolicyConfig::from_toml(std::string("[defaults]\nannual_limit = 3\n") + kStandard, "flows.toml");
    people = std::make_unique<registry::MemoryRegistry>(std::vector{registered_person(kAlice), registered_person(kBob)},
                                                        std::vector<registry::ExternalSubsidy>{}, holder_of);
    make_handler(true);
    alice.number = "4201000001";
    replacement.number = "4201000002";
    bob_card.number = "4201000003";
    // The fund the tests issue from has money (P16), set by an operator.
    EXPECT_EQ(call(Role::Operator, "POST", "/v1/budgets", json{{"fund", 1}, {"allocated_fen", 10'000'000}}).status,
              200);
  }
  ~FlowTest() override {
    handler.reset();
    ledger.reset();
    fs::remove_all(dir);
  }

  void make_handler(bool with_policy) {
    auto ctx = base_context(*ledger, *trust, [this] { return now; });
    if (with_policy) {
      ctx.policy = &config;
      ctx.registry = registry_override ? registry_override : people.get();
    }
    ctx.holder_ref = holder_of;
    ctx.voucher_signers[kBureau] = std::make_shared<crypto::KeyFileSigner>(
        crypto::OpenSsl::PrivateKey::from_scalar(ByteView(keys.voucher.scalar().data(), 32)));
    ctx.portfolio_signer = std::make_shared<crypto::KeyFileSigner>(
        crypto::OpenSsl::PrivateKey::from_scalar(ByteView(keys.portfolio.scalar().data(), 32)));
    handler = std::make_unique<Handler>(ctx);
  }

  Response call(Role role, std::string method, std::string target, const json& body = nullptr,
                std::map<std::string, std::string, std::less<>> headers = {{"skillcard-clerk", "C042"}},
                std::uint32_t site = kSite) {
    Terminal t{terminal_id(role), role, region, std::nullopt};
    if (role == Role::Site) t.site = site;
    return handler->handle(Request{std::move(method), std::move(target), std::move(headers),
                                   body.is_null() ? std::string() : body.dump(), t});
  }

  std::string nonce(Role role) {
    const auto r = call(role, "POST", "/v1/nonces");
    EXPECT_EQ(r.status, 201) << r.body;
    return body_of(r).at("nonce").get<std::string>();
  }

  Response register_card(TestCard& card, const std::string& id) {
    return call(Role::Counter, "POST", "/v1/cards",
                json{{"certificate", base64url_encode(card.certificate(keys))}, {"citizen_id", id}});
  }

  json issue_body(TestCard& card, const std::string& id, std::string occupation = "4-04-05-05") {
    return json{{"card", card.number},
                {"citizen_id", id},
                {"programme", 3},
                {"occupation", std::move(occupation)},
                {"level", 4},
                {"fund", 1},
                {"planned_hours", 120},
                {"planned_online_hours", 36},
                {"eligible_providers", {kSite}},
                {"card_proof", json::parse(card.proof(nonce(Role::Counter), false))}};
  }

  Response issue(TestCard& card, const std::string& id, std::string occupation = "4-04-05-05") {
    return call(Role::Counter, "POST", "/v1/vouchers", issue_body(card, id, std::move(occupation)));
  }

  std::string issued_id(TestCard& card, const std::string& id, std::string occupation = "4-04-05-05") {
    const auto r = issue(card, id, std::move(occupation));
    EXPECT_EQ(r.status, 201) << r.body;
    return body_of(r).value("voucher_id", "");
  }

  Response redeem(const std::string& voucher, const Bytes& receipt, std::uint32_t site = kSite) {
    return call(Role::Site, "POST", "/v1/redemptions",
                json{{"voucher_id", voucher}, {"receipt", base64url_encode(receipt)}}, {{"skillcard-clerk", "S007"}},
                site);
  }

  schemas::Nonce site_nonce() { return nonce_from_hex(nonce(Role::Site)); }

  // A nonce an offline terminal made (type 0x02), told apart by `n`.
  static schemas::Nonce offline_nonce(std::uint8_t n) {
    schemas::Nonce offline{};
    offline[0] = static_cast<std::uint8_t>(schemas::NonceKind::Terminal);
    offline[3] = n;
    return offline;
  }

  std::map<std::string, std::string, std::less<>> proof_header(TestCard& card, bool pin, Role role = Role::Kiosk) {
    const auto text = card.proof(nonce(role), pin);
    return {{"skillcard-card-proof", base64url_encode(Bytes(text.begin(), text.end()))}};
  }

  fs::path dir;
  KeySet keys;
  std::unique_ptr<ledger::SqliteLedger> ledger;
  std::unique_ptr<TrustStore> trust;
  policy::PolicyConfig config;
  std::unique_ptr<registry::MemoryRegistry> people;
  const registry::Registry* registry_override = nullptr;  // instead of `people`
  std::unique_ptr<Handler> handler;
  std::uint64_t now = kNow;
  std::uint32_t region = kBureau;  // every terminal's region in call()
  TestCard alice, replacement, bob_card;
};

TEST_F(FlowTest, RegisterCardIsIdempotentAndChecksTheCardCa) {
  const auto first = register_card(alice, kAlice);
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(body_of(first).at("holder"), ledger::lower_hex(holder_of(kAlice)));
  EXPECT_EQ(register_card(alice, kAlice).status, 200);
  // The same number with another certificate is not this card.
  TestCard impostor;
  impostor.number = alice.number;
  EXPECT_EQ(register_card(impostor, kAlice).status, 400);
  // A certificate signed by a key that is not the card CA.
  schemas::CardCertificateClaims c = schemas::decode_card_certificate(bob_card.certificate(keys)).claims;
  const auto forged =
      schemas::sign_card_certificate(c, kid(keys.card_ca), [&](ByteView tbs) { return keys.unlisted.sign(tbs); });
  expect_refusal(
      call(Role::Counter, "POST", "/v1/cards", json{{"certificate", base64url_encode(forged)}, {"citizen_id", kBob}}),
      "TOKEN_BAD_SIGNATURE");
  expect_refusal(
      call(Role::Counter, "POST", "/v1/cards",
           json{{"certificate", base64url_encode(bob_card.certificate(keys))}, {"citizen_id", "420102199001010021"}}),
      "CITIZEN_ID_INVALID");
  // A certificate outside its validity: said in words, no placeholder left unfilled.
  c.not_before -= 20 * 86400;
  c.not_after = c.not_before + 86400;
  const auto expired =
      schemas::sign_card_certificate(c, kid(keys.card_ca), [&](ByteView tbs) { return keys.card_ca.sign(tbs); });
  const auto late =
      call(Role::Counter, "POST", "/v1/cards", json{{"certificate", base64url_encode(expired)}, {"citizen_id", kBob}});
  expect_refusal(late, "TOKEN_MALFORMED");
  EXPECT_EQ(late.body.find("{detail}"), std::string::npos) << late.body;
  EXPECT_NE(late.body.find("card certificate expired"), std::string::npos) << late.body;
  const auto info = call(Role::Operator, "GET", "/v1/cards/" + alice.number);
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(body_of(info).at("state"), "active");
  expect_refusal(call(Role::Operator, "GET", "/v1/cards/4209999999"), "CARD_UNKNOWN");
}

TEST_F(FlowTest, IssueWriteRedeemOnceAndTheSameReceiptAgainIsTheSameRecord) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const auto issued = issue(alice, kAlice);
  ASSERT_EQ(issued.status, 201) << issued.body;
  const auto body = body_of(issued);
  const auto id = body.at("voucher_id").get<std::string>();
  EXPECT_EQ(body.at("voucher").at("face_value_fen"), 180000);  // P7 150 000 + P5 20% for a key group
  EXPECT_EQ(body.at("voucher").at("holder"), ledger::lower_hex(holder_of(kAlice)));
  // The token is ours, on the trust list, and in the ledger.
  const auto verified = call(Role::Site, "POST", "/v1/vouchers/verify", json{{"token", body.at("token")}});
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_EQ(body_of(verified).at("state"), "issued");
  const auto written = call(Role::Counter, "POST", "/v1/vouchers/" + id + "/written");
  ASSERT_EQ(written.status, 200) << written.body;
  EXPECT_EQ(body_of(written).at("state"), "written");
  EXPECT_EQ(call(Role::Counter, "POST", "/v1/vouchers/" + id + "/written").status, 200);  // idempotent

  now += 86400;
  const auto receipt = alice.receipt(id, site_nonce(), now);
  const auto first = redeem(id, receipt);
  ASSERT_EQ(first.status, 201) << first.body;
  const auto record = body_of(first).at("redemption");
  EXPECT_EQ(record.at("voucher_id"), id);
  EXPECT_EQ(record.at("card"), alice.number);
  EXPECT_EQ(record.at("face_value_fen"), 180000);
  EXPECT_EQ(record.at("receipt_id").get<std::string>().size(), 16u);
  const auto again = redeem(id, receipt);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(body_of(again).at("redemption"), record);
  // Another receipt for the redeemed voucher (a second REDEEM) is refused.
  expect_refusal(redeem(id, alice.receipt(id, site_nonce(), now)), "P15_ALREADY_REDEEMED");
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers/" + id + "/void", json{{"reason", "x"}}),
                 "P15_ALREADY_REDEEMED");
  // Reversed by an operator: the same receipt again (a site's retry) says so — it stands in the
  // ledger but will not be settled.
  ASSERT_EQ(ledger->reverse_redemption(voucher_id_from_hex(id), "course not delivered", {"OPS1", "op"}, now).status,
            ledger::ReversalStatus::Reversed);
  const auto after = redeem(id, receipt);
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(body_of(after).at("redemption").at("reversal_reason"), "course not delivered");
  EXPECT_EQ(body_of(after).at("redemption").at("reversed_at"), now);
}

TEST_F(FlowTest, P1_FourthSubsidyInTheYearIsRefusedWithEveryViolatedRule) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  for (const auto* occ : {"4-04-05-01", "4-04-05-02", "4-04-05-03"})
    ASSERT_FALSE(issued_id(alice, kAlice, occ).empty());
  const auto fourth = issue(alice, kAlice, "4-04-05-03");  // also the same occupation and level again (P3)
  expect_refusal(fourth, "P1_ANNUAL_LIMIT");
  const auto body = body_of(fourth);
  EXPECT_EQ(body.at("rules"), json({"P1", "P3"}));
  ASSERT_EQ(body.at("violations").size(), 2u);
  EXPECT_EQ(body.at("violations")[1].at("error"), "P3_SAME_OCCUPATION_LEVEL");
  EXPECT_NE(body.at("message").at("zh-CN").get<std::string>().find("3次"), std::string::npos);
}

// P1/P3/P16: a voucher that expired unredeemed stops counting — once the service's expiry sweep
// has passed it, the P12 sync window after its expiry (a receipt made offline before expiry may
// still arrive until then). Before the window ends it still counts.
TEST_F(FlowTest, P1_VouchersThatExpiredUnredeemedNoLongerCountOnceTheSweepPassed) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  for (const auto* occ : {"4-04-05-01", "4-04-05-02", "4-04-05-03"})
    ASSERT_FALSE(issued_id(alice, kAlice, occ).empty());
  const auto committed = [&] { return ledger->budget(ledger::FundSource::SpecialAccount)->committed_fen; };
  EXPECT_GE(committed(), 3 * 150000);  // with any P5 uplift
  ExpirySweeper sweeper(*ledger, ExpirySweeper::grace_of(&config), std::chrono::hours(1), [this] { return now; }, {});
  const auto expiry = ledger->holder_vouchers(holder_of(kAlice)).front().claims.expires_at;
  now = static_cast<std::uint64_t>(expiry) + 71 * 3600;  // expired, but a receipt may still arrive
  EXPECT_EQ(sweeper.sweep(), 0u);
  expect_refusal(issue(alice, kAlice, "4-04-05-04"), "P1_ANNUAL_LIMIT");
  now = static_cast<std::uint64_t>(expiry) + 73 * 3600;  // the P12 window has closed
  EXPECT_EQ(sweeper.sweep(), 3u);
  EXPECT_EQ(committed(), 0);
  EXPECT_FALSE(issued_id(alice, kAlice, "4-04-05-04").empty());
  EXPECT_FALSE(issued_id(alice, kAlice, "4-04-05-01").empty()) << "P3: the expired one no longer counts";
}

// People type the check character X of a citizen ID in either case; the registry holds one
// spelling. An ID typed "…x" at the counter is the same person as "…X" in the registry.
TEST_F(FlowTest, P13_ACitizenIdTypedWithALowerCaseXIsTheRegistrysPerson) {
  std::string upper;
  for (int n = 100; n < 1000 && upper.empty(); ++n) {  // one in eleven IDs ends in X
    const auto first17 = "42010219920101" + std::to_string(n);
    if (crypto::citizen_id_check_character(first17) == 'X') upper = citizen(first17);
  }
  ASSERT_EQ(upper.size(), 18u);
  const auto lower = upper.substr(0, 17) + 'x';
  people = std::make_unique<registry::MemoryRegistry>(std::vector{registered_person(upper)},
                                                      std::vector<registry::ExternalSubsidy>{}, holder_of);
  make_handler(true);
  ASSERT_EQ(register_card(replacement, lower).status, 201);
  const auto issued = issue(replacement, lower);
  EXPECT_EQ(issued.status, 201) << issued.body;
  // The card was registered to the holder of the one spelling.
  EXPECT_EQ(issue(replacement, upper, "4-04-05-01").status, 201);
}

// A registry whose store cannot answer (its database file gone, a disk error).
class BrokenRegistry final : public registry::Registry {
 public:
  policy::RegistryFacts facts(std::string_view) const override { throw registry::RegistryStorageError("disk I/O"); }
  policy::RegistryFacts facts_by_holder(const crypto::HolderRef&) const override {
    throw registry::RegistryStorageError("disk I/O");
  }
  std::vector<policy::SubsidyRecord> external_subsidies(const crypto::HolderRef&) const override {
    throw registry::RegistryStorageError("disk I/O");
  }
};

TEST_F(FlowTest, ARegistryThatCannotAnswerIsA503AndNothingIsIssued) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const BrokenRegistry broken;
  registry_override = &broken;
  make_handler(true);
  const auto r = issue(alice, kAlice);
  expect_refusal(r, "SERVICE_UNAVAILABLE");
  EXPECT_NE(r.body.find("registry"), std::string::npos) << r.body;
  registry_override = nullptr;
  make_handler(true);
  // Nothing was counted against P1 or the budget: three issues still go through.
  for (const auto* occ : {"4-04-05-01", "4-04-05-02", "4-04-05-03"})
    EXPECT_FALSE(issued_id(alice, kAlice, occ).empty());
}

TEST_F(FlowTest, IssueFailsClosedWithoutPolicyOrRegistry) {
  make_handler(false);
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  expect_refusal(issue(alice, kAlice), "POLICY_NOT_CONFIGURED");
}

TEST_F(FlowTest, IssueRefusals) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  ASSERT_EQ(register_card(bob_card, kBob).status, 201);
  // P13: the card is not the person's at the counter.
  expect_refusal(issue(bob_card, kAlice), "P13_REGISTRY_MISMATCH");
  // Without the card no citizen ID is compared: a proof that does not verify is refused as such,
  // whether the citizen ID is the card's holder's or not (no oracle for who owns which card).
  for (const std::string& citizen : {kAlice, kBob}) {
    auto forged = issue_body(alice, citizen);
    forged["card_proof"]["counter"] = forged["card_proof"]["counter"].get<std::uint32_t>() + 1;
    expect_refusal(call(Role::Counter, "POST", "/v1/vouchers", forged), "CARD_PROOF_INVALID");
  }
  // A refused mismatch leaves the proof's nonce live: the clerk corrects the ID, no second tap.
  const auto mistyped = issue_body(alice, kBob, "4-04-05-06");
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers", mistyped), "P13_REGISTRY_MISMATCH");
  auto corrected = mistyped;
  corrected["citizen_id"] = kAlice;
  ASSERT_EQ(call(Role::Counter, "POST", "/v1/vouchers", corrected).status, 201);
  // The card's signature does not verify (signed by another card's key).
  auto body = issue_body(alice, kAlice);
  auto stolen = json::parse(bob_card.proof(body["card_proof"]["nonce"], false));
  body["card_proof"]["signature"] = stolen["signature"];
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers", body), "CARD_PROOF_INVALID");
  // A proof's nonce is used once.
  body = issue_body(alice, kAlice);
  ASSERT_EQ(call(Role::Counter, "POST", "/v1/vouchers", body).status, 201);
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers", body), "CARD_PROOF_INVALID");
  // A nonce issued to another terminal.
  body = issue_body(alice, kAlice);
  body["card_proof"] = json::parse(alice.proof(nonce(Role::Site), false));
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers", body), "CARD_PROOF_INVALID");
  // An expired nonce.
  body = issue_body(alice, kAlice);
  now += kNonceLifetime + 1;
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers", body), "CARD_PROOF_INVALID");
  // Roles: a site never issues, a kiosk never writes.
  expect_refusal(call(Role::Site, "POST", "/v1/vouchers", issue_body(alice, kAlice)), "TERMINAL_ROLE_FORBIDDEN");
  expect_refusal(call(Role::Kiosk, "POST", "/v1/certificates", json::object()), "TERMINAL_ROLE_FORBIDDEN");
  // P16: a fund without budget.
  body = issue_body(alice, kAlice, "4-04-05-09");
  body["fund"] = 2;
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers", body), "P16_BUDGET_EXHAUSTED");
}

// A region code that no voucher may carry is the request's 400, never a 500, and it is refused
// before the card proof's nonce is spent: the corrected request with the same proof is served.
TEST_F(FlowTest, IssueRefusesARegionCodeOutsideGbt2260BeforeSpendingTheNonce) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  auto body = issue_body(alice, kAlice);
  for (const auto& bad : {json::array({1}), json::array({4200000}), json::array({99999}), json::array({420100, 0})}) {
    body["eligible_regions"] = bad;
    const auto r = call(Role::Counter, "POST", "/v1/vouchers", body);
    expect_refusal(r, "BAD_REQUEST_FIELD");
    EXPECT_EQ(body_of(r).at("field"), "eligible_regions") << bad.dump();
  }
  body["eligible_regions"] = {420100};
  body["eligible_providers"] = {0};
  EXPECT_EQ(body_of(call(Role::Counter, "POST", "/v1/vouchers", body)).at("field"), "eligible_providers");
  body.erase("eligible_providers");
  const auto served = call(Role::Counter, "POST", "/v1/vouchers", body);
  ASSERT_EQ(served.status, 201) << served.body;
  EXPECT_EQ(body_of(served).at("voucher").at("eligible_regions"), json::array({420100}));
}

// A county's counter issues under its city's signer (voucher `issuer` 420100): the county's own
// settings, which allowed the plan at issue, are the ones its delivered hours are checked against.
TEST_F(FlowTest, P8_ACountysOwnSettingsApplyAtIssueAndAgainAtRedemption) {
  config = policy::PolicyConfig::from_toml(std::string("[regions.420102]\nonline_max_percent = 50\n") + kStandard,
                                           "county.toml");
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  region = 420102;
  auto body = issue_body(alice, kAlice);
  body["planned_hours"] = 100;
  body["planned_online_hours"] = 50;
  const auto issued = call(Role::Counter, "POST", "/v1/vouchers", body);
  ASSERT_EQ(issued.status, 201) << issued.body;
  EXPECT_EQ(body_of(issued).at("voucher").at("issuer"), kBureau);
  const auto id = body_of(issued).at("voucher_id").get<std::string>();
  ASSERT_EQ(call(Role::Counter, "POST", "/v1/vouchers/" + id + "/written").status, 200);
  region = kBureau;  // the site is in the city
  now += 86400;
  const auto redeemed = redeem(id, alice.receipt(id, site_nonce(), now, kSite, 50, 50));
  EXPECT_EQ(redeemed.status, 201) << redeemed.body;  // the city's default 30% would refuse it
}

TEST_F(FlowTest, VoidGivesTheBudgetBackAndVerifyThenSaysVoided) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const auto issued = body_of(issue(alice, kAlice));
  const auto id = issued.at("voucher_id").get<std::string>();
  const auto budget_before =
      body_of(call(Role::Operator, "POST", "/v1/budgets", json{{"fund", 1}, {"allocated_fen", 10'000'000}}));
  EXPECT_EQ(budget_before.at("committed_fen"), 180000);
  const auto voided =
      call(Role::Counter, "POST", "/v1/vouchers/" + id + "/void", json{{"reason", "STORE VOUCHER failed"}});
  ASSERT_EQ(voided.status, 200) << voided.body;
  EXPECT_EQ(body_of(voided).at("state"), "voided");
  const auto budget_after =
      body_of(call(Role::Operator, "POST", "/v1/budgets", json{{"fund", 1}, {"allocated_fen", 10'000'000}}));
  EXPECT_EQ(budget_after.at("committed_fen"), 0);
  expect_refusal(call(Role::Site, "POST", "/v1/vouchers/verify", json{{"token", issued.at("token")}}),
                 "P15_VOUCHER_VOIDED");
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers/" + id + "/written"), "P15_VOUCHER_VOIDED");
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers/00000000000000ff/written"), "VOUCHER_UNKNOWN");
  const auto revoked = body_of(call(Role::Site, "GET", "/v1/revocations"));
  EXPECT_EQ(revoked.at("vouchers"), json({id}));
}

TEST_F(FlowTest, ReceiptChecksEachWithItsCode) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  ASSERT_EQ(register_card(bob_card, kBob).status, 201);
  const auto v1 = issued_id(alice, kAlice, "4-04-05-01");
  const auto v2 = issued_id(alice, kAlice, "4-04-05-02");
  now += 3600;
  // P12: no receipt of the card at all (the holder left before the card answered).
  const auto none = redeem(v1, Bytes{});
  expect_refusal(none, "P12_NO_CARD_PROOF");
  EXPECT_EQ(body_of(none).at("field"), "receipt");
  EXPECT_EQ(body_of(none).at("rules"), json({"P11", "P12"}));
  // For another voucher than the one submitted.
  expect_refusal(redeem(v2, alice.receipt(v1, site_nonce(), now)), "RECEIPT_WRONG_VOUCHER");
  // Naming another site.
  expect_refusal(redeem(v1, alice.receipt(v1, site_nonce(), now, 10002)), "RECEIPT_WRONG_SITE");
  // Signed by a key that is not the card's RECEIPT key (another card's).
  expect_refusal(redeem(v1, bob_card.receipt(v1, site_nonce(), now)), "RECEIPT_BAD_SIGNATURE");
  // Signed by the card's own AUTH key (threat model T15: the two keys are not interchangeable),
  // under the AUTH key's kid and under the RECEIPT key's.
  std::swap(alice.receipt_key, alice.auth_key);
  const auto by_auth = alice.receipt(v1, site_nonce(), now);
  std::swap(alice.receipt_key, alice.auth_key);
  const auto by_auth_refused = redeem(v1, by_auth);
  expect_refusal(by_auth_refused, "RECEIPT_BAD_SIGNATURE");
  EXPECT_EQ(body_of(by_auth_refused).value("check", ""), "kid") << by_auth_refused.body;
  {
    schemas::ReceiptClaims c = schemas::decode_receipt(by_auth).claims;
    c.nonce = site_nonce();
    const auto receipt_kid = crypto::kid_of<crypto::OpenSsl>(alice.receipt_key.public_key());
    const auto forged = schemas::sign_receipt(c, receipt_kid, [&](ByteView tbs) { return alice.auth_key.sign(tbs); });
    const auto refused = redeem(v1, forged);
    expect_refusal(refused, "RECEIPT_BAD_SIGNATURE");
    EXPECT_EQ(body_of(refused).value("check", ""), "signature") << refused.body;
  }
  // A nonce never issued.
  auto unknown = site_nonce();
  unknown[5] ^= 0xFF;
  expect_refusal(redeem(v1, alice.receipt(v1, unknown, now)), "NONCE_UNKNOWN");
  // An expired nonce.
  const auto old = site_nonce();
  now += kNonceLifetime + 1;
  expect_refusal(redeem(v1, alice.receipt(v1, old, now)), "NONCE_EXPIRED");
  // A corrupted receipt.
  auto receipt = alice.receipt(v1, site_nonce(), now);
  receipt.back() ^= 0x01;
  expect_refusal(redeem(v1, receipt), "RECEIPT_BAD_SIGNATURE");
  receipt = alice.receipt(v1, site_nonce(), now);
  receipt[0] = 0x00;
  expect_refusal(redeem(v1, receipt), "TOKEN_MALFORMED");
  // P8: more online hours than the plan allows.
  expect_refusal(redeem(v1, alice.receipt(v1, site_nonce(), now, kSite, 10, 100)), "P8_HOURS_OVER_PLAN");
  // Success, then the same nonce for the other voucher, then a reused card counter.
  const auto n = site_nonce();
  ASSERT_EQ(redeem(v1, alice.receipt(v1, n, now)).status, 201);
  expect_refusal(redeem(v2, alice.receipt(v2, n, now)), "NONCE_REUSED");
  alice.redemption_counter -= 2;  // the counter of the recorded receipt again
  expect_refusal(redeem(v2, alice.receipt(v2, site_nonce(), now)), "COUNTER_REUSED");
}

TEST_F(FlowTest, P12_SyncAcceptsOfflineReceiptsInsideTheWindowOnly) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const auto v1 = issued_id(alice, kAlice, "4-04-05-01");
  const auto v2 = issued_id(alice, kAlice, "4-04-05-02");
  const auto made = now + 3600;
  const auto r1 = alice.receipt(v1, offline_nonce(7), made);
  const auto r2 = alice.receipt(v2, offline_nonce(8), made + 60);
  now = made + 71 * 3600;  // within 72 h for r1 and r2
  const auto sync = call(Role::Site, "POST", "/v1/redemptions/sync",
                         json{{"receipts",
                               {{{"voucher_id", v1}, {"receipt", base64url_encode(r1)}},
                                {{"voucher_id", v2}, {"receipt", base64url_encode(r1)}},
                                {{"voucher_id", "zz"}, {"receipt", base64url_encode(r2)}}}}},
                         {{"skillcard-clerk", "S007"}});
  ASSERT_EQ(sync.status, 200) << sync.body;
  const auto results = body_of(sync).at("results");
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].at("status"), 201);
  EXPECT_EQ(results[1].at("error"), "RECEIPT_WRONG_VOUCHER");
  EXPECT_EQ(results[2].at("error"), "BAD_REQUEST_FIELD");
  EXPECT_EQ(results[2].at("field"), "receipts[2].voucher_id");
  // The same batch again: the first is the same record (200), nothing doubles.
  now = made + 60 + 72 * 3600 + 1;  // r2 is now older than 72 h
  const auto late = call(Role::Site, "POST", "/v1/redemptions/sync",
                         json{{"receipts",
                               {{{"voucher_id", v1}, {"receipt", base64url_encode(r1)}},
                                {{"voucher_id", v2}, {"receipt", base64url_encode(r2)}}}}},
                         {{"skillcard-clerk", "S007"}});
  const auto later = body_of(late).at("results");
  EXPECT_EQ(later[0].at("status"), 200);
  EXPECT_EQ(later[1].at("error"), "P12_SYNC_WINDOW");
  EXPECT_EQ(later[1].at("rules"), json({"P12"}));
}

// P12: a card's counter orders its receipts. Synced out of order, a lower counter whose time is
// hours after a higher one's already recorded is refused — it was dated back, or forward.
TEST_F(FlowTest, P12_ALowerCounterSyncedAfterAHigherOneMustNotBeLater) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const auto v1 = issued_id(alice, kAlice, "4-04-05-01");
  const auto v2 = issued_id(alice, kAlice, "4-04-05-02");
  const auto made = now + 3600;
  const auto lower = alice.receipt(v1, offline_nonce(7), made + 2 * 3600);  // counter 1, two hours later
  const auto higher = alice.receipt(v2, offline_nonce(8), made);            // counter 2
  now = made + 3 * 3600;
  const auto sync = [&](const std::string& v, const Bytes& r) {
    return body_of(call(Role::Site, "POST", "/v1/redemptions/sync",
                        json{{"receipts", {{{"voucher_id", v}, {"receipt", base64url_encode(r)}}}}},
                        {{"skillcard-clerk", "S007"}}))
        .at("results")[0];
  };
  EXPECT_EQ(sync(v2, higher).at("status"), 201);
  EXPECT_EQ(sync(v1, lower).at("error"), "RECEIPT_OUT_OF_ORDER");
}

// A receipt left behind — made online with SITE01's nonce, but the holder left before SITE01
// sent it — is uploaded later by another terminal of the same site; a terminal of another site
// cannot.
TEST_F(FlowTest, P12_AReceiptLeftBehindIsUploadedByAnyTerminalOfThatSite) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const auto id = issued_id(alice, kAlice);
  now += 3600;
  const auto receipt = alice.receipt(id, site_nonce(), now);
  now += 2 * 3600;
  auto sync_from = [&](std::string terminal, std::uint32_t site) {
    return handler->handle(
        Request{"POST",
                "/v1/redemptions/sync",
                {{"skillcard-clerk", "S011"}},
                json{{"receipts", {{{"voucher_id", id}, {"receipt", base64url_encode(receipt)}}}}}.dump(),
                Terminal{std::move(terminal), Role::Site, kBureau, site}});
  };
  const auto elsewhere = sync_from("SITE77", kSite + 1);
  ASSERT_EQ(elsewhere.status, 200) << elsewhere.body;
  EXPECT_EQ(body_of(elsewhere).at("results")[0].at("error"), "RECEIPT_WRONG_SITE");
  const auto here = sync_from("SITE02", kSite);
  ASSERT_EQ(here.status, 200) << here.body;
  const auto result = body_of(here).at("results")[0];
  EXPECT_EQ(result.at("status"), 201) << result;
  EXPECT_EQ(result.at("redemption").at("voucher_id"), id);
  // SITE01 sending it at last gets the same record, not a second redemption.
  const auto late = redeem(id, receipt);
  EXPECT_EQ(late.status, 200) << late.body;
  EXPECT_EQ(body_of(late).at("redemption"), result.at("redemption"));
}

TEST_F(FlowTest, LostCardMovesItsVouchersAndItsReceiptsAreRefused) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  ASSERT_EQ(register_card(replacement, kAlice).status, 201);
  const auto v1 = issued_id(alice, kAlice, "4-04-05-01");
  const auto v2 = issued_id(alice, kAlice, "4-04-05-02");
  const auto n = site_nonce();
  ASSERT_EQ(redeem(v1, alice.receipt(v1, n, now)).status, 201);
  // Only the holder (by citizen ID) reports the card lost.
  expect_refusal(call(Role::Counter, "POST", "/v1/cards/" + alice.number + "/lost", json{{"citizen_id", kBob}}),
                 "P13_REGISTRY_MISMATCH");
  const auto lost = call(Role::Counter, "POST", "/v1/cards/" + alice.number + "/lost",
                         json{{"citizen_id", kAlice}, {"replacement", replacement.number}});
  ASSERT_EQ(lost.status, 200) << lost.body;
  const auto moved = body_of(lost).at("moved");
  ASSERT_EQ(moved.size(), 1u);  // the redeemed one stays
  EXPECT_EQ(moved[0].at("from"), v2);
  const auto v2_new = moved[0].at("voucher_id").get<std::string>();
  EXPECT_NE(v2_new, v2);
  // The same report again (the counter lost the answer) gives the moved tokens again.
  const auto repeat = call(Role::Counter, "POST", "/v1/cards/" + alice.number + "/lost",
                           json{{"citizen_id", kAlice}, {"replacement", replacement.number}});
  ASSERT_EQ(repeat.status, 200) << repeat.body;
  EXPECT_EQ(body_of(repeat).at("moved"), moved);
  // The lost card's receipts are refused, the old id is no longer a voucher, the new token verifies.
  expect_refusal(redeem(v2, alice.receipt(v2, site_nonce(), now)), "CARD_REVOKED");
  expect_refusal(call(Role::Counter, "POST", "/v1/vouchers/" + v2 + "/written"), "P15_VOUCHER_VOIDED");
  ASSERT_EQ(call(Role::Site, "POST", "/v1/vouchers/verify", json{{"token", moved[0].at("token")}}).status, 200);
  const auto on_new = call(Role::Site, "POST", "/v1/redemptions",
                           json{{"voucher_id", v2_new},
                                {"receipt", base64url_encode(replacement.receipt(v2_new, site_nonce(), now))},
                                {"card", replacement.number}},
                           {{"skillcard-clerk", "S007"}});
  EXPECT_EQ(on_new.status, 201) << on_new.body;
  // Moved, not new: the holder still has room for a third subsidy this year (P1).
  EXPECT_FALSE(issued_id(replacement, kAlice, "4-04-05-03").empty());
  const auto revoked = body_of(call(Role::Site, "GET", "/v1/revocations"));
  EXPECT_EQ(revoked.at("cards"), json({alice.number}));
  // A lost card cannot prove anything any more.
  expect_refusal(issue(alice, kAlice, "4-04-05-04"), "CARD_REVOKED");
}

// Before a PIN reset the counter checks the identity document's citizen ID against the card
// (P13: the registry of record says whose card it is), with the card's proof that it is there.
TEST_F(FlowTest, P13_HolderCheckBeforeAPinResetNamesTheCardsHolderOnly) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const auto check_with = [&](const std::string& number, const std::string& citizen, const json& proof) {
    return call(Role::Counter, "POST", "/v1/cards/" + number + "/holder-check",
                json{{"citizen_id", citizen}, {"card_proof", proof}});
  };
  const auto proof_of = [&](TestCard& card) { return json::parse(card.proof(nonce(Role::Counter), false)); };
  const auto check = [&](TestCard& card, const std::string& citizen) {
    return check_with(card.number, citizen, proof_of(card));
  };
  const auto ok = check(alice, kAlice);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(body_of(ok).at("card"), alice.number);
  EXPECT_EQ(body_of(ok).at("state"), "active");
  expect_refusal(check(alice, kBob), "P13_REGISTRY_MISMATCH");
  expect_refusal(check(replacement, kAlice), "CARD_UNKNOWN");
  EXPECT_EQ(body_of(check(alice, "420100199003070011")).at("error"), "CITIZEN_ID_INVALID");
  EXPECT_EQ(body_of(check_with("42010", kAlice, proof_of(alice))).at("field"), "number");
  // Without the card no citizen ID is compared: a proof of another card, a used nonce, a
  // signature that is not the card's.
  EXPECT_EQ(body_of(check_with(alice.number, kBob, proof_of(bob_card))).at("field"), "card_proof.card");
  const auto used = proof_of(alice);
  ASSERT_EQ(check_with(alice.number, kAlice, used).status, 200);
  expect_refusal(check_with(alice.number, kBob, used), "CARD_PROOF_INVALID");
  auto forged = proof_of(alice);
  forged["counter"] = forged["counter"].get<std::uint32_t>() + 1;
  expect_refusal(check_with(alice.number, kBob, forged), "CARD_PROOF_INVALID");
  const auto no_clerk = call(Role::Counter, "POST", "/v1/cards/" + alice.number + "/holder-check",
                             json{{"citizen_id", kAlice}, {"card_proof", proof_of(alice)}}, {});
  EXPECT_EQ(no_clerk.status, 400) << no_clerk.body;
  ASSERT_EQ(call(Role::Counter, "POST", "/v1/cards/" + alice.number + "/lost", json{{"citizen_id", kAlice}}).status,
            200);
  expect_refusal(check(alice, kAlice), "CARD_REVOKED");
}

TEST_F(FlowTest, P14_CertificatesAreRecordedOnceAndTheDigestCoversThem) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const json cert{{"card", alice.number},         {"citizen_id", kAlice}, {"kind", 3},
                  {"occupation", "4-04-05-05"},   {"level", 3},           {"issuer", "湖北省职业技能鉴定指导中心"},
                  {"number", "S420100202600001"}, {"date", "2026-06-30"}};
  const auto recorded = call(Role::Counter, "POST", "/v1/certificates", cert);
  ASSERT_EQ(recorded.status, 201) << recorded.body;
  const auto body = body_of(recorded);
  const auto record = *base64url_decode(body.at("record").get<std::string>());
  EXPECT_EQ(schemas::decode_certificate_record(record).number, "S420100202600001");
  EXPECT_EQ(body.at("salt").get<std::string>().size(), 32u);
  const auto digest = schemas::decode_portfolio_digest(*base64url_decode(body.at("digest").get<std::string>()));
  EXPECT_TRUE(digest.envelope
                  .verify([&](ByteView tbs, const crypto::EcSignature& sig) {
                    return crypto::OpenSsl::verify(keys.portfolio.public_key(), tbs, sig);
                  })
                  .ok());
  EXPECT_EQ(digest.claims.holder, holder_of(kAlice));
  ASSERT_EQ(digest.claims.digests.size(), 1u);
  EXPECT_EQ(digest.claims.digests[0], crypto::OpenSsl::sha256(record));
  EXPECT_EQ(body.at("digest_version"), digest.claims.digest_version);
  // A control character in the typed text is refused by field: "S…001" and "S…001\0x" would be
  // two records on SQLite and one, cut short, on PostgreSQL; a line break forges export lines.
  for (const auto& [field, value] : {std::pair{"number", std::string("S420100202600001\0x", 18)},
                                     std::pair{"issuer", std::string("湖北\n2026,forged")}}) {
    auto odd = cert;
    odd[field] = value;
    const auto r = call(Role::Counter, "POST", "/v1/certificates", odd);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(body_of(r).value("field", ""), field) << r.body;
  }
  // Never twice (and never on paper); another holder claiming it learns nothing of the record.
  const auto twice = call(Role::Counter, "POST", "/v1/certificates", cert);
  expect_refusal(twice, "P14_CERTIFICATE_DUPLICATE");
  EXPECT_EQ(body_of(twice).at("record"), body.at("record"));
  ASSERT_EQ(register_card(bob_card, kBob).status, 201);
  auto theirs = cert;
  theirs["card"] = bob_card.number;
  theirs["citizen_id"] = kBob;
  const auto claimed = call(Role::Counter, "POST", "/v1/certificates", theirs);
  expect_refusal(claimed, "P14_CERTIFICATE_DUPLICATE");
  EXPECT_FALSE(body_of(claimed).contains("record"));
  auto bad = cert;
  bad["date"] = "2026-02-30";
  EXPECT_EQ(body_of(call(Role::Counter, "POST", "/v1/certificates", bad)).at("field"), "date");
  // Only the spelling YYYY-MM-DD: no spaces, signs, other separators or a NUL inside.
  for (const auto& spelt : {std::string("2024- 1- 1"), std::string("2024-+1-+1"), std::string("2024/01/01"),
                            std::string("2024-01-1x"), std::string(" 2024-1-01"), std::string("2024-01-0\0", 10)}) {
    bad["date"] = spelt;
    const auto r = call(Role::Counter, "POST", "/v1/certificates", bad);
    expect_refusal(r, "BAD_REQUEST_FIELD");
    EXPECT_EQ(body_of(r).at("field"), "date") << spelt;
  }
}

TEST_F(FlowTest, HolderReadsNeedTheCardAndItsPin) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  ASSERT_EQ(register_card(bob_card, kBob).status, 201);
  const auto id = issued_id(alice, kAlice);
  const auto ref = ledger::lower_hex(holder_of(kAlice));
  const auto path = "/v1/holders/" + ref + "/vouchers";
  expect_refusal(call(Role::Kiosk, "GET", path, nullptr, {}), "CARD_PROOF_REQUIRED");
  expect_refusal(call(Role::Kiosk, "GET", path, nullptr, proof_header(alice, false)), "CARD_PROOF_INVALID");
  expect_refusal(call(Role::Kiosk, "GET", path, nullptr, proof_header(bob_card, true)), "CARD_PROOF_INVALID");
  // A proof signed by the card's RECEIPT key instead of its AUTH key (threat model T15).
  std::swap(alice.receipt_key, alice.auth_key);
  auto by_receipt_key = proof_header(alice, true);
  std::swap(alice.receipt_key, alice.auth_key);
  expect_refusal(call(Role::Kiosk, "GET", path, nullptr, by_receipt_key), "CARD_PROOF_INVALID");
  // A nonce issued to another terminal does not prove presence here.
  const auto counter_nonce = nonce(Role::Counter);
  auto text = alice.proof(counter_nonce, true);
  auto elsewhere = std::map<std::string, std::string, std::less<>>{
      {"skillcard-card-proof", base64url_encode(Bytes(text.begin(), text.end()))}};
  expect_refusal(call(Role::Kiosk, "GET", path, nullptr, elsewhere), "CARD_PROOF_INVALID");
  // The proof header is read as strictly as a body: a member given twice is refused by name.
  text = alice.proof(nonce(Role::Kiosk), true);
  ASSERT_EQ(text.front(), '{');
  text.insert(1, "\"card\":\"" + bob_card.number + "\",");
  const auto twice = call(Role::Kiosk, "GET", path, nullptr,
                          {{"skillcard-card-proof", base64url_encode(Bytes(text.begin(), text.end()))}});
  expect_refusal(twice, "BAD_REQUEST_FIELD");
  EXPECT_EQ(body_of(twice).at("field"), "card") << twice.body;
  // With the card and its PIN: the holder's vouchers, and the same proof serves the portfolio.
  const auto headers = proof_header(alice, true);
  const auto vouchers = call(Role::Kiosk, "GET", path, nullptr, headers);
  ASSERT_EQ(vouchers.status, 200) << vouchers.body;
  ASSERT_EQ(body_of(vouchers).at("vouchers").size(), 1u);
  EXPECT_EQ(body_of(vouchers).at("vouchers")[0].at("voucher_id"), id);
  const auto portfolio = call(Role::Kiosk, "GET", "/v1/holders/" + ref + "/portfolio", nullptr, headers);
  ASSERT_EQ(portfolio.status, 200) << portfolio.body;
  EXPECT_TRUE(body_of(portfolio).at("digest").is_null());
  EXPECT_EQ(body_of(portfolio).at("records"), json::array());
  // Until the nonce expires.
  now += kNonceLifetime + 1;
  expect_refusal(call(Role::Kiosk, "GET", path, nullptr, headers), "CARD_PROOF_INVALID");
  // A site reads no holder's records at all.
  expect_refusal(call(Role::Site, "GET", path, nullptr, headers), "TERMINAL_ROLE_FORBIDDEN");
}

// Operator reports over HTTP (#9): P18 counts the redemption once, settlement owes it to the
// provider, the reconciliation agrees; CSV on request; only operators; bad parameters named.
TEST_F(FlowTest, P18_P17_OperatorReportsOverHttp) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const auto id = issued_id(alice, kAlice);
  ASSERT_EQ(call(Role::Counter, "POST", "/v1/vouchers/" + id + "/written").status, 200);
  ASSERT_EQ(redeem(id, alice.receipt(id, site_nonce(), now)).status, 201);
  const auto date = schemas::cst_date(now);
  const auto ym = "?year=" + std::to_string(static_cast<int>(date.year())) +
                  "&month=" + std::to_string(static_cast<unsigned>(date.month()));
  const auto monthly = call(Role::Operator, "GET", "/v1/reports/monthly" + ym);
  ASSERT_EQ(monthly.status, 200) << monthly.body;
  EXPECT_EQ(body_of(monthly).at("regions")[0].at("month").at("person_times"), 1);
  const auto settlement = call(Role::Operator, "GET", "/v1/reports/settlement" + ym);
  ASSERT_EQ(settlement.status, 200) << settlement.body;
  EXPECT_EQ(body_of(settlement).at("total_fen"), 180000);
  EXPECT_EQ(body_of(settlement).at("lines")[0].at("provider"), kSite);
  const auto csv = call(Role::Operator, "GET", "/v1/reports/settlement" + ym + "&format=csv");
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.headers.front().second.rfind("text/csv", 0), 0u);
  EXPECT_NE(csv.body.find("10001"), std::string::npos);
  const auto reconciliation = call(Role::Operator, "GET", "/v1/reports/reconciliation");
  ASSERT_EQ(reconciliation.status, 200) << reconciliation.body;
  EXPECT_EQ(body_of(reconciliation).at("agrees"), true);
  EXPECT_EQ(call(Role::Operator, "GET", "/v1/reports/progress" + ym).status, 200);
  expect_refusal(call(Role::Counter, "GET", "/v1/reports/monthly" + ym), "TERMINAL_ROLE_FORBIDDEN");
  expect_refusal(call(Role::Operator, "GET", "/v1/reports/nothing"), "NOT_FOUND");
  EXPECT_EQ(body_of(call(Role::Operator, "GET", "/v1/reports/monthly?year=2026")).at("field"), "month");
  EXPECT_EQ(body_of(call(Role::Operator, "GET", "/v1/reports/monthly" + ym + "&month=1")).at("field"), "month");
  EXPECT_EQ(body_of(call(Role::Operator, "GET", "/v1/reports/monthly?year=2026&month=13")).at("field"), "month");
  EXPECT_EQ(body_of(call(Role::Operator, "GET", "/v1/reports/monthly" + ym + "&x=1")).at("field"), "x");
  EXPECT_EQ(body_of(call(Role::Operator, "GET", "/v1/reports/monthly" + ym + "&format=pdf")).at("field"), "format");
}

// P11 (凡补必进、不进不补): the settlement pays what the ledger recorded and nothing else — a
// voucher issued but not redeemed, and a receipt the service refused, are paid nothing.
TEST_F(FlowTest, P11_OnlyARedemptionTheSystemRecordedIsPaid) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  ASSERT_EQ(register_card(bob_card, kBob).status, 201);
  const auto paid = issued_id(alice, kAlice, "4-04-05-01");
  const auto unpaid = issued_id(alice, kAlice, "4-04-05-02");
  const auto forged = issued_id(alice, kAlice, "4-04-05-03");
  ASSERT_EQ(redeem(paid, alice.receipt(paid, site_nonce(), now)).status, 201);
  // A receipt signed by another card's key (no system record of that card for this voucher).
  expect_refusal(redeem(forged, bob_card.receipt(forged, site_nonce(), now)), "RECEIPT_BAD_SIGNATURE");
  const auto date = schemas::cst_date(now);
  const auto settlement = call(Role::Operator, "GET",
                               "/v1/reports/settlement?year=" + std::to_string(static_cast<int>(date.year())) +
                                   "&month=" + std::to_string(static_cast<unsigned>(date.month())));
  ASSERT_EQ(settlement.status, 200) << settlement.body;
  const auto report = body_of(settlement);
  EXPECT_EQ(report.at("total_fen"), 180000) << "one voucher's face value";
  ASSERT_EQ(report.at("lines").size(), 1u);
  EXPECT_EQ(report.at("lines")[0].at("count"), 1);
  EXPECT_FALSE(ledger->redemption(voucher_id_from_hex(unpaid)));
  EXPECT_FALSE(ledger->redemption(voucher_id_from_hex(forged)));
}

// Every endpoint that takes a body: each required member missing, an unknown member, and each
// member of the wrong type get a 400 naming the field; nothing gets a 500.
TEST_F(FlowTest, BadInputOnEveryEndpointNamesTheField) {
  ASSERT_EQ(register_card(alice, kAlice).status, 201);
  const auto id = issued_id(alice, kAlice);
  struct Case {
    Role role;
    std::string target;
    json body;
  };
  const std::vector<Case> cases{
      {Role::Counter, "/v1/vouchers", issue_body(alice, kAlice, "4-04-05-07")},
      {Role::Counter, "/v1/vouchers/" + id + "/void", json{{"reason", "test"}}},
      {Role::Counter, "/v1/cards",
       json{{"certificate", base64url_encode(alice.certificate(keys))}, {"citizen_id", kAlice}}},
      {Role::Counter, "/v1/cards/" + alice.number + "/lost",
       json{{"citizen_id", kAlice}, {"replacement", "4201000009"}}},
      {Role::Counter, "/v1/cards/" + alice.number + "/holder-check",
       json{{"citizen_id", kAlice}, {"card_proof", json::parse(alice.proof(nonce(Role::Counter), false))}}},
      {Role::Counter, "/v1/certificates",
       json{{"card", alice.number},
            {"citizen_id", kAlice},
            {"kind", 1},
            {"occupation", "4-04-05-05"},
            {"level", 4},
            {"issuer", "x"},
            {"number", "1"},
            {"date", "2026-01-01"}}},
      {Role::Site, "/v1/redemptions", json{{"voucher_id", id}, {"receipt", "AAAA"}, {"card", alice.number}}},
      {Role::Operator, "/v1/budgets", json{{"fund", 1}, {"allocated_fen", 5}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target);
    for (const auto& item : c.body.items()) {
      auto missing = c.body;
      missing.erase(item.key());
      const auto r = call(c.role, "POST", c.target, missing);
      EXPECT_LT(r.status, 500) << r.body;
      if (item.key() != "eligible_providers" && item.key() != "replacement" && item.key() != "card") {
        EXPECT_EQ(r.status, 400) << item.key() << " " << r.body;
        EXPECT_EQ(body_of(r).value("field", ""), item.key()) << r.body;
      }
      auto wrong = c.body;
      wrong[item.key()] = item.value().is_string() ? json(12) : json("text");
      const auto w = call(c.role, "POST", c.target, wrong);
      EXPECT_EQ(w.status, 400) << item.key() << " " << w.body;
      EXPECT_NE(body_of(w).value("field", "").find(item.key()), std::string::npos) << w.body;
    }
    auto unknown = c.body;
    unknown["surplus"] = 1;
    const auto u = call(c.role, "POST", c.target, unknown);
    EXPECT_EQ(u.status, 400);
    EXPECT_EQ(body_of(u).value("field", ""), "surplus");
    for (const std::string raw : {"", "{", "[]", "{\"a\":1,\"a\":2}", "null"}) {
      const auto r =
          handler->handle(Request{"POST",
                                  c.target,
                                  {{"skillcard-clerk", "C1"}},
                                  raw,
                                  Terminal{terminal_id(c.role), c.role, kBureau,
                                           c.role == Role::Site ? std::optional<std::uint32_t>(kSite) : std::nullopt}});
      EXPECT_EQ(r.status, 400) << raw << " " << r.body;
    }
  }
}

}  // namespace
}  // namespace skillcard::service
