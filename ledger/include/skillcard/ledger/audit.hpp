// The audit log's hash chain and its signed checkpoints (docs/ledger.md, "Audit log"), and the
// verification that finds a removed, altered or reordered row, a truncated log, or a rewritten
// chain that no longer matches a checkpoint. Backend-neutral: works through the Ledger interface.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/signer.hpp"
#include "skillcard/ledger/ledger.hpp"

namespace skillcard::ledger {

// Canonical encoding of a row (everything but the hashes):
//   "skillcard/audit/v1" 0x00 ‖ seq (u64 BE) ‖ at (u64 BE) ‖ terminal ‖ clerk ‖ action ‖ subject ‖ outcome
// each text as u32 BE length ‖ UTF-8 bytes. hash = SHA-256(prev_hash ‖ encoding); the first
// row's prev_hash is 32 zero bytes.
Bytes audit_encoding(const AuditEntry& entry);
AuditHash audit_hash(const AuditHash& prev_hash, const AuditEntry& entry);

// A signed checkpoint: COSE_Sign1 by the audit signer (role audit) over the deterministic CBOR
// map {6: at, -1: 1, -70: count, -71: head hash (bstr 32), -72: ledger id (bstr 16)}.
struct Checkpoint {
  LedgerId ledger{};
  std::uint64_t count = 0;
  AuditHash head{};
  UtcSeconds at = 0;
  bool operator==(const Checkpoint&) const = default;
};
inline constexpr std::uint64_t kCheckpointFormatVersion = 1;

Bytes encode_payload(const Checkpoint& checkpoint);
Checkpoint decode_checkpoint_payload(ByteView payload);  // schemas::DecodeError; strict
Bytes sign_checkpoint(const Checkpoint& checkpoint, const crypto::Signer& signer);
// The ledger's current head, signed: what the service exports periodically and the tool's
// `checkpoint` writes to a file kept outside the database.
Bytes make_checkpoint(Ledger& ledger, const crypto::Signer& signer, UtcSeconds now);

enum class CheckpointVerdict { Ok, Malformed, WrongKey, BadSignature };
std::string_view to_string(CheckpointVerdict verdict) noexcept;
struct CheckpointCheck {
  CheckpointVerdict verdict = CheckpointVerdict::Malformed;
  std::optional<Checkpoint> checkpoint;  // decoded (also when the signature is bad)
  std::string detail;
  bool ok() const noexcept { return verdict == CheckpointVerdict::Ok; }
};
CheckpointCheck verify_checkpoint(ByteView signed_checkpoint, const crypto::OpenSsl::VerifyKey& audit_key);

enum class AuditProblemKind {
  Gap,                    // a seq is missing: a row was removed
  Altered,                // a row's stored hash does not match its content
  ChainBroken,            // prev_hash is not the previous row's hash: reordered or removed rows
  Truncated,              // a checkpoint counts more rows than the log holds
  CheckpointMismatch,     // the chain recomputed from the rows differs from a signed head
  CheckpointInvalid,      // malformed, another key, or a bad signature
  CheckpointOtherLedger,  // a checkpoint of another ledger
  Unaudited,              // a redemption, or its reversal, without its audit row: written around the ledger
};
std::string_view to_string(AuditProblemKind kind) noexcept;
struct AuditProblem {
  AuditProblemKind kind = AuditProblemKind::Altered;
  std::uint64_t seq = 0;  // the row (or the checkpoint's count)
  std::string detail;
};
struct AuditReport {
  std::uint64_t rows = 0;
  AuditHead recomputed;  // head of the chain recomputed from genesis
  std::size_t checkpoints_matched = 0;
  std::uint64_t newest_checkpoint = 0;  // the largest count a valid checkpoint of this ledger signed
  std::vector<AuditProblem> problems;
  bool ok() const noexcept { return problems.empty(); }
};
// Walks the whole log and compares it with every checkpoint (signature first).
AuditReport verify_audit(Ledger& ledger, std::span<const Bytes> checkpoints,
                         const crypto::OpenSsl::VerifyKey& audit_key);

}  // namespace skillcard::ledger
