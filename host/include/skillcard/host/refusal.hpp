// The host's refusals: every failure a clerk or holder must read is a catalogue code
// (schemas/refusals.hpp) with its zh-CN and English message. CardRefusal is a card status word
// mapped by command (docs/design.md, "Card status words"); HostRefusal a check the host makes
// itself (card genuineness, a tampered record, an offline bound). ServiceRefusal is in
// service_client.hpp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "skillcard/crypto/master_keys.hpp"
#include "skillcard/iso7816/status_word.hpp"

namespace skillcard::host {

enum class Lang { ZhCn, En };
// "zh-CN" / "en"; parse_lang throws std::invalid_argument for anything else.
std::string_view to_string(Lang lang) noexcept;

// A service refusal that says nothing against the receipt — the service is not set up to decide
// yet (POLICY_NOT_CONFIGURED: a new year's settings not loaded) — so a queued receipt stays
// waiting and goes again at the next sync instead of being marked refused for good (the P12
// window still bounds it).
bool refusal_may_pass_later(std::string_view code) noexcept;
Lang parse_lang(std::string_view text);

using Placeholders = std::map<std::string, std::string, std::less<>>;

// Base of every catalogue refusal: the code and the values of its message's placeholders.
class Refusal : public std::runtime_error {
 public:
  Refusal(std::string code, Placeholders values, const std::string& detail);
  const std::string& code() const noexcept { return code_; }
  // The catalogue message with the placeholders filled; `what()` is code + English + detail.
  virtual std::string message(Lang lang) const;
  const Placeholders& values() const noexcept { return values_; }

 private:
  std::string code_;
  Placeholders values_;
};

// Commands the host sends, for mapping status words and for messages (never the data).
enum class CardCommand {
  Select,
  InitializeUpdate,
  ExternalAuthenticate,
  GetData,
  InternalAuthenticate,
  Verify,
  ChangeReferenceData,
  ResetRetryCounter,
  StoreVoucher,
  ListVouchers,
  ReadVoucher,
  Redeem,
  GetReceipt,
  Purge,
  WriteDigest,
  ReadDigest,
};
std::string_view to_string(CardCommand command) noexcept;

// Whether `role` may send `command` at all (the INS map; "after VERIFY" counts as allowed).
bool role_allows(crypto::CardRole role, CardCommand command) noexcept;

// The catalogue code for a non-success status word of `command` in a session of `role`
// (nullopt: plain, no session): docs/design.md's SW table.
std::string refusal_code(CardCommand command, iso7816::StatusWord sw, std::optional<crypto::CardRole> role);

// A card answered a command with a status word other than 9000.
class CardRefusal : public Refusal {
 public:
  CardRefusal(CardCommand command, iso7816::StatusWord sw, std::optional<crypto::CardRole> role);
  // For failures the host detects on the card's answer (wrong card cryptogram, bad R-MAC).
  CardRefusal(std::string code, CardCommand command, iso7816::StatusWord sw, const std::string& detail);
  CardCommand command() const noexcept { return command_; }
  iso7816::StatusWord sw() const noexcept { return sw_; }
  // PIN_WRONG: tries left.
  std::optional<int> tries_left() const noexcept { return iso7816::retries_left(sw_); }

 private:
  CardCommand command_;
  iso7816::StatusWord sw_;
};

// A check made by the host itself failed (code from the catalogue).
class HostRefusal : public Refusal {
 public:
  HostRefusal(std::string code, const std::string& detail, Placeholders values = {});
};

}  // namespace skillcard::host
