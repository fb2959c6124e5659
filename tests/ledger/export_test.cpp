// Export of redemptions and settlement per training provider and fund, as CSV and JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "fixtures.hpp"
#include "skillcard/ledger/export.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;
using schemas::NonceKind;

namespace {

struct Export : ::testing::Test {
  void SetUp() override {
    s = seeded_ledger(dir / "ledger.db", 1);
    const auto card = s.cards[0].number;
    // provider 10002 / fund 2, provider 10001 / fund 1 (×2), provider 10001 / fund 2; one reversed.
    const struct {
      std::uint32_t site;
      FundSource fund;
      std::uint32_t face;
    } plan[] = {{10002, FundSource::EmploymentSubsidyFund, 300000},
                {10001, FundSource::SpecialAccount, 180000},
                {10001, FundSource::EmploymentSubsidyFund, 120000},
                {10001, FundSource::SpecialAccount, 200000},
                {10001, FundSource::SpecialAccount, 50000}};
    unsigned i = 0;
    for (const auto& p : plan) {
      const auto v = issue_ok(*s.ledger, claims_for(holder(1), p.fund, p.face, kNow, 4040501 + i), card);
      auto request = redeem_request(receipt(v.id(), i + 1, nonce(NonceKind::Terminal, i), p.site), card);
      request.server_time = kNow + 100 * i;
      EXPECT_EQ(s.ledger->record_redemption(request).status, RecordStatus::Recorded);
      ids.push_back(v.id());
      ++i;
    }
    s.ledger->reverse_redemption(ids[4], "=HYPERLINK(\"x\"), \"disputed\"", clerk("OP01", "auditor"), kNow + 1000);
  }
  TempDir dir;
  SeededLedger s;
  std::vector<VoucherId> ids;
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto end = text.find("\r\n", pos);
    out.push_back(text.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

}  // namespace

TEST_F(Export, RedemptionsAreSortedByProviderAndFund) {
  const auto rows = s.ledger->list_redemptions({});
  ASSERT_EQ(rows.size(), 5u);
  std::vector<std::pair<std::uint32_t, FundSource>> keys;
  for (const auto& r : rows) keys.emplace_back(r.redemption.site, r.fund);
  EXPECT_EQ(keys, (std::vector<std::pair<std::uint32_t, FundSource>>{{10001, FundSource::SpecialAccount},
                                                                     {10001, FundSource::SpecialAccount},
                                                                     {10001, FundSource::SpecialAccount},
                                                                     {10001, FundSource::EmploymentSubsidyFund},
                                                                     {10002, FundSource::EmploymentSubsidyFund}}));
  EXPECT_EQ(s.ledger->list_redemptions({10001, FundSource::SpecialAccount}).size(), 3u);
  EXPECT_EQ(s.ledger->list_redemptions({std::nullopt, FundSource::EmploymentSubsidyFund}).size(), 2u);
  EXPECT_EQ(s.ledger->list_redemptions({std::nullopt, std::nullopt, kNow + 100, kNow + 300}).size(), 2u);
}

TEST_F(Export, CsvHasAHeaderOneRowPerRedemptionAndQuotedText) {
  std::ostringstream out;
  write_redemptions_csv(out, s.ledger->list_redemptions({}));
  const auto l = lines(out.str());
  ASSERT_EQ(l.size(), 6u);
  EXPECT_EQ(l[0].substr(0, 35), "provider,fund,seq,voucher_id,card,c");
  EXPECT_EQ(l[1].substr(0, 10), "10001,1,2,");
  EXPECT_NE(l[1].find(",4-04-05-02,"), std::string::npos) << l[1];
  EXPECT_NE(l[1].find(",180000,"), std::string::npos);
  // The reversed one carries its time and its reason, quoted and defused for spreadsheets.
  const auto& reversed = l[3];
  EXPECT_NE(reversed.find(std::to_string(kNow + 1000) + ",\"'=HYPERLINK(\"\"x\"\"), \"\"disputed\"\"\""),
            std::string::npos)
      << reversed;
}

// OWASP lists a leading TAB or CR as formula triggers too (a spreadsheet drops it, then runs
// what follows).
TEST(CsvText, DefusesEveryFormulaLeadAndQuotesPerRfc4180) {
  EXPECT_EQ(csv_text("plain"), "plain");
  EXPECT_EQ(csv_text("=1+1"), "'=1+1");
  EXPECT_EQ(csv_text("+1"), "'+1");
  EXPECT_EQ(csv_text("-1"), "'-1");
  EXPECT_EQ(csv_text("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(csv_text("\t=1+1"), "'\t=1+1");
  EXPECT_EQ(csv_text("\r=1+1"), "\"'\r=1+1\"");
  EXPECT_EQ(csv_text("a,\"b\""), "\"a,\"\"b\"\"\"");
  EXPECT_EQ(csv_text(""), "");
}

TEST_F(Export, JsonGroupsPerProviderAndFundWithTotalsExcludingReversals) {
  std::ostringstream out;
  write_redemptions_json(out, s.ledger->list_redemptions({}), kNow);
  const auto doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc["format"], "skillcard-ledger-redemptions/1");
  const auto& groups = doc["groups"];
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0]["provider"], 10001);
  EXPECT_EQ(groups[0]["fund"], 1);
  EXPECT_EQ(groups[0]["count"], 2);
  EXPECT_EQ(groups[0]["total_fen"], 380000);
  EXPECT_EQ(groups[0]["redemptions"].size(), 3u);
  EXPECT_EQ(groups[0]["redemptions"][2]["reversal_reason"], "=HYPERLINK(\"x\"), \"disputed\"");
  EXPECT_TRUE(groups[0]["redemptions"][0]["reversed_at"].is_null());
  EXPECT_EQ(groups[0]["redemptions"][0]["voucher_id"], lower_hex(ids[1]));
  EXPECT_EQ(groups[2]["provider"], 10002);
  EXPECT_EQ(groups[2]["total_fen"], 300000);
}

// Text that is not UTF-8 never enters the ledger (PostgreSQL would refuse it, so SQLite does too);
// and should a file edited outside hold some, the export stays valid JSON for the provincial
// systems: each stray byte becomes U+FFFD, valid Chinese passes through.
TEST_F(Export, TextThatIsNotUtf8IsRefusedAndNeverBreaksTheJson) {
  EXPECT_THROW(s.ledger->reverse_redemption(ids[3], "\xff\xfe gbk", clerk("OP01", "auditor"), kNow + 1000),
               std::invalid_argument);
  EXPECT_THROW(s.ledger->reverse_redemption(ids[3], "ok", clerk("OP01", "\xc0\xaf"), kNow + 1000),
               std::invalid_argument);
  EXPECT_FALSE(s.ledger->redemption(ids[3])->reversed_at);
  auto rows = s.ledger->list_redemptions({});
  rows[0].redemption.reversal_reason = "\xff\xfe gbk; \xc0\xaf overlong; 考勤 ok; \xed\xa0\x80 surrogate; \xe8\x80";
  std::ostringstream out;
  write_redemptions_json(out, rows, kNow);
  nlohmann::json doc;
  ASSERT_NO_THROW(doc = nlohmann::json::parse(out.str()));
  std::string reason;
  for (const auto& g : doc["groups"]) {
    for (const auto& r : g["redemptions"]) {
      if (r["voucher_id"] == lower_hex(rows[0].redemption.voucher)) reason = r["reversal_reason"];
    }
  }
  EXPECT_EQ(reason, "\uFFFD\uFFFD gbk; \uFFFD\uFFFD overlong; 考勤 ok; \uFFFD\uFFFD\uFFFD surrogate; \uFFFD\uFFFD");
  EXPECT_TRUE(well_formed_utf8("考勤"));
  EXPECT_FALSE(well_formed_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST_F(Export, SettlementSumsWhatIsOwedPerProviderAndFund) {
  const auto lines_ = s.ledger->settlement({});
  EXPECT_EQ(lines_, (std::vector<SettlementLine>{{10001, FundSource::SpecialAccount, 2, 380000},
                                                 {10001, FundSource::EmploymentSubsidyFund, 1, 120000},
                                                 {10002, FundSource::EmploymentSubsidyFund, 1, 300000}}));
  std::ostringstream csv;
  write_settlement_csv(csv, lines_);
  EXPECT_EQ(csv.str(),
            "provider,fund,count,total_fen,recovered_count,recovered_fen,net_fen\r\n10001,1,2,380000,0,0,380000\r\n"
            "10001,2,1,120000,0,0,120000\r\n10002,2,1,300000,0,0,300000\r\n");
  std::ostringstream json;
  write_settlement_json(json, lines_, kNow);
  const auto doc = nlohmann::json::parse(json.str());
  ASSERT_EQ(doc["lines"].size(), 3u);
  EXPECT_EQ(doc["lines"][2]["total_fen"], 300000);
  EXPECT_EQ(s.ledger->settlement({10002, std::nullopt}).size(), 1u);
  EXPECT_EQ(doc["format"], "skillcard-ledger-settlement/2");

  // A period that ended before the reversal (redeemed at +400, reversed at +1000) still owes it:
  // a settled period never changes. The period of the reversal recovers it.
  EXPECT_EQ(s.ledger->settlement({std::nullopt, std::nullopt, 0, kNow + 500}),
            (std::vector<SettlementLine>{{10001, FundSource::SpecialAccount, 3, 430000},
                                         {10001, FundSource::EmploymentSubsidyFund, 1, 120000},
                                         {10002, FundSource::EmploymentSubsidyFund, 1, 300000}}));
  const auto later = s.ledger->settlement({std::nullopt, std::nullopt, kNow + 500, kNow + 2000});
  EXPECT_EQ(later, (std::vector<SettlementLine>{{10001, FundSource::SpecialAccount, 0, 0, 1, 50000}}));
  EXPECT_EQ(later[0].net_fen(), -50000);
  EXPECT_TRUE(s.ledger->settlement({std::nullopt, std::nullopt, kNow + 2000, kNow + 3000}).empty());
}
