// Private to the ledger: the Ledger's operations written once over a backend's SQL connection
// (docs/ledger.md). SqliteLedger and PgLedger each supply a Store — their connections, their group
// committer, their transaction verbs — and instantiate Engine<Store>; the decisions, the SQL
// (the subset both dialects accept), the record encodings and the audit rows are shared, so the
// two backends cannot drift apart in what they decide.
//
// A Store provides:
//   using Db = …;  // query(sql) → Query (args, step, run, is_null, i64, u64, u32, blob, text,
//                  // fixed<N>), changes(); Db::Savepoint(db, name) with release()/rollback()
//   template <class F> void write(F&& f);          // f(Db&) in a durable, audited write transaction
//                                                   // in which this process holds the writer lock
//   template <class F> auto read(F&& f);           // f(Db&) on a reader connection
//   template <class F> auto read_snapshot(F&& f);  // … inside one read transaction
//   LedgerId ledger_id(); int schema_version();
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "skillcard/ledger/audit.hpp"
#include "skillcard/ledger/cst.hpp"
#include "skillcard/ledger/ledger.hpp"
#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/receipt.hpp"

namespace skillcard::ledger::engine {

// A blob column of exactly N bytes (a dependent-name shorthand for the templates below).
template <std::size_t N, class Q>
std::array<std::uint8_t, N> fixed(const Q& q, int col) {
  return q.template fixed<N>(col);
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

inline void require_actor(const Actor& actor) {
  if (actor.terminal.empty() || actor.clerk.empty()) {
    throw std::invalid_argument("every ledger write names its terminal and clerk (both are empty or one is)");
  }
  if (!well_formed_utf8(actor.terminal) || !well_formed_utf8(actor.clerk)) {
    throw std::invalid_argument("a terminal or clerk name is not UTF-8 text");
  }
}

// Free text kept in the ledger (reasons): the same on both backends — PostgreSQL would refuse it.
inline void require_text(std::string_view text, const char* what) {
  if (!well_formed_utf8(text)) throw std::invalid_argument(std::string(what) + " is not UTF-8 text");
}

inline void require_card_number(std::string_view number) {
  if (number.size() != 10 || number.find_first_not_of("0123456789") != std::string_view::npos) {
    throw std::invalid_argument("a card number is 10 ASCII digits, got '" + std::string(number) + "'");
  }
}

inline std::string codes_text(const std::vector<std::uint32_t>& codes) {
  std::string out;
  for (auto c : codes) {
    if (!out.empty()) out += ',';
    out += std::to_string(c);
  }
  return out;
}

inline std::vector<std::uint32_t> codes_from_text(const std::string& text) {
  std::vector<std::uint32_t> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(static_cast<std::uint32_t>(std::stoul(text.substr(pos, comma - pos))));
    pos = comma + 1;
  }
  return out;
}

inline std::string voucher_subject(const VoucherId& id) { return "voucher:" + lower_hex(id); }

inline std::string join(const std::vector<std::string_view>& codes) {
  std::string out;
  for (auto c : codes) {
    if (!out.empty()) out += ',';
    out += c;
  }
  return out;
}

// Appends one audit row, chained to the last one, inside the caller's transaction. A connection
// that keeps the chain's tip (the writers' Db::audit_tip: the row it appended last in this
// transaction, forgotten at every BEGIN and ROLLBACK [TO]) saves reading it back; otherwise the
// last row is read.
template <class Db>
void append_audit(Db& db, UtcSeconds at, const Actor& actor, std::string_view action, std::string_view subject,
                  std::string_view outcome) {
  AuditEntry e;
  constexpr bool keeps_tip = requires { db.audit_tip; };
  bool known = false;
  if constexpr (keeps_tip) {
    if (db.audit_tip) {
      e.seq = db.audit_tip->count + 1;
      e.prev_hash = db.audit_tip->hash;
      known = true;
    }
  }
  if (!known) {
    auto q = db.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
    if (q.step()) {
      e.seq = q.u64(0) + 1;
      e.prev_hash = fixed<32>(q, 1);
    } else {
      e.seq = 1;
    }
  }
  e.at = at;
  e.terminal = actor.terminal;
  e.clerk = actor.clerk;
  e.action = action;
  e.subject = subject;
  e.outcome = outcome;
  e.hash = audit_hash(e.prev_hash, e);
  db.query(
        "INSERT INTO audit_log (seq, at, terminal, clerk, action, subject, outcome, prev_hash, hash) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
      .args(e.seq, e.at, e.terminal, e.clerk, e.action, e.subject, e.outcome, ByteView(e.prev_hash), ByteView(e.hash))
      .run();
  if constexpr (keeps_tip) db.audit_tip = AuditHead{e.seq, e.hash};
}

// ---------------------------------------------------------------------------------------------
// Row readers. Each SELECT lists its columns in the order the reader expects.

template <class Q>
CardRecord card_from(const Q& q) {
  CardRecord c;
  c.number = q.text(0);
  c.holder = fixed<16>(q, 1);
  c.region = q.u32(2);
  c.certificate = q.blob(3);
  c.state = static_cast<CardState>(q.i64(4));
  if (!q.is_null(5)) c.replaced_by = q.text(5);
  c.registered_at = q.u64(6);
  c.state_changed_at = q.u64(7);
  return c;
}

#define SKILLCARD_VOUCHER_COLUMNS                                                                                  \
  "serial, signer_kid, token, holder, card, issuer, programme, occupation, level, fund, face_value_fen, "          \
  "planned_hours, planned_online_hours, eligible_regions, eligible_providers, issued_at, not_before, expires_at, " \
  "cst_year, state, state_changed_at, moved_from, moved_to, void_reason, issuing_region"

template <class Q>
VoucherRecord voucher_from(const Q& q) {
  VoucherRecord v;
  auto& c = v.claims;
  c.id = voucher_id(q.u64(0));
  v.signer = fixed<8>(q, 1);
  v.token = q.blob(2);
  c.holder = fixed<16>(q, 3);
  v.card = q.text(4);
  c.issuer = q.u32(5);
  c.programme = static_cast<schemas::Programme>(q.i64(6));
  c.occupation = q.u32(7);
  c.level = static_cast<std::uint8_t>(q.i64(8));
  c.fund = static_cast<FundSource>(q.i64(9));
  c.face_value_fen = q.u32(10);
  c.planned_hours = static_cast<std::uint16_t>(q.i64(11));
  c.planned_online_hours = static_cast<std::uint16_t>(q.i64(12));
  c.eligible_regions = codes_from_text(q.text(13));
  c.eligible_providers = codes_from_text(q.text(14));
  c.issued_at = q.u64(15);
  c.not_before = q.u64(16);
  c.expires_at = q.u64(17);
  v.cst_year = static_cast<int>(q.i64(18));
  v.state = static_cast<VoucherState>(q.i64(19));
  v.state_changed_at = q.u64(20);
  if (!q.is_null(21)) v.moved_from = voucher_id(q.u64(21));
  if (!q.is_null(22)) v.moved_to = voucher_id(q.u64(22));
  v.void_reason = q.text(23);
  if (!q.is_null(24)) v.issuing_region = q.u32(24);
  return v;
}

#define SKILLCARD_REDEMPTION_COLUMNS                                                                  \
  "r.seq, r.voucher, r.card, r.counter, r.receipt, r.site, r.nonce, r.terminal_time, r.server_time, " \
  "r.classroom_hours, r.online_hours, r.terminal, r.clerk, r.reversed_at, r.reversal_reason"

// A RedemptionFilter over `redemptions r JOIN vouchers v` (bound by bind_redemption_filter):
// provider, fund, server time in [from, to).
#define SKILLCARD_REDEMPTION_FILTER                                                      \
  "(?1 IS NULL OR r.site = ?1) AND (?2 IS NULL OR v.fund = ?2) AND r.server_time >= ?3 " \
  "AND r.server_time < ?4"

template <class Q>
RedemptionRecord redemption_from(const Q& q) {
  RedemptionRecord r;
  r.seq = q.u64(0);
  r.voucher = voucher_id(q.u64(1));
  r.card = q.text(2);
  r.counter = q.u32(3);
  r.receipt = q.blob(4);
  r.site = q.u32(5);
  r.nonce = fixed<17>(q, 6);
  r.terminal_time = q.u64(7);
  r.server_time = q.u64(8);
  r.classroom_hours = static_cast<std::uint16_t>(q.i64(9));
  r.online_hours = static_cast<std::uint16_t>(q.i64(10));
  r.actor.terminal = q.text(11);
  r.actor.clerk = q.text(12);
  if (!q.is_null(13)) r.reversed_at = q.u64(13);
  r.reversal_reason = q.text(14);
  return r;
}

#define SKILLCARD_CERTIFICATE_COLUMNS "seq, holder, record, digest_version, recorded_at, terminal, clerk"

template <class Q>
CertificateEntry certificate_from(const Q& q) {
  CertificateEntry c;
  c.seq = q.u64(0);
  c.holder = fixed<16>(q, 1);
  c.encoded = q.blob(2);
  c.record = schemas::decode_certificate_record(c.encoded);
  c.digest_version = q.u32(3);
  c.recorded_at = q.u64(4);
  c.actor.terminal = q.text(5);
  c.actor.clerk = q.text(6);
  return c;
}

template <class Db>
std::optional<CardRecord> find_card(Db& db, std::string_view number) {
  auto q = db.query(
      "SELECT number, holder, region, certificate, state, replaced_by, registered_at, state_changed_at "
      "FROM cards WHERE number = ?1");
  q.args(number);
  if (!q.step()) return std::nullopt;
  return card_from(q);
}

// The serial a voucher id from outside (a request, a receipt) is looked up by. Serials are
// positive 63-bit integers (the databases' signed 64-bit keys), so an id at or above 2^63 names no
// voucher: it becomes 0, which is never a serial, and reads as unknown — a refusal that is
// audited like any other, not a storage error.
inline std::uint64_t stored_serial(const VoucherId& id) noexcept {
  const auto serial = serial_of(id);
  return serial > static_cast<std::uint64_t>(INT64_MAX) ? 0 : serial;
}

template <class Db>
std::optional<VoucherRecord> find_voucher(Db& db, std::uint64_t serial) {
  auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS " FROM vouchers WHERE serial = ?1");
  q.args(serial);
  if (!q.step()) return std::nullopt;
  return voucher_from(q);
}

template <class Db>
std::optional<RedemptionRecord> find_redemption(Db& db, std::uint64_t serial) {
  auto q = db.query("SELECT " SKILLCARD_REDEMPTION_COLUMNS " FROM redemptions r WHERE r.voucher = ?1");
  q.args(serial);
  if (!q.step()) return std::nullopt;
  return redemption_from(q);
}

template <class Db>
std::optional<RedemptionRecord> find_redemption_by_counter(Db& db, std::string_view card, std::uint32_t counter) {
  auto q = db.query("SELECT " SKILLCARD_REDEMPTION_COLUMNS " FROM redemptions r WHERE r.card = ?1 AND r.counter = ?2");
  q.args(card, counter);
  if (!q.step()) return std::nullopt;
  return redemption_from(q);
}

// Two range reads on the (card, counter) unique index.
template <class Db>
ReceiptTimesAround find_receipt_times_around(Db& db, std::string_view card, std::uint32_t counter) {
  ReceiptTimesAround out;
  {
    auto q = db.query("SELECT max(terminal_time) FROM redemptions WHERE card = ?1 AND counter < ?2");
    q.args(card, counter);
    if (q.step() && !q.is_null(0)) out.latest_below = q.u64(0);
  }
  {
    auto q = db.query("SELECT min(terminal_time) FROM redemptions WHERE card = ?1 AND counter > ?2");
    q.args(card, counter);
    if (q.step() && !q.is_null(0)) out.earliest_above = q.u64(0);
  }
  return out;
}

template <class Db>
IssueCounts count_for_issue(Db& db, const IssueQuery& query) {
  IssueCounts c;
  {
    auto q = db.query(
        "SELECT count(*), coalesce(sum(CASE WHEN fund = 2 THEN 1 ELSE 0 END), 0) FROM vouchers "
        "WHERE holder = ?1 AND cst_year = ?2 AND state IN (1, 2, 3)");
    q.args(ByteView(query.holder), query.cst_year);
    q.step();
    c.holder_year = q.u32(0);
    c.holder_employment_fund_year = q.u32(1);
  }
  {
    auto q = db.query(
        "SELECT count(*) FROM vouchers WHERE holder = ?1 AND occupation = ?2 AND level = ?3 AND state IN (1, 2, 3)");
    q.args(ByteView(query.holder), query.occupation, static_cast<int>(query.level));
    q.step();
    c.same_occupation_level = q.u32(0);
  }
  {
    auto q = db.query("SELECT allocated_fen - committed_fen - spent_fen FROM budgets WHERE fund = ?1");
    q.args(static_cast<int>(query.fund));
    c.fund_remaining_fen = q.step() ? q.i64(0) : 0;  // no budget: nothing to spend (fail closed)
  }
  return c;
}

inline std::vector<std::string_view> violated_limits(const IssueDecision& d, const IssueCounts& fresh,
                                                     const schemas::VoucherClaims& claims) {
  std::vector<std::string_view> out;
  if (std::uint64_t{fresh.holder_year} + d.external.holder_year + 1 > d.annual_limit) out.push_back("P1_ANNUAL_LIMIT");
  if (claims.fund == FundSource::EmploymentSubsidyFund &&
      std::uint64_t{fresh.holder_employment_fund_year} + d.external.holder_employment_fund_year + 1 >
          d.employment_fund_limit) {
    out.push_back("P2_EMPLOYMENT_FUND_LIMIT");
  }
  if (std::uint64_t{fresh.same_occupation_level} + d.external.same_occupation_level + 1 >
      d.same_occupation_level_limit) {
    out.push_back("P3_SAME_OCCUPATION_LEVEL");
  }
  if (fresh.fund_remaining_fen < static_cast<std::int64_t>(claims.face_value_fen))
    out.push_back("P16_BUDGET_EXHAUSTED");
  return out;
}

// Signs the claims with `minter` and checks that the token carries exactly them.
inline std::pair<Bytes, crypto::Kid> mint(const TokenMinter& minter, const schemas::VoucherClaims& claims) {
  Bytes token = minter(claims);
  const auto decoded = schemas::decode_voucher_token(token);
  if (decoded.claims != claims) {
    throw std::invalid_argument("the minted voucher token does not carry the claims it was asked to sign");
  }
  return {std::move(token), decoded.kid};
}

// Allocates the next serial (max + 1: the Store's writer lock is held, rows are never deleted, so
// a serial is never reused and there are no gaps), has `minter` sign the claims under it and
// inserts the voucher as issued. Returns the serial.
template <class Db>
std::uint64_t insert_voucher(Db& db, schemas::VoucherClaims claims, std::string_view card, int cst, UtcSeconds now,
                             std::optional<std::uint64_t> moved_from, std::uint32_t issuing_region,
                             const TokenMinter& minter) {
  std::uint64_t serial = 0;
  {
    auto q = db.query("SELECT coalesce(max(serial), 0) + 1 FROM vouchers");
    q.step();
    serial = q.u64(0);
  }
  claims.id = voucher_id(serial);
  const auto [token, kid] = mint(minter, claims);
  const auto& c = claims;
  db.query(
        "INSERT INTO vouchers (serial, signer_kid, token, holder, card, issuer, programme, occupation, level, fund, "
        "face_value_fen, planned_hours, planned_online_hours, eligible_regions, eligible_providers, issued_at, "
        "not_before, expires_at, cst_year, state, state_changed_at, moved_from, issuing_region) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, 1, ?20, ?21, "
        "?22)")
      .args(serial, ByteView(kid), ByteView(token), ByteView(c.holder),
            card.empty() ? std::optional<std::string_view>{} : std::optional{card}, c.issuer,
            static_cast<int>(c.programme), c.occupation, static_cast<int>(c.level), static_cast<int>(c.fund),
            c.face_value_fen, static_cast<std::uint32_t>(c.planned_hours),
            static_cast<std::uint32_t>(c.planned_online_hours), codes_text(c.eligible_regions),
            codes_text(c.eligible_providers), c.issued_at, c.not_before, c.expires_at, cst, now, moved_from,
            issuing_region == 0 ? std::optional<std::uint32_t>{} : std::optional{issuing_region})
      .run();
  return serial;
}

template <class Db>
void adjust_budget(Db& db, FundSource fund, std::int64_t committed_delta, std::int64_t spent_delta) {
  db.query("UPDATE budgets SET committed_fen = committed_fen + ?1, spent_fen = spent_fen + ?2 WHERE fund = ?3")
      .args(committed_delta, spent_delta, static_cast<int>(fund))
      .run();
}

template <class Db>
NonceStatus classify_nonce(Db& db, const Nonce& nonce, std::string_view terminal, UtcSeconds now) {
  auto q = db.query("SELECT terminal, expires_at, used_at FROM nonces WHERE nonce = ?1");
  q.args(ByteView(nonce));
  if (!q.step() || q.text(0) != terminal) return NonceStatus::Unknown;
  if (!q.is_null(2)) return NonceStatus::Used;
  if (q.u64(1) <= now) return NonceStatus::Expired;
  return NonceStatus::Ok;
}

inline RecordStatus record_status_of(NonceStatus s) {
  switch (s) {
    case NonceStatus::Used:
      return RecordStatus::NonceReused;
    case NonceStatus::Expired:
      return RecordStatus::NonceExpired;
    default:
      return RecordStatus::NonceUnknown;
  }
}

// ---------------------------------------------------------------------------------------------
// Every member of Ledger over a Store.

template <class Store>
class Engine final : public Ledger {
 public:
  using Db = typename Store::Db;
  explicit Engine(Store& store) : store_(store) {}

  LedgerId ledger_id() override { return store_.ledger_id(); }
  int schema_version() override { return store_.schema_version(); }

  // -----------------------------------------------------------------------------------------------
  // Cards.

  CardStatus register_card(const NewCard& card, const Actor& actor, UtcSeconds now) override {
    require_actor(actor);
    require_card_number(card.number);
    const auto cert = schemas::decode_card_certificate(card.certificate);  // DecodeError if malformed
    if (cert.claims.card_number != card.number || cert.claims.region != card.region) {
      throw std::invalid_argument("the card certificate names card " + cert.claims.card_number + " in region " +
                                  std::to_string(cert.claims.region) + ", not " + card.number + " in " +
                                  std::to_string(card.region));
    }
    CardStatus status = CardStatus::Registered;
    store_.write([&](Db& db) {
      if (const auto existing = find_card(db, card.number)) {
        status = existing->holder == card.holder && existing->region == card.region &&
                         existing->certificate == card.certificate
                     ? CardStatus::AlreadyRegisteredSame
                     : CardStatus::NumberTaken;
      } else {
        db.query(
              "INSERT INTO cards (number, holder, region, certificate, state, registered_at, state_changed_at) "
              "VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)")
            .args(card.number, ByteView(card.holder), card.region, ByteView(card.certificate), now)
            .run();
        status = CardStatus::Registered;
      }
      append_audit(db, now, actor, "card.register", "card:" + card.number,
                   status == CardStatus::Registered              ? "ok"
                   : status == CardStatus::AlreadyRegisteredSame ? "duplicate"
                                                                 : to_string(status));
    });
    return status;
  }

  std::optional<CardRecord> card(std::string_view number) override {
    return store_.read([&](Db& db) { return find_card(db, number); });
  }

  CardStatus mark_card_lost(std::string_view number, const Actor& actor, UtcSeconds now) override {
    require_actor(actor);
    CardStatus status = CardStatus::CardUnknown;
    store_.write([&](Db& db) {
      const auto existing = find_card(db, number);
      if (!existing) {
        status = CardStatus::CardUnknown;
      } else if (existing->state != CardState::Active) {
        status = CardStatus::AlreadyInState;
      } else {
        db.query("UPDATE cards SET state = 2, state_changed_at = ?1 WHERE number = ?2").args(now, number).run();
        status = CardStatus::Changed;
      }
      append_audit(db, now, actor, "card.lost", "card:" + std::string(number),
                   status == CardStatus::Changed ? "ok" : to_string(status));
    });
    return status;
  }

  ReplaceOutcome replace_card(std::string_view old_number, std::string_view new_number, const TokenMinter& minter,
                              const Actor& actor, UtcSeconds now) override {
    require_actor(actor);
    ReplaceOutcome out;
    store_.write([&](Db& db) {
      out = {};
      const auto old_card = find_card(db, old_number);
      const auto new_card = find_card(db, new_number);
      if (!old_card) {
        out.status = CardStatus::CardUnknown;
      } else if (!new_card) {
        out.status = CardStatus::ReplacementUnknown;
      } else if (old_card->replaced_by && *old_card->replaced_by == new_number) {
        out.status = CardStatus::AlreadyInState;
      } else if (old_card->replaced_by || old_card->state == CardState::Replaced || old_number == new_number) {
        out.status = CardStatus::CardNotActive;
      } else if (new_card->state != CardState::Active) {
        out.status = CardStatus::ReplacementNotActive;
      } else if (new_card->holder != old_card->holder) {
        out.status = CardStatus::ReplacementOfAnotherHolder;
      } else {
        out.status = CardStatus::Changed;
      }
      const std::string subject = "card:" + std::string(old_number) + " replaced-by:" + std::string(new_number);
      if (out.status != CardStatus::Changed) {
        append_audit(db, now, actor, "card.replace", subject, to_string(out.status));
        return;
      }
      // A lost card stays "lost" (the reason it was revoked); an active one becomes "replaced".
      db.query(
            "UPDATE cards SET replaced_by = ?1, state = CASE state WHEN 1 THEN 3 ELSE state END, "
            "state_changed_at = ?2 WHERE number = ?3")
          .args(new_number, now, old_number)
          .run();
      std::vector<VoucherRecord> to_move;
      {
        auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS
                          " FROM vouchers WHERE card = ?1 AND state IN (1, 2) ORDER BY serial");
        q.args(old_number);
        while (q.step()) to_move.push_back(voucher_from(q));
      }
      for (const auto& old_voucher : to_move) {
        const auto old_serial = serial_of(old_voucher.id());
        const auto serial = insert_voucher(db, old_voucher.claims, new_number, old_voucher.cst_year, now, old_serial,
                                           old_voucher.issuing_region, minter);
        db.query("UPDATE vouchers SET state = 6, state_changed_at = ?1, moved_to = ?2 WHERE serial = ?3")
            .args(now, serial, old_serial)
            .run();
        append_audit(db, now, actor, "voucher.move",
                     voucher_subject(old_voucher.id()) + " to:" + lower_hex(voucher_id(serial)), "ok");
        out.moved.push_back({old_voucher.id(), *find_voucher(db, serial)});
      }
      append_audit(db, now, actor, "card.replace", subject, "ok");
    });
    return out;
  }

  // -----------------------------------------------------------------------------------------------
  // Budgets.

  BudgetStatus set_budget(FundSource fund, std::int64_t allocated_fen, const Actor& actor, UtcSeconds now) override {
    require_actor(actor);
    if (allocated_fen < 0) throw std::invalid_argument("a budget allocation is not negative");
    BudgetStatus status = BudgetStatus::Set;
    store_.write([&](Db& db) {
      std::int64_t used = 0;
      {
        auto q = db.query("SELECT committed_fen + spent_fen FROM budgets WHERE fund = ?1");
        q.args(static_cast<int>(fund));
        if (q.step()) used = q.i64(0);
      }
      status = allocated_fen < used ? BudgetStatus::BelowCommitted : BudgetStatus::Set;
      if (status == BudgetStatus::Set) {
        db.query(
              "INSERT INTO budgets (fund, allocated_fen) VALUES (?1, ?2) "
              "ON CONFLICT (fund) DO UPDATE SET allocated_fen = excluded.allocated_fen")
            .args(static_cast<int>(fund), allocated_fen)
            .run();
      }
      append_audit(db, now, actor, "budget.set",
                   "fund:" + std::to_string(static_cast<int>(fund)) + " allocated_fen:" + std::to_string(allocated_fen),
                   status == BudgetStatus::Set ? "ok" : to_string(status));
    });
    return status;
  }

  std::optional<Budget> budget(FundSource fund) override {
    return store_.read([&](Db& db) { return find_budget(db, fund); });
  }

  static std::optional<Budget> find_budget(Db& db, FundSource fund) {
    auto q = db.query("SELECT allocated_fen, committed_fen, spent_fen FROM budgets WHERE fund = ?1");
    q.args(static_cast<int>(fund));
    if (!q.step()) return std::nullopt;
    return Budget{fund, q.i64(0), q.i64(1), q.i64(2)};
  }

  // -----------------------------------------------------------------------------------------------
  // Vouchers.

  IssueCounts read_issue_counts(const IssueQuery& query) override {
    return store_.read_snapshot([&](Db& db) { return count_for_issue(db, query); });
  }

  IssueOutcome issue_voucher(const IssueRequest& request, const IssueDecision& decision, const TokenMinter& minter,
                             const Actor& actor, UtcSeconds now) override {
    require_actor(actor);
    schemas::check(request.claims);  // std::invalid_argument naming the field
    if (!request.card.empty()) require_card_number(request.card);
    const IssueQuery query{request.claims.holder, cst_year(request.claims.issued_at), request.claims.fund,
                           request.claims.occupation, request.claims.level};
    IssueOutcome out;
    store_.write([&](Db& db) {
      out = {};
      out.fresh = count_for_issue(db, query);
      if (!request.card.empty()) {
        const auto card = find_card(db, request.card);
        if (!card) {
          out.status = IssueStatus::CardUnknown;
        } else if (card->state != CardState::Active) {
          out.status = IssueStatus::CardNotActive;
        } else if (card->holder != request.claims.holder) {
          out.status = IssueStatus::CardOfAnotherHolder;
        } else {
          out.status = IssueStatus::Issued;
        }
        if (out.status != IssueStatus::Issued) {
          append_audit(db, now, actor, "voucher.issue", "card:" + request.card, to_string(out.status));
          return;
        }
      }
      out.violated = violated_limits(decision, out.fresh, request.claims);
      if (!out.violated.empty()) {
        out.status = out.fresh == decision.ledger_counts ? IssueStatus::Refused : IssueStatus::StaleDecision;
        append_audit(db, now, actor, "voucher.issue",
                     "holder:" + lower_hex(query.holder) + " year:" + std::to_string(query.cst_year),
                     std::string(to_string(out.status)) + ":" + join(out.violated));
        return;
      }
      const auto serial = insert_voucher(db, request.claims, request.card, query.cst_year, now, std::nullopt,
                                         request.issuing_region, minter);
      adjust_budget(db, request.claims.fund, request.claims.face_value_fen, 0);
      append_audit(db, now, actor, "voucher.issue", voucher_subject(voucher_id(serial)), "ok");
      out.status = IssueStatus::Issued;
      out.voucher = find_voucher(db, serial);
    });
    return out;
  }

  VoucherOutcome mark_written(const VoucherId& id, const Actor& actor, UtcSeconds now) override {
    require_actor(actor);
    VoucherOutcome out;
    store_.write([&](Db& db) {
      out = {};
      const auto serial = stored_serial(id);
      const auto v = find_voucher(db, serial);
      if (!v) {
        out.status = VoucherStatus::VoucherUnknown;
      } else if (v->state == VoucherState::Written) {
        out.status = VoucherStatus::AlreadyInState;
      } else if (v->state != VoucherState::Issued) {
        out.status = VoucherStatus::WrongState;
      } else {
        db.query("UPDATE vouchers SET state = 2, state_changed_at = ?1 WHERE serial = ?2").args(now, serial).run();
        out.status = VoucherStatus::Changed;
      }
      append_audit(db, now, actor, "voucher.written", voucher_subject(id),
                   out.status == VoucherStatus::Changed ? "ok" : to_string(out.status));
      out.voucher = find_voucher(db, serial);
    });
    return out;
  }

  VoucherOutcome void_voucher(const VoucherId& id, std::string_view reason, const Actor& actor,
                              UtcSeconds now) override {
    require_actor(actor);
    if (reason.empty()) throw std::invalid_argument("voiding a voucher needs a reason");
    require_text(reason, "a void's reason");
    VoucherOutcome out;
    store_.write([&](Db& db) {
      out = {};
      const auto serial = stored_serial(id);
      const auto v = find_voucher(db, serial);
      if (!v) {
        out.status = VoucherStatus::VoucherUnknown;
      } else if (v->state == VoucherState::Voided) {
        out.status = VoucherStatus::AlreadyInState;
      } else if (v->state != VoucherState::Issued && v->state != VoucherState::Written) {
        out.status = VoucherStatus::WrongState;
      } else {
        db.query("UPDATE vouchers SET state = 4, state_changed_at = ?1, void_reason = ?2 WHERE serial = ?3")
            .args(now, reason, serial)
            .run();
        adjust_budget(db, v->claims.fund, -static_cast<std::int64_t>(v->claims.face_value_fen), 0);
        out.status = VoucherStatus::Changed;
      }
      append_audit(db, now, actor, "voucher.void", voucher_subject(id),
                   out.status == VoucherStatus::Changed ? "ok" : to_string(out.status));
      out.voucher = find_voucher(db, serial);
    });
    return out;
  }

  // The sweep reads only what can still be live and expiring: vouchers_by_expiry from the last
  // sweep's cutoff C up to this one, plus the vouchers added since that sweep (serial > S). Since
  // no voucher ever becomes issued or written again (redeemed leads only to voided, the other
  // states are final), after a sweep with cutoff C no voucher up to serial S is live with
  // expires_at < C. meta's `expiry_swept` keeps (C, S), moved on only by a sweep whose cutoff is
  // not below C. Without it the expiry index (no longer partial, see migrations.cpp version 2)
  // would make every sweep visit every voucher that ever expired.
  std::size_t expire_vouchers(UtcSeconds cutoff, const Actor& actor, UtcSeconds now) override {
    require_actor(actor);
    std::size_t count = 0;
    store_.write([&](Db& db) {
      count = 0;
      struct Expiring {
        std::uint64_t serial;
        FundSource fund;
        std::int64_t face;
      };
      std::uint64_t swept_cutoff = 0;
      std::uint64_t swept_serial = 0;
      bool swept = false;
      {
        auto q = db.query("SELECT value FROM meta WHERE key = 'expiry_swept'");
        if (q.step()) {
          const auto mark = fixed<16>(q, 0);
          for (std::size_t i = 0; i < 8; ++i) {
            swept_cutoff = swept_cutoff << 8 | mark[i];
            swept_serial = swept_serial << 8 | mark[8 + i];
          }
          swept = true;
        }
      }
      std::vector<Expiring> expiring;
      const auto collect = [&](auto& q) {
        while (q.step()) expiring.push_back({q.u64(0), static_cast<FundSource>(q.i64(1)), q.i64(2)});
      };
      if (cutoff > swept_cutoff) {
        auto q = db.query(
            "SELECT serial, fund, face_value_fen FROM vouchers WHERE expires_at >= ?1 AND expires_at < ?2 "
            "AND state IN (1, 2)");
        q.args(swept_cutoff, cutoff);
        collect(q);
      }
      if (swept) {
        auto q = db.query(
            "SELECT serial, fund, face_value_fen FROM vouchers WHERE serial > ?1 AND expires_at < ?2 "
            "AND state IN (1, 2) AND expires_at < ?3");
        q.args(swept_serial, cutoff, swept_cutoff);  // the rest was read above
        collect(q);
      }
      std::sort(expiring.begin(), expiring.end(),
                [](const Expiring& a, const Expiring& b) { return a.serial < b.serial; });
      for (const auto& e : expiring) {
        db.query("UPDATE vouchers SET state = 5, state_changed_at = ?1 WHERE serial = ?2").args(now, e.serial).run();
        adjust_budget(db, e.fund, -e.face, 0);
        append_audit(db, now, actor, "voucher.expire", voucher_subject(voucher_id(e.serial)), "ok");
      }
      if (!swept || cutoff >= swept_cutoff) {
        auto top = db.query("SELECT coalesce(max(serial), 0) FROM vouchers");
        top.step();
        const std::uint64_t serial = top.u64(0);
        Bytes mark(16);
        for (std::size_t i = 0; i < 8; ++i) {
          mark[7 - i] = static_cast<std::uint8_t>(cutoff >> (8 * i));
          mark[15 - i] = static_cast<std::uint8_t>(serial >> (8 * i));
        }
        db.query(
              "INSERT INTO meta (key, value) VALUES ('expiry_swept', ?1) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .args(ByteView(mark))
            .run();
      }
      count = expiring.size();
    });
    return count;
  }

  std::optional<VoucherRecord> voucher(const VoucherId& id) override {
    return store_.read([&](Db& db) { return find_voucher(db, stored_serial(id)); });
  }

  std::optional<VoucherStanding> voucher_standing(const VoucherId& id) override {
    return store_.read([&](Db& db) -> std::optional<VoucherStanding> {
      auto q = db.query("SELECT state, token FROM vouchers WHERE serial = ?1");
      q.args(stored_serial(id));
      if (!q.step()) return std::nullopt;
      return VoucherStanding{static_cast<VoucherState>(q.i64(0)), q.blob(1)};
    });
  }

  std::vector<VoucherRecord> holder_vouchers(const HolderRef& holder) override {
    return store_.read([&](Db& db) {
      std::vector<VoucherRecord> out;
      auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS " FROM vouchers WHERE holder = ?1 ORDER BY serial");
      q.args(ByteView(holder));
      while (q.step()) out.push_back(voucher_from(q));
      return out;
    });
  }

  // --- listings (#9) ------------------------------------------------------------------------
  void for_each_voucher(const VoucherFilter& filter, const std::function<void(const VoucherRecord&)>& visit) override {
    store_.read_snapshot([&](Db& db) {
      visit_vouchers(db, filter, visit);
      return 0;
    });
  }

  void for_each_certificate(const CertificateFilter& filter,
                            const std::function<void(const CertificateEntry&)>& visit) override {
    store_.read_snapshot([&](Db& db) {
      visit_certificates(db, filter, visit);
      return 0;
    });
  }

  // One read transaction for all of it: a reconciliation run while the service writes sees each
  // redemption with its voucher's state and the budgets of the same moment.
  void read_for_reports(const ReportVisitor& visit) override {
    store_.read_snapshot([&](Db& db) {
      visit_vouchers(db, {}, visit.voucher);
      visit_redemptions(db, {}, [&](RedemptionExportRow&& row) { visit.redemption(row); });
      visit_certificates(db, {}, visit.certificate);
      for (const auto fund : {FundSource::SpecialAccount, FundSource::EmploymentSubsidyFund,
                              FundSource::UnemploymentInsuranceFund, FundSource::OtherDepartment}) {
        if (const auto b = find_budget(db, fund)) visit.budget(*b);
      }
      return 0;
    });
  }

  static void visit_vouchers(Db& db, const VoucherFilter& filter,
                             const std::function<void(const VoucherRecord&)>& visit) {
    auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS
                      " FROM vouchers WHERE issued_at >= ?1 AND issued_at < ?2 AND (?3 = 0 OR state = ?3) "
                      "AND (?4 = 0 OR fund = ?4) ORDER BY serial");
    const int state = filter.state ? static_cast<int>(*filter.state) : 0;  // 0: any
    const int fund = filter.fund ? static_cast<int>(*filter.fund) : 0;
    q.args(filter.issued_from, filter.issued_to, state, fund);
    while (q.step()) visit(voucher_from(q));
  }

  static void visit_certificates(Db& db, const CertificateFilter& filter,
                                 const std::function<void(const CertificateEntry&)>& visit) {
    auto q = db.query("SELECT " SKILLCARD_CERTIFICATE_COLUMNS
                      " FROM certificates WHERE date_days >= ?1 AND date_days < ?2 ORDER BY seq");
    q.args(filter.from_days, filter.to_days);
    while (q.step()) visit(certificate_from(q));
  }

  Revocations revocations(UtcSeconds now) override {
    return store_.read([&](Db& db) {
      Revocations out;
      {
        auto q = db.query("SELECT serial FROM vouchers WHERE state IN (4, 6) AND expires_at > ?1 ORDER BY serial");
        q.args(now);
        while (q.step()) out.vouchers.push_back(voucher_id(q.u64(0)));
      }
      auto q = db.query("SELECT number FROM cards WHERE state = 2 ORDER BY number");
      while (q.step()) out.cards.push_back(q.text(0));
      return out;
    });
  }

  std::vector<VoucherRecord> holder_history(const HolderRef& holder, int year) override {
    return store_.read([&](Db& db) {
      std::vector<VoucherRecord> out;
      auto q = db.query("SELECT " SKILLCARD_VOUCHER_COLUMNS
                        " FROM vouchers WHERE holder = ?1 AND cst_year = ?2 AND state IN (1, 2, 3) ORDER BY serial");
      q.args(ByteView(holder), year);
      while (q.step()) out.push_back(voucher_from(q));
      return out;
    });
  }

  // -----------------------------------------------------------------------------------------------
  // Nonces.

  NonceStatus issue_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds issued_at, UtcSeconds expires_at,
                          const Actor& actor) override {
    require_actor(actor);
    if (terminal.empty()) throw std::invalid_argument("a nonce is bound to a terminal");
    NonceStatus status = NonceStatus::Ok;
    store_.write([&](Db& db) {
      db.query(
            "INSERT INTO nonces (nonce, terminal, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (nonce) DO NOTHING")
          .args(ByteView(nonce), terminal, issued_at, expires_at)
          .run();
      status = db.changes() == 1 ? NonceStatus::Ok : NonceStatus::Duplicate;
      append_audit(db, issued_at, actor, "nonce.issue", "nonce:" + lower_hex(nonce),
                   status == NonceStatus::Ok ? "ok" : "duplicate");
    });
    return status;
  }

  NonceStatus check_nonce(const Nonce& nonce, std::string_view terminal, UtcSeconds now) override {
    return store_.read([&](Db& db) { return classify_nonce(db, nonce, terminal, now); });
  }

  NonceStatus consume_nonce(const Nonce& nonce, std::string_view terminal, std::string_view used_by, const Actor& actor,
                            UtcSeconds now) override {
    require_actor(actor);
    NonceStatus status = NonceStatus::Ok;
    store_.write([&](Db& db) {
      db.query(
            "UPDATE nonces SET used_at = ?1, used_by = ?2 "
            "WHERE nonce = ?3 AND terminal = ?4 AND used_at IS NULL AND expires_at > ?1")
          .args(now, used_by, ByteView(nonce), terminal)
          .run();
      status = db.changes() == 1 ? NonceStatus::Ok : classify_nonce(db, nonce, terminal, now);
      if (status == NonceStatus::Ok && db.changes() != 1) status = NonceStatus::Unknown;
      append_audit(db, now, actor, "nonce.consume", "nonce:" + lower_hex(nonce),
                   status == NonceStatus::Ok ? "ok" : refusal_code(status));
    });
    return status;
  }

  // -----------------------------------------------------------------------------------------------
  // Redemptions.

  RecordOutcome record_redemption(const RedemptionRequest& request) override {
    require_actor(request.actor);
    require_card_number(request.card);
    std::optional<schemas::ReceiptClaims> claims;
    try {
      claims = schemas::decode_receipt(request.receipt).claims;
    } catch (const schemas::DecodeError&) {
      // Audited like every other refusal; nothing else is written.
    }
    RecordOutcome out;
    store_.write([&](Db& db) {
      out = {};
      const UtcSeconds now = request.server_time;
      if (!claims) {
        out.status = RecordStatus::ReceiptMalformed;
        append_audit(db, now, request.actor, "redemption.record", "card:" + request.card, refusal_code(out.status));
        return;
      }
      const auto serial = stored_serial(claims->voucher);
      const std::string subject = voucher_subject(claims->voucher);
      // Undoes a consumed nonce when the redemption is refused after it. Opened just before the
      // nonce is consumed: until then a refusal has written nothing (and most redemptions
      // consume no server nonce at all, so they pay for no second savepoint).
      std::optional<typename Db::Savepoint> work;
      const auto refuse = [&](RecordStatus status, std::optional<RedemptionRecord> record = std::nullopt) {
        if (work) work->rollback();
        out.status = status;
        out.record = std::move(record);
        append_audit(db, now, request.actor, "redemption.record", subject,
                     status == RecordStatus::AlreadyRecordedSame ? "duplicate" : refusal_code(status));
      };
      // After a lost race at the insert (another connection's row stands): classify from it.
      const auto classify_existing = [&]() -> bool {
        bool exists = false;
        bool same = false;
        {
          auto q = db.query("SELECT receipt FROM redemptions WHERE voucher = ?1");
          q.args(serial);
          if (q.step()) {
            exists = true;
            same = q.blob(0) == request.receipt;
          }
        }
        if (!exists) return false;
        refuse(same ? RecordStatus::AlreadyRecordedSame : RecordStatus::VoucherAlreadyRedeemed,
               find_redemption(db, serial));
        return true;
      };
      const auto counter_used = [&] {
        auto q = db.query("SELECT 1 FROM redemptions WHERE card = ?1 AND counter = ?2");
        q.args(request.card, claims->counter);
        return q.step();
      };
      // What steps 1-5 decide on, read in one statement (on PostgreSQL each is a round trip).
      std::optional<Bytes> existing_receipt;
      std::optional<VoucherState> state;
      HolderRef voucher_holder{};
      FundSource fund{};
      std::int64_t face = 0;
      std::optional<CardState> card_state;
      HolderRef card_holder{};
      bool counter_taken = false;
      bool nonce_taken = false;
      std::uint64_t next_seq = 0;  // seq: max + 1 under the writer lock, like the serials
      {
        auto q = db.query(
            "SELECT (SELECT receipt FROM redemptions WHERE voucher = ?1), v.state, v.holder, v.fund, v.face_value_fen, "
            "c.holder, c.state, "
            "CASE WHEN EXISTS (SELECT 1 FROM redemptions WHERE card = ?2 AND counter = ?3) THEN 1 ELSE 0 END, "
            "CASE WHEN EXISTS (SELECT 1 FROM redemptions WHERE nonce = ?4) THEN 1 ELSE 0 END, "
            "(SELECT coalesce(max(seq), 0) + 1 FROM redemptions) "
            "FROM (SELECT 1) AS one LEFT JOIN vouchers v ON v.serial = ?1 LEFT JOIN cards c ON c.number = ?2");
        q.args(serial, request.card, claims->counter, ByteView(claims->nonce));
        q.step();  // always one row
        if (!q.is_null(0)) existing_receipt = q.blob(0);
        if (!q.is_null(1)) {
          state = static_cast<VoucherState>(q.i64(1));
          voucher_holder = fixed<16>(q, 2);
          fund = static_cast<FundSource>(q.i64(3));
          face = q.i64(4);
        }
        if (!q.is_null(5)) {
          card_holder = fixed<16>(q, 5);
          card_state = static_cast<CardState>(q.i64(6));
        }
        counter_taken = q.i64(7) != 0;
        nonce_taken = q.i64(8) != 0;
        next_seq = q.u64(9);
      }
      // 1. One redemption per voucher; the identical receipt again is the same record.
      if (existing_receipt) {
        return refuse(*existing_receipt == request.receipt ? RecordStatus::AlreadyRecordedSame
                                                           : RecordStatus::VoucherAlreadyRedeemed,
                      find_redemption(db, serial));
      }
      // 2. The voucher, in a redeemable state.
      if (!state) return refuse(RecordStatus::VoucherUnknown);
      switch (*state) {
        case VoucherState::Issued:
        case VoucherState::Written:
          break;
        case VoucherState::Voided:
          return refuse(RecordStatus::VoucherVoided);
        case VoucherState::Expired:
          return refuse(RecordStatus::VoucherExpired);
        case VoucherState::Moved:
          return refuse(RecordStatus::VoucherMoved);
        case VoucherState::Redeemed:
          return refuse(RecordStatus::VoucherAlreadyRedeemed);
      }
      // 3. The card: registered, not revoked, the voucher holder's.
      if (!card_state) return refuse(RecordStatus::CardUnknown);
      if (*card_state != CardState::Active) return refuse(RecordStatus::CardRevoked);
      if (card_holder != voucher_holder) return refuse(RecordStatus::CardOfAnotherHolder);
      // 4. (card, counter) never used.
      if (counter_taken) return refuse(RecordStatus::CounterReused);
      // 5. The nonce.
      const auto used_by = [&] { return "redemption:" + lower_hex(claims->voucher); };
      if (request.nonce_rule == NonceRule::Live) {
        if (claims->nonce_kind() != schemas::NonceKind::Server) return refuse(RecordStatus::NonceUnknown);
        work.emplace(db, "record");
        db.query(
              "UPDATE nonces SET used_at = ?1, used_by = ?2 "
              "WHERE nonce = ?3 AND terminal = ?4 AND used_at IS NULL AND expires_at > ?1")
            .args(now, used_by(), ByteView(claims->nonce), request.actor.terminal)
            .run();
        if (db.changes() != 1) {
          return refuse(record_status_of(classify_nonce(db, claims->nonce, request.actor.terminal, now)));
        }
      } else {
        if (nonce_taken) return refuse(RecordStatus::NonceReused);
        if (claims->nonce_kind() == schemas::NonceKind::Server) {
          // A server nonce is ours: it must exist and not have been used by anything else.
          bool known = false;
          bool used = false;
          {
            auto q = db.query("SELECT used_at FROM nonces WHERE nonce = ?1");
            q.args(ByteView(claims->nonce));
            known = q.step();
            used = known && !q.is_null(0);
          }
          if (!known) return refuse(RecordStatus::NonceUnknown);
          if (used) return refuse(RecordStatus::NonceReused);
          work.emplace(db, "record");
          db.query("UPDATE nonces SET used_at = ?1, used_by = ?2 WHERE nonce = ?3 AND used_at IS NULL")
              .args(now, used_by(), ByteView(claims->nonce))
              .run();
        }
      }
      // 6. The row. The unique keys are the final word (another connection may have won a race).
      std::optional<std::uint64_t> seq;
      if constexpr (requires { db.pipelined(); }) {
        if (db.pipelined()) {
          // A pipelined writer (PostgreSQL) only sends the row and reads nothing back: the round
          // trip an ON CONFLICT … RETURNING answer costs is saved. The checks above were read in
          // this transaction under the writer lock, which every writer takes first, so no other
          // row can have appeared since; were one there anyway (a writer bypassing the lock), the
          // unique keys refuse the row, the operation fails at its RELEASE with
          // StorageError(Constraint), nothing of it is recorded, and a retry classifies it.
          db.query(
                "INSERT INTO redemptions (seq, voucher, card, counter, receipt, site, nonce, terminal_time, "
                "server_time, classroom_hours, online_hours, terminal, clerk) "
                "VALUES (?13, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")
              .args(serial, request.card, claims->counter, ByteView(request.receipt), claims->site,
                    ByteView(claims->nonce), claims->terminal_time, now,
                    static_cast<std::uint32_t>(claims->classroom_hours),
                    static_cast<std::uint32_t>(claims->online_hours), request.actor.terminal, request.actor.clerk,
                    next_seq)
              .run();
          seq = next_seq;
        }
      }
      if (!seq) {
        auto q = db.query(
            "INSERT INTO redemptions (seq, voucher, card, counter, receipt, site, nonce, terminal_time, server_time, "
            "classroom_hours, online_hours, terminal, clerk) "
            "VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM redemptions), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
            "?11, ?12) ON CONFLICT DO NOTHING RETURNING seq");
        q.args(serial, request.card, claims->counter, ByteView(request.receipt), claims->site, ByteView(claims->nonce),
               claims->terminal_time, now, static_cast<std::uint32_t>(claims->classroom_hours),
               static_cast<std::uint32_t>(claims->online_hours), request.actor.terminal, request.actor.clerk);
        if (q.step()) seq = q.u64(0);
        if (!seq) {
          if (classify_existing()) return;
          if (counter_used()) return refuse(RecordStatus::CounterReused);
          return refuse(RecordStatus::NonceReused);
        }
      }
      RedemptionRecord record;
      record.seq = *seq;
      db.query("UPDATE vouchers SET state = 3, state_changed_at = ?1 WHERE serial = ?2").args(now, serial).run();
      adjust_budget(db, fund, -face, face);
      if (work) work->release();
      append_audit(db, now, request.actor, "redemption.record", subject, "ok");
      record.voucher = claims->voucher;
      record.card = request.card;
      record.counter = claims->counter;
      record.receipt = request.receipt;
      record.site = claims->site;
      record.nonce = claims->nonce;
      record.terminal_time = claims->terminal_time;
      record.server_time = now;
      record.classroom_hours = claims->classroom_hours;
      record.online_hours = claims->online_hours;
      record.actor = request.actor;
      out.status = RecordStatus::Recorded;
      out.record = std::move(record);
    });
    return out;
  }

  ReversalOutcome reverse_redemption(const VoucherId& id, std::string_view reason, const Actor& actor,
                                     UtcSeconds now) override {
    require_actor(actor);
    if (reason.empty()) throw std::invalid_argument("a reversal needs a reason");
    require_text(reason, "a reversal's reason");
    ReversalOutcome out;
    store_.write([&](Db& db) {
      out = {};
      const auto serial = stored_serial(id);
      auto existing = find_redemption(db, serial);
      if (!existing) {
        out.status = ReversalStatus::NotRedeemed;
      } else if (existing->reversed_at) {
        out.status = ReversalStatus::AlreadyReversed;
      } else {
        const auto voucher = find_voucher(db, serial);
        db.query("UPDATE redemptions SET reversed_at = ?1, reversal_reason = ?2 WHERE voucher = ?3")
            .args(now, reason, serial)
            .run();
        db.query("UPDATE vouchers SET state = 4, state_changed_at = ?1, void_reason = ?2 WHERE serial = ?3")
            .args(now, "redemption reversed: " + std::string(reason), serial)
            .run();
        adjust_budget(db, voucher->claims.fund, 0, -static_cast<std::int64_t>(voucher->claims.face_value_fen));
        out.status = ReversalStatus::Reversed;
      }
      // The reason is in the hashed row: a reversal's why cannot be rewritten without the chain.
      append_audit(db, now, actor, "redemption.reverse", voucher_subject(id) + " reason:" + std::string(reason),
                   out.status == ReversalStatus::Reversed ? "ok" : to_string(out.status));
      out.record = find_redemption(db, serial);
    });
    return out;
  }

  std::optional<RedemptionRecord> redemption(const VoucherId& id) override {
    return store_.read([&](Db& db) { return find_redemption(db, stored_serial(id)); });
  }

  std::optional<RedemptionRecord> redemption_by_counter(std::string_view card, std::uint32_t counter) override {
    return store_.read([&](Db& db) { return find_redemption_by_counter(db, card, counter); });
  }
  ReceiptTimesAround receipt_times_around(std::string_view card, std::uint32_t counter) override {
    return store_.read([&](Db& db) { return find_receipt_times_around(db, card, counter); });
  }

  std::vector<RedemptionExportRow> list_redemptions(const RedemptionFilter& filter) override {
    return store_.read_snapshot([&](Db& db) {
      std::vector<RedemptionExportRow> out;
      visit_redemptions(db, filter, [&](RedemptionExportRow&& row) { out.push_back(std::move(row)); });
      return out;
    });
  }

  // A RedemptionFilter's parameters ?1..?4, for SKILLCARD_REDEMPTION_FILTER: the export and the
  // settlement select the same redemptions, so the filter is written once.
  template <class Query>
  static void bind_redemption_filter(Query& q, const RedemptionFilter& filter) {
    std::optional<int> fund;
    if (filter.fund) fund = static_cast<int>(*filter.fund);
    q.args(filter.provider, fund, filter.from, filter.to);
  }

  template <class Visit>
  static void visit_redemptions(Db& db, const RedemptionFilter& filter, Visit&& visit) {
    auto q = db.query("SELECT " SKILLCARD_REDEMPTION_COLUMNS
                      ", v.fund, v.programme, v.occupation, v.level, v.face_value_fen, v.issuer "
                      "FROM redemptions r JOIN vouchers v ON v.serial = r.voucher "
                      "WHERE " SKILLCARD_REDEMPTION_FILTER " ORDER BY r.site, v.fund, r.seq");
    bind_redemption_filter(q, filter);
    while (q.step()) {
      RedemptionExportRow row;
      row.redemption = redemption_from(q);
      row.fund = static_cast<FundSource>(q.i64(15));
      row.programme = static_cast<schemas::Programme>(q.i64(16));
      row.occupation = q.u32(17);
      row.level = static_cast<std::uint8_t>(q.i64(18));
      row.face_value_fen = q.u32(19);
      row.issuer = q.u32(20);
      visit(std::move(row));
    }
  }

  std::vector<SettlementLine> settlement(const RedemptionFilter& filter) override {
    return store_.read_snapshot([&](Db& db) {
      std::vector<SettlementLine> out;
      // Owed: redeemed in [from, to) and not reversed before `to`. Recovered: redeemed before
      // `from` (settled then) and reversed in [from, to). A redemption redeemed and reversed in
      // the same period is neither.
#define SKILLCARD_OWED "r.server_time >= ?3 AND (r.reversed_at IS NULL OR r.reversed_at >= ?4)"
#define SKILLCARD_RECOVERED "r.server_time < ?3"
      auto q = db.query(
          "SELECT r.site, v.fund, "
          "sum(CASE WHEN " SKILLCARD_OWED
          " THEN 1 ELSE 0 END), "
          "sum(CASE WHEN " SKILLCARD_OWED
          " THEN v.face_value_fen ELSE 0 END), "
          "sum(CASE WHEN " SKILLCARD_RECOVERED
          " THEN 1 ELSE 0 END), "
          "sum(CASE WHEN " SKILLCARD_RECOVERED
          " THEN v.face_value_fen ELSE 0 END) "
          "FROM redemptions r JOIN vouchers v ON v.serial = r.voucher "
          "WHERE (?1 IS NULL OR r.site = ?1) AND (?2 IS NULL OR v.fund = ?2) AND r.server_time < ?4 "
          "AND (r.server_time >= ?3 OR (r.reversed_at >= ?3 AND r.reversed_at < ?4)) "
          "GROUP BY r.site, v.fund "
          "HAVING sum(CASE WHEN " SKILLCARD_OWED " OR " SKILLCARD_RECOVERED
          " THEN 1 ELSE 0 END) > 0 "
          "ORDER BY r.site, v.fund");
#undef SKILLCARD_OWED
#undef SKILLCARD_RECOVERED
      bind_redemption_filter(q, filter);
      while (q.step()) {
        out.push_back({q.u32(0), static_cast<FundSource>(q.i64(1)), q.u64(2), q.i64(3), q.u64(4), q.i64(5)});
      }
      return out;
    });
  }

  // -----------------------------------------------------------------------------------------------
  // Certificates (P14).

  CertificateOutcome record_certificate(const HolderRef& holder, ByteView encoded_record, const Actor& actor,
                                        UtcSeconds now) override {
    require_actor(actor);
    schemas::CertificateRecord record;
    try {
      record = schemas::decode_certificate_record(encoded_record);
    } catch (const schemas::DecodeError& e) {
      throw std::invalid_argument(std::string("not a certificate record: ") + e.what());
    }
    CertificateOutcome out;
    store_.write([&](Db& db) {
      out = {};
      const auto find = [&]() -> std::optional<CertificateEntry> {
        auto q = db.query("SELECT " SKILLCARD_CERTIFICATE_COLUMNS
                          " FROM certificates WHERE kind = ?1 AND issuer = ?2 AND number = ?3");
        q.args(static_cast<int>(record.kind), record.issuer, record.number);
        if (!q.step()) return std::nullopt;
        return certificate_from(q);
      };
      const std::string subject = "certificate:" + std::to_string(static_cast<int>(record.kind)) + "/" + record.number;
      if (auto existing = find()) {
        out.status = CertificateStatus::Duplicate;
        out.entry = std::move(existing);
        append_audit(db, now, actor, "certificate.record", subject, "P14_CERTIFICATE_DUPLICATE");
        return;
      }
      std::uint32_t version = 0;
      {
        auto q = db.query(
            "INSERT INTO holders (holder, digest_version) VALUES (?1, 1) "
            "ON CONFLICT (holder) DO UPDATE SET digest_version = holders.digest_version + 1 RETURNING digest_version");
        q.args(ByteView(holder));
        q.step();
        version = q.u32(0);
      }
      db.query(
            "INSERT INTO certificates (seq, holder, kind, occupation, level, issuer, number, date_days, salt, record, "
            "digest_version, recorded_at, terminal, clerk) VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM "
            "certificates), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
          .args(ByteView(holder), static_cast<int>(record.kind), record.occupation, static_cast<int>(record.level),
                record.issuer, record.number, record.date_days, ByteView(record.salt), encoded_record, version, now,
                actor.terminal, actor.clerk)
          .run();
      append_audit(db, now, actor, "certificate.record", subject, "ok");
      out.status = CertificateStatus::Recorded;
      out.entry = find();
    });
    return out;
  }

  std::vector<CertificateEntry> certificates(const HolderRef& holder) override {
    return store_.read([&](Db& db) {
      std::vector<CertificateEntry> out;
      auto q = db.query("SELECT " SKILLCARD_CERTIFICATE_COLUMNS " FROM certificates WHERE holder = ?1 ORDER BY seq");
      q.args(ByteView(holder));
      while (q.step()) out.push_back(certificate_from(q));
      return out;
    });
  }

  std::uint32_t digest_version(const HolderRef& holder) override {
    return store_.read([&](Db& db) -> std::uint32_t {
      auto q = db.query("SELECT digest_version FROM holders WHERE holder = ?1");
      q.args(ByteView(holder));
      return q.step() ? q.u32(0) : 0;
    });
  }

  // -----------------------------------------------------------------------------------------------
  // Audit.

  AuditHead audit_head() override {
    return store_.read([](Db& db) {
      AuditHead head;
      auto q = db.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
      if (q.step()) {
        head.count = q.u64(0);
        head.hash = fixed<32>(q, 1);
      }
      return head;
    });
  }

  std::vector<AuditEntry> audit_entries(std::uint64_t from_seq, std::size_t limit) override {
    return store_.read([&](Db& db) {
      std::vector<AuditEntry> out;
      auto q = db.query(
          "SELECT seq, at, terminal, clerk, action, subject, outcome, prev_hash, hash FROM audit_log "
          "WHERE seq >= ?1 ORDER BY seq LIMIT ?2");
      q.args(from_seq, static_cast<std::uint64_t>(limit));
      while (q.step()) {
        AuditEntry e;
        e.seq = q.u64(0);
        e.at = q.u64(1);
        e.terminal = q.text(2);
        e.clerk = q.text(3);
        e.action = q.text(4);
        e.subject = q.text(5);
        e.outcome = q.text(6);
        const auto prev = q.blob(7);
        const auto hash = q.blob(8);
        // A tampered row may hold a hash of another size: keep what fits, verification flags it.
        std::copy_n(prev.begin(), std::min(prev.size(), e.prev_hash.size()), e.prev_hash.begin());
        std::copy_n(hash.begin(), std::min(hash.size(), e.hash.size()), e.hash.begin());
        out.push_back(std::move(e));
      }
      return out;
    });
  }

 private:
  Store& store_;
};

}  // namespace skillcard::ledger::engine
