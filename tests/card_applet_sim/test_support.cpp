// The test applet and helpers shared by the card OS tests.
#include "test_support.hpp"

#include <stdlib.h>

#include <algorithm>
#include <stdexcept>

#include "skillcard/iso7816/status_word.hpp"

namespace skillcard::card::testing {

using iso7816::StatusWord;
using iso7816::StatusWordError;

const Bytes& TestApplet::kAid() {
  static const Bytes aid{0xF0, 0x74, 0x65, 0x73, 0x74, 0x01};
  return aid;
}

Bytes TestApplet::on_select(AppletContext&) {
  note("select");
  if (refuse_select) throw StatusWordError(iso7816::make_sw(0x69, 0x99), "selection refused");
  return {0x50, 0x04, 't', 'e', 's', 't'};  // application label
}

void TestApplet::on_deselect(AppletContext& context) {
  note("deselect verified=" + std::to_string(context.transient()[0]));
}

void TestApplet::on_power_reset(AppletContext& context) {
  note("power_reset verified=" + std::to_string(context.transient()[0]));
}

Bytes TestApplet::process(const iso7816::CommandApdu& command, AppletContext& context) {
  if (command.cla() != 0x00 && command.cla() != 0x80) throw StatusWordError(StatusWord::ClaNotSupported);
  auto& storage = context.storage();
  const Bytes& data = command.data();
  switch (command.ins()) {
    case kInsEcho:
      return data;
    case kInsPersonalise: {
      if (data.size() != 4) throw StatusWordError(StatusWord::WrongLength);
      auto tx = storage.begin();
      tx.write(0, Bytes{3});
      tx.write(5, data);
      tx.commit();
      return {};
    }
    case kInsVerify: {
      if (data.size() != 4) throw StatusWordError(StatusWord::WrongLength);
      const std::uint8_t tries = storage.read(0, 1)[0];
      if (tries == 0) throw StatusWordError(StatusWord::AuthenticationMethodBlocked);
      auto tx = storage.begin();
      tx.write(0, Bytes{static_cast<std::uint8_t>(tries - 1)});
      tx.commit();  // step 1: a try is spent before comparing
      const ByteView pin = storage.read(5, 4);
      if (!std::equal(pin.begin(), pin.end(), data.begin(), data.end())) {
        throw StatusWordError(iso7816::make_verification_failed(tries - 1));
      }
      const ByteView c = storage.read(1, 4);
      const std::uint32_t checks =
          ((std::uint32_t{c[0]} << 24) | (std::uint32_t{c[1]} << 16) | (std::uint32_t{c[2]} << 8) | c[3]) + 1;
      tx.write(0, Bytes{3});
      tx.write(1, Bytes{static_cast<std::uint8_t>(checks >> 24), static_cast<std::uint8_t>(checks >> 16),
                        static_cast<std::uint8_t>(checks >> 8), static_cast<std::uint8_t>(checks)});
      tx.commit();  // step 2: tries back to the maximum, one more successful check
      context.transient()[0] = 1;
      return {};
    }
    case kInsVerified:
      return {context.transient()[0]};
    case kInsThrowRuntime:
      throw std::runtime_error("applet bug");
    case kInsTooLarge: {
      auto tx = storage.begin();
      tx.fill(0, 15 * kPageSize, 0xAA);
      tx.commit();
      return {};
    }
    case kInsSwallow:
      try {
        auto tx = storage.begin();
        tx.fill(0, 2 * kPageSize, 0x5C);
        tx.commit();
      } catch (...) {
        // Deliberately wrong: the runtime must still notice that power went.
      }
      return {0x01};
    case kInsStep: {
      // P1 commits in a row; commit i fills P2 pages starting at page i with the byte i + 1.
      const std::size_t steps = command.p1(), pages = command.p2();
      auto tx = storage.begin();
      for (std::size_t i = 0; i < steps; ++i) {
        tx.fill(i * kPageSize, pages * kPageSize, static_cast<std::uint8_t>(i + 1));
        tx.commit();
      }
      return {};
    }
    default:
      throw StatusWordError(StatusWord::InsNotSupported);
  }
}

Eeprom formatted(std::size_t pages) {
  Eeprom eeprom = Eeprom::in_memory(pages);
  PersistentMemory::format(eeprom);
  return eeprom;
}

std::unique_ptr<Card> make_card(std::vector<std::string>* log, TestApplet** test_applet, Eeprom eeprom) {
  auto card = std::make_unique<Card>(std::move(eeprom));
  card->install(std::make_unique<EchoApplet>(), kEchoOffset, kEchoSize);
  auto applet = std::make_unique<TestApplet>(log);
  if (test_applet) *test_applet = applet.get();
  card->install(std::move(applet), kTestOffset, kTestSize);
  return card;
}

std::string send(Card& card, std::string_view apdu_hex) { return to_hex(card.process(from_hex(apdu_hex))); }

std::string select_hex(const Bytes& aid, std::string_view p2, bool with_le) {
  std::string out = "00A404" + std::string(p2) + to_hex(Bytes{static_cast<std::uint8_t>(aid.size())}) + to_hex(aid);
  if (with_le) out += "00";
  return out;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "skillcard-card-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace skillcard::card::testing
