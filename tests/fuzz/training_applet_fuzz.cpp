// libFuzzer target for the training applet behind the card engine. The input is a script for a
// terminal that can open real SCP03 sessions (so that the fuzzer reaches the commands behind
// the secure channel, not just the MAC check), send wrapped or raw commands of any shape,
// tamper with wrapped ones, select, reset, power-cycle and cut power at any page write.
//
// Script, one op per byte (op % 12), operands after it:
//   0 n bytes..   raw APDU of n bytes          1 r          open a session, role r % 3 (r & 4: verify PIN)
//   2 ins p1 p2 n data..  a command, wrapped when a session is open (CLA by the INS family)
//   3 v           VERIFY (v & 1: right PIN)    4 k          STORE voucher k % 8
//   5 k t t t t   REDEEM voucher k % 8 at time t           6 SELECT
//   7 power cycle                              8 warm reset
//   9 i m         arm a cut at write i, mode m % 3
//   10 h l        WRITE DIGEST of (hl % 600) bytes          11 b          flip bit b of the next wrapped command
// Every answer must be at least two bytes with a plausible status word, never 6Fxx (the OS
// answers 6F00 only for an exception the applet did not expect: a bug); after every power-on
// the image loads and the applet's invariants hold: no voucher twice, redemption counters
// unique and never above the card's counter, receipts complete, tries within 0..3.
//
// Built a second time as card_image_fuzz (SKILLCARD_FUZZ_DAMAGED_IMAGE): the script is preceded
// by damage to the personalised image, as a failing chip or an edited image file would leave it.
//   f, then f % 8 patches of: page, offset, n (n % 65), n bytes   (f & 0x80: leave the header
//   CRC as it was; otherwise it is made to match, so that the damage reaches the applet)
// The image must then be refused with an ImageError naming why, or load; a loaded card must
// answer every command with a status word, and 6F00 is accepted there: state the card never
// wrote has no more precise diagnosis (ISO 7816-4 §5.6). No crash, no read outside a buffer,
// no exception past the card's dispatcher, and the card's own writes keep the image loadable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>

#include "skillcard/card/card.hpp"
#include "skillcard/card/in_process_channel.hpp"
#include "skillcard/card/training_applet.hpp"
#include "skillcard/crypto/scp03_session.hpp"
#include "skillcard/iso7816/card_channel.hpp"
#include "skillcard/schemas/errors.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/voucher.hpp"

using namespace skillcard;
using namespace skillcard::card;
using crypto::MbedTls;
using iso7816::CommandApdu;
using iso7816::ResponseApdu;

namespace {

constexpr std::string_view kNumber = "4201000001";

crypto::SecretBytes derived(std::string_view label) {
  const auto d = MbedTls::sha256(as_bytes(label));
  return crypto::SecretBytes(ByteView(d));
}

crypto::SecretBytes role_key(int role, int type) {
  const auto master = derived("fuzz master " + std::to_string(role));
  return crypto::scp03::diversify_card_key<MbedTls>(ByteView(master.view()).first(16),
                                                    static_cast<crypto::scp03::KeyType>(type + 1), kNumber);
}

crypto::HolderRef holder() {
  crypto::HolderRef h{};
  h.fill(0x42);
  return h;
}

const Eeprom& image() {
  static const Eeprom master = [] {
    Eeprom e = Eeprom::in_memory(training::kImagePages);
    PersistentMemory::format(e);
    PersistentMemory memory(std::move(e));
    memory.mount();
    training::Personalisation p;
    p.card_number = std::string(kNumber);
    p.region = 420100;
    p.holder = holder();
    p.certificate = Bytes(194, 0xCE);  // opaque to the card
    p.receipt_scalar = derived("fuzz receipt");
    p.auth_scalar = derived("fuzz auth");
    for (int r = 0; r < 3; ++r) {
      for (int t = 0; t < 3; ++t) p.keys[static_cast<std::size_t>(r)][static_cast<std::size_t>(t)] = role_key(r, t);
    }
    p.pin = "123456";
    training::personalise(memory, p);
    return memory.eeprom().clone();
  }();
  return master;
}

const std::vector<Bytes>& tokens() {
  static const std::vector<Bytes> all = [] {
    const auto signer = MbedTls::PrivateKey::from_scalar(derived("fuzz voucher signer").view());
    const auto kid = crypto::kid_of<MbedTls>(signer.public_key());
    std::vector<Bytes> out;
    for (std::uint8_t k = 0; k < 8; ++k) {
      schemas::VoucherClaims c;
      c.issuer = 420100;
      c.id = {0, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(k + 1)};
      c.holder = k == 7 ? crypto::HolderRef{} : holder();  // the last one is for someone else
      c.occupation = 4040505;
      c.level = 4;
      c.face_value_fen = 180000;
      c.planned_hours = 120;
      c.planned_online_hours = 36;
      c.eligible_regions = {420100};
      c.issued_at = 1'767'225'600u + k * 3600u;
      c.not_before = c.issued_at;
      c.expires_at = c.issued_at + 7'776'000u;
      out.push_back(schemas::sign_voucher(c, kid, [&](ByteView m) { return signer.sign(m); }));
    }
    return out;
  }();
  return all;
}

#ifdef SKILLCARD_FUZZ_DAMAGED_IMAGE
constexpr bool kDamaged = true;
#else
constexpr bool kDamaged = false;
#endif

bool plausible(std::uint8_t sw1) { return sw1 == 0x90 || (sw1 >= 0x61 && sw1 <= 0x6E) || (kDamaged && sw1 == 0x6F); }

void power_on(Card& card) {
  try {
    card.power_on();
  } catch (const ImageError&) {
    std::abort();  // recovery must always leave a loadable image
  }
}

void check_invariants(Card& card) {
  if (kDamaged) return;  // damaged state may break them; what is checked is that nothing crashes
  const auto s = training::read_state(card.memory());
  if (s.tries_left > 3 || s.max_tries != 3) std::abort();
  std::set<training::VoucherId> ids;
  std::set<std::uint32_t> counters;
  for (const auto& slot : s.slots) {
    if (slot.state == training::SlotState::Empty) continue;
    if (static_cast<int>(slot.state) > 3 || !ids.insert(slot.id).second) std::abort();
    if (slot.state == training::SlotState::Stored) {
      if (slot.counter != 0) std::abort();
      continue;
    }
    if (slot.counter == 0 || slot.counter > s.redemption_counter || !counters.insert(slot.counter).second) std::abort();
    try {
      const auto receipt = schemas::decode_receipt(slot.body);
      if (receipt.claims.counter != slot.counter || receipt.claims.voucher != slot.id) std::abort();
    } catch (const schemas::DecodeError&) {
      std::abort();
    }
  }
}

struct Fuzz {
  explicit Fuzz(Card& c) : card(c), channel(c) {}
  Card& card;
  InProcessChannel channel;
  crypto::scp03::HostSession<MbedTls> host;
  int role = 0;
  std::optional<std::uint8_t> flip;

  // One exchange (61xx followed); false when power went.
  std::optional<ResponseApdu> exchange(const CommandApdu& command) {
    try {
      const auto r = iso7816::transmit_all(channel, command);
      if (!plausible(r.sw1())) std::abort();
      return r;
    } catch (const iso7816::UnknownOutcomeError&) {
      lost_power();
      return std::nullopt;
    } catch (const iso7816::CardError&) {
      return std::nullopt;  // e.g. a GET RESPONSE loop the card would never end: a transport matter
    }
  }

  void lost_power() {
    if (card.powered()) std::abort();
    card.eeprom().disarm();
    host.close();
    power_on(card);
    check_invariants(card);
  }

  void send(const CommandApdu& plain) {
    if (!host.is_open()) {
      exchange(plain);
      return;
    }
    auto wrapped = host.wrap(plain);
    if (flip) {
      Bytes bytes = wrapped.encode();
      bytes[*flip % bytes.size()] ^= static_cast<std::uint8_t>(1u << (*flip % 8));
      flip.reset();
      try {
        wrapped = CommandApdu::parse(bytes);
      } catch (const iso7816::ApduFormatError&) {
        host.close();
        return;
      }
    }
    const auto r = exchange(wrapped);
    if (!r) return;
    try {
      host.unwrap(*r);
    } catch (const crypto::scp03::SecureChannelError&) {
      host.close();
    }
  }

  void open(std::uint8_t r) {
    role = r % 3;
    const auto iu = exchange(host.initialize_update(static_cast<std::uint8_t>(0x21 + role)));
    if (!iu || !iu->is_success()) {
      host.close();
      return;
    }
    try {
      const auto info = decltype(host)::parse_initialize_update_response(iu->data());
      const auto enc = role_key(role, 0);
      const auto mac = role_key(role, 1);
      const auto ea = exchange(host.external_authenticate(enc.view(), mac.view(), info, 0x33));
      if (!ea || !ea->is_success()) host.close();
    } catch (const crypto::scp03::SecureChannelError&) {
      host.close();
    }
    if ((r & 4) && host.is_open()) send(CommandApdu(0x00, 0x20, 0x00, 0x81, training::pin_block("123456"), 256));
  }
};

std::uint8_t take(const std::uint8_t* data, std::size_t size, std::size_t& i) { return i < size ? data[i++] : 0; }

// The personalised image with the input's patches (card_image_fuzz's prefix, see the header).
Eeprom damaged(const std::uint8_t* data, std::size_t size, std::size_t& i) {
  Eeprom e = image().clone();
  const std::uint8_t flags = take(data, size, i);
  for (int patch = 0; patch < (flags & 7); ++patch) {
    const std::size_t page = take(data, size, i) % e.page_count();
    const std::size_t offset = take(data, size, i) % kPageSize;
    const std::size_t n = std::min<std::size_t>({take(data, size, i) % 65u, kPageSize - offset, size - i});
    Bytes bytes(e.page(page).begin(), e.page(page).end());
    std::copy_n(data + i, n, bytes.begin() + static_cast<std::ptrdiff_t>(offset));
    i += n;
    e.write_page(page, bytes);
  }
  if (!(flags & 0x80)) {
    Bytes header(e.page(0).begin(), e.page(0).end());
    const std::uint32_t crc = image_crc(e.image());
    for (int k = 0; k < 4; ++k)
      header[8 + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(crc >> (24 - 8 * k));
    e.write_page(0, header);
  }
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::size_t i = 0;
  Card card(kDamaged ? damaged(data, size, i) : image().clone());
  training::install(card);
  if (kDamaged) {
    try {
      card.power_on();
    } catch (const ImageError&) {
      return 0;  // refused whole, with its reason: what a damaged image may get
    }
  } else {
    power_on(card);
  }
  Fuzz f(card);
  f.exchange(CommandApdu::select_by_aid(training::aid()));

  while (i < size) {
    const std::uint8_t op = data[i++] % 12;
    switch (op) {
      case 0: {
        std::size_t n = take(data, size, i);
        n = std::min(n, size - i);
        try {
          const Bytes response = card.process(ByteView(data + i, n));
          if (response.size() < 2 || !plausible(response[response.size() - 2])) std::abort();
        } catch (const PowerLost&) {
          f.lost_power();
        }
        i += n;
        break;
      }
      case 1:
        f.open(take(data, size, i));
        break;
      case 2: {
        const std::uint8_t ins = take(data, size, i);
        const std::uint8_t p1 = take(data, size, i);
        const std::uint8_t p2 = take(data, size, i);
        std::size_t n = take(data, size, i);
        n = std::min(n, size - i);
        if ((ins & 0xF0) == 0x60 || (ins & 0xF0) == 0x90) {
          i += n;
          break;  // not an INS (T=0 procedure bytes)
        }
        const bool iso = ins == 0xCA || ins == 0x88 || ins == 0x20 || ins == 0x24 || ins == 0x2C || ins == 0xA4;
        const Bytes body(data + i, data + i + n);
        i += n;
        const std::uint8_t cla = iso ? 0x00 : 0x80;
        f.send(body.empty() ? CommandApdu(cla, ins, p1, p2, 256) : CommandApdu(cla, ins, p1, p2, body, 256));
        break;
      }
      case 3: {
        const bool right = take(data, size, i) & 1;
        f.send(CommandApdu(0x00, 0x20, 0x00, 0x81, training::pin_block(right ? "123456" : "000000"), 256));
        break;
      }
      case 4:
        f.send(CommandApdu(0x80, 0x30, 0x00, 0x00, tokens()[take(data, size, i) % 8], 256));
        break;
      case 5: {
        Bytes d{0, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(take(data, size, i) % 8 + 1), 0, 0, 0x27, 0x11, 0x01};
        d.resize(29, 0x5A);
        for (int k = 0; k < 4; ++k) d.push_back(take(data, size, i));
        d.insert(d.end(), {0, 84, 0, 36});
        f.send(CommandApdu(0x80, 0x36, 0x00, 0x00, d, 256));
        break;
      }
      case 6:
        f.host.close();
        f.exchange(CommandApdu::select_by_aid(training::aid()));
        break;
      case 7:
        card.power_off();
        f.host.close();
        power_on(card);
        check_invariants(card);
        f.exchange(CommandApdu::select_by_aid(training::aid()));
        break;
      case 8:
        card.reset();
        f.host.close();
        f.exchange(CommandApdu::select_by_aid(training::aid()));
        break;
      case 9: {
        const std::uint8_t index = take(data, size, i);
        const std::uint8_t mode = take(data, size, i);
        card.eeprom().arm({index, static_cast<CutMode>(mode % 3), mode});
        break;
      }
      case 10: {
        const std::uint8_t high = take(data, size, i);
        const std::uint8_t low = take(data, size, i);
        const std::size_t n = static_cast<std::size_t>((high << 8) | low) % 600;
        const Bytes digest(n, 0xD1);
        f.send(n == 0 ? CommandApdu(0x80, 0x40, 0, 0, 256) : CommandApdu(0x80, 0x40, 0, 0, digest, 256));
        break;
      }
      default:
        f.flip = take(data, size, i);
        break;
    }
  }

  card.power_off();
  card.eeprom().disarm();
  power_on(card);
  check_invariants(card);
  PersistentMemory check(card.eeprom().clone());
  try {
    if (check.mount().journal != MountReport::Journal::Empty) std::abort();
  } catch (const ImageError&) {
    std::abort();
  }
  if (check.stored_crc() != image_crc(check.eeprom().image())) std::abort();
  return 0;
}
