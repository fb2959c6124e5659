// Test card, tokens and the host-side Terminal for the training applet tests (no gtest here:
// the applet benchmark builds this file too).
#include "training_support.hpp"

#include <stdexcept>

#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/iso7816/card_channel.hpp"
#include "skillcard/schemas/card_certificate.hpp"

namespace skillcard::card::testing {

using crypto::MbedTls;
using iso7816::CommandApdu;
using iso7816::ResponseApdu;

namespace {

crypto::SecretBytes scalar(std::string_view label) {
  const auto d = MbedTls::sha256(as_bytes(label));
  return crypto::SecretBytes(ByteView(d));
}

Bytes be(std::uint64_t v, std::size_t n) {
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[n - 1 - i] = static_cast<std::uint8_t>(v >> (8 * i));
  return out;
}

}  // namespace

crypto::HolderRef holder_ref() {
  crypto::HolderRef h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(0xA0 + i);
  return h;
}

Bytes role_master(Role role) {
  switch (role) {
    case Role::Counter:
      return from_hex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF");
    case Role::Site:
      return from_hex("5051525354555657585958595A5B5C5D");
    case Role::Kiosk:
      return from_hex("0102030405060708090A0B0C0D0E0F10");
    case Role::None:
      break;
  }
  throw std::invalid_argument("no master for role none");
}

crypto::SecretBytes card_key(Role role, crypto::scp03::KeyType type, std::string_view card_number) {
  return crypto::scp03::diversify_card_key<MbedTls>(role_master(role), type, card_number);
}

std::uint8_t kvn_of(Role role) {
  switch (role) {
    case Role::Counter:
      return training::kKvnCounter;
    case Role::Site:
      return training::kKvnSite;
    case Role::Kiosk:
      return training::kKvnKiosk;
    case Role::None:
      break;
  }
  throw std::invalid_argument("no KVN for role none");
}

crypto::EcPublicKey receipt_public_key() {
  return MbedTls::PrivateKey::from_scalar(scalar("skillcard test receipt key").view()).public_key();
}
crypto::EcPublicKey auth_public_key() {
  return MbedTls::PrivateKey::from_scalar(scalar("skillcard test auth key").view()).public_key();
}
crypto::EcPublicKey card_ca_public_key() {
  return MbedTls::PrivateKey::from_scalar(scalar("skillcard test card CA").view()).public_key();
}

Bytes card_certificate() {
  const auto ca = MbedTls::PrivateKey::from_scalar(scalar("skillcard test card CA").view());
  schemas::CardCertificateClaims claims;
  claims.card_number = std::string(kCardNumber);
  claims.region = kRegion;
  claims.receipt_key = receipt_public_key().compressed();
  claims.auth_key = auth_public_key().compressed();
  claims.not_before = kIssuedAt;
  claims.not_after = kIssuedAt + 10ull * 365 * 86'400;
  return schemas::sign_card_certificate(claims, crypto::kid_of<MbedTls>(ca.public_key()),
                                        [&](ByteView m) { return ca.sign(m); });
}

training::Personalisation personalisation() {
  training::Personalisation p;
  p.card_number = std::string(kCardNumber);
  p.region = kRegion;
  p.holder = holder_ref();
  p.certificate = card_certificate();
  p.receipt_scalar = scalar("skillcard test receipt key");
  p.auth_scalar = scalar("skillcard test auth key");
  const Role roles[] = {Role::Counter, Role::Site, Role::Kiosk};
  const crypto::scp03::KeyType types[] = {crypto::scp03::KeyType::Enc, crypto::scp03::KeyType::Mac,
                                          crypto::scp03::KeyType::Dek};
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t t = 0; t < 3; ++t) p.keys[r][t] = card_key(roles[r], types[t]);
  }
  p.pin = std::string(kPin);
  return p;
}

Eeprom personalised_image() {
  static const Eeprom master = [] {
    Eeprom e = Eeprom::in_memory(training::kImagePages);
    PersistentMemory::format(e);
    PersistentMemory memory(std::move(e));
    memory.mount();
    training::personalise(memory, personalisation());
    return memory.eeprom().clone();
  }();
  return master.clone();
}

std::unique_ptr<Card> make_training_card(training::TrainingApplet** applet, Eeprom eeprom) {
  auto card = std::make_unique<Card>(std::move(eeprom));
  auto& installed = training::install(*card);
  if (applet) *applet = &installed;
  return card;
}

training::VoucherId voucher_id(std::uint64_t serial) {
  training::VoucherId id{};
  const auto b = be(serial, 8);
  std::copy(b.begin(), b.end(), id.begin());
  return id;
}

Bytes voucher_token(const VoucherSpec& spec) {
  static const auto signer = MbedTls::PrivateKey::from_scalar(scalar("skillcard test voucher signer").view());
  static const auto kid = crypto::kid_of<MbedTls>(signer.public_key());
  schemas::VoucherClaims c;
  c.issuer = 420100;
  c.id = voucher_id(spec.serial);
  c.holder = spec.holder.value_or(holder_ref());
  c.programme = schemas::Programme::KeyGroupEmploymentSkills;
  c.occupation = 4040505;
  c.level = 4;
  c.fund = schemas::FundSource::EmploymentSubsidyFund;
  c.face_value_fen = 180000;
  c.planned_hours = 120;
  c.planned_online_hours = 36;
  c.eligible_regions = spec.regions;
  c.eligible_providers = spec.providers;
  c.issued_at = spec.issued_at;
  c.not_before = spec.issued_at;
  c.expires_at = spec.issued_at + 90ull * 86'400;
  return schemas::sign_voucher(c, kid, [&](ByteView m) { return signer.sign(m); });
}

Bytes voucher_token(std::uint64_t serial) {
  VoucherSpec spec;
  spec.serial = serial;
  return voucher_token(spec);
}

Bytes expected_receipt(const schemas::ReceiptClaims& claims) {
  static const auto key = MbedTls::PrivateKey::from_scalar(scalar("skillcard test receipt key").view());
  static const auto kid = crypto::kid_of<MbedTls>(key.public_key());
  return schemas::sign_receipt(claims, kid, [&](ByteView m) { return key.sign(m); });
}

Bytes redeem_data(const RedeemSpec& s) {
  Bytes d = be(s.serial, 8);
  const auto site = be(s.site, 4);
  d.insert(d.end(), site.begin(), site.end());
  d.push_back(s.nonce_kind);
  // Never ASCII digits (0xC0-0xFF): the receipt echoes the nonce, and the property test checks
  // that no answer carries the PIN's digits (a nonce of 0x31 0x32 ... once spelt "123456").
  for (std::uint8_t i = 0; i < 16; ++i) d.push_back(static_cast<std::uint8_t>(0xC0 | ((i + s.serial) & 0x3F)));
  for (const auto& part : {be(s.time, 4), be(s.classroom, 2), be(s.online, 2)})
    d.insert(d.end(), part.begin(), part.end());
  return d;
}

namespace cmd {

CommandApdu get_data(std::uint8_t p2) { return CommandApdu(0x00, 0xCA, 0x01, p2, 256); }
CommandApdu internal_authenticate(ByteView challenge) { return CommandApdu(0x00, 0x88, 0x00, 0x00, challenge, 256); }
CommandApdu verify(std::string_view pin) { return verify_block(training::pin_block(pin)); }
CommandApdu verify_block(ByteView block) { return CommandApdu(0x00, 0x20, 0x00, 0x81, block, 256); }
CommandApdu verify_status() { return CommandApdu(0x00, 0x20, 0x00, 0x81, 256); }
CommandApdu change(std::string_view old_pin, std::string_view new_pin) {
  Bytes data = training::pin_block(old_pin);
  Bytes block(12, 0xFF);
  // Unchecked (refusal tests send bad ones), cut to the block.
  std::copy_n(new_pin.begin(), std::min<std::size_t>(new_pin.size(), 12), block.begin());
  data.insert(data.end(), block.begin(), block.end());
  return CommandApdu(0x00, 0x24, 0x00, 0x81, data, 256);
}
CommandApdu reset_retry_counter(std::string_view new_pin) {
  Bytes block(12, 0xFF);
  std::copy_n(new_pin.begin(), std::min<std::size_t>(new_pin.size(), 12), block.begin());
  return CommandApdu(0x00, 0x2C, 0x02, 0x81, block, 256);
}
CommandApdu store(ByteView token) { return CommandApdu(0x80, 0x30, 0x00, 0x00, token, 256); }
CommandApdu list(std::uint8_t p1) { return CommandApdu(0x80, 0x32, p1, 0x00, 256); }
CommandApdu read_voucher(std::uint64_t serial) { return CommandApdu(0x80, 0x34, 0x00, 0x00, voucher_id(serial), 256); }
CommandApdu redeem(const RedeemSpec& spec) { return CommandApdu(0x80, 0x36, 0x00, 0x00, redeem_data(spec), 256); }
CommandApdu get_receipt(std::uint32_t counter) { return CommandApdu(0x80, 0x38, 0x00, 0x00, be(counter, 4), 256); }
CommandApdu purge(std::uint64_t serial) { return CommandApdu(0x80, 0x3A, 0x00, 0x00, voucher_id(serial), 256); }
CommandApdu write_digest(ByteView digest) { return CommandApdu(0x80, 0x40, 0x00, 0x00, digest, 256); }
CommandApdu read_digest() { return CommandApdu(0x80, 0x42, 0x00, 0x00, 256); }

CommandApdu sample(std::uint8_t ins) {
  switch (ins) {
    case training::ins::kGetData:
      return get_data(0x01);
    case training::ins::kInternalAuthenticate:
      return internal_authenticate(Bytes(17, 0x01));
    case training::ins::kVerify:
      return verify(kPin);
    case training::ins::kChangeReferenceData:
      return change(kPin, kPin);
    case training::ins::kResetRetryCounter:
      return reset_retry_counter(kPin);
    case training::ins::kStoreVoucher:
      return store(voucher_token(3));
    case training::ins::kListVouchers:
      return list(training::kListAll);
    case training::ins::kReadVoucher:
      return read_voucher(1);
    case training::ins::kRedeem:
      return redeem({});
    case training::ins::kGetReceipt:
      return get_receipt(1);
    case training::ins::kPurge:
      return purge(2);
    case training::ins::kWriteDigest:
      return write_digest(Bytes(100, 0xD1));
    case training::ins::kReadDigest:
      return read_digest();
    default:
      throw std::invalid_argument("no sample for this INS");
  }
}

}  // namespace cmd

ResponseApdu Terminal::transmit(const CommandApdu& command) {
  // transmit_all, counting every exchange and byte as a reader would see them.
  struct Counting : iso7816::CardChannel {
    Terminal* t;
    explicit Counting(Terminal* term) : t(term) {}
    ResponseApdu transmit(const CommandApdu& c) override {
      const auto r = t->channel_.transmit(c);
      ++t->exchanges_;
      t->bytes_ += c.encode().size() + r.data().size() + 2;
      return r;
    }
    Bytes atr() const override { return t->channel_.atr(); }
    void reset() override { t->channel_.reset(); }
  } counting(this);
  return iso7816::transmit_all(counting, command);
}

ResponseApdu Terminal::select() {
  host_.close();
  return transmit(CommandApdu::select_by_aid(training::aid()));
}

iso7816::StatusWord Terminal::open(Role role, std::uint8_t level) {
  const auto iu = host_.initialize_update(kvn_of(role));
  const auto answer = transmit(iu);
  if (!answer.is_success()) {
    host_.close();
    return answer.sw();
  }
  const auto info = decltype(host_)::parse_initialize_update_response(answer.data());
  const std::string number(info.diversification_data.begin(), info.diversification_data.end());
  const auto enc = card_key(role, crypto::scp03::KeyType::Enc, number);
  const auto mac = card_key(role, crypto::scp03::KeyType::Mac, number);
  const auto ea = host_.external_authenticate(enc.view(), mac.view(), info, level);
  const auto result = transmit(ea);
  if (!result.is_success()) host_.close();
  return result.sw();
}

ResponseApdu Terminal::send(const CommandApdu& plain) {
  if (!host_.is_open()) return transmit(plain);
  return host_.unwrap(transmit(host_.wrap(plain)));
}

ResponseApdu Terminal::send_raw(const CommandApdu& command) { return transmit(command); }

}  // namespace skillcard::card::testing
