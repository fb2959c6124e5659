#include "skillcard/ledger/types.hpp"

#include "skillcard/ledger/ledger.hpp"

namespace skillcard::ledger {

namespace {
std::string located(const std::string& what, const CallSite& where) {
  return what + " [" + where.file + ":" + std::to_string(where.line) + " in " + where.function + "]";
}
}  // namespace

std::string_view to_string(StorageErrorKind kind) noexcept {
  switch (kind) {
    case StorageErrorKind::Busy:
      return "busy";
    case StorageErrorKind::Constraint:
      return "constraint";
    case StorageErrorKind::Corrupt:
      return "corrupt";
    case StorageErrorKind::NotADatabase:
      return "not a database";
    case StorageErrorKind::IoError:
      return "I/O error";
    case StorageErrorKind::Full:
      return "disk full";
    case StorageErrorKind::ReadOnly:
      return "read-only";
    case StorageErrorKind::CantOpen:
      return "cannot open";
    case StorageErrorKind::Misuse:
      return "misuse";
    case StorageErrorKind::OutcomeUnknown:
      return "outcome unknown";
    case StorageErrorKind::Other:
      break;
  }
  return "other";
}

StorageError::StorageError(StorageErrorKind kind, int backend_code, const std::string& what, CallSite where)
    : std::runtime_error(located(what, where)), kind_(kind), backend_code_(backend_code), where_(where) {}

SchemaError::SchemaError(Reason reason, const std::string& what, int found_version, int supported_version)
    : std::runtime_error(what), reason_(reason), found_(found_version), supported_(supported_version) {}

std::uint64_t serial_of(const VoucherId& id) noexcept {
  std::uint64_t v = 0;
  for (auto b : id) v = (v << 8) | b;
  return v;
}

VoucherId voucher_id(std::uint64_t serial) noexcept {
  VoucherId id{};
  for (std::size_t i = id.size(); i-- > 0;) {
    id[i] = static_cast<std::uint8_t>(serial & 0xFF);
    serial >>= 8;
  }
  return id;
}

std::string lower_hex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0F]);
  }
  return out;
}

std::string_view to_string(CardState state) noexcept {
  switch (state) {
    case CardState::Active:
      return "active";
    case CardState::Lost:
      return "lost";
    case CardState::Replaced:
      return "replaced";
  }
  return "?";
}

std::string_view to_string(CardStatus status) noexcept {
  switch (status) {
    case CardStatus::Registered:
      return "registered";
    case CardStatus::AlreadyRegisteredSame:
      return "already-registered-same";
    case CardStatus::NumberTaken:
      return "number-taken";
    case CardStatus::Changed:
      return "changed";
    case CardStatus::AlreadyInState:
      return "already-in-state";
    case CardStatus::CardUnknown:
      return "card-unknown";
    case CardStatus::CardNotActive:
      return "card-not-active";
    case CardStatus::ReplacementUnknown:
      return "replacement-unknown";
    case CardStatus::ReplacementNotActive:
      return "replacement-not-active";
    case CardStatus::ReplacementOfAnotherHolder:
      return "replacement-of-another-holder";
  }
  return "?";
}

std::string_view to_string(VoucherState state) noexcept {
  switch (state) {
    case VoucherState::Issued:
      return "issued";
    case VoucherState::Written:
      return "written";
    case VoucherState::Redeemed:
      return "redeemed";
    case VoucherState::Voided:
      return "voided";
    case VoucherState::Expired:
      return "expired";
    case VoucherState::Moved:
      return "moved";
  }
  return "?";
}

bool counts_as_subsidy(VoucherState state) noexcept {
  return state == VoucherState::Issued || state == VoucherState::Written || state == VoucherState::Redeemed;
}

std::string_view to_string(VoucherStatus status) noexcept {
  switch (status) {
    case VoucherStatus::Changed:
      return "changed";
    case VoucherStatus::AlreadyInState:
      return "already-in-state";
    case VoucherStatus::VoucherUnknown:
      return "voucher-unknown";
    case VoucherStatus::WrongState:
      return "wrong-state";
  }
  return "?";
}

std::string_view to_string(IssueStatus status) noexcept {
  switch (status) {
    case IssueStatus::Issued:
      return "issued";
    case IssueStatus::StaleDecision:
      return "stale-decision";
    case IssueStatus::Refused:
      return "refused";
    case IssueStatus::CardUnknown:
      return "card-unknown";
    case IssueStatus::CardNotActive:
      return "card-not-active";
    case IssueStatus::CardOfAnotherHolder:
      return "card-of-another-holder";
  }
  return "?";
}

std::string_view to_string(BudgetStatus status) noexcept {
  return status == BudgetStatus::Set ? "set" : "below-committed";
}

std::string_view to_string(NonceStatus status) noexcept {
  switch (status) {
    case NonceStatus::Ok:
      return "ok";
    case NonceStatus::Duplicate:
      return "duplicate";
    case NonceStatus::Unknown:
      return "unknown";
    case NonceStatus::Expired:
      return "expired";
    case NonceStatus::Used:
      return "used";
  }
  return "?";
}

std::string_view to_string(RecordStatus status) noexcept {
  switch (status) {
    case RecordStatus::Recorded:
      return "recorded";
    case RecordStatus::AlreadyRecordedSame:
      return "already-recorded-same";
    case RecordStatus::VoucherAlreadyRedeemed:
      return "voucher-already-redeemed";
    case RecordStatus::CounterReused:
      return "counter-reused";
    case RecordStatus::NonceReused:
      return "nonce-reused";
    case RecordStatus::NonceUnknown:
      return "nonce-unknown";
    case RecordStatus::NonceExpired:
      return "nonce-expired";
    case RecordStatus::VoucherUnknown:
      return "voucher-unknown";
    case RecordStatus::VoucherVoided:
      return "voucher-voided";
    case RecordStatus::VoucherExpired:
      return "voucher-expired";
    case RecordStatus::VoucherMoved:
      return "voucher-moved";
    case RecordStatus::CardUnknown:
      return "card-unknown";
    case RecordStatus::CardRevoked:
      return "card-revoked";
    case RecordStatus::CardOfAnotherHolder:
      return "card-of-another-holder";
    case RecordStatus::ReceiptMalformed:
      return "receipt-malformed";
  }
  return "?";
}

std::string_view to_string(ReversalStatus status) noexcept {
  switch (status) {
    case ReversalStatus::Reversed:
      return "reversed";
    case ReversalStatus::AlreadyReversed:
      return "already-reversed";
    case ReversalStatus::NotRedeemed:
      return "not-redeemed";
  }
  return "?";
}

std::string_view to_string(CertificateStatus status) noexcept {
  return status == CertificateStatus::Recorded ? "recorded" : "duplicate";
}

std::string_view refusal_code(RecordStatus status) noexcept {
  switch (status) {
    case RecordStatus::Recorded:
    case RecordStatus::AlreadyRecordedSame:
      return "";
    case RecordStatus::VoucherAlreadyRedeemed:
      return "P15_ALREADY_REDEEMED";
    case RecordStatus::CounterReused:
      return "COUNTER_REUSED";
    case RecordStatus::NonceReused:
      return "NONCE_REUSED";
    case RecordStatus::NonceUnknown:
      return "NONCE_UNKNOWN";
    case RecordStatus::NonceExpired:
      return "NONCE_EXPIRED";
    case RecordStatus::VoucherUnknown:
      return "VOUCHER_UNKNOWN";
    case RecordStatus::VoucherVoided:
    case RecordStatus::VoucherMoved:  // the old id of a moved voucher is no longer redeemable
      return "P15_VOUCHER_VOIDED";
    case RecordStatus::VoucherExpired:
      return "P15_VOUCHER_EXPIRED";
    case RecordStatus::CardUnknown:
      return "CARD_UNKNOWN";
    case RecordStatus::CardRevoked:
      return "CARD_REVOKED";
    case RecordStatus::CardOfAnotherHolder:
      return "RECEIPT_WRONG_VOUCHER";
    case RecordStatus::ReceiptMalformed:
      return "TOKEN_MALFORMED";
  }
  return "";
}

std::string_view refusal_code(NonceStatus status) noexcept {
  switch (status) {
    case NonceStatus::Ok:
    case NonceStatus::Duplicate:
      return "";
    case NonceStatus::Unknown:
      return "NONCE_UNKNOWN";
    case NonceStatus::Expired:
      return "NONCE_EXPIRED";
    case NonceStatus::Used:
      return "NONCE_REUSED";
  }
  return "";
}

std::string_view refusal_code(CardStatus status) noexcept {
  switch (status) {
    case CardStatus::CardUnknown:
    case CardStatus::ReplacementUnknown:
      return "CARD_UNKNOWN";
    case CardStatus::CardNotActive:
    case CardStatus::ReplacementNotActive:
      return "CARD_REVOKED";
    case CardStatus::ReplacementOfAnotherHolder:  // the service checks first; a race can still get here
      return "P13_REGISTRY_MISMATCH";
    default:
      return "";
  }
}

// The default of Ledger::read_for_reports: the same reads one after another, no snapshot.
void Ledger::read_for_reports(const ReportVisitor& visit) {
  for_each_voucher({}, visit.voucher);
  for (const auto& r : list_redemptions({})) visit.redemption(r);
  for_each_certificate({}, visit.certificate);
  for (const auto fund : {FundSource::SpecialAccount, FundSource::EmploymentSubsidyFund,
                          FundSource::UnemploymentInsuranceFund, FundSource::OtherDepartment}) {
    if (const auto b = budget(fund)) visit.budget(*b);
  }
}

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: shortest form, no surrogates,
// at most U+10FFFF), or 0 if the bytes there are not one.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

bool well_formed_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    const auto n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace skillcard::ledger
