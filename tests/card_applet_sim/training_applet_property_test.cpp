// rapidcheck: random sequences of terminal actions (sessions of every role, PIN tries, vouchers
// stored, redeemed, purged, receipts, digests, INTERNAL AUTHENTICATE, SELECT, power cycles),
// some of them cut at a random page write, against a plain model of the card. After every
// action the card's persistent state equals the model's and every answer is the model's (and
// carries no secret of the card); after a cut it equals the model's state after some prefix of
// the action's commit steps.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <ostream>
#include <sstream>

#include "skillcard/crypto/openssl.hpp"
#include "training_support.hpp"

using namespace skillcard;
using namespace skillcard::card;
using namespace skillcard::card::testing;
using iso7816::CommandApdu;
using iso7816::StatusWord;
using training::CardState;
using training::SlotState;

namespace {

enum class Kind {
  Open,
  Verify,
  Store,
  Redeem,
  GetReceipt,
  Purge,
  List,
  WriteDigest,
  ReadDigest,
  Change,
  Reset,
  Auth,
  Select,
  Power
};
constexpr int kKinds = 14;

struct Action {
  Kind kind = Kind::Select;
  int a = 0;                                         // role, voucher serial, counter, length, "right PIN?" — by kind
  int b = 0;                                         // time offset, new PIN choice, list filter — by kind
  std::optional<std::pair<std::uint32_t, int>> cut;  // write index, mode 0/1/2
};

std::ostream& operator<<(std::ostream& os, const Action& x) {
  static const char* names[] = {"Open",        "Verify",     "Store",  "Redeem", "GetReceipt", "Purge",  "List",
                                "WriteDigest", "ReadDigest", "Change", "Reset",  "Auth",       "Select", "Power"};
  os << names[static_cast<int>(x.kind)] << "(" << x.a << "," << x.b << ")";
  if (x.cut) os << "/cut@" << x.cut->first << ":" << x.cut->second;
  return os;
}

const std::string kPins[] = {"123456", "9876", "24681357"};
const Role kRoles[] = {Role::Counter, Role::Site, Role::Kiosk};

Bytes be(std::uint64_t v, std::size_t n) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[n - 1 - i] = static_cast<std::uint8_t>(v >> (8 * i));
  return out;
}

const Bytes& token(std::uint64_t serial) {
  static std::map<std::uint64_t, Bytes> cache;
  auto it = cache.find(serial);
  if (it == cache.end()) {
    VoucherSpec spec;
    spec.serial = serial;
    spec.issued_at = kIssuedAt + serial * 1000;
    it = cache.emplace(serial, voucher_token(spec)).first;
  }
  return it->second;
}

struct Expected {
  StatusWord sw = StatusWord::Success;
  std::optional<Bytes> data;       // compared exactly when set
  std::vector<CardState> commits;  // the persistent state after each commit step
};

// The plain model: the design note's rules, written out once more without the applet's code.
class Model {
 public:
  CardState s;
  Role role = Role::None;
  bool verified = false;
  std::string pin = std::string(kPin);

  Expected refuse(StatusWord sw) { return {sw, Bytes{}, {}}; }
  void commit(Expected& e) { e.commits.push_back(s); }

  bool allowed(std::uint8_t ins) const {
    const bool v = verified && role != Role::None;
    switch (ins) {
      case training::ins::kVerify:
        return role != Role::None;
      case training::ins::kStoreVoucher:
      case training::ins::kPurge:
      case training::ins::kWriteDigest:
      case training::ins::kChangeReferenceData:
      case training::ins::kResetRetryCounter:
        return role == Role::Counter;
      case training::ins::kRedeem:
        return role == Role::Site && v;
      case training::ins::kGetReceipt:
        return role == Role::Counter || (role == Role::Site && v);
      case training::ins::kListVouchers:
        return role == Role::Counter || ((role == Role::Site || role == Role::Kiosk) && v);
      case training::ins::kReadDigest:
        return role == Role::Counter || (role == Role::Kiosk && v);
      case training::ins::kInternalAuthenticate:
        return role == Role::None || role == Role::Counter || (role == Role::Kiosk && v);
      default:
        return true;
    }
  }

  std::optional<std::size_t> find(const training::VoucherId& id) const {
    for (std::size_t i = 0; i < s.slots.size(); ++i) {
      if (s.slots[i].state != SlotState::Empty && s.slots[i].id == id) return i;
    }
    return std::nullopt;
  }

  Expected open(Role r) {
    Expected e;
    role = Role::None;
    verified = false;
    ++s.sequence_counters[static_cast<std::size_t>(kvn_of(r) - training::kKvnCounter)];
    commit(e);
    role = r;
    e.data.reset();
    return e;
  }

  Expected verify(bool right) {
    if (!allowed(training::ins::kVerify)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    if (s.tries_left == 0) return refuse(StatusWord::AuthenticationMethodBlocked);
    Expected e;
    --s.tries_left;
    commit(e);
    if (!right) {
      verified = false;
      e.sw = iso7816::make_verification_failed(s.tries_left);
      return e;
    }
    s.tries_left = training::kMaxPinTries;
    commit(e);
    verified = true;
    return e;
  }

  Expected change(bool right, const std::string& next) {
    if (!allowed(training::ins::kChangeReferenceData)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    if (s.tries_left == 0) return refuse(StatusWord::AuthenticationMethodBlocked);
    Expected e;
    --s.tries_left;
    commit(e);
    if (!right) {
      verified = false;
      e.sw = iso7816::make_verification_failed(s.tries_left);
      return e;
    }
    set_pin(next);
    commit(e);
    return e;
  }

  Expected reset(const std::string& next) {
    if (!allowed(training::ins::kResetRetryCounter)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    Expected e;
    set_pin(next);
    commit(e);
    return e;
  }

  void set_pin(const std::string& next) {
    pin = next;
    s.pin_block = training::pin_block(next);
    s.pin_length = static_cast<std::uint8_t>(next.size());
    s.tries_left = training::kMaxPinTries;
  }

  Expected store(std::uint64_t serial) {
    if (!allowed(training::ins::kStoreVoucher)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    if (find(voucher_id(serial))) return refuse(iso7816::make_sw(0x6A, 0x89));
    std::optional<std::size_t> slot;
    for (std::size_t i = 0; i < s.slots.size() && !slot; ++i) {
      if (s.slots[i].state == SlotState::Empty) slot = i;
    }
    for (std::size_t i = 0; i < s.slots.size() && !slot; ++i) {  // purged, and expired by the time mark
      if (s.slots[i].state == SlotState::PurgedPending && s.slots[i].expiry <= s.time_mark) slot = i;
    }
    if (!slot) return refuse(StatusWord::NotEnoughMemory);
    Expected e;
    const std::uint32_t iat = kIssuedAt + static_cast<std::uint32_t>(serial) * 1000;
    s.slots[*slot] = training::Slot{SlotState::Stored,     voucher_id(serial), iat + 90u * 86'400, 0, 2, 0x02,
                                    {420100, 10001, 0, 0}, token(serial)};
    s.time_mark = std::max(s.time_mark, iat);
    commit(e);
    return e;
  }

  Expected redeem(const RedeemSpec& spec) {
    if (!allowed(training::ins::kRedeem)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    const auto slot = find(voucher_id(spec.serial));
    if (!slot) return refuse(StatusWord::ReferencedDataNotFound);
    if (s.slots[*slot].state != SlotState::Stored) return refuse(StatusWord::ConditionsNotSatisfied);
    if (s.time_mark > 600 && spec.time < s.time_mark - 600) return refuse(StatusWord::WrongData);
    schemas::ReceiptClaims c;
    c.voucher = voucher_id(spec.serial);
    c.site = spec.site;
    const auto d = redeem_data(spec);
    std::copy_n(d.begin() + 12, 17, c.nonce.begin());
    c.counter = s.redemption_counter + 1;
    c.terminal_time = spec.time;
    c.classroom_hours = spec.classroom;
    c.online_hours = spec.online;
    Expected e;
    e.data = expected_receipt(c);
    s.redemption_counter = c.counter;
    s.time_mark = std::max(s.time_mark, spec.time);
    auto& slot_ref = s.slots[*slot];
    slot_ref.state = SlotState::Redeemed;
    slot_ref.counter = c.counter;
    slot_ref.body = *e.data;
    commit(e);
    return e;
  }

  Expected get_receipt(std::uint32_t counter) {
    if (!allowed(training::ins::kGetReceipt)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    for (const auto& slot : s.slots) {
      if ((slot.state == SlotState::Redeemed || slot.state == SlotState::PurgedPending) && counter != 0 &&
          slot.counter == counter) {
        return {StatusWord::Success, slot.body, {}};
      }
    }
    return refuse(StatusWord::ReferencedDataNotFound);
  }

  Expected purge(std::uint64_t serial) {
    if (!allowed(training::ins::kPurge)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    const auto slot = find(voucher_id(serial));
    if (!slot) return refuse(StatusWord::ReferencedDataNotFound);
    if (s.slots[*slot].state == SlotState::Stored) return refuse(StatusWord::CommandNotAllowedNoEf);
    Expected e;
    if (s.slots[*slot].state == SlotState::Redeemed) {
      s.slots[*slot].state = SlotState::PurgedPending;
      commit(e);
    }
    return e;
  }

  Expected list(std::uint8_t p1) {
    if (!allowed(training::ins::kListVouchers)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    Bytes out(s.holder.begin(), s.holder.end());
    for (const auto& part : {be(s.redemption_counter, 4), be(s.time_mark, 4)})
      out.insert(out.end(), part.begin(), part.end());
    for (const auto& slot : s.slots) {
      if (slot.state == SlotState::Empty || (p1 == 1 && slot.state != SlotState::Stored)) continue;
      out.push_back(static_cast<std::uint8_t>(slot.state));
      out.insert(out.end(), slot.id.begin(), slot.id.end());
      for (const auto& part : {be(slot.expiry, 4), be(slot.counter, 4)})
        out.insert(out.end(), part.begin(), part.end());
      out.push_back(slot.eligible_count);
      out.push_back(slot.kinds);
      for (auto code : slot.codes) {
        const auto b = be(code, 4);
        out.insert(out.end(), b.begin(), b.end());
      }
    }
    return {StatusWord::Success, out, {}};
  }

  Expected write_digest(const Bytes& digest) {
    if (!allowed(training::ins::kWriteDigest)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    Expected e;
    s.digest = digest;
    commit(e);
    return e;
  }

  Expected read_digest() {
    if (!allowed(training::ins::kReadDigest)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    if (s.digest.empty()) return refuse(StatusWord::ReferencedDataNotFound);
    return {StatusWord::Success, s.digest, {}};
  }

  Expected auth() {
    if (!allowed(training::ins::kInternalAuthenticate)) return refuse(StatusWord::SecurityStatusNotSatisfied);
    Expected e;
    ++s.auth_counter;
    commit(e);
    e.data.reset();  // checked separately: counter, PIN state, signature
    return e;
  }

  void lose_session() {
    role = Role::None;
    verified = false;
  }
};

std::string show(const CardState& s) {
  std::string out = "tries " + std::to_string(s.tries_left) + " pin " + to_hex(s.pin_block) + " redemptions " +
                    std::to_string(s.redemption_counter) + " auth " + std::to_string(s.auth_counter) + " mark " +
                    std::to_string(s.time_mark) + " seq " + std::to_string(s.sequence_counters[0]) + "/" +
                    std::to_string(s.sequence_counters[1]) + "/" + std::to_string(s.sequence_counters[2]) + " digest " +
                    std::to_string(s.digest.size()) + " slots";
  for (const auto& slot : s.slots) out += std::to_string(static_cast<int>(slot.state));
  return out;
}

// Vouchers 1-3 most of the time (so that stores, redemptions and purges meet), up to 36
// sometimes (so that the 32 slots fill up).
int serial_of(const Action& x) { return x.b % 4 == 0 ? x.a + 1 : x.a % 3 + 1; }

rc::Gen<std::optional<std::pair<std::uint32_t, int>>> gen_cut() {
  using Cut = std::optional<std::pair<std::uint32_t, int>>;
  return rc::gen::weightedOneOf<Cut>(
      {{12, rc::gen::just(Cut())},
       {1, rc::gen::map(rc::gen::pair(rc::gen::inRange<std::uint32_t>(0, 24), rc::gen::inRange(0, 3)),
                        [](std::pair<std::uint32_t, int> p) { return Cut(p); })}});
}

rc::Gen<int> kind_gen(const std::vector<std::pair<std::size_t, int>>& kinds) {
  std::size_t total = 0;
  for (const auto& [weight, kind] : kinds) total += weight;
  return rc::gen::map(rc::gen::inRange<std::size_t>(0, total), [kinds](std::size_t pick) {
    for (const auto& [weight, kind] : kinds) {
      if (pick < weight) return kind;
      pick -= weight;
    }
    return kinds.back().second;
  });
}

// One action of the given kinds (weights), any parameters, sometimes cut.
rc::Gen<Action> gen_action(std::vector<std::pair<std::size_t, int>> kinds) {
  return rc::gen::apply(
      [](int kind, int a, int b, std::optional<std::pair<std::uint32_t, int>> cut) {
        return Action{static_cast<Kind>(kind), a, b, cut};
      },
      kind_gen(kinds), rc::gen::inRange(0, 36), rc::gen::inRange(0, 4000), gen_cut());
}

// A terminal visit: INITIALIZE UPDATE (+ VERIFY half of the time) for a random role, then a few
// actions — mostly what that role does, sometimes anything at all (refusals are tested too),
// including SELECT and power cycles that end the session early.
rc::Gen<std::vector<Action>> gen_visit() {
  return rc::gen::mapcat(rc::gen::pair(rc::gen::inRange(0, 3), rc::gen::inRange(0, 4000)), [](std::pair<int, int> rp) {
    using K = Kind;
    auto k = [](K kind) { return static_cast<int>(kind); };
    std::vector<std::pair<std::size_t, int>> typical;
    switch (rp.first) {
      case 0:  // counter
        typical = {{6, k(K::Store)}, {2, k(K::Purge)},      {1, k(K::WriteDigest)}, {1, k(K::Change)},
                   {1, k(K::Reset)}, {1, k(K::GetReceipt)}, {1, k(K::List)},        {1, k(K::Auth)}};
        break;
      case 1:  // site
        typical = {{2, k(K::Verify)}, {6, k(K::Redeem)}, {2, k(K::GetReceipt)}, {2, k(K::List)}};
        break;
      default:  // kiosk
        typical = {{2, k(K::Verify)}, {2, k(K::List)}, {2, k(K::ReadDigest)}, {2, k(K::Auth)}};
        break;
    }
    std::vector<std::pair<std::size_t, int>> any;
    for (int i = 0; i < kKinds; ++i) any.push_back({1, i});
    const auto inner = rc::gen::weightedOneOf<Action>({{5, gen_action(typical)}, {1, gen_action(any)}});
    const auto count = rc::gen::inRange<std::size_t>(1, 10);
    return rc::gen::map(
        rc::gen::pair(gen_cut(),
                      rc::gen::mapcat(
                          count, [inner](std::size_t n) { return rc::gen::container<std::vector<Action>>(n, inner); })),
        [rp](std::pair<std::optional<std::pair<std::uint32_t, int>>, std::vector<Action>> p) {
          std::vector<Action> out{Action{Kind::Open, rp.first, rp.second, p.first}};
          out.insert(out.end(), p.second.begin(), p.second.end());
          return out;
        });
  });
}

}  // namespace

RC_GTEST_PROP(TrainingAppletModel, RandomSessionsAndCutsAgreeWithTheModel, ()) {
  static_assert(kKinds == 14);
  const auto visit_count = *rc::gen::inRange<std::size_t>(4, 24);
  const auto visits = *rc::gen::container<std::vector<std::vector<Action>>>(visit_count, gen_visit());
  std::vector<Action> actions;
  for (const auto& v : visits) actions.insert(actions.end(), v.begin(), v.end());
  training::TrainingApplet* applet = nullptr;
  auto card = make_training_card(&applet);
  card->power_on();
  auto t = std::make_unique<Terminal>(*card);
  RC_ASSERT(t->select().sw() == StatusWord::Success);
  Model m;
  m.s = training::read_state(card->memory());

  int cuts_fired = 0, redeemed = 0, stored = 0, verified = 0;
  for (const auto& x : actions) {
    const Model before = m;
    Expected e;
    std::function<iso7816::ResponseApdu()> run;
    switch (x.kind) {
      case Kind::Open: {
        // Half of the sessions verify the (right) PIN at once: IU, EA, VERIFY as one action
        // whose commit steps are those of INITIALIZE UPDATE then VERIFY's.
        const Role r = kRoles[x.a % 3];
        const bool with_pin = x.b % 2 == 1;
        e = m.open(r);
        if (with_pin) {
          auto v = m.verify(true);
          v.commits.insert(v.commits.begin(), e.commits.begin(), e.commits.end());
          e = v;
          e.data.reset();
        }
        run = [&, r, with_pin, pin = before.pin] {
          const auto sw = t->open(r);
          if (sw != StatusWord::Success || !with_pin) return iso7816::ResponseApdu(sw);
          return t->send(cmd::verify(pin));
        };
        break;
      }
      case Kind::Verify: {
        const bool right = x.b % 4 != 0;
        e = m.verify(right);
        run = [&, right, pin = before.pin] { return t->send(cmd::verify(right ? pin : "000000")); };
        break;
      }
      case Kind::Store:
        e = m.store(static_cast<std::uint64_t>(serial_of(x)));
        run = [&, serial = serial_of(x)] { return t->send(cmd::store(token(static_cast<std::uint64_t>(serial)))); };
        break;
      case Kind::Redeem: {
        const RedeemSpec spec{.serial = static_cast<std::uint64_t>(serial_of(x)),
                              .site = 10001,
                              .nonce_kind = 0x01,
                              .time = kIssuedAt + static_cast<std::uint32_t>(x.b) * 20,
                              .classroom = 84,
                              .online = 36};
        e = m.redeem(spec);
        run = [&, spec] { return t->send(cmd::redeem(spec)); };
        break;
      }
      case Kind::GetReceipt:
        e = m.get_receipt(static_cast<std::uint32_t>(x.a % 6));
        run = [&, c = x.a % 6] { return t->send(cmd::get_receipt(static_cast<std::uint32_t>(c))); };
        break;
      case Kind::Purge:
        e = m.purge(static_cast<std::uint64_t>(serial_of(x)));
        run = [&, serial = serial_of(x)] { return t->send(cmd::purge(static_cast<std::uint64_t>(serial))); };
        break;
      case Kind::List:
        e = m.list(static_cast<std::uint8_t>(x.b % 2));
        run = [&, p1 = x.b % 2] { return t->send(cmd::list(static_cast<std::uint8_t>(p1))); };
        break;
      case Kind::WriteDigest: {
        const Bytes digest(static_cast<std::size_t>(1 + x.b % 510), static_cast<std::uint8_t>(x.a));
        e = m.write_digest(digest);
        run = [&, digest] { return t->send(cmd::write_digest(digest)); };
        break;
      }
      case Kind::ReadDigest:
        e = m.read_digest();
        run = [&] { return t->send(cmd::read_digest()); };
        break;
      case Kind::Change: {
        const bool right = x.a % 3 != 0;
        const std::string next = kPins[x.b % 3];
        e = m.change(right, next);
        run = [&, right, next, old = before.pin] { return t->send(cmd::change(right ? old : "000000", next)); };
        break;
      }
      case Kind::Reset: {
        const std::string next = kPins[x.b % 3];
        e = m.reset(next);
        run = [&, next] { return t->send(cmd::reset_retry_counter(next)); };
        break;
      }
      case Kind::Auth:
        e = m.auth();
        run = [&] { return t->send(cmd::internal_authenticate(Bytes(17, 0x01))); };
        break;
      case Kind::Select:
        m.lose_session();
        run = [&] { return t->select(); };
        break;
      case Kind::Power:
        m.lose_session();
        run = [&] {
          card->power_off();
          card->power_on();
          return t->select();
        };
        break;
    }

    if (x.cut) {
      card->eeprom().arm(PowerCut{x.cut->first, static_cast<CutMode>(x.cut->second), x.cut->first});
    }
    std::optional<iso7816::ResponseApdu> answer;
    bool cut_fired = false;
    try {
      answer = run();
    } catch (const iso7816::UnknownOutcomeError&) {
      cut_fired = true;
    }
    card->eeprom().disarm();

    if (cut_fired) {
      ++cuts_fired;
      if (std::getenv("SKILLCARD_MODEL_TRACE")) std::cerr << x << " -> cut\n";
      // The state after some prefix of the action's commit steps, nothing else.
      RC_ASSERT(x.cut.has_value());
      card->power_on();
      const CardState got = training::read_state(card->memory());
      std::vector<CardState> candidates{before.s};
      candidates.insert(candidates.end(), e.commits.begin(), e.commits.end());
      const auto match = std::find(candidates.begin(), candidates.end(), got);
      RC_ASSERT(match != candidates.end());
      m = before;
      m.s = got;
      if (match != candidates.begin() && (x.kind == Kind::Change || x.kind == Kind::Reset) &&
          static_cast<std::size_t>(match - candidates.begin()) == candidates.size() - 1) {
        m.pin = x.kind == Kind::Reset || x.a % 3 != 0 ? kPins[x.b % 3] : before.pin;
      }
      m.lose_session();
      t = std::make_unique<Terminal>(*card);
      RC_ASSERT(t->select().sw() == StatusWord::Success);
      continue;
    }
    RC_ASSERT(answer.has_value());
    // Threat model T13: no answer carries a secret of the card — the RECEIPT and AUTH private
    // keys, the SCP03 keys, the PIN — nor any 16 bytes of one, whatever came before.
    {
      namespace L = training::layout;
      const auto& d = answer->data();
      const auto secrets = card->memory().read(L::kKeys, L::kSequenceCounters - L::kKeys);
      for (std::size_t at = 0; at + 16 <= secrets.size(); at += 16) {
        RC_ASSERT(std::search(d.begin(), d.end(), secrets.begin() + static_cast<std::ptrdiff_t>(at),
                              secrets.begin() + static_cast<std::ptrdiff_t>(at + 16)) == d.end());
      }
      // (A 4-digit PIN's bytes turn up by chance in signatures too often to assert on.)
      const std::string_view pin = m.pin;
      if (pin.size() >= 6) RC_ASSERT(std::search(d.begin(), d.end(), pin.begin(), pin.end()) == d.end());
    }
    if (x.kind != Kind::Select && x.kind != Kind::Power) {
      if (answer->sw() != e.sw) {
        RC_FAIL("action " +
                [&] {
                  std::ostringstream os;
                  os << x;
                  return os.str();
                }() +
                ": card " + iso7816::to_string(answer->sw()) + ", model " + iso7816::to_string(e.sw));
      }
      if (e.data) RC_ASSERT(answer->data() == *e.data);
    }
    if (x.kind == Kind::Auth && e.sw == StatusWord::Success) {
      const auto& d = answer->data();
      RC_ASSERT(d.size() == 69u);
      RC_ASSERT(d[4] == ((m.verified && m.role != Role::None) ? 1 : 0));
    }
    if (std::getenv("SKILLCARD_MODEL_TRACE")) {
      std::cerr << x << " [" << training::to_string(before.role) << "] -> " << iso7816::to_string(answer->sw())
                << " role " << training::to_string(m.role) << (m.verified ? " verified" : "") << "\n";
    }
    if (answer->sw() == StatusWord::Success) {
      redeemed += x.kind == Kind::Redeem;
      stored += x.kind == Kind::Store;
      verified += x.kind == Kind::Verify;
    }
    const CardState got = training::read_state(card->memory());
    if (!(got == m.s)) RC_FAIL("state differs\ncard  " + show(got) + "\nmodel " + show(m.s));
    RC_ASSERT(applet->role() == m.role);
  }
  RC_CLASSIFY(cuts_fired > 0, "a cut fired");
  RC_CLASSIFY(redeemed > 0, "redeemed");
  RC_CLASSIFY(stored > 0, "stored");
  RC_CLASSIFY(verified > 0, "verified");
}
