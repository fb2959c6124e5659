// The exhaustive tearing test: every state-changing command of the training applet is cut at
// every physical page write it makes, before, during and after the write. After power-on the
// card's state must be one its commit steps allow (docs/design.md, "Journal and commit steps"),
// reached in step order as the cut moves later, and the invariants must hold: counters
// monotonic and never reused, at most one receipt per voucher, PIN tries never restored.
#include <gtest/gtest.h>

#include <functional>
#include <iostream>
#include <set>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "training_support.hpp"

using namespace skillcard;
using namespace skillcard::card;
using namespace skillcard::card::testing;
using iso7816::CommandApdu;
using iso7816::StatusWord;
using training::CardState;
using training::SlotState;

namespace {

struct Scenario {
  std::string name;
  std::function<void(Terminal&)> prepare;  // persistent state before (its own sessions)
  Role role;
  bool verify_first;
  CommandApdu command;
  // The states the command's commit steps allow, in step order, from the state before and the
  // state after an uncut run.
  std::function<std::vector<CardState>(const CardState& before, const CardState& after)> allowed;
  bool wrong_pin = false;  // the command spends a try that no cut may give back
};

std::vector<CardState> one_step(const CardState& before, const CardState& after) { return {before, after}; }

std::vector<CardState> try_then_restore(const CardState& before, const CardState& after) {
  CardState spent = before;
  spent.tries_left = static_cast<std::uint8_t>(before.tries_left - 1);
  return {before, spent, after};
}

Eeprom prepared(const Scenario& s) {
  auto card = make_training_card();
  card->power_on();
  Terminal t(*card);
  t.select();
  if (s.prepare) s.prepare(t);
  card->power_off();
  return card->eeprom().clone();
}

// A fresh card on the image, selected, the scenario's session open (and PIN verified).
std::unique_ptr<Card> ready(const Eeprom& image, const Scenario& s, std::unique_ptr<Terminal>& t) {
  auto card = make_training_card(nullptr, image.clone());
  card->power_on();
  t = std::make_unique<Terminal>(*card);
  t->select();
  if (s.role != Role::None && t->open(s.role) != StatusWord::Success) throw std::runtime_error("open");
  if (s.verify_first && t->send(cmd::verify(kPin)).sw() != StatusWord::Success) throw std::runtime_error("verify");
  return card;
}

void check_invariants(const CardState& before, const CardState& s) {
  EXPECT_GE(s.redemption_counter, before.redemption_counter);
  EXPECT_LE(s.redemption_counter, before.redemption_counter + 1);
  EXPECT_GE(s.auth_counter, before.auth_counter);
  EXPECT_GE(s.time_mark, before.time_mark);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_GE(s.sequence_counters[i], before.sequence_counters[i]);
  EXPECT_LE(s.tries_left, s.max_tries);
  std::set<training::VoucherId> ids;
  std::set<std::uint32_t> counters;
  for (const auto& slot : s.slots) {
    if (slot.state == SlotState::Empty) continue;
    EXPECT_TRUE(ids.insert(slot.id).second) << "a voucher twice on the card";
    if (slot.state == SlotState::Redeemed || slot.state == SlotState::PurgedPending) {
      EXPECT_GT(slot.counter, 0u);
      EXPECT_LE(slot.counter, s.redemption_counter);
      EXPECT_TRUE(counters.insert(slot.counter).second) << "a redemption counter used twice";
      const auto receipt = schemas::decode_receipt(slot.body);  // at most one, complete, per voucher
      EXPECT_EQ(receipt.claims.counter, slot.counter);
      EXPECT_EQ(receipt.claims.voucher, slot.id);
    } else {
      EXPECT_EQ(slot.counter, 0u);
    }
  }
}

std::string describe(const CardState& s) {
  std::string out = "tries " + std::to_string(s.tries_left) + " redemptions " + std::to_string(s.redemption_counter) +
                    " auth " + std::to_string(s.auth_counter) + " mark " + std::to_string(s.time_mark) + " slots";
  for (const auto& slot : s.slots) out += " " + std::to_string(static_cast<int>(slot.state));
  return out;
}

std::vector<Scenario> scenarios() {
  const auto store_two = [](Terminal& t) {
    t.open(Role::Counter);
    t.send(cmd::store(voucher_token(1)));
    t.send(cmd::store(voucher_token(2)));
  };
  const auto redeemed_one = [store_two](Terminal& t) {
    store_two(t);
    t.open(Role::Site);
    t.send(cmd::verify(kPin));
    t.send(cmd::redeem({.serial = 1}));
  };
  std::vector<Scenario> out;
  out.push_back({"STORE into an empty slot", store_two, Role::Counter, false, cmd::store(voucher_token(3)), one_step});
  // Issued after voucher 1 has expired: storing one raises the card's time mark past voucher
  // 1's expiry, which frees its slot once purged.
  const auto late = [](std::uint64_t serial) {
    VoucherSpec spec;
    spec.serial = serial;
    spec.issued_at = kIssuedAt + 91ull * 86'400;
    return voucher_token(spec);
  };
  out.push_back({"STORE over a purged-pending slot",
                 [redeemed_one, late](Terminal& t) {
                   redeemed_one(t);
                   t.open(Role::Counter);
                   for (std::uint64_t i = 3; i <= 31; ++i) t.send(cmd::store(voucher_token(i)));
                   t.send(cmd::store(late(32)));
                   t.send(cmd::purge(1));
                 },
                 Role::Counter, false, cmd::store(late(40)), one_step});
  out.push_back(
      {"REDEEM", store_two, Role::Site, true, cmd::redeem({.serial = 2, .time = kIssuedAt + 7200}), one_step});
  out.push_back({"REDEEM after an earlier one", redeemed_one, Role::Site, true,
                 cmd::redeem({.serial = 2, .time = kIssuedAt + 90'000}), one_step});
  out.push_back({"VERIFY right PIN", nullptr, Role::Site, false, cmd::verify(kPin), try_then_restore});
  out.push_back({"VERIFY right PIN on the last try",
                 [](Terminal& t) {
                   t.open(Role::Site);
                   t.send(cmd::verify("0000"));
                   t.send(cmd::verify("0000"));
                 },
                 Role::Kiosk, false, cmd::verify(kPin), try_then_restore});
  out.push_back({"VERIFY wrong PIN", nullptr, Role::Kiosk, false, cmd::verify("000000"), one_step, true});
  out.push_back({"CHANGE REFERENCE DATA", nullptr, Role::Counter, false, cmd::change(kPin, "24680"), try_then_restore});
  out.push_back({"CHANGE REFERENCE DATA wrong old PIN", nullptr, Role::Counter, false, cmd::change("1111", "24680"),
                 one_step, true});
  out.push_back({"RESET RETRY COUNTER",
                 [](Terminal& t) {
                   t.open(Role::Site);
                   for (int i = 0; i < 3; ++i) t.send(cmd::verify("0000"));
                 },
                 Role::Counter, false, cmd::reset_retry_counter("97531"), one_step});
  out.push_back(
      {"WRITE DIGEST (510 bytes)", nullptr, Role::Counter, false, cmd::write_digest(Bytes(510, 0x5A)), one_step});
  out.push_back({"WRITE DIGEST over a longer one",
                 [](Terminal& t) {
                   t.open(Role::Counter);
                   t.send(cmd::write_digest(Bytes(510, 0x5A)));
                 },
                 Role::Counter, false, cmd::write_digest(Bytes(40, 0x33)), one_step});
  out.push_back({"PURGE", redeemed_one, Role::Counter, false, cmd::purge(1), one_step});
  out.push_back(
      {"INTERNAL AUTHENTICATE", nullptr, Role::None, false, cmd::internal_authenticate(Bytes(17, 1)), one_step});
  return out;
}

}  // namespace

TEST(TrainingAppletTearing, EveryCutPointOfEveryStateChangingCommand) {
  std::size_t total_cuts = 0;
  for (const auto& s : scenarios()) {
    SCOPED_TRACE(s.name);
    const Eeprom image = prepared(s);

    // Uncut reference run.
    std::unique_ptr<Terminal> t;
    auto reference = ready(image, s, t);
    const CardState before = training::read_state(reference->memory());
    const auto answer = t->send(s.command);
    const std::uint64_t writes = reference->last_command_writes();
    const CardState after = training::read_state(reference->memory());
    if (s.wrong_pin) {
      EXPECT_EQ(iso7816::sw1(answer.sw()), 0x63);
    } else {
      EXPECT_EQ(answer.sw(), StatusWord::Success);
    }
    ASSERT_GT(writes, 0u);
    const auto allowed = s.allowed(before, after);

    std::size_t cuts = 0;
    std::size_t reached = 0;  // index into `allowed`, non-decreasing as the cut moves later
    std::vector<bool> seen(allowed.size(), false);
    for (std::uint64_t i = 0; i < writes; ++i) {
      for (auto mode : {CutMode::Before, CutMode::During, CutMode::After}) {
        SCOPED_TRACE("cut at write " + std::to_string(i) + " mode " + std::to_string(static_cast<int>(mode)));
        auto card = ready(image, s, t);
        card->eeprom().arm(PowerCut{i, mode, 0x5EED + i});
        EXPECT_THROW(t->send(s.command), iso7816::UnknownOutcomeError);
        EXPECT_FALSE(card->powered());
        card->power_on();  // recovery; throws if the image were refused
        const CardState got = training::read_state(card->memory());
        std::size_t k = reached;
        while (k < allowed.size() && !(allowed[k] == got)) ++k;
        ASSERT_LT(k, allowed.size()) << "a state the commit steps do not allow: " << describe(got) << "\nbefore "
                                     << describe(before) << "\nafter  " << describe(after);
        reached = k;
        seen[k] = true;
        check_invariants(before, got);
        if (s.wrong_pin && k > 0) {
          EXPECT_EQ(got.tries_left, before.tries_left - 1);
        }
        // The card still works after recovery: a new session answers.
        Terminal again(*card);
        EXPECT_EQ(again.select().sw(), StatusWord::Success);
        EXPECT_EQ(again.open(Role::Counter), StatusWord::Success);
        EXPECT_EQ(again.send(cmd::list(training::kListAll)).sw(), StatusWord::Success);
        ++cuts;
      }
    }
    // Both ends and every intermediate step were reached by some cut.
    for (std::size_t k = 0; k < allowed.size(); ++k) {
      if (k > 0 && allowed[k] == allowed[k - 1]) continue;
      EXPECT_TRUE(seen[k]) << "no cut left step " << k;
    }
    EXPECT_EQ(reached, allowed.size() - 1);
    std::cout << "  " << s.name << ": " << writes << " page writes, " << cuts << " cut points\n";
    total_cuts += cuts;
  }
  std::cout << "tearing: " << total_cuts << " cut points tried over " << scenarios().size() << " commands\n";
  EXPECT_GT(total_cuts, 300u);
}

TEST(TrainingAppletTearing, RedeemCutRecoversByGetReceiptNeverBySecondRedemption) {
  // The host's recovery after an unknown outcome (docs/design.md, "Site redemption"): read the
  // counter from LIST; if it moved, GET RECEIPT returns the byte-identical receipt; if not,
  // REDEEM again yields the same receipt bytes (deterministic signature over the same claims).
  Scenario s{"REDEEM",
             [](Terminal& t) {
               t.open(Role::Counter);
               t.send(cmd::store(voucher_token(1)));
             },
             Role::Site,
             true,
             cmd::redeem({.serial = 1}),
             one_step};
  const Eeprom image = prepared(s);
  std::unique_ptr<Terminal> t;
  auto reference = ready(image, s, t);
  const auto receipt = t->send(s.command).data();
  const auto writes = reference->last_command_writes();
  for (std::uint64_t i = 0; i < writes; ++i) {
    auto card = ready(image, s, t);
    card->eeprom().arm(PowerCut{i, CutMode::During, i});
    EXPECT_THROW(t->send(s.command), iso7816::UnknownOutcomeError);
    card->power_on();
    Terminal host(*card);
    host.select();
    ASSERT_EQ(host.open(Role::Site), StatusWord::Success);
    ASSERT_EQ(host.send(cmd::verify(kPin)).sw(), StatusWord::Success);
    const auto list = host.send(cmd::list(training::kListAll)).data();
    const std::uint32_t counter =
        (std::uint32_t{list[16]} << 24) | (std::uint32_t{list[17]} << 16) | (std::uint32_t{list[18]} << 8) | list[19];
    if (counter == 1) {
      EXPECT_EQ(host.send(cmd::get_receipt(1)).data(), receipt);
      EXPECT_EQ(host.send(s.command).sw(), StatusWord::ConditionsNotSatisfied);
    } else {
      EXPECT_EQ(counter, 0u);
      EXPECT_EQ(host.send(cmd::get_receipt(1)).sw(), StatusWord::ReferencedDataNotFound);
      EXPECT_EQ(host.send(s.command).data(), receipt);
    }
  }
}
