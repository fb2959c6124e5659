#include "skillcard/ledger/audit.hpp"

#include <algorithm>
#include <cstdint>

#include <cstring>
#include <map>
#include <set>

#include "skillcard/crypto/backend.hpp"
#include "skillcard/schemas/cose.hpp"
#include "skillcard/schemas/errors.hpp"

namespace skillcard::ledger {

namespace {

constexpr std::string_view kAuditDomain = "skillcard/audit/v1";

// --- the few deterministic CBOR items a checkpoint needs --------------------------------------

void cbor_head(Bytes& out, std::uint8_t major, std::uint64_t v) {
  const auto m = static_cast<std::uint8_t>(major << 5);
  if (v < 24) {
    out.push_back(static_cast<std::uint8_t>(m | v));
  } else if (v <= 0xFF) {
    out.push_back(static_cast<std::uint8_t>(m | 24));
    out.push_back(static_cast<std::uint8_t>(v));
  } else if (v <= 0xFFFF) {
    out.push_back(static_cast<std::uint8_t>(m | 25));
    for (int s = 8; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  } else if (v <= 0xFFFFFFFF) {
    out.push_back(static_cast<std::uint8_t>(m | 26));
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  } else {
    out.push_back(static_cast<std::uint8_t>(m | 27));
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  }
}
void cbor_key(Bytes& out, std::int64_t key) {
  if (key >= 0) {
    cbor_head(out, 0, static_cast<std::uint64_t>(key));
  } else {
    cbor_head(out, 1, static_cast<std::uint64_t>(-1 - key));
  }
}
void cbor_bytes(Bytes& out, ByteView b) {
  cbor_head(out, 2, b.size());
  out.insert(out.end(), b.begin(), b.end());
}

class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}
  // Reads one head of the given major type and returns its argument (any width: canonical form
  // is checked by re-encoding afterwards).
  std::uint64_t head(std::uint8_t major, const char* field) {
    need(1, field);
    const std::uint8_t b = in_[pos_++];
    if ((b >> 5) != major) {
      throw schemas::DecodeError(schemas::DecodeErrorKind::WrongType, field, "unexpected CBOR type");
    }
    const std::uint8_t info = b & 0x1F;
    if (info < 24) return info;
    std::size_t n = 0;
    switch (info) {
      case 24:
        n = 1;
        break;
      case 25:
        n = 2;
        break;
      case 26:
        n = 4;
        break;
      case 27:
        n = 8;
        break;
      default:
        throw schemas::DecodeError(schemas::DecodeErrorKind::Malformed, field, "indefinite or reserved length");
    }
    need(n, field);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | in_[pos_++];
    return v;
  }
  std::int64_t key(const char* field) {
    need(1, field);
    const std::uint8_t major = in_[pos_] >> 5;
    if (major == 0) return static_cast<std::int64_t>(head(0, field));
    const auto v = head(1, field);
    if (v > 0x7FFFFFFF) throw schemas::DecodeError(schemas::DecodeErrorKind::OutOfRange, field, "key too large");
    return -1 - static_cast<std::int64_t>(v);
  }
  template <std::size_t N>
  std::array<std::uint8_t, N> fixed_bytes(const char* field) {
    const auto n = head(2, field);
    if (n != N) {
      throw schemas::DecodeError(schemas::DecodeErrorKind::OutOfRange, field,
                                 "expected " + std::to_string(N) + " bytes, got " + std::to_string(n));
    }
    need(N, field);
    std::array<std::uint8_t, N> out{};
    std::copy_n(in_.begin() + static_cast<std::ptrdiff_t>(pos_), N, out.begin());
    pos_ += N;
    return out;
  }
  bool at_end() const noexcept { return pos_ == in_.size(); }

 private:
  void need(std::size_t n, const char* field) const {
    if (in_.size() - pos_ < n) throw schemas::DecodeError(schemas::DecodeErrorKind::Truncated, field, "input ends");
  }
  ByteView in_;
  std::size_t pos_ = 0;
};

}  // namespace

namespace {

// Appends the canonical encoding of `e` to `out` (sized once: this runs for every ledger write).
void append_encoding(Bytes& out, const AuditEntry& e) {
  const std::size_t start = out.size();
  const std::size_t size = kAuditDomain.size() + 1 + 16 + 5 * 4 + e.terminal.size() + e.clerk.size() + e.action.size() +
                           e.subject.size() + e.outcome.size();
  out.resize(start + size);
  std::uint8_t* p = out.data() + start;
  const auto put = [&](const void* src, std::size_t n) {
    if (n > 0) std::memcpy(p, src, n);
    p += n;
  };
  const auto be = [&](std::uint64_t v, int bytes) {
    for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) *p++ = static_cast<std::uint8_t>(v >> shift);
  };
  const auto text = [&](const std::string& t) {
    be(t.size(), 4);
    put(t.data(), t.size());
  };
  put(kAuditDomain.data(), kAuditDomain.size());
  *p++ = 0x00;
  be(e.seq, 8);
  be(e.at, 8);
  text(e.terminal);
  text(e.clerk);
  text(e.action);
  text(e.subject);
  text(e.outcome);
}

}  // namespace

Bytes audit_encoding(const AuditEntry& e) {
  Bytes out;
  append_encoding(out, e);
  return out;
}

AuditHash audit_hash(const AuditHash& prev_hash, const AuditEntry& entry) {
  Bytes message(prev_hash.begin(), prev_hash.end());
  append_encoding(message, entry);
  return crypto::OpenSsl::sha256(message);
}

// Keys in deterministic order (RFC 8949 §4.2.1, bytewise on the encoded keys):
// 6 (0x06) < -1 (0x20) < -70 (0x38 45) < -71 (0x38 46) < -72 (0x38 47).
Bytes encode_payload(const Checkpoint& c) {
  Bytes out;
  cbor_head(out, 5, 5);
  cbor_key(out, 6);
  cbor_head(out, 0, c.at);
  cbor_key(out, -1);
  cbor_head(out, 0, kCheckpointFormatVersion);
  cbor_key(out, -70);
  cbor_head(out, 0, c.count);
  cbor_key(out, -71);
  cbor_bytes(out, c.head);
  cbor_key(out, -72);
  cbor_bytes(out, c.ledger);
  return out;
}

Checkpoint decode_checkpoint_payload(ByteView payload) {
  using schemas::DecodeError;
  using schemas::DecodeErrorKind;
  if (payload.size() > 256) throw DecodeError(DecodeErrorKind::TooLarge, "", "checkpoint payload over 256 bytes");
  Reader r(payload);
  if (r.head(5, "checkpoint map") != 5) {
    throw DecodeError(DecodeErrorKind::UnknownKey, "checkpoint map", "expected exactly the 5 checkpoint claims");
  }
  Checkpoint c;
  const auto expect_key = [&](std::int64_t want, const char* field) {
    const auto k = r.key(field);
    if (k != want) {
      throw DecodeError(DecodeErrorKind::UnknownKey, field,
                        "expected key " + std::to_string(want) + ", found " + std::to_string(k));
    }
  };
  expect_key(6, "checkpoint claim 6 (at)");
  c.at = r.head(0, "checkpoint claim 6 (at)");
  expect_key(-1, "checkpoint claim -1 (format version)");
  const auto version = r.head(0, "checkpoint claim -1 (format version)");
  if (version > kCheckpointFormatVersion) {
    throw DecodeError(DecodeErrorKind::NewerFormat, "checkpoint claim -1 (format version)",
                      "version " + std::to_string(version));
  }
  if (version != kCheckpointFormatVersion) {
    throw DecodeError(DecodeErrorKind::OutOfRange, "checkpoint claim -1 (format version)", "version 0");
  }
  expect_key(-70, "checkpoint claim -70 (count)");
  c.count = r.head(0, "checkpoint claim -70 (count)");
  expect_key(-71, "checkpoint claim -71 (head hash)");
  c.head = r.fixed_bytes<32>("checkpoint claim -71 (head hash)");
  expect_key(-72, "checkpoint claim -72 (ledger id)");
  c.ledger = r.fixed_bytes<16>("checkpoint claim -72 (ledger id)");
  if (!r.at_end()) throw DecodeError(DecodeErrorKind::TrailingBytes, "", "bytes after the checkpoint map");
  if (encode_payload(c) != Bytes(payload.begin(), payload.end())) {
    throw DecodeError(DecodeErrorKind::NonCanonical, "", "not deterministic CBOR");
  }
  return c;
}

Bytes sign_checkpoint(const Checkpoint& checkpoint, const crypto::Signer& signer) {
  return schemas::CoseSign1::sign(signer.kid(), std::nullopt, encode_payload(checkpoint),
                                  [&](ByteView to_be_signed) { return signer.sign(to_be_signed); });
}

Bytes make_checkpoint(Ledger& ledger, const crypto::Signer& signer, UtcSeconds now) {
  const AuditHead head = ledger.audit_head();
  Checkpoint c;
  c.ledger = ledger.ledger_id();
  c.count = head.count;
  c.head = head.hash;
  c.at = now;
  return sign_checkpoint(c, signer);
}

std::string_view to_string(CheckpointVerdict verdict) noexcept {
  switch (verdict) {
    case CheckpointVerdict::Ok:
      return "ok";
    case CheckpointVerdict::Malformed:
      return "malformed";
    case CheckpointVerdict::WrongKey:
      return "signed by another key";
    case CheckpointVerdict::BadSignature:
      return "bad signature";
  }
  return "?";
}

CheckpointCheck verify_checkpoint(ByteView signed_checkpoint, const crypto::OpenSsl::VerifyKey& audit_key) {
  CheckpointCheck out;
  try {
    const auto envelope = schemas::CoseSign1::decode(signed_checkpoint, 4096);
    const crypto::Kid kid = envelope.require_skillcard_profile(std::nullopt, "audit checkpoint");
    out.checkpoint = decode_checkpoint_payload(envelope.payload());
    if (kid != crypto::kid_of<crypto::OpenSsl>(audit_key.public_key())) {
      out.verdict = CheckpointVerdict::WrongKey;
      out.detail = "kid " + lower_hex(kid) + " is not the audit signer's";
      return out;
    }
    const auto verdict = envelope.verify([&](ByteView tbs, const crypto::EcSignature& signature) {
      return crypto::OpenSsl::verify(audit_key, tbs, signature);
    });
    if (!verdict.ok()) {
      out.verdict = CheckpointVerdict::BadSignature;
      out.detail = verdict.reason;
      return out;
    }
    out.verdict = CheckpointVerdict::Ok;
  } catch (const schemas::DecodeError& e) {
    out.verdict = CheckpointVerdict::Malformed;
    out.detail = e.what();
  }
  return out;
}

std::string_view to_string(AuditProblemKind kind) noexcept {
  switch (kind) {
    case AuditProblemKind::Gap:
      return "gap";
    case AuditProblemKind::Altered:
      return "altered";
    case AuditProblemKind::ChainBroken:
      return "chain-broken";
    case AuditProblemKind::Truncated:
      return "truncated";
    case AuditProblemKind::CheckpointMismatch:
      return "checkpoint-mismatch";
    case AuditProblemKind::CheckpointInvalid:
      return "checkpoint-invalid";
    case AuditProblemKind::CheckpointOtherLedger:
      return "checkpoint-other-ledger";
    case AuditProblemKind::Unaudited:
      return "unaudited";
  }
  return "?";
}

AuditReport verify_audit(Ledger& ledger, std::span<const Bytes> checkpoints,
                         const crypto::OpenSsl::VerifyKey& audit_key) {
  AuditReport report;
  const LedgerId id = ledger.ledger_id();
  std::multimap<std::uint64_t, Checkpoint> wanted;  // by count
  for (std::size_t i = 0; i < checkpoints.size(); ++i) {
    const auto check = verify_checkpoint(checkpoints[i], audit_key);
    const std::uint64_t count = check.checkpoint ? check.checkpoint->count : 0;
    if (!check.ok()) {
      report.problems.push_back({AuditProblemKind::CheckpointInvalid, count,
                                 "checkpoint #" + std::to_string(i + 1) + ": " + std::string(to_string(check.verdict)) +
                                     (check.detail.empty() ? "" : " (" + check.detail + ")")});
    } else if (check.checkpoint->ledger != id) {
      report.problems.push_back({AuditProblemKind::CheckpointOtherLedger, count,
                                 "checkpoint #" + std::to_string(i + 1) + " is of ledger " +
                                     lower_hex(check.checkpoint->ledger) + ", this is " + lower_hex(id)});
    } else {
      wanted.emplace(check.checkpoint->count, *check.checkpoint);
      report.newest_checkpoint = std::max(report.newest_checkpoint, check.checkpoint->count);
    }
  }
  // What decides payment, read before the log: each redemption and reversal in this snapshot was
  // committed with its audit row, so the walk below, later, must find it. One written by SQL
  // around the ledger's code (a reversal that takes a redemption out of the settlement, say) has
  // none — the chain alone cannot show that.
  std::vector<std::pair<std::string, bool>> redemptions;  // subject, reversed
  ledger.read_for_reports({[](const VoucherRecord&) {},
                           [&](const RedemptionExportRow& row) {
                             redemptions.emplace_back("voucher:" + lower_hex(row.redemption.voucher),
                                                      row.redemption.reversed_at.has_value());
                           },
                           [](const CertificateEntry&) {}, [](const Budget&) {}});
  std::set<std::string> recorded, reversed;
  std::set<std::uint64_t> compared;
  const auto compare = [&](std::uint64_t seq, const AuditHash& chain) {
    const auto [first, last] = wanted.equal_range(seq);
    if (first != last) compared.insert(seq);
    for (auto it = first; it != last; ++it) {
      if (it->second.head == chain) {
        ++report.checkpoints_matched;
      } else {
        report.problems.push_back({AuditProblemKind::CheckpointMismatch, seq,
                                   "the chain recomputed from the rows differs from the signed head at " +
                                       std::to_string(seq) + " rows (" + lower_hex(it->second.head) + ")"});
      }
    }
  };
  compare(0, AuditHash{});  // a checkpoint of the empty log

  AuditHash chain{};        // recomputed from genesis over the rows present
  AuditHash stored_prev{};  // the previous row's stored hash
  std::uint64_t expected = 1;
  std::uint64_t last_seq = 0;
  // A row keyed at the very top of the signed 64-bit range (a forged seq) ends the scan: nothing
  // can follow it, and asking for the rows after it would not fit the column.
  constexpr auto kLastSeq = static_cast<std::uint64_t>(INT64_MAX);
  for (bool more = true; more;) {
    const auto rows = ledger.audit_entries(expected, 4096);
    if (rows.empty()) break;
    for (const auto& e : rows) {
      if (e.seq != expected) {
        report.problems.push_back({AuditProblemKind::Gap, expected,
                                   e.seq == expected + 1 ? "row " + std::to_string(expected) + " is missing"
                                                         : "rows " + std::to_string(expected) + " to " +
                                                               std::to_string(e.seq - 1) + " are missing"});
      } else if (e.prev_hash != stored_prev) {
        report.problems.push_back({AuditProblemKind::ChainBroken, e.seq,
                                   "prev_hash of row " + std::to_string(e.seq) +
                                       " is not the hash of the row before it (rows reordered or removed)"});
      }
      if (audit_hash(e.prev_hash, e) != e.hash) {
        report.problems.push_back(
            {AuditProblemKind::Altered, e.seq, "row " + std::to_string(e.seq) + " does not match its hash"});
      }
      if (e.outcome == "ok" && (e.action == "redemption.record" || e.action == "redemption.reverse")) {
        // "voucher:<id>", and for a reversal " reason:…" after it.
        (e.action == "redemption.record" ? recorded : reversed).insert(e.subject.substr(0, e.subject.find(' ')));
      }
      chain = audit_hash(chain, e);
      stored_prev = e.hash;
      last_seq = e.seq;
      ++report.rows;
      compare(e.seq, chain);
      if (e.seq >= kLastSeq) {
        more = false;
        break;
      }
      expected = e.seq + 1;
    }
  }
  report.recomputed = {last_seq, chain};
  for (const auto& [subject, was_reversed] : redemptions) {
    if (!recorded.contains(subject)) {
      report.problems.push_back({AuditProblemKind::Unaudited, 0,
                                 "the redemption of " + subject + " has no redemption.record row in the log"});
    }
    if (was_reversed && !reversed.contains(subject)) {
      report.problems.push_back({AuditProblemKind::Unaudited, 0,
                                 "the reversal of the redemption of " + subject + " has no redemption.reverse row"});
    }
  }
  for (const auto& [count, checkpoint] : wanted) {
    if (compared.contains(count)) continue;
    if (count > last_seq) {
      report.problems.push_back(
          {AuditProblemKind::Truncated, count,
           "a checkpoint signed " + std::to_string(count) + " rows, the log ends at " + std::to_string(last_seq)});
    } else {
      report.problems.push_back({AuditProblemKind::CheckpointMismatch, count,
                                 "row " + std::to_string(count) + ", the head a checkpoint signed, is missing"});
    }
  }
  return report;
}

}  // namespace skillcard::ledger
