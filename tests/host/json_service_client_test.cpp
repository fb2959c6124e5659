// The service client's JSON, call by call, against canned contract-v1 bodies (a recording
// transport: request method, target, headers and body are checked too), refusal bodies, and
// answers that are not the contract's.
#include "skillcard/host/json_service_client.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "skillcard/host/encoding.hpp"

namespace skillcard::host {
namespace {

using nlohmann::json;

class CannedTransport final : public HttpTransport {
 public:
  HttpResponse next{200, "{}"};
  HttpRequest last;
  HttpResponse send(const HttpRequest& request) override {
    last = request;
    return next;
  }
  std::optional<std::string> header(const std::string& name) const {
    for (const auto& [n, v] : last.headers)
      if (n == name) return v;
    return std::nullopt;
  }
  json body() const { return json::parse(last.body); }
};

const std::string kVoucherHex = "00000000000000a1";
const std::string kHolderHex = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
const std::string kNonceHex = "01" + std::string(32, '7');

json voucher_json() {
  return {{"id", kVoucherHex},
          {"issuer", 420100},
          {"holder", kHolderHex},
          {"programme", 3},
          {"occupation", "4-04-05-05"},
          {"level", 4},
          {"fund", 2},
          {"face_value_fen", 180000},
          {"planned_hours", 120},
          {"planned_online_hours", 36},
          {"eligible_regions", {420100}},
          {"eligible_providers", {10001}},
          {"issued_at", 1000},
          {"not_before", 1000},
          {"expires_at", 9000}};
}

json redemption_json() {
  return {{"seq", 7},
          {"voucher_id", kVoucherHex},
          {"card", "4201000001"},
          {"counter", 3},
          {"site", 10001},
          {"nonce", kNonceHex},
          {"terminal_time", 5000},
          {"server_time", 5001},
          {"classroom_hours", 84},
          {"online_hours", 36},
          {"face_value_fen", 180000},
          {"receipt_id", "0123456789abcdef"}};
}

CardProof proof() {
  CardProof p;
  p.card = "4201000001";
  p.nonce = fixed_from_hex<17>(kNonceHex, "nonce");
  p.counter = 5;
  p.pin_verified = true;
  p.signature.fill(0x5A);
  return p;
}

class JsonClient : public ::testing::Test {
 protected:
  std::shared_ptr<CannedTransport> transport = std::make_shared<CannedTransport>();
  JsonServiceClient client{transport, "clerk-007"};
  void answer(int status, const json& body) { transport->next = {status, body.dump()}; }
};

TEST_F(JsonClient, NonceIsAPostWithTheClerkAndParsesTheGrant) {
  answer(201, {{"nonce", kNonceHex}, {"issued_at", 100}, {"expires_at", 400}});
  const auto g = client.create_nonce();
  EXPECT_EQ(transport->last.method, "POST");
  EXPECT_EQ(transport->last.target, "/v1/nonces");
  EXPECT_EQ(transport->header("Skillcard-Clerk"), "clerk-007");
  EXPECT_EQ(lower_hex(g.nonce), kNonceHex);
  EXPECT_EQ(g.expires_at, 400u);
}

TEST_F(JsonClient, CardsRegisterAndGet) {
  answer(201, {{"card", "4201000001"}, {"region", 420100}, {"holder", kHolderHex}, {"state", "active"}});
  const Bytes cert{1, 2, 3, 250};
  const auto c = client.register_card(cert, "420100199003070016");
  EXPECT_EQ(transport->body()["certificate"], base64url_encode(cert));
  EXPECT_EQ(transport->body()["citizen_id"], "420100199003070016");
  EXPECT_EQ(c.region, 420100u);
  EXPECT_EQ(lower_hex(c.holder), kHolderHex);
  answer(200, {{"card", "4201000001"},
               {"region", 420100},
               {"holder", kHolderHex},
               {"state", "replaced"},
               {"replaced_by", "4201000002"}});
  const auto g = client.get_card("4201000001");
  EXPECT_EQ(transport->last.method, "GET");
  EXPECT_EQ(transport->last.target, "/v1/cards/4201000001");
  EXPECT_FALSE(transport->header("Skillcard-Clerk"));
  EXPECT_EQ(g.replaced_by, "4201000002");
}

TEST_F(JsonClient, IssueSendsEveryFieldAndTheCardProof) {
  answer(201, {{"voucher_id", kVoucherHex}, {"token", "AQID"}, {"state", "issued"}, {"voucher", voucher_json()}});
  IssueRequest r;
  r.card = "4201000001";
  r.citizen_id = "420100199003070016";
  r.programme = 3;
  r.occupation = "4-04-05-05";
  r.level = 4;
  r.fund = 2;
  r.planned_hours = 120;
  r.planned_online_hours = 36;
  r.eligible_providers = std::vector<std::uint32_t>{10001};
  r.card_proof = proof();
  const auto v = client.issue_voucher(r);
  const auto b = transport->body();
  EXPECT_EQ(transport->last.target, "/v1/vouchers");
  EXPECT_EQ(b["programme"], 3);
  EXPECT_EQ(b["occupation"], "4-04-05-05");
  EXPECT_FALSE(b.contains("eligible_regions"));
  EXPECT_EQ(b["eligible_providers"], json::array({10001}));
  EXPECT_EQ(b["card_proof"]["card"], "4201000001");
  EXPECT_EQ(b["card_proof"]["nonce"], kNonceHex);
  EXPECT_EQ(b["card_proof"]["counter"], 5);
  EXPECT_EQ(b["card_proof"]["pin_verified"], true);
  EXPECT_EQ(base64url_decode(b["card_proof"]["signature"].get<std::string>()), Bytes(64, 0x5A));
  EXPECT_EQ(v.token, (Bytes{1, 2, 3}));
  EXPECT_EQ(v.voucher.face_value_fen, 180000u);
  EXPECT_EQ(v.voucher.eligible_regions, std::vector<std::uint32_t>{420100});
  EXPECT_EQ(lower_hex(v.voucher_id), kVoucherHex);
}

TEST_F(JsonClient, WrittenVoidAndVerify) {
  answer(200, {{"voucher_id", kVoucherHex}, {"state", "written"}});
  const auto id = fixed_from_hex<8>(kVoucherHex, "id");
  EXPECT_EQ(client.mark_written(id).state, "written");
  EXPECT_EQ(transport->last.target, "/v1/vouchers/" + kVoucherHex + "/written");
  EXPECT_TRUE(transport->last.body.empty());
  answer(200, {{"voucher_id", kVoucherHex}, {"state", "voided"}});
  EXPECT_EQ(client.void_voucher(id, "write failed").state, "voided");
  EXPECT_EQ(transport->body()["reason"], "write failed");
  answer(200, {{"valid", true}, {"kid", "0011223344556677"}, {"state", "written"}, {"voucher", voucher_json()}});
  const auto t = client.verify_token(Bytes{9, 9});
  EXPECT_EQ(transport->body()["token"], "CQk");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.voucher.programme, 3u);
}

TEST_F(JsonClient, RedemptionCreatedOrRepeated) {
  answer(201, {{"redemption", redemption_json()}});
  const auto id = fixed_from_hex<8>(kVoucherHex, "id");
  auto r = client.submit_redemption({id, Bytes{0xD2, 0x84}, std::nullopt});
  EXPECT_TRUE(r.created);
  EXPECT_FALSE(transport->body().contains("card"));
  EXPECT_EQ(transport->body()["receipt"], base64url_encode(Bytes{0xD2, 0x84}));
  EXPECT_EQ(r.redemption.counter, 3u);
  EXPECT_EQ(r.redemption.receipt_id, "0123456789abcdef");
  answer(200, {{"redemption", redemption_json()}});
  r = client.submit_redemption({id, Bytes{0xD2, 0x84}, std::string("4201000001")});
  EXPECT_FALSE(r.created);
  EXPECT_EQ(transport->body()["card"], "4201000001");
}

TEST_F(JsonClient, SyncResultsMixAcceptedAndRefused) {
  answer(200, {{"results",
                {{{"voucher_id", kVoucherHex}, {"status", 201}, {"redemption", redemption_json()}},
                 {{"voucher_id", "00000000000000a2"},
                  {"status", 422},
                  {"error", "P12_SYNC_WINDOW"},
                  {"rules", {"P12"}},
                  {"message", {{"zh-CN", "超时"}, {"en", "late"}}}}}}});
  std::vector<ReceiptSubmission> items{{fixed_from_hex<8>(kVoucherHex, "id"), Bytes{1}, std::nullopt},
                                       {fixed_from_hex<8>("00000000000000a2", "id"), Bytes{2}, std::nullopt}};
  const auto results = client.sync_redemptions(items);
  EXPECT_EQ(transport->last.target, "/v1/redemptions/sync");
  EXPECT_EQ(transport->body()["receipts"].size(), 2u);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].accepted());
  EXPECT_FALSE(results[1].accepted());
  EXPECT_EQ(results[1].error, "P12_SYNC_WINDOW");
  EXPECT_EQ(results[1].message.zh_cn, "超时");
  EXPECT_THROW(client.sync_redemptions({}), std::invalid_argument);
}

TEST_F(JsonClient, CertificatesLostCardAndHolderReadsWithTheProofHeader) {
  answer(201, {{"record", "AQ"}, {"salt", "00ff"}, {"digest", "AgM"}, {"digest_version", 4}});
  CertificateRequest c{"4201000001", "420100199003070016", 3, "4-04-05-05", 4, "中心", "S-1", "2026-01-02"};
  const auto rec = client.record_certificate(c);
  EXPECT_EQ(transport->body()["issuer"], "中心");
  EXPECT_EQ(transport->body()["date"], "2026-01-02");
  EXPECT_EQ(rec.digest, (Bytes{2, 3}));
  EXPECT_EQ(rec.digest_version, 4u);

  answer(200, {{"card", "4201000001"},
               {"state", "lost"},
               {"replacement", "4201000002"},
               {"moved", {{{"from", kVoucherHex}, {"voucher_id", "00000000000000b1"}, {"token", "BQY"}}}}});
  const auto lost = client.report_lost({"4201000001", "420100199003070016", std::string("4201000002")});
  EXPECT_EQ(transport->last.target, "/v1/cards/4201000001/lost");
  EXPECT_EQ(transport->body()["replacement"], "4201000002");
  ASSERT_EQ(lost.moved.size(), 1u);
  EXPECT_EQ(lost.moved[0].token, (Bytes{5, 6}));

  answer(200, {{"card", "4201000001"}, {"region", 420100}, {"holder", kHolderHex}, {"state", "active"}});
  const auto checked = client.check_holder("420100199003070016", proof());
  EXPECT_EQ(transport->last.method, "POST");
  EXPECT_EQ(transport->last.target, "/v1/cards/4201000001/holder-check");
  EXPECT_EQ(transport->header("Skillcard-Clerk"), "clerk-007");
  EXPECT_EQ(transport->body()["citizen_id"], "420100199003070016");
  EXPECT_EQ(transport->body()["card_proof"]["card"], "4201000001");
  EXPECT_EQ(transport->body()["card_proof"]["counter"], 5);
  EXPECT_EQ(checked.state, "active");
  EXPECT_EQ(lower_hex(checked.holder), kHolderHex);

  const auto holder = fixed_from_hex<16>(kHolderHex, "holder");
  answer(200, {{"holder", kHolderHex},
               {"vouchers",
                {{{"voucher_id", kVoucherHex}, {"state", "written"}, {"token", "AQ"}, {"voucher", voucher_json()}}}}});
  const auto hv = client.holder_vouchers(holder, proof());
  EXPECT_EQ(transport->last.method, "GET");
  EXPECT_EQ(transport->last.target, "/v1/holders/" + kHolderHex + "/vouchers");
  const auto header = transport->header("Skillcard-Card-Proof");
  ASSERT_TRUE(header);
  const auto decoded = base64url_decode(*header);
  EXPECT_EQ(json::parse(std::string(decoded.begin(), decoded.end()))["counter"], 5);
  ASSERT_EQ(hv.vouchers.size(), 1u);

  answer(200, {{"holder", kHolderHex},
               {"digest_version", 2},
               {"digest", nullptr},
               {"records", {{{"record", "AQ"}, {"digest_version", 1}, {"recorded_at", 77}}}}});
  const auto p = client.holder_portfolio(holder, proof());
  EXPECT_FALSE(p.digest);
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].recorded_at, 77u);
}

TEST_F(JsonClient, TrustListAndRevocations) {
  answer(200, {{"trust_list", "AQI"}, {"sequence", 3}, {"issued_at", 1}, {"next_update", 2}});
  const auto t = client.trust_list();
  EXPECT_EQ(t.trust_list, (Bytes{1, 2}));
  EXPECT_EQ(t.sequence, 3u);
  answer(200, {{"vouchers", {kVoucherHex}}, {"cards", {"4201000009"}}, {"terminals", json::array()}});
  const auto r = client.revocations();
  ASSERT_EQ(r.vouchers.size(), 1u);
  EXPECT_EQ(lower_hex(r.vouchers[0]), kVoucherHex);
  EXPECT_EQ(r.cards, std::vector<std::string>{"4201000009"});
}

TEST_F(JsonClient, APolicyRefusalCarriesRulesMessageAndEveryViolation) {
  answer(422,
         {{"error", "P1_ANNUAL_LIMIT"},
          {"rules", {"P1"}},
          {"message", {{"zh-CN", "本人本年度已享受3次"}, {"en", "Annual limit reached: 3"}}},
          {"violations",
           {{{"error", "P1_ANNUAL_LIMIT"}, {"rules", {"P1"}}, {"message", {{"zh-CN", "a"}, {"en", "b"}}}},
            {{"error", "P3_SAME_OCCUPATION_LEVEL"}, {"rules", {"P3"}}, {"message", {{"zh-CN", "c"}, {"en", "d"}}}}}}});
  try {
    client.create_nonce();
    FAIL();
  } catch (const ServiceRefusal& e) {
    EXPECT_EQ(e.http_status(), 422);
    EXPECT_EQ(e.code(), "P1_ANNUAL_LIMIT");
    EXPECT_EQ(e.rules(), std::vector<std::string>{"P1"});
    EXPECT_EQ(e.message(Lang::En), "Annual limit reached: 3");
    EXPECT_EQ(e.message(Lang::ZhCn), "本人本年度已享受3次");
    ASSERT_EQ(e.violations().size(), 2u);
    EXPECT_EQ(e.violations()[1].code, "P3_SAME_OCCUPATION_LEVEL");
  }
}

TEST_F(JsonClient, AnswersOutsideTheContractAreServiceUnavailable) {
  transport->next = {502, "<html>bad gateway</html>"};
  EXPECT_THROW(client.create_nonce(), ServiceUnavailable);
  transport->next = {201, "not json"};
  EXPECT_THROW(client.create_nonce(), ServiceUnavailable);
  answer(201, {{"nonce", "zz"}, {"issued_at", 1}, {"expires_at", 2}});
  EXPECT_THROW(client.create_nonce(), ServiceUnavailable);
  answer(201, {{"nonce", kNonceHex}, {"issued_at", -1}, {"expires_at", 2}});
  EXPECT_THROW(client.create_nonce(), ServiceUnavailable);
  answer(200, {{"redemption", {{"seq", 1}}}});
  EXPECT_THROW(client.submit_redemption({}), ServiceUnavailable);
}

// A 5xx with a catalogue body (503 SERVICE_UNAVAILABLE, detail storage) decided nothing: it is
// ServiceUnavailable — the site queues, prepare() goes offline, sync counts an attempt — never
// a final refusal.
TEST_F(JsonClient, AFiveHundredSomethingWithARefusalBodyIsServiceUnavailable) {
  answer(503, {{"error", "SERVICE_UNAVAILABLE"},
               {"detail", "storage"},
               {"message", {{"zh-CN", "系统暂时无法处理请求"}, {"en", "The service cannot handle the request"}}}});
  try {
    client.create_nonce();
    FAIL() << "a 503 was taken for an answer";
  } catch (const ServiceUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("SERVICE_UNAVAILABLE (storage)"), std::string::npos) << e.what();
  }
  answer(500, {{"error", "INTERNAL"}});
  EXPECT_THROW(client.submit_redemption({}), ServiceUnavailable);
}

TEST(ReceiptId, IsTheFirstSixteenHexDigitsOfSha256) {
  // SHA-256("abc") = ba7816bf8f01cfea...
  EXPECT_EQ(receipt_id(as_bytes("abc")), "ba7816bf8f01cfea");
}

}  // namespace
}  // namespace skillcard::host
