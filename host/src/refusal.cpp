// Status word → refusal code by command (docs/design.md, "Card status words") and messages.
#include "skillcard/host/refusal.hpp"

#include "skillcard/schemas/refusals.hpp"

namespace skillcard::host {

using iso7816::StatusWord;

bool refusal_may_pass_later(std::string_view code) noexcept { return code == "POLICY_NOT_CONFIGURED"; }

std::string_view to_string(Lang lang) noexcept { return lang == Lang::ZhCn ? "zh-CN" : "en"; }

Lang parse_lang(std::string_view text) {
  if (text == "zh-CN" || text == "zh_CN" || text == "zh") return Lang::ZhCn;
  if (text == "en") return Lang::En;
  throw std::invalid_argument("language must be zh-CN or en, not '" + std::string(text) + "'");
}

namespace {
const schemas::Refusal* find(std::string_view code) {
  for (const auto& r : schemas::refusal_catalogue())
    if (r.code == code) return &r;
  return nullptr;  // a newer service's code: shown as the code itself
}

std::string what_of(const std::string& code, const Placeholders& values, const std::string& detail) {
  const auto* entry = find(code);
  std::string w = code + (entry ? ": " + schemas::render(entry->en, values) : std::string());
  if (!detail.empty()) w += " (" + detail + ")";
  return w;
}
}  // namespace

Refusal::Refusal(std::string code, Placeholders values, const std::string& detail)
    : std::runtime_error(what_of(code, values, detail)), code_(std::move(code)), values_(std::move(values)) {}

std::string Refusal::message(Lang lang) const {
  const auto* entry = find(code_);
  if (!entry) return code_;
  return schemas::render(lang == Lang::ZhCn ? entry->zh_cn : entry->en, values_);
}

std::string_view to_string(CardCommand command) noexcept {
  switch (command) {
    case CardCommand::Select:
      return "SELECT";
    case CardCommand::InitializeUpdate:
      return "INITIALIZE UPDATE";
    case CardCommand::ExternalAuthenticate:
      return "EXTERNAL AUTHENTICATE";
    case CardCommand::GetData:
      return "GET DATA";
    case CardCommand::InternalAuthenticate:
      return "INTERNAL AUTHENTICATE";
    case CardCommand::Verify:
      return "VERIFY";
    case CardCommand::ChangeReferenceData:
      return "CHANGE REFERENCE DATA";
    case CardCommand::ResetRetryCounter:
      return "RESET RETRY COUNTER";
    case CardCommand::StoreVoucher:
      return "STORE VOUCHER";
    case CardCommand::ListVouchers:
      return "LIST VOUCHERS";
    case CardCommand::ReadVoucher:
      return "READ VOUCHER";
    case CardCommand::Redeem:
      return "REDEEM";
    case CardCommand::GetReceipt:
      return "GET RECEIPT";
    case CardCommand::Purge:
      return "PURGE";
    case CardCommand::WriteDigest:
      return "WRITE DIGEST";
    case CardCommand::ReadDigest:
      return "READ DIGEST";
  }
  return "?";
}

bool role_allows(crypto::CardRole role, CardCommand command) noexcept {
  using C = CardCommand;
  using R = crypto::CardRole;
  switch (command) {
    case C::Select:
    case C::InitializeUpdate:
    case C::ExternalAuthenticate:
    case C::GetData:
    case C::Verify:
    case C::ListVouchers:
      return true;
    case C::InternalAuthenticate:
      return role != R::Site;
    case C::ChangeReferenceData:
    case C::ResetRetryCounter:
    case C::StoreVoucher:
    case C::Purge:
    case C::WriteDigest:
      return role == R::Counter;
    case C::ReadVoucher:
    case C::ReadDigest:
      return role != R::Site;
    case C::Redeem:
      return role == R::Site;
    case C::GetReceipt:
      return role != R::Kiosk;
  }
  return false;
}

std::string refusal_code(CardCommand command, StatusWord sw, std::optional<crypto::CardRole> role) {
  using C = CardCommand;
  const auto voucher_command = command == C::StoreVoucher || command == C::ReadVoucher || command == C::Redeem ||
                               command == C::GetReceipt || command == C::Purge;
  // The last wrong PIN (63C0) has blocked it: the holder is told so, and where to reset it, not
  // that 0 tries are left.
  if (const auto left = iso7816::retries_left(sw); left && (command == C::Verify || command == C::ChangeReferenceData))
    return *left == 0 ? "PIN_BLOCKED" : "PIN_WRONG";
  switch (sw) {
    case StatusWord::VerificationFailed:  // 6300
      return command == C::ExternalAuthenticate ? "SECURE_CHANNEL_FAILED" : "CARD_ERROR";
    case StatusWord::AuthenticationMethodBlocked:
      return "PIN_BLOCKED";
    case StatusWord::SecurityStatusNotSatisfied:
      // The host knows its role: a command outside it is the terminal's fault; anything else
      // (PIN not verified, MAC failure, no session) is a card-side condition.
      if (role && !role_allows(*role, command)) return "TERMINAL_ROLE_FORBIDDEN";
      return "CARD_ERROR";
    case StatusWord::ConditionsNotSatisfied:
      return command == C::Redeem ? "P15_ALREADY_REDEEMED" : "CARD_ERROR";
    case StatusWord::WrongData:
      if (command == C::ChangeReferenceData || command == C::ResetRetryCounter) return "PIN_FORMAT";
      if (command == C::Redeem) return "CARD_TIME_REGRESSION";
      return "CARD_ERROR";
    case StatusWord::NotEnoughMemory:
      return "CARD_SLOTS_FULL";
    case StatusWord::ReferencedDataNotFound:
      return voucher_command ? "VOUCHER_NOT_ON_CARD" : "CARD_ERROR";
    case StatusWord::LcInconsistentWithP1P2:
    default:
      break;
  }
  if (static_cast<std::uint16_t>(sw) == 0x6A89) return "VOUCHER_ALREADY_ON_CARD";
  return "CARD_ERROR";
}

namespace {
Placeholders card_values(StatusWord sw) {
  Placeholders v{{"sw", iso7816::to_string(sw)}};
  if (const auto tries = iso7816::retries_left(sw)) v["tries"] = std::to_string(*tries);
  return v;
}
}  // namespace

CardRefusal::CardRefusal(CardCommand command, StatusWord sw, std::optional<crypto::CardRole> role)
    : Refusal(refusal_code(command, sw, role), card_values(sw),
              std::string(to_string(command)) + " answered " + iso7816::to_string(sw)),
      command_(command),
      sw_(sw) {}

CardRefusal::CardRefusal(std::string code, CardCommand command, StatusWord sw, const std::string& detail)
    : Refusal(std::move(code), card_values(sw), std::string(to_string(command)) + ": " + detail),
      command_(command),
      sw_(sw) {}

HostRefusal::HostRefusal(std::string code, const std::string& detail, Placeholders values)
    : Refusal(std::move(code), std::move(values), detail) {}

}  // namespace skillcard::host
