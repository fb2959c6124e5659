// GlobalPlatform SCP03 secure messaging (Card Specification v2.3 Amendment D), S8 mode with the
// pseudo-random card challenge, i = 0x70, for both ends of the channel: CardSession is what the
// card runs (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, unwrapping commands, wrapping responses),
// HostSession the inverse. Header-only templates over the crypto backend, so that the card
// (MbedTls) and the host (OpenSsl) share one implementation and the cross-backend tests replay
// ../shared/vectors/scp03 through both.
//
// Conventions fixed here (docs/design.md, "SCP03 per role"):
// - Security levels: C-MAC 0x01, C-DECRYPTION 0x02, R-MAC 0x10, R-ENCRYPTION 0x20, combined as
//   0x01, 0x03, 0x11, 0x13 or 0x33 (decryption needs C-MAC, R-ENCRYPTION needs C-DECRYPTION and
//   R-MAC). Every level authenticates commands.
// - The C-MAC covers MAC chaining value ‖ CLA (with the secure-messaging bit 0x04) ‖ INS ‖ P1 ‖
//   P2 ‖ Lc ‖ data (encrypted when C-DECRYPTION), Lc counting the 8 MAC bytes: 1 byte up to 255,
//   else the 3-byte extended form 00 hi lo. The MAC is over the logical command, so a host that
//   chains a long wrapped command (wrap first, then iso7816::split_for_chaining, 84 → 94) and a
//   card that assembles the chain agree.
// - The encryption counter is 0 after EXTERNAL AUTHENTICATE and counts every wrapped command,
//   with or without data, before it is used: the first command uses 1. Command ICV =
//   AES(S-ENC, counter as a 16-byte big-endian block); response ICV the same with byte 0 = 0x80.
//   Padding is ISO/IEC 9797-1 method 2 (80 00…, always at least one byte); empty data is never
//   encrypted.
// - Responses: R-MAC = first 8 bytes of CMAC(S-RMAC, chaining value ‖ data ‖ SW1 SW2), the
//   chaining value being the full C-MAC of the command answered. Only 9000 and the warnings
//   62xx/63xx are protected (R-ENCRYPTION of non-empty data, then R-MAC); any other status word
//   travels alone, unprotected, as Amendment D requires.
// - Any secure-messaging failure closes the session on the side that detects it; every later
//   command fails with Reason::NoSession until a new INITIALIZE UPDATE.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "skillcard/crypto/backend.hpp"
#include "skillcard/crypto/scp03.hpp"
#include "skillcard/iso7816/command_apdu.hpp"
#include "skillcard/iso7816/response_apdu.hpp"
#include "skillcard/iso7816/status_word.hpp"

namespace skillcard::crypto::scp03 {

inline constexpr std::uint8_t kScpIdentifier = 0x03;
// i = 0x70: pseudo-random card challenge (0x10), R-MAC (0x20) and R-ENCRYPTION (0x40) supported.
inline constexpr std::uint8_t kIParameter = 0x70;
inline constexpr std::uint8_t kInsInitializeUpdate = 0x50;
inline constexpr std::uint8_t kInsExternalAuthenticate = 0x82;
inline constexpr std::uint8_t kSecureMessagingBit = 0x04;
inline constexpr std::size_t kMacSize = 8;  // S8 mode
inline constexpr std::size_t kDiversificationDataSize = 10;
inline constexpr std::size_t kInitializeUpdateResponseSize = 32;
inline constexpr std::uint32_t kMaxSequenceCounter = 0xFFFFFF;

// Security level bits (EXTERNAL AUTHENTICATE P1).
namespace level {
inline constexpr std::uint8_t kCMac = 0x01;
inline constexpr std::uint8_t kCDecryption = 0x02;
inline constexpr std::uint8_t kRMac = 0x10;
inline constexpr std::uint8_t kREncryption = 0x20;
// The one level skillcard's card accepts (docs/design.md, "SCP03 per role").
inline constexpr std::uint8_t kFull = 0x33;
}  // namespace level

constexpr bool is_supported_level(std::uint8_t l) noexcept {
  return l == 0x01 || l == 0x03 || l == 0x11 || l == 0x13 || l == 0x33;
}

class SecureChannelError : public std::runtime_error {
 public:
  enum class Reason {
    NoSession,         // no (or no longer an) open session: never opened, closed, or after a failure
    NotWrapped,        // a command without the secure-messaging bit inside an open session
    Malformed,         // a wrapped command, EXTERNAL AUTHENTICATE or IU response of the wrong shape
    UnsupportedLevel,  // EXTERNAL AUTHENTICATE P1 is not a supported combination
    HostCryptogram,    // EXTERNAL AUTHENTICATE: the host cryptogram is wrong (wrong keys)
    CardCryptogram,    // host side: the card cryptogram is wrong (wrong keys, or not the card)
    CommandMac,        // C-MAC wrong: tampered, replayed, reordered or from another session
    ResponseMac,       // host side: R-MAC wrong or missing
    Padding,           // decrypted data without ISO/IEC 9797-1 method 2 padding
  };
  SecureChannelError(Reason reason, const std::string& detail)
      : std::runtime_error("SCP03: " + detail), reason_(reason) {}
  Reason reason() const noexcept { return reason_; }

 private:
  Reason reason_;
};

constexpr std::string_view to_string(SecureChannelError::Reason r) noexcept {
  using R = SecureChannelError::Reason;
  switch (r) {
    case R::NoSession:
      return "no-session";
    case R::NotWrapped:
      return "not-wrapped";
    case R::Malformed:
      return "malformed";
    case R::UnsupportedLevel:
      return "unsupported-level";
    case R::HostCryptogram:
      return "host-cryptogram";
    case R::CardCryptogram:
      return "card-cryptogram";
    case R::CommandMac:
      return "command-mac";
    case R::ResponseMac:
      return "response-mac";
    case R::Padding:
      return "padding";
  }
  return "unknown";
}

// The status word the card answers a failure with (docs/design.md, "Refusal catalogue"):
// 6300 a wrong host cryptogram (or EXTERNAL AUTHENTICATE's own MAC), 6A86 an unsupported level,
// 6988 secure-messaging data of the wrong shape or padding, 6982 everything else (no session,
// an unwrapped command, a wrong C-MAC). The session is closed in every case.
constexpr iso7816::StatusWord card_status_word(SecureChannelError::Reason r, bool in_external_authenticate) noexcept {
  using R = SecureChannelError::Reason;
  using iso7816::StatusWord;
  if (in_external_authenticate && (r == R::HostCryptogram || r == R::CommandMac))
    return StatusWord::VerificationFailed;  // 6300
  switch (r) {
    case R::UnsupportedLevel:
      return StatusWord::IncorrectP1P2;
    case R::Malformed:
    case R::Padding:
      return StatusWord::IncorrectSmDataObjects;
    default:
      return StatusWord::SecurityStatusNotSatisfied;
  }
}

// Whether a response with this status word is protected (R-MAC / R-ENCRYPTION): 9000 and the
// warnings 62xx / 63xx only.
constexpr bool is_protected_status(iso7816::StatusWord sw) noexcept {
  const auto first = iso7816::sw1(sw);
  return sw == iso7816::StatusWord::Success || first == 0x62 || first == 0x63;
}

// The 32-byte INITIALIZE UPDATE answer.
struct InitializeUpdateResponse {
  std::array<std::uint8_t, kDiversificationDataSize> diversification_data{};
  std::uint8_t kvn = 0;
  std::uint8_t scp = 0;
  std::uint8_t i = 0;
  Challenge card_challenge{};
  Cryptogram card_cryptogram{};
  std::uint32_t sequence_counter = 0;

  Bytes encode() const {
    Bytes out(diversification_data.begin(), diversification_data.end());
    out.push_back(kvn);
    out.push_back(scp);
    out.push_back(i);
    out.insert(out.end(), card_challenge.begin(), card_challenge.end());
    out.insert(out.end(), card_cryptogram.begin(), card_cryptogram.end());
    out.push_back(static_cast<std::uint8_t>(sequence_counter >> 16));
    out.push_back(static_cast<std::uint8_t>(sequence_counter >> 8));
    out.push_back(static_cast<std::uint8_t>(sequence_counter));
    return out;
  }
  // Throws SecureChannelError(Malformed) unless exactly 32 bytes.
  static InitializeUpdateResponse parse(ByteView bytes) {
    if (bytes.size() != kInitializeUpdateResponseSize) {
      throw SecureChannelError(SecureChannelError::Reason::Malformed,
                               "INITIALIZE UPDATE answered " + std::to_string(bytes.size()) + " bytes, not 32");
    }
    InitializeUpdateResponse r;
    std::copy_n(bytes.begin(), kDiversificationDataSize, r.diversification_data.begin());
    r.kvn = bytes[10];
    r.scp = bytes[11];
    r.i = bytes[12];
    std::copy_n(bytes.begin() + 13, 8, r.card_challenge.begin());
    std::copy_n(bytes.begin() + 21, 8, r.card_cryptogram.begin());
    r.sequence_counter = (std::uint32_t{bytes[29]} << 16) | (std::uint32_t{bytes[30]} << 8) | bytes[31];
    return r;
  }
};

namespace detail {

using Block = std::array<std::uint8_t, 16>;

// 16-byte counter block: the counter big-endian in the last four bytes; first = 0x80 for responses.
inline Block counter_block(std::uint32_t counter, std::uint8_t first) {
  Block b{};
  b[0] = first;
  b[12] = static_cast<std::uint8_t>(counter >> 24);
  b[13] = static_cast<std::uint8_t>(counter >> 16);
  b[14] = static_cast<std::uint8_t>(counter >> 8);
  b[15] = static_cast<std::uint8_t>(counter);
  return b;
}

// ISO/IEC 9797-1 padding method 2. One allocation of the final size: the data may be a PIN
// block, and a growing vector would leave unwiped copies in the buffers it frees.
inline Bytes pad(ByteView data) {
  Bytes out((data.size() / 16 + 1) * 16, 0x00);
  std::copy(data.begin(), data.end(), out.begin());
  out[data.size()] = 0x80;
  return out;
}

inline Bytes unpad(Bytes data) {
  // 80 then at most 15 zero bytes: the padding never spans more than one block.
  std::size_t n = data.size();
  std::size_t zeros = 0;
  while (n > 0 && data[n - 1] == 0x00 && zeros < 15) {
    --n;
    ++zeros;
  }
  if (n == 0 || data[n - 1] != 0x80) {
    secure_wipe(data.data(), data.size());  // decrypted, if not well padded: a PIN block still
    throw SecureChannelError(SecureChannelError::Reason::Padding, "decrypted data without 80 00.. padding");
  }
  data.resize(n - 1);
  return data;
}

// The padded copy of `plain` (a PIN block, say) is wiped before it is freed.
template <CryptoBackend B>
Bytes encrypt(ByteView s_enc, std::uint32_t counter, std::uint8_t first, ByteView plain) {
  const auto icv = B::aes_ecb_encrypt(s_enc, counter_block(counter, first));
  Bytes padded = pad(plain);
  struct WipeOnExit {
    Bytes& bytes;
    ~WipeOnExit() { secure_wipe(bytes.data(), bytes.size()); }
  } wipe_padded{padded};
  return B::aes_cbc_encrypt(s_enc, icv, padded);
}

template <CryptoBackend B>
Bytes decrypt(ByteView s_enc, std::uint32_t counter, std::uint8_t first, ByteView cipher) {
  if (cipher.size() % 16 != 0) {
    throw SecureChannelError(SecureChannelError::Reason::Malformed,
                             "encrypted data of " + std::to_string(cipher.size()) + " bytes, not whole blocks");
  }
  const auto icv = B::aes_ecb_encrypt(s_enc, counter_block(counter, first));
  return unpad(B::aes_cbc_decrypt(s_enc, icv, cipher));
}

// CLA INS P1 P2 Lc: Lc = data length (MAC included), 1 byte or extended 00 hi lo.
inline Bytes mac_header(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2, std::size_t lc) {
  Bytes h{cla, ins, p1, p2};
  if (lc <= 255) {
    h.push_back(static_cast<std::uint8_t>(lc));
  } else {
    h.push_back(0x00);
    h.push_back(static_cast<std::uint8_t>(lc >> 8));
    h.push_back(static_cast<std::uint8_t>(lc));
  }
  return h;
}

template <CryptoBackend B>
CmacTag command_mac(ByteView s_mac, const CmacTag& chaining, ByteView header, ByteView data) {
  Bytes input(chaining.begin(), chaining.end());
  input.insert(input.end(), header.begin(), header.end());
  input.insert(input.end(), data.begin(), data.end());
  return B::aes_cmac(s_mac, input);
}

template <CryptoBackend B>
CmacTag response_mac(ByteView s_rmac, const CmacTag& chaining, ByteView data, iso7816::StatusWord sw) {
  Bytes input(chaining.begin(), chaining.end());
  input.insert(input.end(), data.begin(), data.end());
  input.push_back(iso7816::sw1(sw));
  input.push_back(iso7816::sw2(sw));
  return B::aes_cmac(s_rmac, input);
}

inline iso7816::CommandApdu make_command(std::uint8_t cla, std::uint8_t ins, std::uint8_t p1, std::uint8_t p2,
                                         ByteView data, std::optional<std::size_t> ne) {
  if (data.empty()) return ne ? iso7816::CommandApdu(cla, ins, p1, p2, *ne) : iso7816::CommandApdu(cla, ins, p1, p2);
  return ne ? iso7816::CommandApdu(cla, ins, p1, p2, data, *ne) : iso7816::CommandApdu(cla, ins, p1, p2, data);
}

inline Challenge to_challenge(ByteView v) {
  Challenge c{};
  std::copy_n(v.begin(), c.size(), c.begin());
  return c;
}

}  // namespace detail

// The card's end of one SCP03 channel. Holds the session keys, the MAC chaining value and the
// encryption counter; any failure closes it (and wipes its keys).
template <CryptoBackend B>
class CardSession {
 public:
  enum class State { Closed, Initialized, Open };

  // The host challenge of an INITIALIZE UPDATE command (P1 = KVN, P2 = 00, 8 bytes of data).
  // Throws SecureChannelError(Malformed).
  static Challenge host_challenge_of(const iso7816::CommandApdu& command) {
    if (command.ins() != kInsInitializeUpdate || command.data().size() != 8) {
      throw SecureChannelError(SecureChannelError::Reason::Malformed,
                               "INITIALIZE UPDATE needs an 8-byte host challenge");
    }
    return detail::to_challenge(command.data());
  }

  // INITIALIZE UPDATE: closes any session, computes the pseudo-random card challenge from the
  // (already incremented, already committed) sequence counter and the AID, derives the session
  // keys and returns the 32-byte answer with the card cryptogram.
  Bytes initialize_update(ByteView k_enc, ByteView k_mac, std::uint8_t kvn, std::uint32_t sequence_counter,
                          const Challenge& host_challenge, ByteView aid, ByteView diversification_data) {
    close();
    if (diversification_data.size() != kDiversificationDataSize) {
      throw std::invalid_argument("SCP03: key diversification data must be 10 bytes");
    }
    if (sequence_counter > kMaxSequenceCounter) throw std::invalid_argument("SCP03: sequence counter over 24 bits");
    InitializeUpdateResponse r;
    std::copy(diversification_data.begin(), diversification_data.end(), r.diversification_data.begin());
    r.kvn = kvn;
    r.scp = kScpIdentifier;
    r.i = kIParameter;
    r.card_challenge = pseudo_random_card_challenge<B>(k_enc, sequence_counter, aid);
    keys_ = derive_session_keys<B>(k_enc, k_mac, host_challenge, r.card_challenge);
    r.card_cryptogram = card_cryptogram<B>(keys_.s_mac.view(), host_challenge, r.card_challenge);
    r.sequence_counter = sequence_counter;
    host_challenge_ = host_challenge;
    card_challenge_ = r.card_challenge;
    kvn_ = kvn;
    state_ = State::Initialized;
    return r.encode();
  }

  // EXTERNAL AUTHENTICATE (84 82 level 00, host cryptogram ‖ C-MAC): checks both and opens the
  // session at that level. Throws SecureChannelError (the session is then closed).
  void external_authenticate(const iso7816::CommandApdu& command) {
    using R = SecureChannelError::Reason;
    if (state_ != State::Initialized) {
      close();
      throw SecureChannelError(R::NoSession, "EXTERNAL AUTHENTICATE without INITIALIZE UPDATE");
    }
    const auto& data = command.data();
    if ((command.cla() & 0x0C) != kSecureMessagingBit || command.ins() != kInsExternalAuthenticate ||
        command.p2() != 0x00 || data.size() != 16) {
      close();
      throw SecureChannelError(R::Malformed, "EXTERNAL AUTHENTICATE must be 84 82 level 00 with 16 bytes");
    }
    if (!is_supported_level(command.p1())) {
      close();
      const std::uint8_t p1 = command.p1();
      throw SecureChannelError(R::UnsupportedLevel, "security level " + to_hex(ByteView(&p1, 1)) + " is not supported");
    }
    const CmacTag zero{};
    const auto header = detail::mac_header(command.cla(), command.ins(), command.p1(), command.p2(), data.size());
    const auto mac = detail::command_mac<B>(keys_.s_mac.view(), zero, header, ByteView(data).first(8));
    const auto expected = host_cryptogram<B>(keys_.s_mac.view(), host_challenge_, card_challenge_);
    const bool cryptogram_ok = B::equal_ct(expected, ByteView(data).first(8));
    const bool mac_ok = B::equal_ct(ByteView(mac).first(kMacSize), ByteView(data).subspan(8));
    if (!cryptogram_ok) {
      close();
      throw SecureChannelError(R::HostCryptogram, "host cryptogram does not match");
    }
    if (!mac_ok) {
      close();
      throw SecureChannelError(R::CommandMac, "EXTERNAL AUTHENTICATE C-MAC does not match");
    }
    chaining_ = mac;
    level_ = command.p1();
    counter_ = 0;
    state_ = State::Open;
  }

  // One wrapped command → the plain command (CLA without the secure-messaging bit, data
  // decrypted, MAC removed, Ne kept). Throws SecureChannelError and closes the session.
  iso7816::CommandApdu unwrap(const iso7816::CommandApdu& command) {
    using R = SecureChannelError::Reason;
    if (state_ != State::Open) {
      close();
      throw SecureChannelError(R::NoSession, "command outside an open secure channel");
    }
    if ((command.cla() & 0x0C) != kSecureMessagingBit) {
      close();
      throw SecureChannelError((command.cla() & 0x0C) == 0 ? R::NotWrapped : R::Malformed,
                               "command without the SCP03 secure-messaging bit in an open session");
    }
    const auto& data = command.data();
    if (data.size() < kMacSize) {
      close();
      throw SecureChannelError(R::Malformed, "wrapped command shorter than its C-MAC");
    }
    ++counter_;
    const auto header = detail::mac_header(command.cla(), command.ins(), command.p1(), command.p2(), data.size());
    const ByteView body = ByteView(data).first(data.size() - kMacSize);
    const auto mac = detail::command_mac<B>(keys_.s_mac.view(), chaining_, header, body);
    if (!B::equal_ct(ByteView(mac).first(kMacSize), ByteView(data).last(kMacSize))) {
      close();
      throw SecureChannelError(R::CommandMac, "C-MAC does not match");
    }
    chaining_ = mac;
    Bytes plain(body.begin(), body.end());
    // The plain data may be a PIN block: the command returned holds the one copy left.
    struct WipeOnExit {
      Bytes& bytes;
      ~WipeOnExit() { secure_wipe(bytes.data(), bytes.size()); }
    } wipe_plain{plain};
    if ((level_ & level::kCDecryption) && !plain.empty()) {
      try {
        plain = detail::decrypt<B>(keys_.s_enc.view(), counter_, 0x00, body);
      } catch (const SecureChannelError&) {
        close();
        throw;
      }
    }
    return detail::make_command(static_cast<std::uint8_t>(command.cla() & ~kSecureMessagingBit), command.ins(),
                                command.p1(), command.p2(), plain, command.ne());
  }

  // The response data to send for the command last unwrapped: for 9000 / 62xx / 63xx, data
  // encrypted (R-ENCRYPTION, non-empty data) then R-MAC appended (R-MAC); other status words are
  // sent without data or protection. Throws SecureChannelError(NoSession) if not open.
  Bytes wrap_response(ByteView data, iso7816::StatusWord sw) const {
    if (state_ != State::Open) {
      throw SecureChannelError(SecureChannelError::Reason::NoSession, "response outside an open secure channel");
    }
    if (!is_protected_status(sw)) return {};
    Bytes out(data.begin(), data.end());
    if ((level_ & level::kREncryption) && !out.empty())
      out = detail::encrypt<B>(keys_.s_enc.view(), counter_, 0x80, data);
    if (level_ & level::kRMac) {
      const auto rmac = detail::response_mac<B>(keys_.s_rmac.view(), chaining_, out, sw);
      out.insert(out.end(), rmac.begin(), rmac.begin() + kMacSize);
    }
    return out;
  }

  // Ends the session and wipes the session keys.
  void close() noexcept {
    keys_ = SessionKeys{};
    chaining_ = {};
    counter_ = 0;
    level_ = 0;
    kvn_ = 0;
    state_ = State::Closed;
  }

  State state() const noexcept { return state_; }
  bool is_open() const noexcept { return state_ == State::Open; }
  std::uint8_t level() const noexcept { return level_; }
  std::uint8_t kvn() const noexcept { return kvn_; }
  std::uint32_t counter() const noexcept { return counter_; }

 private:
  State state_ = State::Closed;
  SessionKeys keys_;
  Challenge host_challenge_{};
  Challenge card_challenge_{};
  CmacTag chaining_{};
  std::uint32_t counter_ = 0;
  std::uint8_t level_ = 0;
  std::uint8_t kvn_ = 0;
};

// The host's end: builds INITIALIZE UPDATE, checks the card cryptogram, builds EXTERNAL
// AUTHENTICATE, wraps commands and unwraps responses.
template <CryptoBackend B>
class HostSession {
 public:
  enum class State { Closed, Initialized, Open };

  // 80 50 KVN 00 08 host-challenge 00. A fresh random challenge unless one is given.
  iso7816::CommandApdu initialize_update(std::uint8_t kvn, std::optional<Challenge> host_challenge = std::nullopt) {
    close();
    if (host_challenge) {
      host_challenge_ = *host_challenge;
    } else {
      B::random_bytes(host_challenge_);
    }
    kvn_ = kvn;
    state_ = State::Initialized;
    return iso7816::CommandApdu(0x80, kInsInitializeUpdate, kvn, 0x00, host_challenge_, 256);
  }

  // Parses the card's answer (diversification data first, so the caller can derive the card's
  // static keys from it). Throws SecureChannelError(Malformed).
  static InitializeUpdateResponse parse_initialize_update_response(ByteView response) {
    return InitializeUpdateResponse::parse(response);
  }

  // Checks the answer against the request (KVN, SCP03, i = 0x70) and the card cryptogram,
  // derives the session keys and returns EXTERNAL AUTHENTICATE for `security_level`. The
  // session counts as open from here: if the card refuses the command (6300), close() it.
  iso7816::CommandApdu external_authenticate(ByteView k_enc, ByteView k_mac, const InitializeUpdateResponse& card,
                                             std::uint8_t security_level) {
    using R = SecureChannelError::Reason;
    if (state_ != State::Initialized) throw SecureChannelError(R::NoSession, "no INITIALIZE UPDATE sent");
    if (!is_supported_level(security_level)) {
      throw SecureChannelError(R::UnsupportedLevel, "security level " + to_hex(ByteView(&security_level, 1)));
    }
    if (card.kvn != kvn_ || card.scp != kScpIdentifier || card.i != kIParameter) {
      close();
      throw SecureChannelError(R::Malformed, "the card answered KVN " + std::to_string(card.kvn) + ", SCP " +
                                                 std::to_string(card.scp) + ", i " + std::to_string(card.i) +
                                                 ": not the requested key set with SCP03 i=70");
    }
    keys_ = derive_session_keys<B>(k_enc, k_mac, host_challenge_, card.card_challenge);
    const auto expected = card_cryptogram<B>(keys_.s_mac.view(), host_challenge_, card.card_challenge);
    if (!B::equal_ct(expected, card.card_cryptogram)) {
      close();
      throw SecureChannelError(R::CardCryptogram, "card cryptogram does not match: wrong keys or not our card");
    }
    const auto cryptogram = host_cryptogram<B>(keys_.s_mac.view(), host_challenge_, card.card_challenge);
    const std::uint8_t cla = 0x80 | kSecureMessagingBit;
    const CmacTag zero{};
    const auto header = detail::mac_header(cla, kInsExternalAuthenticate, security_level, 0x00, 16);
    chaining_ = detail::command_mac<B>(keys_.s_mac.view(), zero, header, cryptogram);
    Bytes data(cryptogram.begin(), cryptogram.end());
    data.insert(data.end(), chaining_.begin(), chaining_.begin() + kMacSize);
    level_ = security_level;
    counter_ = 0;
    state_ = State::Open;
    return iso7816::CommandApdu(cla, kInsExternalAuthenticate, security_level, 0x00, data);
  }

  // A plain command → the wrapped one (CLA | 04, data encrypted under C-DECRYPTION, C-MAC
  // appended, Ne kept). The command must not carry the chaining or secure-messaging bit.
  iso7816::CommandApdu wrap(const iso7816::CommandApdu& plain) {
    using R = SecureChannelError::Reason;
    if (state_ != State::Open) throw SecureChannelError(R::NoSession, "wrap outside an open secure channel");
    if ((plain.cla() & 0x1C) != 0) {
      throw std::invalid_argument("SCP03 wrap: the plain command already has secure-messaging or chaining bits");
    }
    ++counter_;
    // The data may be a PIN block: encrypted straight from the caller's bytes (detail::encrypt
    // wipes its padded copy), and `body` never reallocates and is wiped once copied into the
    // wrapped command, so no copy of the plain data is freed unwiped.
    Bytes body;
    if ((level_ & level::kCDecryption) && !plain.data().empty()) {
      body = detail::encrypt<B>(keys_.s_enc.view(), counter_, 0x00, plain.data());
      body.reserve(body.size() + kMacSize);
    } else {
      body.reserve(plain.data().size() + kMacSize);
      body.assign(plain.data().begin(), plain.data().end());
    }
    const auto cla = static_cast<std::uint8_t>(plain.cla() | kSecureMessagingBit);
    const auto header = detail::mac_header(cla, plain.ins(), plain.p1(), plain.p2(), body.size() + kMacSize);
    chaining_ = detail::command_mac<B>(keys_.s_mac.view(), chaining_, header, body);
    body.insert(body.end(), chaining_.begin(), chaining_.begin() + kMacSize);
    auto wrapped = detail::make_command(cla, plain.ins(), plain.p1(), plain.p2(), body, plain.ne());
    secure_wipe(body.data(), body.size());
    return wrapped;
  }

  // The answer to the command last wrapped → the plain answer. Checks the R-MAC and decrypts
  // (protected status words only). Throws SecureChannelError (ResponseMac, Padding, Malformed)
  // and closes the session.
  iso7816::ResponseApdu unwrap(const iso7816::ResponseApdu& response) {
    using R = SecureChannelError::Reason;
    if (state_ != State::Open) throw SecureChannelError(R::NoSession, "unwrap outside an open secure channel");
    const auto sw = response.sw();
    if (!is_protected_status(sw)) {
      if (!response.data().empty()) {
        close();
        throw SecureChannelError(R::Malformed, "data with error status " + iso7816::to_string(sw));
      }
      return response;
    }
    ByteView data = response.data();
    if (level_ & level::kRMac) {
      if (data.size() < kMacSize) {
        close();
        throw SecureChannelError(R::ResponseMac, "response without R-MAC");
      }
      const ByteView body = data.first(data.size() - kMacSize);
      const auto rmac = detail::response_mac<B>(keys_.s_rmac.view(), chaining_, body, sw);
      if (!B::equal_ct(ByteView(rmac).first(kMacSize), data.last(kMacSize))) {
        close();
        throw SecureChannelError(R::ResponseMac, "R-MAC does not match");
      }
      data = body;
    }
    if ((level_ & level::kREncryption) && !data.empty()) {
      try {
        return iso7816::ResponseApdu(detail::decrypt<B>(keys_.s_enc.view(), counter_, 0x80, data), sw);
      } catch (const SecureChannelError&) {
        close();
        throw;
      }
    }
    return iso7816::ResponseApdu(data, sw);
  }

  void close() noexcept {
    keys_ = SessionKeys{};
    chaining_ = {};
    counter_ = 0;
    level_ = 0;
    state_ = State::Closed;
  }

  State state() const noexcept { return state_; }
  bool is_open() const noexcept { return state_ == State::Open; }
  std::uint8_t level() const noexcept { return level_; }
  std::uint8_t kvn() const noexcept { return kvn_; }
  std::uint32_t counter() const noexcept { return counter_; }
  const Challenge& host_challenge() const noexcept { return host_challenge_; }

 private:
  State state_ = State::Closed;
  SessionKeys keys_;
  Challenge host_challenge_{};
  CmacTag chaining_{};
  std::uint32_t counter_ = 0;
  std::uint8_t level_ = 0;
  std::uint8_t kvn_ = 0;
};

}  // namespace skillcard::crypto::scp03
