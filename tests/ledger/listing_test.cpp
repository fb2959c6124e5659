// Ledger listings for #9 (for_each_voucher, for_each_certificate): every row that matches the
// filter, once, in key order, from one snapshot.
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "skillcard/schemas/portfolio.hpp"

namespace skillcard::ledger::test {
namespace {

TEST(LedgerListing, ForEachVoucherStreamsEveryMatchInSerialOrder) {
  TempDir dir;
  auto s = seeded(dir / "l.db", 3);
  std::vector<VoucherRecord> issued;
  for (unsigned h = 1; h <= 3; ++h) {
    for (unsigned k = 0; k < 3; ++k) {
      const auto fund = k == 0 ? FundSource::EmploymentSubsidyFund : FundSource::SpecialAccount;
      issued.push_back(issue_ok(*s.ledger, claims_for(holder(h), fund, 1000 * (h + k), kNow + h * 100 + k, 4040505 + k),
                                s.cards[h - 1].number));
    }
  }
  s.ledger->mark_written(issued[0].id(), clerk(), kNow);
  s.ledger->void_voucher(issued[4].id(), "test", clerk(), kNow);

  std::vector<VoucherRecord> all;
  s.ledger->for_each_voucher({}, [&](const VoucherRecord& v) { all.push_back(v); });
  ASSERT_EQ(all.size(), issued.size());
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], *s.ledger->voucher(issued[i].id())) << i;

  std::vector<std::uint64_t> serials;
  VoucherFilter f;
  f.fund = FundSource::SpecialAccount;
  f.state = VoucherState::Issued;
  f.issued_from = kNow + 200;  // holders 2 and 3
  s.ledger->for_each_voucher(f, [&](const VoucherRecord& v) { serials.push_back(serial_of(v.id())); });
  std::vector<std::uint64_t> expected;
  for (const auto& v : issued) {
    if (v.claims.fund == FundSource::SpecialAccount && v.claims.issued_at >= kNow + 200 && v.id() != issued[4].id())
      expected.push_back(serial_of(v.id()));
  }
  EXPECT_EQ(serials, expected);
  EXPECT_EQ(expected.size(), 3u);  // holder 2's second was voided

  f = {};
  f.issued_to = kNow + 200;  // holder 1 only
  std::size_t n = 0;
  s.ledger->for_each_voucher(f, [&](const VoucherRecord& v) {
    EXPECT_EQ(v.claims.holder, holder(1));
    ++n;
  });
  EXPECT_EQ(n, 3u);
  // An exception from the visitor ends the scan, and the ledger stays usable.
  EXPECT_THROW(s.ledger->for_each_voucher({}, [](const VoucherRecord&) { throw std::runtime_error("stop"); }),
               std::runtime_error);
  EXPECT_TRUE(s.ledger->voucher(issued[0].id()).has_value());
}

// P17: the reports' read is one snapshot. A redemption committed while it runs (here: from
// inside the voucher scan, through the writer) is in none of it — not in the redemptions, not in
// its voucher's state, not in the budget's spent — and in all of it at the next read.
TEST(LedgerListing, P17_ReadForReportsIsOneSnapshot) {
  TempDir dir;
  auto s = seeded(dir / "l.db", 2);
  const auto v =
      issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1800, kNow, 4040505), s.cards[0].number);
  issue_ok(*s.ledger, claims_for(holder(2), FundSource::SpecialAccount, 1200, kNow + 1, 4040506), s.cards[1].number);
  s.ledger->mark_written(v.id(), clerk(), kNow);
  struct Seen {
    std::vector<VoucherRecord> vouchers;
    std::vector<RedemptionExportRow> redemptions;
    std::vector<Budget> budgets;
  };
  const auto read = [&](const std::function<void()>& during) {
    Seen seen;
    Ledger::ReportVisitor visit;
    visit.voucher = [&](const VoucherRecord& r) {
      if (seen.vouchers.empty() && during) during();
      seen.vouchers.push_back(r);
    };
    visit.redemption = [&](const RedemptionExportRow& r) { seen.redemptions.push_back(r); };
    visit.certificate = [](const CertificateEntry&) {};
    visit.budget = [&](const Budget& b) { seen.budgets.push_back(b); };
    s.ledger->read_for_reports(visit);
    return seen;
  };
  const auto first = read([&] {
    ASSERT_EQ(s.ledger
                  ->record_redemption(
                      redeem_request(receipt(v.id(), 1, nonce(schemas::NonceKind::Terminal, 1)), s.cards[0].number))
                  .status,
              RecordStatus::Recorded);
  });
  ASSERT_EQ(first.vouchers.size(), 2u);
  EXPECT_EQ(first.vouchers[0].state, VoucherState::Written);
  EXPECT_TRUE(first.redemptions.empty());
  ASSERT_FALSE(first.budgets.empty());
  EXPECT_EQ(first.budgets[0].fund, FundSource::SpecialAccount);
  EXPECT_EQ(first.budgets[0].spent_fen, 0);
  EXPECT_EQ(first.budgets[0].committed_fen, 3000);
  const auto second = read({});
  EXPECT_EQ(second.vouchers[0].state, VoucherState::Redeemed);
  ASSERT_EQ(second.redemptions.size(), 1u);
  EXPECT_EQ(second.redemptions[0].redemption.voucher, v.id());
  EXPECT_EQ(second.budgets[0].spent_fen, 1800);
}

TEST(LedgerListing, ForEachCertificateFiltersByDate) {
  TempDir dir;
  auto s = seeded(dir / "l.db", 2);
  for (unsigned i = 0; i < 4; ++i) {
    schemas::CertificateRecord r;
    r.kind = schemas::CertificateKind::SkillLevel;
    r.occupation = 4040505;
    r.level = static_cast<std::uint8_t>(1 + i);
    r.issuer = "湖北省职业技能鉴定指导中心";
    r.number = "N" + std::to_string(i);
    r.date_days = 20000 + i;
    r.salt = Bytes(16, static_cast<std::uint8_t>(i));
    ASSERT_EQ(s.ledger->record_certificate(holder(1 + i % 2), schemas::encode(r), clerk(), kNow).status,
              CertificateStatus::Recorded);
  }
  std::vector<std::uint32_t> dates;
  s.ledger->for_each_certificate({20001, 20003},
                                 [&](const CertificateEntry& e) { dates.push_back(e.record.date_days); });
  EXPECT_EQ(dates, (std::vector<std::uint32_t>{20001, 20002}));
  std::vector<CertificateEntry> all;  // the visitor may not call the ledger: collect, then compare
  s.ledger->for_each_certificate({}, [&](const CertificateEntry& e) { all.push_back(e); });
  ASSERT_EQ(all.size(), 4u);
  for (const auto& e : all) EXPECT_EQ(e, s.ledger->certificates(e.holder)[e.record.level <= 2 ? 0 : 1]);
}

}  // namespace
}  // namespace skillcard::ledger::test
