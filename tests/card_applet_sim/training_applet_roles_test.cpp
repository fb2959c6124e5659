// Every command in every role and state (docs/design.md, "INS map"): plain (no session), each
// role's session without and with a verified PIN, and unwrapped inside a session. The table
// below is written from the design note, independently of the applet's own.
#include <gtest/gtest.h>

#include "training_support.hpp"

using namespace skillcard;
using namespace skillcard::card;
using namespace skillcard::card::testing;
using iso7816::StatusWord;

namespace {

// Y allowed, N 6982, V allowed only after VERIFY in this session.
struct Row {
  std::uint8_t ins;
  const char* name;
  char plain, counter, site, kiosk;
};

constexpr Row kTable[] = {
    {0xCA, "GET DATA", 'Y', 'Y', 'Y', 'Y'},
    {0x88, "INTERNAL AUTHENTICATE", 'Y', 'Y', 'N', 'V'},
    {0x20, "VERIFY", 'N', 'Y', 'Y', 'Y'},
    {0x24, "CHANGE REFERENCE DATA", 'N', 'Y', 'N', 'N'},
    {0x2C, "RESET RETRY COUNTER", 'N', 'Y', 'N', 'N'},
    {0x30, "STORE VOUCHER", 'N', 'Y', 'N', 'N'},
    {0x32, "LIST VOUCHERS", 'N', 'Y', 'V', 'V'},
    {0x34, "READ VOUCHER", 'N', 'Y', 'N', 'V'},
    {0x36, "REDEEM", 'N', 'N', 'V', 'N'},
    {0x38, "GET RECEIPT", 'N', 'Y', 'V', 'N'},
    {0x3A, "PURGE", 'N', 'Y', 'N', 'N'},
    {0x40, "WRITE DIGEST", 'N', 'Y', 'N', 'N'},
    {0x42, "READ DIGEST", 'N', 'Y', 'N', 'V'},
};

// A card with voucher 1 stored, voucher 2 redeemed (receipt counter 1) and a digest, so that
// every allowed sample command has something to work on.
const Eeprom& prepared_image() {
  static const Eeprom image = [] {
    auto card = make_training_card();
    card->power_on();
    Terminal t(*card);
    t.select();
    t.open(Role::Counter);
    t.send(cmd::store(voucher_token(1)));
    t.send(cmd::store(voucher_token(2)));
    t.send(cmd::write_digest(Bytes(100, 0xD1)));
    t.open(Role::Site);
    t.send(cmd::verify(kPin));
    if (t.send(cmd::redeem({.serial = 2})).sw() != StatusWord::Success) throw std::runtime_error("setup REDEEM");
    card->power_off();
    return card->eeprom().clone();
  }();
  return image;
}

struct Outcome {
  StatusWord sw;
  bool session_open_after;
};

// mode: 0 plain, 1 session without PIN, 2 session with PIN, 3 unwrapped inside a session.
Outcome run(std::uint8_t ins, Role role, int mode) {
  training::TrainingApplet* applet = nullptr;
  auto card = make_training_card(&applet, prepared_image().clone());
  card->power_on();
  Terminal t(*card);
  t.select();
  if (mode != 0) {
    if (t.open(role) != StatusWord::Success) throw std::runtime_error("open");
    if (mode == 2 && t.send(cmd::verify(kPin)).sw() != StatusWord::Success) throw std::runtime_error("verify");
  }
  const auto command = cmd::sample(ins);
  const auto r = mode == 3 ? t.send_raw(command) : t.send(command);
  return {r.sw(), applet->role() != Role::None};
}

}  // namespace

TEST(TrainingAppletRoles, EveryCommandInEveryRoleAndState) {
  int cells = 0;
  for (const auto& row : kTable) {
    SCOPED_TRACE(row.name);
    // Plain: no session at all.
    const auto plain = run(row.ins, Role::None, 0);
    if (row.plain == 'Y') {
      EXPECT_NE(plain.sw, StatusWord::SecurityStatusNotSatisfied) << "plain";
    } else {
      EXPECT_EQ(plain.sw, StatusWord::SecurityStatusNotSatisfied) << "plain";
    }
    ++cells;
    for (auto [role, allowed] :
         {std::pair{Role::Counter, row.counter}, std::pair{Role::Site, row.site}, std::pair{Role::Kiosk, row.kiosk}}) {
      const std::string who(training::to_string(role));
      for (int mode : {1, 2}) {
        const auto out = run(row.ins, role, mode);
        const bool expect_allowed = allowed == 'Y' || (allowed == 'V' && mode == 2);
        if (expect_allowed) {
          EXPECT_NE(out.sw, StatusWord::SecurityStatusNotSatisfied) << who << (mode == 2 ? " after VERIFY" : "");
          EXPECT_NE(static_cast<int>(iso7816::sw1(out.sw)), 0x6D) << who;
        } else {
          EXPECT_EQ(out.sw, StatusWord::SecurityStatusNotSatisfied) << who << (mode == 2 ? " after VERIFY" : "");
          EXPECT_TRUE(out.session_open_after) << who << ": a role refusal keeps the session";
        }
        ++cells;
      }
      // Unwrapped inside a session: always 6982, and the session is closed.
      const auto raw = run(row.ins, role, 3);
      EXPECT_EQ(raw.sw, StatusWord::SecurityStatusNotSatisfied) << who << " unwrapped";
      EXPECT_FALSE(raw.session_open_after) << who << " unwrapped";
      ++cells;
    }
  }
  std::cout << "role table: " << cells << " cells (" << std::size(kTable) << " commands)\n";
  EXPECT_EQ(cells, 13 * 10);
}

TEST(TrainingAppletRoles, AllowedSamplesSucceed) {
  // Each allowed cell really runs the command (not some other refusal), in the role's session
  // with the PIN verified.
  for (const auto& row : kTable) {
    for (auto [role, allowed] :
         {std::pair{Role::Counter, row.counter}, std::pair{Role::Site, row.site}, std::pair{Role::Kiosk, row.kiosk}}) {
      if (allowed == 'N') continue;
      const auto out = run(row.ins, role, 2);
      EXPECT_EQ(out.sw, StatusWord::Success) << row.name << " as " << training::to_string(role);
    }
  }
}
