// Counter, site and kiosk workflows (docs/design.md, "APDU flows").
#include "skillcard/host/workflows.hpp"

#include <algorithm>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/host/encoding.hpp"
#include "skillcard/host/refusal.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/receipt.hpp"

namespace skillcard::host {

using crypto::CardRole;

std::string_view to_string(WriteState state) noexcept {
  switch (state) {
    case WriteState::Written:
      return "written";
    case WriteState::Voided:
      return "voided";
    case WriteState::Unknown:
      return "unknown";
    case WriteState::NotWritten:
      return "not-written";
  }
  return "?";
}

std::string_view to_string(RedeemStatus status) noexcept {
  switch (status) {
    case RedeemStatus::Recorded:
      return "recorded";
    case RedeemStatus::AlreadyRecorded:
      return "already-recorded";
    case RedeemStatus::Queued:
      return "queued";
  }
  return "?";
}

std::string_view to_string(RecordCheck check) noexcept {
  switch (check) {
    case RecordCheck::OnCard:
      return "on-card";
    case RecordCheck::NewerThanCard:
      return "card-digest-out-of-date";
    case RecordCheck::OlderThanCard:
      return "not-on-card-digest";
    case RecordCheck::Mismatch:
      return "mismatch";
    case RecordCheck::NoCardDigest:
      return "no-card-digest";
  }
  return "?";
}

// ---------------------------------------------------------------------------------- counter

CounterWorkflow::CounterWorkflow(CardSession& card, ServiceClient& service, const TrustAnchors& trust, Clock clock)
    : card_(&card), service_(&service), trust_(&trust), clock_(std::move(clock)) {}

namespace {
// The service's write call: its ServiceUnavailable means the write may have been made.
template <class F>
auto write_call(F&& call) {
  try {
    return call();
  } catch (const WriteAnswerLost&) {
    throw;
  } catch (const ServiceUnavailable& e) {
    throw WriteAnswerLost(e.what());
  }
}
}  // namespace

GenuineCard CounterWorkflow::prove_genuine() {
  const auto now = clock_();
  trust_->require_fresh(now);
  card_->select();
  auto verified = verify_card_certificate(card_->read_certificate(), *trust_, now);
  const auto grant = service_->create_nonce();
  const auto answer = card_->internal_authenticate(grant.nonce);
  auto proof = verify_internal_authenticate(verified, answer, grant.nonce);
  return {std::move(verified), std::move(proof)};
}

// A counter session on the card proven genuine a moment ago: another card put in the reader
// since then is refused, not served.
void CounterWorkflow::open_counter_session(const GenuineCard& genuine) {
  card_->open(CardRole::Counter);
  if (card_->card_number() != genuine.card.claims.card_number)
    throw HostRefusal("CARD_REMOVED", "another card is in the reader than the one proven genuine");
}

CardReading CounterWorkflow::read_card() {
  auto genuine = prove_genuine();
  auto at_service = service_->get_card(genuine.card.claims.card_number);
  open_counter_session(genuine);
  auto on_card = card_->list_vouchers(apdu::kListAll);
  return {std::move(genuine), std::move(at_service), std::move(on_card)};
}

IssueOutcome CounterWorkflow::issue(const IssueInput& in, std::vector<IssueOutcome>* settled_first) {
  const auto genuine = prove_genuine();
  if (settled_first) settle_unwritten_of(genuine, *settled_first);
  IssueRequest request{genuine.card.claims.card_number,
                       in.citizen_id,
                       in.programme,
                       in.occupation,
                       in.level,
                       in.fund,
                       in.planned_hours,
                       in.planned_online_hours,
                       in.eligible_regions,
                       in.eligible_providers,
                       genuine.proof};
  auto issued = write_call([&] { return service_->issue_voucher(request); });
  return write_voucher(genuine, issued.voucher_id, std::move(issued.token), std::move(issued.voucher), false);
}

IssueOutcome CounterWorkflow::write_voucher(const GenuineCard& genuine, const VoucherId& id, Bytes token,
                                            VoucherInfo info, bool moved) {
  IssueOutcome out{id, std::move(token), std::move(info), WriteState::Unknown, {}, {}};
  bool definitive_failure = false;
  try {
    // On the card proven genuine only: the lost card itself (same holder) or the next person's,
    // put in the reader meanwhile, never gets the voucher.
    open_counter_session(genuine);
    card_->store_voucher(out.token);
  } catch (const HostRefusal& e) {
    if (e.code() != "CARD_REMOVED") throw;
    definitive_failure = true;  // not written, and on no card of this holder's
    out.problem = std::string("CARD_REMOVED: ") + e.what();
  } catch (const iso7816::UnknownOutcomeError& e) {
    out.problem = std::string("UNKNOWN_OUTCOME: ") + e.what();
    return out;  // the next tap's LIST decides
  } catch (const iso7816::CardRemovedError& e) {
    definitive_failure = true;  // the command never reached the card
    out.problem = std::string("CARD_REMOVED: ") + e.what();
  } catch (const CardRefusal& e) {
    if (e.code() == "VOUCHER_ALREADY_ON_CARD") {
      // Already there (a retried write): it is on the card, so it is written.
    } else {
      definitive_failure = true;
      out.problem = e.code();
      out.problem_values = e.values();
    }
  } catch (const iso7816::CardError& e) {
    // Any other reader failure (a reset card, a vanished reader): whether the STORE reached the
    // card is not known, and the voucher is issued all the same — it goes back with its id for
    // the next tap's settle, never lost in an exception.
    out.problem = std::string("UNKNOWN_OUTCOME: ") + e.what();
    return out;
  }
  if (definitive_failure && moved) {
    // An existing subsidy moved from a lost card: voiding it would take it from the holder (a
    // new one is a new decision under this year's rules). It stays issued for `counter settle`.
    out.state = WriteState::NotWritten;
    return out;
  }
  try {
    if (definitive_failure) {
      service_->void_voucher(id, "card write failed: " + out.problem);
      out.state = WriteState::Voided;
    } else {
      service_->mark_written(id);
      out.state = WriteState::Written;
    }
  } catch (const ServiceUnavailable& e) {
    // The card is settled but the service did not hear it: settle() repeats the call.
    out.state = WriteState::Unknown;
    out.problem += (out.problem.empty() ? "" : "; ") + std::string("service: ") + e.what();
  } catch (const ServiceRefusal& e) {
    // The card is settled but the service refused to record it (e.g. the voucher was voided
    // meanwhile): the outcome still goes back with its voucher id, so the clerk can settle it.
    out.state = WriteState::Unknown;
    out.problem += (out.problem.empty() ? "" : "; ") + std::string("service refused: ") + e.code();
  }
  return out;
}

WriteState CounterWorkflow::settle(const VoucherId& voucher_id) {
  // Only the holder's own card decides: a voucher absent from another person's card (the next
  // customer's, put in the reader meanwhile) is not one to void.
  const auto genuine = prove_genuine();
  open_counter_session(genuine);
  const auto list = card_->list_vouchers(apdu::kListAll);
  const auto theirs = service_->holder_vouchers(list.holder, genuine.proof).vouchers;
  if (std::none_of(theirs.begin(), theirs.end(), [&](const HolderVoucher& v) { return v.voucher_id == voucher_id; }))
    throw HostRefusal("CARD_OF_ANOTHER_HOLDER", "the voucher is not among this card holder's vouchers");
  const bool on_card =
      std::any_of(list.slots.begin(), list.slots.end(), [&](const SlotSummary& s) { return s.id == voucher_id; });
  if (on_card) {
    service_->mark_written(voucher_id);
    return WriteState::Written;
  }
  const auto& v =
      *std::find_if(theirs.begin(), theirs.end(), [&](const HolderVoucher& h) { return h.voucher_id == voucher_id; });
  if (v.moved_from) {  // an existing subsidy: written now, never voided here
    return v.state == "issued" ? write_voucher(genuine, v.voucher_id, v.token, v.voucher, true).state
                               : WriteState::NotWritten;
  }
  service_->void_voucher(voucher_id, "not on the card after an unknown write outcome");
  return WriteState::Voided;
}

std::vector<IssueOutcome> CounterWorkflow::settle_unwritten() {
  std::vector<IssueOutcome> out;
  settle_unwritten_of(prove_genuine(), out);
  return out;
}

void CounterWorkflow::settle_unwritten_of(const GenuineCard& genuine, std::vector<IssueOutcome>& out) {
  open_counter_session(genuine);
  const auto list = card_->list_vouchers(apdu::kListAll);
  const auto theirs = service_->holder_vouchers(list.holder, genuine.proof).vouchers;
  for (const auto& v : theirs) {
    if (v.state != "issued") continue;
    const bool on_card =
        std::any_of(list.slots.begin(), list.slots.end(), [&](const SlotSummary& s) { return s.id == v.voucher_id; });
    if (on_card) {
      service_->mark_written(v.voucher_id);
      out.push_back({v.voucher_id, v.token, v.voucher, WriteState::Written, {}, {}});
    } else {
      out.push_back(write_voucher(genuine, v.voucher_id, v.token, v.voucher, v.moved_from.has_value()));
    }
  }
}

void CounterWorkflow::update_digest_from(const GenuineCard& genuine, const ServiceRefusal& duplicate) {
  const auto* text = duplicate.extra("digest");
  if (text == nullptr) return;
  try {
    const auto digest = base64url_decode(*text, "digest");
    const auto claims = verify_portfolio_digest(digest, *trust_, clock_());
    open_counter_session(genuine);
    if (card_->list_vouchers(apdu::kListAll).holder != claims.holder) return;
    if (const auto on_card = card_->read_digest()) {
      if (schemas::decode_portfolio_digest(*on_card).claims.digest_version >= claims.digest_version) return;
    }
    card_->write_digest(digest);
  } catch (const std::exception&) {
    // Best effort: the refusal is the answer; the next attempt tries again.
  }
}

RecordedCertificate CounterWorkflow::record_certificate(CertificateRequest request) {
  const auto genuine = prove_genuine();
  request.card = genuine.card.claims.card_number;
  RecordedCertificate recorded;
  try {
    recorded = write_call([&] { return service_->record_certificate(request); });
  } catch (const ServiceRefusal& e) {
    // Recorded before — perhaps by this counter, whose answer or WRITE DIGEST was lost: the card
    // takes the current digest when its own is older, and the refusal stands.
    if (e.code() == "P14_CERTIFICATE_DUPLICATE") update_digest_from(genuine, e);
    throw;
  }
  verify_portfolio_digest(recorded.digest, *trust_, clock_());
  open_counter_session(genuine);
  card_->write_digest(recorded.digest);
  return recorded;
}

void CounterWorkflow::change_pin(const Pin& old_pin, const Pin& new_pin) {
  card_->select();
  card_->open(CardRole::Counter);
  card_->change_pin(old_pin, new_pin);
}

// The service says whose card this is; a wrong person or a lost card stops here, before the
// card is touched (and before anyone types a new PIN).
CardRecord CounterWorkflow::after_holder_check(std::string_view citizen_id,
                                               const std::function<void(const GenuineCard&)>& reset) {
  const auto genuine = prove_genuine();
  auto card = service_->check_holder(citizen_id, genuine.proof);
  reset(genuine);
  return card;
}

CardRecord CounterWorkflow::reset_pin(std::string_view citizen_id, const Pin& new_pin) {
  return after_holder_check(citizen_id, [&](const GenuineCard& genuine) {
    open_counter_session(genuine);
    card_->reset_retry_counter(new_pin);
  });
}

CardRecord CounterWorkflow::reset_pin(std::string_view citizen_id, const std::function<Pin()>& ask_new_pin) {
  return after_holder_check(citizen_id, [&](const GenuineCard& genuine) {
    const auto new_pin = ask_new_pin();
    open_counter_session(genuine);
    card_->reset_retry_counter(new_pin);
  });
}

LostOutcome CounterWorkflow::replace_lost_card(const std::string& lost_card, const std::string& citizen_id) {
  const auto genuine = prove_genuine();
  LostOutcome out;
  out.answer = write_call([&] {
    return service_->report_lost({lost_card, citizen_id, genuine.card.claims.card_number});
  });
  for (const auto& m : out.answer.moved) {
    VoucherInfo info;
    info.id = m.voucher_id;
    out.moved.push_back(write_voucher(genuine, m.voucher_id, m.token, info, true));
  }
  return out;
}

std::vector<VoucherId> CounterWorkflow::purge_redeemed() {
  const auto genuine = prove_genuine();
  open_counter_session(genuine);
  const auto list = card_->list_vouchers(apdu::kListAll);
  const auto at_service = service_->holder_vouchers(list.holder, genuine.proof);
  std::vector<VoucherId> purged;
  for (const auto& slot : list.slots) {
    if (slot.state != SlotState::Redeemed) continue;
    const auto it = std::find_if(at_service.vouchers.begin(), at_service.vouchers.end(),
                                 [&](const HolderVoucher& v) { return v.voucher_id == slot.id; });
    // Only what the service confirms redeemed: the receipt on the card is the last copy otherwise.
    if (it == at_service.vouchers.end() || it->state != "redeemed") continue;
    card_->purge(slot.id);
    purged.push_back(slot.id);
  }
  return purged;
}

// ------------------------------------------------------------------------------------- site

RedemptionInDoubt::RedemptionInDoubt(InDoubt pending)
    : HostRefusal("UNKNOWN_OUTCOME",
                  "REDEEM of voucher " + lower_hex(pending.voucher) + " on card " + pending.card + " lost its answer"),
      pending_(std::move(pending)) {}

SiteWorkflow::SiteWorkflow(CardSession& card, ServiceClient& service, OfflineQueue& queue, SiteConfig config,
                           Clock clock)
    : card_(&card), service_(&service), queue_(&queue), config_(config), clock_(std::move(clock)) {}

namespace {
constexpr std::uint64_t kMaxOfflineAge = 72 * 3600;
constexpr std::uint64_t kMaxClockSkew = 5 * 60;
constexpr std::uint32_t kCardTimeTolerance = 10 * 60;
// Receipts looked at, after the one in doubt, for its voucher at this site.
constexpr std::uint32_t kMaxRecoveryScan = 16;
}  // namespace

PreparedNonce SiteWorkflow::prepare() {
  const auto now = clock_();
  try {
    const auto grant = service_->create_nonce();
    queue_->record_contact({now, grant.issued_at, grant.sync_window_seconds});
    return {grant.nonce, false, grant.expires_at,
            static_cast<std::int64_t>(grant.issued_at) - static_cast<std::int64_t>(now)};
  } catch (const ServiceUnavailable&) {
    const auto contact = queue_->last_contact();
    if (!contact) throw HostRefusal("OFFLINE_NOT_ALLOWED", "no online contact recorded yet");
    const auto skew = contact->local_time > contact->service_time ? contact->local_time - contact->service_time
                                                                  : contact->service_time - contact->local_time;
    if (now < contact->local_time) throw HostRefusal("OFFLINE_NOT_ALLOWED", "clock earlier than at the last contact");
    if (now - contact->local_time > kMaxOfflineAge)
      throw HostRefusal("OFFLINE_NOT_ALLOWED", "last online contact more than 72 h ago");
    if (skew > kMaxClockSkew) throw HostRefusal("OFFLINE_NOT_ALLOWED", "clock more than 5 min off the service's");
    PreparedNonce offline;
    offline.offline = true;
    offline.nonce[0] = static_cast<std::uint8_t>(schemas::NonceKind::Terminal);
    crypto::OpenSsl::random_bytes(std::span<std::uint8_t>(offline.nonce).subspan(1));
    return offline;
  }
}

std::vector<SlotSummary> SiteWorkflow::usable(const VoucherList& list, std::uint64_t now) const {
  std::vector<SlotSummary> out;
  for (const auto& s : list.slots)
    if (s.usable_at(config_.region, config_.site_id, now)) out.push_back(s);
  return out;
}

RedeemOutcome SiteWorkflow::redeem(const PreparedNonce& nonce, const Pin& pin, std::uint16_t classroom_hours,
                                   std::uint16_t online_hours, std::optional<VoucherId> voucher) {
  card_->select();
  card_->open(CardRole::Site);
  const auto card = card_->card_number();
  card_->verify(pin);
  const auto list = card_->list_vouchers(apdu::kListStored);

  if (const auto pending = queue_->in_doubt(card)) {
    // Did the REDEEM in doubt happen? Its receipt is the one, among those signed since, for its
    // voucher at this site: the holder may have redeemed elsewhere in between, and such a
    // receipt is not ours to submit. None: it did not happen, and this tap redeems normally.
    const auto newest = std::min<std::uint32_t>(list.redemption_counter, pending->counter_before + kMaxRecoveryScan);
    for (std::uint32_t counter = pending->counter_before + 1; counter <= newest; ++counter) {
      Bytes receipt;
      try {
        receipt = card_->get_receipt(counter);
      } catch (const CardRefusal& e) {
        // 6A88: its slot was reused, so not the voucher still in doubt. Any other refusal says
        // nothing about that receipt: the record of the doubt stays for the next tap.
        if (e.code() != "VOUCHER_NOT_ON_CARD") throw;
        continue;
      }
      schemas::ReceiptClaims claims;
      try {
        claims = schemas::decode_receipt(receipt).claims;
      } catch (const schemas::DecodeError&) {
        // Not a receipt this host reads (another site's newer software, say): not the one in
        // doubt, which this host asked for, and no reason to refuse the holder's card for good.
        continue;
      }
      if (claims.voucher != pending->voucher || claims.site != config_.site_id) continue;
      RedeemOutcome out;
      out.card = card;
      out.counter = counter;
      out.receipt = std::move(receipt);
      out.voucher_id = claims.voucher;
      out.terminal_time = claims.terminal_time;
      out.receipt_id = receipt_id(out.receipt);
      out.recovered = true;
      queue_->enqueue(out.voucher_id, card, out.receipt, out.terminal_time);
      queue_->forget_in_doubt(card);
      return submit(std::move(out));
    }
    queue_->forget_in_doubt(card);  // it did not happen: this tap redeems normally
  }

  // The time of this redemption: ours, corrected online by the service's (PreparedNonce).
  const auto now = static_cast<std::uint64_t>(static_cast<std::int64_t>(clock_()) + nonce.clock_correction);
  const auto candidates = usable(list, now);
  if (!voucher && choose_ && !candidates.empty()) {
    voucher = choose_(candidates);
    const bool offered =
        std::any_of(candidates.begin(), candidates.end(), [&](const SlotSummary& s) { return s.id == *voucher; });
    if (!offered) throw HostRefusal("VOUCHER_NOT_ON_CARD", "the chosen voucher is not one of those usable here");
  }
  const SlotSummary* chosen = nullptr;
  for (const auto& s : candidates)
    if (!voucher || s.id == *voucher) {
      chosen = &s;
      break;
    }
  if (!chosen && voucher) {
    // Say why the asked-for voucher cannot be redeemed: one more LIST, on the refusal path only.
    for (const auto& s : card_->list_vouchers(apdu::kListAll).slots) {
      if (s.id != *voucher) continue;
      if (s.state == SlotState::Redeemed || s.state == SlotState::PurgedPending) {
        throw HostRefusal("P15_ALREADY_REDEEMED", "the card holds this voucher as redeemed");
      }
      if (s.state == SlotState::Stored) {
        // The service's words for it (P15): a voucher naming providers is refused for the provider.
        throw HostRefusal(s.expiry <= now       ? "P15_VOUCHER_EXPIRED"
                          : s.providers.empty() ? "REGION_NOT_ELIGIBLE"
                                                : "PROVIDER_NOT_ELIGIBLE",
                          "the voucher is on the card but not usable at this site now");
      }
    }
  }
  if (!chosen && voucher) throw HostRefusal("VOUCHER_NOT_ON_CARD", "the asked-for voucher is not on the card");
  if (!chosen) {
    // None usable here: name the reason the holder can act on — none stored at all, every stored
    // one expired (P15), or stored ones valid elsewhere (the region or provider they name).
    const SlotSummary* live = nullptr;
    for (const auto& s : list.slots)
      if (s.state == SlotState::Stored && s.expiry > now) {
        live = &s;
        break;
      }
    const bool any_stored = std::any_of(list.slots.begin(), list.slots.end(),
                                        [](const SlotSummary& s) { return s.state == SlotState::Stored; });
    throw HostRefusal(!any_stored               ? "NO_USABLE_VOUCHER"
                      : !live                   ? "P15_VOUCHER_EXPIRED"
                      : live->providers.empty() ? "REGION_NOT_ELIGIBLE"
                                                : "PROVIDER_NOT_ELIGIBLE",
                      "no stored voucher usable at this site now");
  }

  const auto terminal_time = now;
  if (terminal_time + kCardTimeTolerance < list.time_mark)
    throw HostRefusal("CARD_TIME_REGRESSION", "terminal time before the card's time mark");

  RedeemRequest request;
  request.voucher = chosen->id;
  request.site = config_.site_id;
  request.nonce = nonce.nonce;
  request.terminal_time = static_cast<std::uint32_t>(terminal_time);
  request.classroom_hours = classroom_hours;
  request.online_hours = online_hours;

  RedeemOutcome out;
  out.card = card;
  out.voucher_id = chosen->id;
  out.terminal_time = request.terminal_time;
  // In doubt on disk before the card can commit: if this process, the host or its power dies
  // after the card signed and before the receipt is queued, the next tap finds the record and
  // fetches the receipt (GET RECEIPT) instead of losing it.
  const InDoubt pending{card, chosen->id, list.redemption_counter, request.terminal_time};
  queue_->remember_in_doubt(pending);
  try {
    out.receipt = card_->redeem(request);
  } catch (const iso7816::UnknownOutcomeError&) {
    throw RedemptionInDoubt(pending);
  } catch (const CardRefusal&) {
    queue_->forget_in_doubt(card);  // the card answered no: nothing happened
    throw;
  } catch (const iso7816::CardRemovedError&) {
    queue_->forget_in_doubt(card);  // the command never reached the card
    throw;
  }
  out.counter = list.redemption_counter + 1;
  out.receipt_id = receipt_id(out.receipt);
  // Queued, then no longer in doubt: a crash between the two finds the receipt queued already.
  queue_->enqueue(out.voucher_id, card, out.receipt, out.terminal_time);
  queue_->forget_in_doubt(card);
  return submit(std::move(out));
}

RedeemOutcome SiteWorkflow::submit(RedeemOutcome out) {
  try {
    const auto answer = service_->submit_redemption({out.voucher_id, out.receipt, out.card});
    out.status = answer.created ? RedeemStatus::Recorded : RedeemStatus::AlreadyRecorded;
    out.redemption = answer.redemption;
  } catch (const ServiceUnavailable& e) {
    out.status = RedeemStatus::Queued;
    out.queued_because = e.what();
    return out;
  } catch (const ServiceRefusal& e) {
    // A refusal of the request rather than of the receipt (the online nonce expired or no longer
    // known — a failover, a restore —, the terminal's certificate, a policy not set up) says
    // nothing against the receipt: it waits for a sync, which checks it on its own merits.
    if (e.code() == "NONCE_EXPIRED" || e.code() == "NONCE_UNKNOWN" || e.code() == "TERMINAL_REVOKED" ||
        e.code() == "TERMINAL_ROLE_FORBIDDEN" || refusal_may_pass_later(e.code())) {
      out.status = RedeemStatus::Queued;
      out.queued_because = e.code();
      return out;
    }
    queue_->mark_refused(out.receipt, e.code(), e.rules(), {e.message(Lang::ZhCn), e.message(Lang::En)});
    throw ReceiptRefused(e, std::move(out));
  }
  // Acknowledged: it leaves the queue (a sync of it would be answered 200 anyway).
  queue_->remove(out.receipt);
  // The service is reachable again: what an offline spell left waiting goes now, once the holder's
  // part is done, rather than when a clerk remembers `site sync` (P12's window is running). One
  // batch at most, so that the slip is not held up; site sync sends the rest. The redemption
  // stands whatever this meets (the queue unreadable, the sync refused): it is reported only.
  try {
    const auto left = queue_->pending(0);
    if (std::any_of(left.begin(), left.end(), [](const QueuedReceipt& q) { return !q.refused; })) {
      out.synced = queue_->sync(*service_, kSyncBatch);
    }
  } catch (const std::exception& e) {
    out.synced.reset();
    out.sync_problem = e.what();
  }
  return out;
}

// ------------------------------------------------------------------------------------ kiosk

std::vector<KioskRecord> check_records(const std::vector<PortfolioRecord>& records,
                                       const std::optional<schemas::PortfolioDigestClaims>& card_digest) {
  std::vector<KioskRecord> out;
  for (const auto& r : records) {
    KioskRecord k{r, std::nullopt, RecordCheck::Mismatch};
    try {
      k.record = schemas::decode_certificate_record(r.record);
    } catch (const schemas::DecodeError&) {
      k.record.reset();
    }
    if (!card_digest) {
      k.check = RecordCheck::NoCardDigest;
    } else {
      const auto d = crypto::OpenSsl::sha256(r.record);
      const bool listed =
          std::find(card_digest->digests.begin(), card_digest->digests.end(), d) != card_digest->digests.end();
      if (listed) {
        k.check = RecordCheck::OnCard;
      } else if (r.digest_version > card_digest->digest_version) {
        k.check = RecordCheck::NewerThanCard;
      } else {
        // Left off the digest legitimately only if at least 11 records came after it up to the
        // card's version (the digest holds the 11 most recent, N-3).
        const auto later = std::count_if(records.begin(), records.end(), [&](const PortfolioRecord& o) {
          return o.digest_version > r.digest_version && o.digest_version <= card_digest->digest_version;
        });
        k.check = static_cast<std::size_t>(later) >= schemas::kMaxPortfolioDigests ? RecordCheck::OlderThanCard
                                                                                   : RecordCheck::Mismatch;
      }
    }
    out.push_back(std::move(k));
  }
  return out;
}

KioskWorkflow::KioskWorkflow(CardSession& card, ServiceClient& service, const TrustAnchors& trust, Clock clock)
    : card_(&card), service_(&service), trust_(&trust), clock_(std::move(clock)) {}

KioskView KioskWorkflow::lookup(const Pin& pin, bool vouchers, bool portfolio) {
  const auto now = clock_();
  trust_->require_fresh(now);
  const auto grant = service_->create_nonce();
  card_->select();
  card_->open(CardRole::Kiosk);
  KioskView view;
  view.card = card_->card_number();
  card_->verify(pin);
  const auto auth = card_->internal_authenticate(grant.nonce);
  const CardProof proof{view.card, grant.nonce, auth.counter, auth.pin_verified, auth.signature};
  const auto list = card_->list_vouchers(apdu::kListAll);
  view.holder = list.holder;
  const auto digest = card_->read_digest();
  if (digest) {
    auto claims = verify_portfolio_digest(*digest, *trust_, now);
    if (claims.holder != view.holder)
      throw HostRefusal("TOKEN_BAD_SIGNATURE", "the card's portfolio digest names another holder");
    view.card_digest = std::move(claims);
  }
  if (vouchers) {
    for (auto& v : service_->holder_vouchers(view.holder, proof).vouchers) {
      KioskVoucher k{std::move(v), std::nullopt, false, {}};
      for (const auto& s : list.slots)
        if (s.id == k.service.voucher_id) k.on_card = s.state;
      try {
        const auto claims = verify_voucher_token(k.service.token, *trust_, now);
        if (claims.id != k.service.voucher_id || claims.holder != view.holder)
          k.problem = "token is for another voucher or holder";
        else
          k.token_verified = true;
      } catch (const HostRefusal& e) {
        k.problem = e.code();
      }
      view.vouchers.push_back(std::move(k));
    }
  }
  if (portfolio) {
    const auto p = service_->holder_portfolio(view.holder, proof);
    view.card_digest_out_of_date = view.card_digest && p.digest_version > view.card_digest->digest_version;
    view.records = check_records(p.records, view.card_digest);
  }
  return view;
}

}  // namespace skillcard::host
