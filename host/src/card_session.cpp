// CardSession: SCP03 on the host side, status words mapped to refusals, answers decoded.
#include "skillcard/host/card_session.hpp"

#include <stdexcept>

#include "skillcard/host/encoding.hpp"

namespace skillcard::host {

using iso7816::CommandApdu;
using iso7816::ResponseApdu;
using iso7816::StatusWord;

namespace {

// Wipes a plain command that carried a PIN block once it has been wrapped or sent.
void wipe(const CommandApdu& command) noexcept {
  const auto& d = command.data();
  crypto::secure_wipe(const_cast<std::uint8_t*>(d.data()), d.size());
}

}  // namespace

CardSession::CardSession(iso7816::CardChannel& channel, const CardKeySource& keys, CardSessionOptions options)
    : channel_(&channel), keys_(&keys), options_(options) {}

ResponseApdu CardSession::transmit(const CommandApdu& command) {
  // Count every exchange as a reader sees it (GET RESPONSE and chained parts included).
  struct Counting final : iso7816::CardChannel {
    CardSession* s;
    explicit Counting(CardSession* session) : s(session) {}
    ResponseApdu transmit(const CommandApdu& c) override {
      ++s->exchanges_;
      return s->channel_->transmit(c);
    }
    Bytes atr() const override { return s->channel_->atr(); }
    void reset() override { s->channel_->reset(); }
  } counting(this);
  try {
    if (options_.chain_long_commands && command.is_extended_required() && command.data().size() > 255) {
      const auto parts = iso7816::split_for_chaining(command, 255);
      for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        const auto r = iso7816::transmit_all(counting, parts[i]);
        if (!r.is_success()) return r;
      }
      return iso7816::transmit_all(counting, parts.back());
    }
    return iso7816::transmit_all(counting, command);
  } catch (const iso7816::CardError&) {
    // Whatever happened on the card, our half of the channel is out of step with it now.
    host_.close();
    throw;
  }
}

void CardSession::select() {
  host_.close();
  role_.reset();
  const auto r = transmit(CommandApdu::select_by_aid(apdu::training_aid()));
  if (!r.is_success()) throw CardRefusal(CardCommand::Select, r.sw(), std::nullopt);
}

void CardSession::open(crypto::CardRole role) {
  role_.reset();
  const auto iu = host_.initialize_update(crypto::key_version(role));
  const auto answer = transmit(iu);
  if (!answer.is_success()) {
    host_.close();
    throw CardRefusal(CardCommand::InitializeUpdate, answer.sw(), std::nullopt);
  }
  try {
    const auto info = crypto::scp03::HostSession<crypto::OpenSsl>::parse_initialize_update_response(answer.data());
    card_number_.assign(info.diversification_data.begin(), info.diversification_data.end());
    const auto enc = keys_->card_key(role, crypto::scp03::KeyType::Enc, card_number_);
    const auto mac = keys_->card_key(role, crypto::scp03::KeyType::Mac, card_number_);
    const auto ea = host_.external_authenticate(enc.view(), mac.view(), info, crypto::scp03::level::kFull);
    const auto result = transmit(ea);
    if (!result.is_success()) {
      host_.close();
      throw CardRefusal(CardCommand::ExternalAuthenticate, result.sw(), std::nullopt);
    }
  } catch (const crypto::scp03::SecureChannelError& e) {
    host_.close();
    throw CardRefusal("SECURE_CHANNEL_FAILED", CardCommand::InitializeUpdate, answer.sw(), e.what());
  }
  role_ = role;
}

void CardSession::close() noexcept {
  host_.close();
  role_.reset();
}

ResponseApdu CardSession::exchange(CardCommand command, const CommandApdu& plain, bool secret) {
  // The plain command of a secret (the PIN block) is wiped however this ends, a wrap that throws
  // included.
  struct WipeSecret {
    const CommandApdu& command;
    bool secret;
    ~WipeSecret() {
      if (secret) wipe(command);
    }
  } const wipe_secret{plain, secret};
  if (!host_.is_open()) {
    if (secret) {
      // A PIN crosses the reader's wire only under secure messaging: never sent in the clear,
      // even though the card would refuse it (6982) — a session that failed and closed must
      // not turn a retry into a plaintext PIN.
      throw CardRefusal("SECURE_CHANNEL_FAILED", command, iso7816::StatusWord::SecurityStatusNotSatisfied,
                        "no secure channel is open; the PIN was not sent");
    }
    return transmit(plain);
  }
  CommandApdu wrapped = host_.wrap(plain);
  const auto answer = transmit(wrapped);
  try {
    return host_.unwrap(answer);
  } catch (const crypto::scp03::SecureChannelError& e) {
    // The card ran the command but its answer cannot be trusted (R-MAC or padding wrong): for
    // STORE or REDEEM that is an unknown outcome, settled from the card's state on the next tap.
    role_.reset();
    throw iso7816::UnknownOutcomeError(std::string(to_string(command)) + ": answer failed the SCP03 checks (" +
                                       e.what() + ")");
  }
}

Bytes CardSession::expect_ok(CardCommand command, const CommandApdu& plain, bool secret) {
  const auto r = exchange(command, plain, secret);
  if (!r.is_success()) throw CardRefusal(command, r.sw(), role());
  return r.data();
}

std::string CardSession::read_card_number() {
  const auto d = expect_ok(CardCommand::GetData, apdu::get_data(apdu::kDataCardNumber));
  return std::string(d.begin(), d.end());
}

std::uint32_t CardSession::read_region() {
  const auto d = expect_ok(CardCommand::GetData, apdu::get_data(apdu::kDataRegion));
  return read_be32(d, 0);
}

Bytes CardSession::read_certificate() {
  return expect_ok(CardCommand::GetData, apdu::get_data(apdu::kDataCertificate));
}

CardCounters CardSession::read_counters() {
  return CardCounters::parse(expect_ok(CardCommand::GetData, apdu::get_data(apdu::kDataCounters)));
}

AuthAnswer CardSession::internal_authenticate(ByteView challenge) {
  return AuthAnswer::parse(expect_ok(CardCommand::InternalAuthenticate, apdu::internal_authenticate(challenge)));
}

void CardSession::verify(const Pin& pin) { expect_ok(CardCommand::Verify, apdu::verify(pin), true); }

std::optional<int> CardSession::pin_tries_left() {
  const auto r = exchange(CardCommand::Verify, apdu::verify_status());
  if (r.is_success()) return std::nullopt;
  if (const auto tries = iso7816::retries_left(r.sw())) return *tries;
  if (r.sw() == StatusWord::AuthenticationMethodBlocked) return 0;
  throw CardRefusal(CardCommand::Verify, r.sw(), role());
}

void CardSession::change_pin(const Pin& old_pin, const Pin& new_pin) {
  expect_ok(CardCommand::ChangeReferenceData, apdu::change_reference_data(old_pin, new_pin), true);
}

void CardSession::reset_retry_counter(const Pin& new_pin) {
  expect_ok(CardCommand::ResetRetryCounter, apdu::reset_retry_counter(new_pin), true);
}

void CardSession::store_voucher(ByteView token) { expect_ok(CardCommand::StoreVoucher, apdu::store_voucher(token)); }

VoucherList CardSession::list_vouchers(std::uint8_t p1) {
  return VoucherList::parse(expect_ok(CardCommand::ListVouchers, apdu::list_vouchers(p1)));
}

Bytes CardSession::read_voucher(const VoucherId& id) {
  return expect_ok(CardCommand::ReadVoucher, apdu::read_voucher(id));
}

Bytes CardSession::redeem(const RedeemRequest& request) {
  return expect_ok(CardCommand::Redeem, apdu::redeem(request));
}

Bytes CardSession::get_receipt(std::uint32_t counter) {
  return expect_ok(CardCommand::GetReceipt, apdu::get_receipt(counter));
}

void CardSession::purge(const VoucherId& id) { expect_ok(CardCommand::Purge, apdu::purge(id)); }

void CardSession::write_digest(ByteView digest) { expect_ok(CardCommand::WriteDigest, apdu::write_digest(digest)); }

std::optional<Bytes> CardSession::read_digest() {
  const auto r = exchange(CardCommand::ReadDigest, apdu::read_digest());
  if (r.sw() == StatusWord::ReferencedDataNotFound) return std::nullopt;
  if (!r.is_success()) throw CardRefusal(CardCommand::ReadDigest, r.sw(), role());
  return r.data();
}

}  // namespace skillcard::host
