// Training applet benchmarks (JSON lines, docs/design.md "Benchmark output"):
// - card.image_size: a personalised 192-page image holding 32 vouchers (some redeemed, with
//   their receipts) and a 510-byte portfolio digest — limit 12 KiB;
// - card.site_redemption_exchanges / _bytes: one site redemption after SELECT, SCP03 and PIN
//   included (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, VERIFY, LIST, REDEEM) with 3 stored
//   vouchers — limits 5 exchanges and 1 KiB both ways;
// - card.signatures_per_redemption: ECDSA signatures the card makes in that flow — limit 1;
// - card.redeem_inproc: REDEEM commands/s through InProcessChannel in an open site session,
//   against the same-run baseline of bare card-side ES256 signatures (MbedTls) over a
//   receipt-sized Sig_structure: the ratio says what the commit, SCP03 and CBOR cost on top of
//   the one signature no REDEEM can avoid.
// `--quick` (CI): fewer and shorter rounds.
#include <algorithm>
#include <chrono>
#include <iostream>

#include "bench_json.hpp"
#include "skillcard/crypto/mbedtls.hpp"
#include "training_support.hpp"

using namespace skillcard;
using namespace skillcard::card;
using namespace skillcard::card::testing;
using iso7816::StatusWord;

namespace {

constexpr double kImageLimit = 12 * 1024;
constexpr double kExchangeLimit = 5;
constexpr double kBytesLimit = 1024;
constexpr double kRedeemGoal = 0.5;  // REDEEM at least half as fast as its bare signature
volatile std::uint8_t sink = 0;

void require(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "applet_bench: " << what << " failed\n";
    std::exit(1);
  }
}

// An image with `count` stored vouchers (serials 1..count), taken after a counter session.
Eeprom with_vouchers(std::uint64_t count, bool digest) {
  auto card = make_training_card();
  card->power_on();
  Terminal t(*card);
  t.select();
  require(t.open(Role::Counter) == StatusWord::Success, "counter session");
  for (std::uint64_t i = 1; i <= count; ++i) {
    VoucherSpec spec;
    spec.serial = i;
    spec.regions = {420100, 420500};  // 4 eligible codes: the largest LIST summary and token
    spec.providers = {10001, 4'000'000'000u};
    require(t.send(cmd::store(voucher_token(spec))).sw() == StatusWord::Success, "STORE");
  }
  if (digest) require(t.send(cmd::write_digest(Bytes(510, 0xD1))).sw() == StatusWord::Success, "WRITE DIGEST");
  card->power_off();
  return card->eeprom().clone();
}

void image_size() {
  // 32 vouchers and a full digest, then 16 of them redeemed (receipts kept on the card).
  auto card = make_training_card(nullptr, with_vouchers(32, true));
  card->power_on();
  Terminal t(*card);
  t.select();
  require(t.open(Role::Site) == StatusWord::Success, "site session");
  require(t.send(cmd::verify(kPin)).sw() == StatusWord::Success, "VERIFY");
  for (std::uint64_t i = 1; i <= 16; ++i) {
    require(t.send(cmd::redeem({.serial = i, .time = kIssuedAt + 86'400 + static_cast<std::uint32_t>(i)})).sw() ==
                StatusWord::Success,
            "REDEEM");
  }
  const auto s = training::read_state(card->memory());
  std::size_t used = 0, slots = 0;
  for (const auto& slot : s.slots) {
    if (slot.state == training::SlotState::Empty) continue;
    ++slots;
    used += training::layout::kSlotBody + slot.body.size();
  }
  used += 2 + s.digest.size();
  const double size = static_cast<double>(card->eeprom().image().size());
  const bool ok = slots == 32 && s.digest.size() == 510 && size <= kImageLimit;
  bench::report("card.image_size", size, "bytes", std::nullopt, std::nullopt,
                "limit 12288 bytes; 32 vouchers (16 redeemed, receipts kept) + 510-byte digest; slots and digest use " +
                    std::to_string(used) + " bytes",
                ok);
}

void site_redemption() {
  training::TrainingApplet* applet = nullptr;
  auto card = make_training_card(&applet, with_vouchers(3, false));
  card->power_on();
  Terminal t(*card);
  require(t.select().sw() == StatusWord::Success, "SELECT");
  t.reset_counts();
  const auto signatures = applet->signatures();
  require(t.open(Role::Site) == StatusWord::Success, "INITIALIZE UPDATE + EXTERNAL AUTHENTICATE");
  require(t.send(cmd::verify(kPin)).sw() == StatusWord::Success, "VERIFY");
  const auto list = t.send(cmd::list(training::kListStored));
  require(list.sw() == StatusWord::Success && list.data().size() == 24 + 3 * 35, "LIST");
  const auto receipt = t.send(cmd::redeem({.serial = 2}));
  require(receipt.sw() == StatusWord::Success, "REDEEM");
  const auto exchanges = static_cast<double>(t.exchanges());
  const auto bytes = static_cast<double>(t.bytes());
  const auto signed_count = static_cast<double>(applet->signatures() - signatures);
  bench::report("card.site_redemption_exchanges", exchanges, "exchanges", std::nullopt, std::nullopt,
                "limit 5 after SELECT: IU, EA, VERIFY, LIST, REDEEM", exchanges <= kExchangeLimit);
  bench::report("card.site_redemption_bytes", bytes, "bytes", std::nullopt, std::nullopt,
                "limit 1024 both ways, SCP03 level 33, 3 stored vouchers, receipt " +
                    std::to_string(receipt.data().size()) + " bytes",
                bytes <= kBytesLimit);
  bench::report("card.signatures_per_redemption", signed_count, "signatures", std::nullopt, std::nullopt,
                "limit 1: the receipt only", signed_count <= 1);
}

void redeem_rate(bool quick) {
  const Eeprom prepared = with_vouchers(32, false);
  // Candidate: 32 REDEEMs in an open site session, timed alone (setup outside the clock).
  std::uint32_t time = kIssuedAt + 86'400;
  auto candidate = [&]() -> std::pair<std::size_t, double> {
    auto card = make_training_card(nullptr, prepared.clone());
    card->power_on();
    Terminal t(*card);
    t.select();
    require(t.open(Role::Site) == StatusWord::Success, "site session");
    require(t.send(cmd::verify(kPin)).sw() == StatusWord::Success, "VERIFY");
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 1; i <= 32; ++i) {
      require(t.send(cmd::redeem({.serial = i, .time = ++time})).sw() == StatusWord::Success, "REDEEM");
    }
    return {32, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  };
  // Baseline: the same number of bare signatures with a card key over a receipt-sized message.
  const auto key = crypto::MbedTls::PrivateKey::generate();
  Bytes message(110, 0x84);
  auto baseline = [&]() -> std::pair<std::size_t, double> {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 32; ++i) {
      message[20] = static_cast<std::uint8_t>(i);
      sink = static_cast<std::uint8_t>(sink ^ key.sign(message)[0]);
    }
    return {32, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  };
  const int rounds = quick ? 3 : 9;
  const int batches = quick ? 2 : 6;
  std::vector<double> c, b;
  candidate();
  baseline();
  for (int r = 0; r < rounds; ++r) {
    std::size_t n = 0;
    double s = 0;
    for (int k = 0; k < batches; ++k) {
      const auto [count, seconds] = candidate();
      n += count;
      s += seconds;
    }
    c.push_back(static_cast<double>(n) / s);
    n = 0;
    s = 0;
    for (int k = 0; k < batches; ++k) {
      const auto [count, seconds] = baseline();
      n += count;
      s += seconds;
    }
    b.push_back(static_cast<double>(n) / s);
  }
  std::sort(c.begin(), c.end());
  std::sort(b.begin(), b.end());
  const double value = c[c.size() / 2];
  const double base = b[b.size() / 2];
  bench::report("card.redeem_inproc", value, "ops/s", base, kRedeemGoal,
                "REDEEM through InProcessChannel in a site session (SCP03 33, one 6-page commit, one signature); "
                "baseline: bare MbedTls ES256 signatures");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick =
      bench::quick_only(argc, argv, "applet_bench [--quick]   (--quick: fewer and shorter rounds, as CI runs it)");
  image_size();
  site_redemption();
  redeem_rate(quick);
  return 0;
}
