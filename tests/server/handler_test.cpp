// The service's request handler without sockets: routing, the role table, strict request
// parsing, nonces, voucher verification (every check and the COSE fail-vector corruptions),
// the trust list, metrics, and the trust store and terminal identity it relies on.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <set>

#include "service_support.hpp"
#include "skillcard/schemas/refusals.hpp"
#include "skillcard/service/encoding.hpp"
#include "skillcard/service/handler.hpp"

namespace skillcard::service {
namespace {

using namespace skillcard::service::testing;
using json = nlohmann::json;

class HandlerTest : public ::testing::Test {
 protected:
  HandlerTest() : trust(keys.trust_store()) {
    handler = std::make_unique<Handler>(base_context(
        ledger, *trust, [this] { return now; }, &metrics));
  }

  static Terminal terminal(Role role) {
    Terminal t{"T0001", role, kBureau, std::nullopt};
    if (role == Role::Site) t.site = 10001;
    return t;
  }

  Response call(Role role, std::string method, std::string target, std::string body = {},
                std::map<std::string, std::string, std::less<>> headers = {{"skillcard-clerk", "C042"}}) {
    return handler->handle(
        Request{std::move(method), std::move(target), std::move(headers), std::move(body), terminal(role)});
  }

  Response verify(const Bytes& token, Role role = Role::Site) {
    return call(role, "POST", "/v1/vouchers/verify", json{{"token", base64url_encode(token)}}.dump());
  }

  // A token on the ledger in `state`, signed by the bureau's voucher signer.
  Bytes issued(std::uint64_t serial, ledger::VoucherState state = ledger::VoucherState::Written) {
    const auto claims = sample_claims(serial);
    auto token = sign_token(claims, keys.voucher);
    ledger.put(claims, token, state);
    return token;
  }

  KeySet keys;
  FakeLedger ledger;
  Metrics metrics;
  std::unique_ptr<TrustStore> trust;
  std::unique_ptr<Handler> handler;
  std::uint64_t now = kNow;
};

json body_of(const Response& r) { return json::parse(r.body); }

// A refusal body of the catalogue's shape with this code and the catalogue's status.
void expect_refusal(const Response& r, std::string_view code, std::string_view check = {}) {
  const auto& entry = schemas::refusal(code);
  EXPECT_EQ(r.status, entry.http_status) << r.body;
  const auto body = body_of(r);
  EXPECT_EQ(body.at("error"), code) << r.body;
  EXPECT_TRUE(body.at("rules").is_array());
  EXPECT_TRUE(body.at("message").at("zh-CN").is_string());
  EXPECT_TRUE(body.at("message").at("en").is_string());
  if (!check.empty()) {
    EXPECT_EQ(body.at("check"), check) << r.body;
  }
}

void expect_bad_field(const Response& r, std::string_view field) {
  expect_refusal(r, "BAD_REQUEST_FIELD");
  const auto body = body_of(r);
  EXPECT_EQ(body.at("field"), field) << r.body;
  EXPECT_NE(body.at("message").at("en").get<std::string>().find(std::string(field)), std::string::npos);
}

// --- routing and roles ----------------------------------------------------------------------

struct RouteCase {
  const char* method;
  const char* target;
  std::set<Role> allowed;
};

const std::set<Role> kAllRoles{Role::Counter, Role::Site, Role::Kiosk, Role::Operator};

const RouteCase kRouteCases[] = {
    {"GET", "/healthz", kAllRoles},
    {"GET", "/metrics", {Role::Operator}},
    {"GET", "/v1/trust-list", kAllRoles},
    {"GET", "/v1/revocations", kAllRoles},
    {"POST", "/v1/nonces", {Role::Counter, Role::Site, Role::Kiosk}},
    {"POST", "/v1/budgets", {Role::Operator}},
    {"POST", "/v1/cards", {Role::Counter}},
    {"GET", "/v1/cards/1234567890", {Role::Counter, Role::Operator}},
    {"GET", "/v1/reports/monthly?year=2026&month=1", {Role::Operator}},
    {"GET", "/v1/reports/reconciliation", {Role::Operator}},
    {"POST", "/v1/vouchers/verify", kAllRoles},
    {"POST", "/v1/vouchers", {Role::Counter}},
    {"POST", "/v1/vouchers/0000000000000001/written", {Role::Counter}},
    {"POST", "/v1/vouchers/0000000000000001/void", {Role::Counter, Role::Operator}},
    {"POST", "/v1/redemptions", {Role::Site}},
    {"POST", "/v1/redemptions/sync", {Role::Site}},
    {"POST", "/v1/certificates", {Role::Counter}},
    {"POST", "/v1/cards/1234567890/lost", {Role::Counter}},
    {"POST", "/v1/cards/1234567890/holder-check", {Role::Counter}},
    {"GET", "/v1/holders/00112233445566778899aabbccddeeff/vouchers", {Role::Counter, Role::Kiosk}},
    {"GET", "/v1/holders/00112233445566778899aabbccddeeff/portfolio", {Role::Counter, Role::Kiosk}},
};

TEST_F(HandlerTest, EveryEndpointChecksTheRoleTable) {
  for (const auto& rc : kRouteCases) {
    for (const auto role : kAllRoles) {
      const auto r = call(role, rc.method, rc.target);
      SCOPED_TRACE(std::string(rc.method) + " " + rc.target + " as " + std::string(to_string(role)));
      if (rc.allowed.contains(role)) {
        EXPECT_EQ(r.body.find("\"error\":\"TERMINAL_ROLE_FORBIDDEN\""), std::string::npos) << r.body;
      } else {
        expect_refusal(r, "TERMINAL_ROLE_FORBIDDEN");
      }
    }
  }
}

TEST_F(HandlerTest, RoleIsCheckedBeforeTheBody) {
  expect_refusal(call(Role::Operator, "POST", "/v1/nonces", "{not json"), "TERMINAL_ROLE_FORBIDDEN");
  expect_refusal(call(Role::Kiosk, "POST", "/v1/vouchers", std::string(kMaxBody + 1, 'x')), "TERMINAL_ROLE_FORBIDDEN");
}

TEST_F(HandlerTest, UnknownPathIs404AndWrongMethodIs405) {
  auto r = call(Role::Counter, "GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(body_of(r).at("error"), "NOT_FOUND");
  r = call(Role::Counter, "GET", "/v1/nonces");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(body_of(r).at("error"), "METHOD_NOT_ALLOWED");
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers.back(), (std::pair<std::string, std::string>{"Allow", "POST"}));
  EXPECT_EQ(call(Role::Counter, "GET", "/v1/vouchers//written").status, 404);
  EXPECT_EQ(call(Role::Counter, "GET", "/healthz/").status, 404);
}

// --- healthz, trust list, metrics -----------------------------------------------------------

TEST_F(HandlerTest, HealthzAnswersOk) {
  const auto r = call(Role::Kiosk, "GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r).at("status"), "ok");
  EXPECT_EQ(body_of(r).at("trust_list_sequence"), 7);
  expect_bad_field(call(Role::Kiosk, "GET", "/healthz", "x"), "body");
}

TEST_F(HandlerTest, TrustListIsTheSignedListInBase64url) {
  const auto r = call(Role::Site, "GET", "/v1/trust-list?x=1");
  ASSERT_EQ(r.status, 200);
  const auto body = body_of(r);
  const auto bytes = base64url_decode(body.at("trust_list").get<std::string>());
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, keys.signed_list().size() == bytes->size() ? *bytes : Bytes{});
  EXPECT_EQ(body.at("sequence"), 7);
  // What a terminal does with it: verify against the pinned root.
  const auto again = TrustStore::from_signed_list(*bytes, keys.root.public_key());
  EXPECT_EQ(again->claims(), trust->claims());
  expect_bad_field(call(Role::Site, "GET", "/v1/trust-list", "{}"), "body");
}

TEST_F(HandlerTest, MetricsCountRequestsAndRefusals) {
  call(Role::Kiosk, "GET", "/healthz");
  call(Role::Kiosk, "POST", "/v1/vouchers");
  verify(Bytes{1, 2, 3});
  const auto r = call(Role::Operator, "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.front().second, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("skillcard_requests_total{route=\"GET /healthz\",status=\"200\"} 1"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("skillcard_refusals_total{code=\"TERMINAL_ROLE_FORBIDDEN\"} 1"), std::string::npos);
  EXPECT_NE(r.body.find("skillcard_refusals_total{code=\"TOKEN_MALFORMED\"} 1"), std::string::npos);
  EXPECT_NE(r.body.find("skillcard_verifications_total{outcome=\"refused\"} 1"), std::string::npos);
  EXPECT_EQ(metrics.requests("POST /v1/vouchers", 403), 1U);
}

// --- bad input, per endpoint ----------------------------------------------------------------

struct BadBody {
  const char* name;
  std::string body;
  const char* field;
};

TEST_F(HandlerTest, VerifyRefusesEveryClassOfBadInput) {
  const BadBody cases[] = {
      {"malformed", "{\"token\": ", "body"},
      {"not JSON at all", "token=abc", "body"},
      {"invalid UTF-8", "{\"token\": \"\xff\"}", "body"},
      {"array", "[\"abc\"]", "body"},
      {"empty", "", "body"},
      {"wrong type number", "{\"token\": 5}", "token"},
      {"wrong type null", "{\"token\": null}", "token"},
      {"wrong type object", "{\"token\": {}}", "token"},
      {"unknown field", "{\"token\": \"AA\", \"extra\": 1}", "extra"},
      {"missing field", "{}", "token"},
      {"duplicate field", "{\"token\": \"AA\", \"token\": \"AA\"}", "token"},
      {"duplicate in a nested object", "{\"token\": {\"a\": 1, \"b\": [{\"a\": 1}], \"a\": 2}}", "a"},
      // A name used again in another object is no duplicate: these fail on type and name.
      {"same name nested", "{\"token\": {\"token\": 1}}", "token"},
      {"same name after a nested object", "{\"x\": {\"token\": 1}, \"token\": \"AA\"}", "x"},
      {"not base64url", "{\"token\": \"a+b/\"}", "token"},
      {"padding", "{\"token\": \"AA==\"}", "token"},
      {"deep", std::string(100, '[') + std::string(100, ']'), "body"},
      {"oversize", "{\"token\": \"" + std::string(kMaxBody, 'A') + "\"}", "body"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    expect_bad_field(call(Role::Site, "POST", "/v1/vouchers/verify", c.body), c.field);
  }
}

TEST_F(HandlerTest, NoncesRefuseEveryClassOfBadInput) {
  const BadBody cases[] = {
      {"malformed", "{", "body"},
      {"array", "[]", "body"},
      {"string", "\"x\"", "body"},
      {"unknown field", "{\"terminal\": \"T9\"}", "terminal"},
      {"oversize", "{\"a\": \"" + std::string(kMaxBody, 'A') + "\"}", "body"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    expect_bad_field(call(Role::Counter, "POST", "/v1/nonces", c.body), c.field);
  }
  EXPECT_TRUE(ledger.nonces.empty());
}

TEST_F(HandlerTest, BadInputIsNever500) {
  const std::string bodies[] = {"",
                                "{",
                                "}",
                                "null",
                                "0",
                                "\"\"",
                                "{\"token\":\"\"}",
                                "{\"token\":\"A\"}",
                                "{\"token\":\"AAAA\"}",
                                "\x00\x01",
                                "{\"a\":[1,2,{\"b\":null}]}"};
  for (const auto& route : kRouteCases) {
    for (const auto& body : bodies) {
      for (const auto role : kAllRoles) {
        const auto r = call(role, route.method, route.target, body);
        EXPECT_LT(r.status, 500) << route.target << " " << body << " " << r.body;
        if (r.headers.front().second.starts_with("application/json")) {
          EXPECT_FALSE(json::parse(r.body, nullptr, false).is_discarded()) << route.target;
        }
      }
    }
  }
}

// --- nonces ---------------------------------------------------------------------------------

TEST_F(HandlerTest, NonceIs17BytesServerTypeBoundToTheTerminalForFiveMinutes) {
  for (const auto role : {Role::Counter, Role::Site, Role::Kiosk}) {
    for (const std::string body : {"", "{}"}) {
      const auto r = call(role, "POST", "/v1/nonces", body);
      ASSERT_EQ(r.status, 201) << r.body;
      const auto b = body_of(r);
      const auto hex = b.at("nonce").get<std::string>();
      ASSERT_EQ(hex.size(), 34U);
      EXPECT_EQ(hex.substr(0, 2), "01");
      EXPECT_EQ(b.at("issued_at"), kNow);
      EXPECT_EQ(b.at("expires_at"), kNow + 300);
      const auto bytes = from_hex(hex);
      schemas::Nonce nonce{};
      std::copy(bytes.begin(), bytes.end(), nonce.begin());
      ASSERT_TRUE(ledger.nonces.contains(nonce));
      const auto& row = ledger.nonces.at(nonce);
      EXPECT_EQ(row.terminal, "T0001");
      EXPECT_EQ(row.expires_at, kNow + 300);
      EXPECT_EQ(row.actor.terminal, "T0001");
    }
  }
  EXPECT_EQ(ledger.nonces.size(), 6U);  // all distinct
}

// P12: the nonce answer tells the terminal the shortest sync window the service applies, so that
// the slip's upload deadline and the terminal's warnings are never later than the service's.
TEST_F(HandlerTest, P12_TheNonceAnswerCarriesTheShortestSyncWindow) {
  EXPECT_EQ(body_of(call(Role::Site, "POST", "/v1/nonces")).at("sync_window_hours"), 72);  // no policy: POLICY.md's
  const auto config = policy::PolicyConfig::from_toml(
      "[defaults]\nsync_window_hours = 48\n[regions.420500]\nsync_window_hours = 24\n", "t");
  auto ctx = base_context(ledger, *trust, [] { return kNow; });
  ctx.policy = &config;
  const Handler with_policy(ctx);
  const auto r =
      with_policy.handle(Request{"POST", "/v1/nonces", {{"skillcard-clerk", "C042"}}, {}, terminal(Role::Site)});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(body_of(r).at("sync_window_hours"), 24);
}

TEST_F(HandlerTest, NonceWritesNameTheClerk) {
  auto r = call(Role::Site, "POST", "/v1/nonces", "", {});
  expect_bad_field(r, "Skillcard-Clerk");
  r = call(Role::Counter, "POST", "/v1/nonces", "", {{"skillcard-clerk", "has space"}});
  expect_bad_field(r, "Skillcard-Clerk");
  r = call(Role::Counter, "POST", "/v1/nonces", "", {{"skillcard-clerk", "C042"}});
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(ledger.nonces.begin()->second.actor.clerk, "C042");
  // A kiosk is self-service: no clerk logged in.
  r = call(Role::Kiosk, "POST", "/v1/nonces", "", {});
  EXPECT_EQ(r.status, 201);
}

TEST_F(HandlerTest, StorageFailureIs503NotABadRequest) {
  ledger.fail_storage = true;
  const auto r = call(Role::Counter, "POST", "/v1/nonces");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(body_of(r).at("error"), "SERVICE_UNAVAILABLE");
  EXPECT_EQ(verify(issued(1)).status, 503);
}

// An outage is a 503 to retry; a write whose commit answer was lost (and whose fate the ledger
// could not find out) is a 503 that does not say "nothing was changed"; a damaged ledger is a
// 500. Each is logged with its cause for the operator.
TEST_F(HandlerTest, StorageFailuresAreToldApartAndLogged) {
  std::vector<std::string> logged;
  auto ctx = base_context(ledger, *trust, [] { return kNow; });
  ctx.log = [&](const std::string& line) { logged.push_back(line); };
  const Handler logging(ctx);
  ledger.fail_storage = true;
  const auto answer = [&](ledger::StorageErrorKind kind) {
    ledger.fail_kind = kind;
    return logging.handle(Request{"POST", "/v1/nonces", {{"skillcard-clerk", "C042"}}, {}, terminal(Role::Counter)});
  };
  auto r = answer(ledger::StorageErrorKind::OutcomeUnknown);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(body_of(r).at("error"), "OUTCOME_UNKNOWN");
  EXPECT_EQ(body_of(r).at("message").at("en").get<std::string>().find("nothing was changed"), std::string::npos);
  r = answer(ledger::StorageErrorKind::Corrupt);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(body_of(r).at("error"), "INTERNAL");
  r = answer(ledger::StorageErrorKind::Busy);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(body_of(r).at("error"), "SERVICE_UNAVAILABLE");
  ASSERT_EQ(logged.size(), 3u);
  EXPECT_NE(logged[0].find("outcome unknown"), std::string::npos) << logged[0];
  EXPECT_NE(logged[1].find("fake disk failure"), std::string::npos) << logged[1];
}

TEST_F(HandlerTest, DuplicateNonceValueIsDrawnAgain) {
  int calls = 0;
  auto ctx = base_context(ledger, *trust, [] { return kNow; });
  ctx.random = [&](std::span<std::uint8_t> out) { std::fill(out.begin(), out.end(), calls++ < 2 ? 0 : 7); };
  const Handler h(ctx);
  EXPECT_EQ(h.handle({"POST", "/v1/nonces", {{"skillcard-clerk", "C1"}}, "", terminal(Role::Site)}).status, 201);
  EXPECT_EQ(h.handle({"POST", "/v1/nonces", {{"skillcard-clerk", "C1"}}, "", terminal(Role::Site)}).status, 201);
  EXPECT_EQ(ledger.nonces.size(), 2U);
}

// --- voucher verification -------------------------------------------------------------------

TEST_F(HandlerTest, VerifyAcceptsAValidTokenForEveryRole) {
  const auto token = issued(1);
  for (const auto role : kAllRoles) {
    const auto r = verify(token, role);
    ASSERT_EQ(r.status, 200) << r.body;
    const auto b = body_of(r);
    EXPECT_TRUE(b.at("valid").get<bool>());
    EXPECT_EQ(b.at("state"), "written");
    EXPECT_EQ(b.at("kid"), ledger::lower_hex(kid(keys.voucher)));
    EXPECT_EQ(b.at("voucher").at("id"), "0000000000000001");
    EXPECT_EQ(b.at("voucher").at("occupation"), "4-04-05-05");
    EXPECT_EQ(b.at("voucher").at("face_value_fen"), 180000);
  }
  EXPECT_EQ(metrics.refusals("TOKEN_BAD_SIGNATURE"), 0U);
}

// The plain body is read without a JSON document; spelt any other way the same token gets the
// same answer through the full parser.
TEST_F(HandlerTest, VerifyAnswersTheSameWhateverTheTokensJsonSpelling) {
  const auto text = base64url_encode(issued(3));
  char escaped[7];
  std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(text[0]));
  const auto plain = call(Role::Kiosk, "POST", "/v1/vouchers/verify", "{\"token\":\"" + text + "\"}");
  ASSERT_EQ(plain.status, 200) << plain.body;
  for (const auto& body :
       {" {\n\t\"token\" : \"" + text + "\" }\r\n", "{\"token\":\"" + std::string(escaped) + text.substr(1) + "\"}"}) {
    const auto r = call(Role::Kiosk, "POST", "/v1/vouchers/verify", body);
    EXPECT_EQ(r.status, 200) << body;
    EXPECT_EQ(r.body, plain.body) << body;
  }
}

TEST_F(HandlerTest, VerifyAcceptsTheUntaggedForm) {
  auto token = issued(2);
  ASSERT_EQ(token[0], 0xD2);
  token.erase(token.begin());
  ledger.vouchers.begin()->second.token = token;
  EXPECT_EQ(verify(token).status, 200);
}

// The COSE fail vectors' corruptions, applied to a token of our own signer.
TEST_F(HandlerTest, VerifyCorruptedTag) {
  auto token = issued(3);
  token[0] = 0xD3;  // tag 19
  expect_refusal(verify(token), "TOKEN_MALFORMED", "format");
}

TEST_F(HandlerTest, VerifyCorruptedAlgorithm) {
  auto token = issued(4);
  // D2 84 4E A2 01 26 04 48 <kid>: alg -7 -> -8
  ASSERT_EQ(token[5], 0x26);
  token[5] = 0x27;
  expect_refusal(verify(token), "TOKEN_MALFORMED", "format");
}

TEST_F(HandlerTest, VerifyCorruptedProtectedHeader) {
  auto token = issued(5);
  auto other_label = token;
  other_label[6] = 0x05;  // label 4 (kid) -> 5 (IV): no kid in the protected header
  expect_refusal(verify(other_label), "TOKEN_MALFORMED", "format");
  auto other_kid = token;
  other_kid[8] ^= 0x01;  // a kid nobody has
  expect_refusal(verify(other_kid), "TOKEN_UNKNOWN_KID", "kid");
}

TEST_F(HandlerTest, VerifyCorruptedSignature) {
  auto token = issued(6);
  token.back() ^= 0x01;
  expect_refusal(verify(token), "TOKEN_BAD_SIGNATURE", "signature");
  EXPECT_EQ(metrics.refusals("TOKEN_BAD_SIGNATURE"), 1U);
}

TEST_F(HandlerTest, VerifyCorruptedPayload) {
  const auto token = issued(7);
  const auto original = schemas::decode_voucher_token(token);
  crypto::EcSignature sig{};
  std::copy(original.envelope.signature().begin(), original.envelope.signature().end(), sig.begin());
  auto richer = sample_claims(7);
  richer.face_value_fen = 9'999'999;  // the same signature over another payload
  const auto forged = schemas::sign_voucher(richer, kid(keys.voucher), [&](ByteView) { return sig; });
  expect_refusal(verify(forged), "TOKEN_BAD_SIGNATURE", "signature");
  auto truncated = token;
  truncated.resize(truncated.size() - 10);
  expect_refusal(verify(truncated), "TOKEN_MALFORMED", "format");
  expect_refusal(verify(Bytes(201, 0)), "TOKEN_MALFORMED", "format");
}

TEST_F(HandlerTest, VerifyNewerFormat) {
  auto payload = schemas::encode_payload(sample_claims(8));
  // The version key -1 (0x20) with value 1: make it 2.
  bool found = false;
  for (std::size_t i = 1; i + 1 < payload.size(); ++i) {
    if (payload[i] == 0x20 && payload[i + 1] == 0x01) {
      payload[i + 1] = 0x02;
      found = true;
      break;
    }
  }
  ASSERT_TRUE(found);
  const auto token = schemas::CoseSign1::sign(kid(keys.voucher), std::nullopt, payload,
                                              [&](ByteView tbs) { return keys.voucher.sign(tbs); });
  expect_refusal(verify(token), "TOKEN_NEWER_FORMAT", "format");
}

TEST_F(HandlerTest, VerifyUnknownKidWrongRoleWrongBureau) {
  expect_refusal(verify(sign_token(sample_claims(9), keys.unlisted)), "TOKEN_UNKNOWN_KID", "kid");
  expect_refusal(verify(sign_token(sample_claims(9), keys.portfolio)), "TOKEN_UNKNOWN_KID", "kid");
  expect_refusal(verify(sign_token(sample_claims(9), keys.other_bureau)), "TOKEN_UNKNOWN_KID", "kid");
  expect_refusal(verify(sign_token(sample_claims(9), keys.root)), "TOKEN_UNKNOWN_KID", "kid");
}

TEST_F(HandlerTest, VerifyValidityWindow) {
  const auto token = issued(10);
  const auto claims = sample_claims(10);
  now = claims.not_before - 1;
  expect_refusal(verify(token), "P15_VOUCHER_NOT_YET_VALID", "validity");
  now = claims.not_before;
  EXPECT_EQ(verify(token).status, 200);
  now = claims.expires_at - 1;
  EXPECT_EQ(verify(token).status, 200);
  now = claims.expires_at;
  expect_refusal(verify(token), "P15_VOUCHER_EXPIRED", "validity");
}

TEST_F(HandlerTest, VerifyLedgerStates) {
  using S = ledger::VoucherState;
  EXPECT_EQ(verify(issued(11, S::Issued)).status, 200);
  expect_refusal(verify(issued(12, S::Redeemed)), "P15_ALREADY_REDEEMED", "ledger");
  expect_refusal(verify(issued(13, S::Voided)), "P15_VOUCHER_VOIDED", "ledger");
  expect_refusal(verify(issued(14, S::Moved)), "P15_VOUCHER_VOIDED", "ledger");
  expect_refusal(verify(issued(15, S::Expired)), "P15_VOUCHER_EXPIRED", "ledger");
  expect_refusal(verify(sign_token(sample_claims(16), keys.voucher)), "VOUCHER_UNKNOWN", "ledger");
}

TEST_F(HandlerTest, RefusalMessagesComeFromTheCatalogue) {
  auto token = issued(17);
  token.back() ^= 0x01;
  const auto b = body_of(verify(token));
  const auto& entry = schemas::refusal("TOKEN_BAD_SIGNATURE");
  EXPECT_EQ(b.at("message").at("zh-CN"), entry.zh_cn);
  EXPECT_EQ(b.at("message").at("en"), entry.en);
  const auto bad = body_of(call(Role::Site, "POST", "/v1/vouchers/verify", "{}"));
  EXPECT_EQ(bad.at("message").at("en"), "Bad request field \"token\": missing.");
}

// --- trust store and terminal identity ------------------------------------------------------

TEST(TrustStore, RefusesAListNotSignedByThePinnedRoot) {
  KeySet keys;
  const auto list = keys.signed_list();
  EXPECT_THROW(TrustStore::from_signed_list(list, keys.voucher.public_key()), TrustStoreError);
  auto tampered = list;
  tampered.back() ^= 1;
  EXPECT_THROW(TrustStore::from_signed_list(tampered, keys.root.public_key()), TrustStoreError);
  EXPECT_THROW(TrustStore::from_signed_list(Bytes{0xA0}, keys.root.public_key()), TrustStoreError);
}

TEST(TrustStore, BuildsAndSignsTheListFromAKeyFolder) {
  KeySet keys;
  const auto dir = std::filesystem::temp_directory_path() / ("skillcard-trust-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  write_key_folder(dir, keys);
  const auto store = TrustStore::from_key_folder(dir, kNow);
  EXPECT_EQ(store->claims().entries.size(), 3U);
  EXPECT_TRUE(store->find(kid(keys.voucher), schemas::TrustRole::Voucher, kBureau, kNow));
  EXPECT_TRUE(store->find(kid(keys.other_bureau), schemas::TrustRole::Voucher, 420200, kNow));
  EXPECT_FALSE(store->find(kid(keys.voucher), schemas::TrustRole::Voucher, 420200, kNow));
  EXPECT_FALSE(store->find(kid(keys.portfolio), schemas::TrustRole::Voucher, std::nullopt, kNow));
  EXPECT_TRUE(store->find(kid(keys.portfolio), schemas::TrustRole::Portfolio, kProvince, kNow));
  EXPECT_FALSE(store->find(kid(keys.voucher), schemas::TrustRole::Voucher, kBureau, kNow - 1));
  // The list it serves verifies against the root certificate's key.
  const auto again = TrustStore::from_signed_list(store->signed_list(), keys.root.public_key());
  EXPECT_EQ(again->claims(), store->claims());
  std::filesystem::remove(dir / "province-root.key.pem");
  EXPECT_THROW(TrustStore::from_key_folder(dir, kNow), TrustStoreError);
  std::filesystem::remove_all(dir);
}

// With the list of a signing ceremony in the folder, the service serves that list (its
// sequence, its dates), checked against the root certificate — the root key may stay offline.
TEST(TrustStore, LoadServesTheCeremonysListWhenTheFolderHasOne) {
  KeySet keys;
  const auto dir = std::filesystem::temp_directory_path() / ("skillcard-trust-load-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  write_key_folder(dir, keys);
  EXPECT_EQ(TrustStore::load(dir, kNow)->claims().sequence, 1U);  // no ceremony yet: signed at start
  const auto ceremony = TrustStore::from_key_folder(dir, kNow - 86'400, 7)->signed_list();
  std::ofstream(dir / TrustStore::kCeremonyFile, std::ios::binary)
      .write(reinterpret_cast<const char*>(ceremony.data()), static_cast<std::streamsize>(ceremony.size()));
  std::filesystem::remove(dir / "province-root.key.pem");
  const auto store = TrustStore::load(dir, kNow);
  EXPECT_EQ(store->claims().sequence, 7U);
  EXPECT_EQ(store->claims().issued_at, kNow - 86'400);
  EXPECT_EQ(store->signed_list(), ceremony);
  EXPECT_TRUE(store->find(kid(keys.voucher), schemas::TrustRole::Voucher, kBureau, kNow));
  // A list that is not the root's is refused at start, naming the file.
  auto tampered = ceremony;
  tampered.back() ^= 1;
  std::ofstream(dir / TrustStore::kCeremonyFile, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(tampered.data()), static_cast<std::streamsize>(tampered.size()));
  try {
    (void)TrustStore::load(dir, kNow);
    ADD_FAILURE() << "a tampered ceremony list was accepted";
  } catch (const TrustStoreError& e) {
    EXPECT_NE(std::string(e.what()).find("trust-list.cose"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Terminal, IdentityFromTheCertificateSubject) {
  auto v = terminal_from_subject({"T0001", "skillcard", "site", "420100", "10001"});
  ASSERT_TRUE(v.terminal) << v.reason;
  EXPECT_EQ(*v.terminal, (Terminal{"T0001", Role::Site, 420100, 10001}));
  v = terminal_from_subject({"K7", "skillcard", "kiosk", "420100", ""});
  ASSERT_TRUE(v.terminal);
  EXPECT_FALSE(v.terminal->site);
  EXPECT_FALSE(terminal_from_subject({"T1", "skillcard", "site", "420100", ""}).terminal);      // site needs site id
  EXPECT_FALSE(terminal_from_subject({"T1", "skillcard", "counter", "420100", "1"}).terminal);  // only sites
  EXPECT_FALSE(terminal_from_subject({"T1", "skillcard", "service", "420100", ""}).terminal);   // not a terminal
  EXPECT_FALSE(terminal_from_subject({"T 1", "skillcard", "kiosk", "420100", ""}).terminal);    // id charset
  EXPECT_FALSE(terminal_from_subject({"T1", "skillcard", "kiosk", "42010", ""}).terminal);      // region
  EXPECT_FALSE(terminal_from_subject({std::string(33, 'A'), "skillcard", "kiosk", "420100", ""}).terminal);
}

TEST(Terminal, RevocationListReloadsWhenTheFileChanges) {
  const auto file = std::filesystem::temp_directory_path() / ("skillcard-revoked-" + std::to_string(::getpid()));
  std::filesystem::remove(file);
  TerminalRevocations list(file);
  EXPECT_FALSE(list.reload_if_changed());
  EXPECT_FALSE(list.is_revoked("T0001", ""));
  { std::ofstream(file) << "# revoked terminals\nT0001\nserial:00:AB # lost\n"; }
  EXPECT_TRUE(list.reload_if_changed());
  EXPECT_TRUE(list.is_revoked("T0001", ""));
  EXPECT_TRUE(list.is_revoked("T0002", "ab"));
  EXPECT_TRUE(list.is_revoked("T0002", "00AB"));
  EXPECT_FALSE(list.is_revoked("T0002", "abc"));
  EXPECT_FALSE(list.reload_if_changed());
  { std::ofstream(file) << "T0002\n"; }
  std::filesystem::last_write_time(file, std::filesystem::last_write_time(file) + std::chrono::seconds(2));
  EXPECT_TRUE(list.reload_if_changed());
  EXPECT_FALSE(list.is_revoked("T0001", ""));
  EXPECT_TRUE(list.is_revoked("T0002", ""));
  // A list that vanished keeps what it revoked (said once); emptied, it revokes none.
  std::filesystem::remove(file);
  std::string problem;
  EXPECT_FALSE(list.reload_if_changed(&problem));
  EXPECT_NE(problem.find("is gone; keeping the 1 entries"), std::string::npos) << problem;
  EXPECT_TRUE(list.is_revoked("T0002", ""));
  problem.clear();
  EXPECT_FALSE(list.reload_if_changed(&problem));
  EXPECT_EQ(problem, "");
  { std::ofstream(file) << ""; }
  EXPECT_TRUE(list.reload_if_changed());
  EXPECT_EQ(list.size(), 0U);
  // What `openssl x509 -serial` prints, 0x, and lines that are neither: named and ignored.
  { std::ofstream(file) << "serial=3F9A\nserial:0x0b\nT 0003\nserial:xyz\nT0004\n"; }
  std::filesystem::last_write_time(file, std::filesystem::last_write_time(file) + std::chrono::seconds(4));
  EXPECT_TRUE(list.reload_if_changed(&problem));
  EXPECT_NE(problem.find("line 3, 4 is not a terminal id"), std::string::npos) << problem;
  EXPECT_TRUE(list.is_revoked("T9", "3f9a"));
  EXPECT_TRUE(list.is_revoked("T9", "0B"));
  EXPECT_TRUE(list.is_revoked("T0004", ""));
  EXPECT_EQ(list.size(), 3U);
  std::filesystem::remove(file);
}

TEST(Encoding, Base64urlRoundTripAndStrictness) {
  for (std::size_t n = 0; n < 40; ++n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 37 + n);
    const auto text = base64url_encode(b);
    EXPECT_EQ(text.find('='), std::string::npos);
    EXPECT_EQ(base64url_decode(text), b);
  }
  EXPECT_EQ(base64url_encode(as_bytes("\xfb\xff")), "-_8");
  EXPECT_FALSE(base64url_decode("A"));
  EXPECT_FALSE(base64url_decode("AB"));  // non-zero trailing bits
  EXPECT_TRUE(base64url_decode("AA"));
  EXPECT_FALSE(base64url_decode("AA=="));
  EXPECT_FALSE(base64url_decode("A A="));
}

}  // namespace
}  // namespace skillcard::service
