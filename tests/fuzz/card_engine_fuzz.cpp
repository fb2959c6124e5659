// libFuzzer target for the card OS: arbitrary bytes drive a card (echo applet installed, RAM
// image) as a script of APDUs, power cycles, warm resets and armed power cuts. Every APDU must
// get a response of at least two bytes ending in a plausible status word, power cuts must
// leave a card that powers on again, and the image must always load with a good CRC.
//
// Script: FF = power off + on; FE = warm reset; FD i m = arm a cut at write i, mode m % 3;
// FC hh ll = an APDU of hhll bytes follows; any other byte n = an APDU of n bytes follows.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "skillcard/card/card.hpp"
#include "skillcard/card/echo_applet.hpp"

using namespace skillcard;
using namespace skillcard::card;

namespace {

bool plausible(std::uint8_t sw1) { return sw1 == 0x90 || (sw1 >= 0x61 && sw1 <= 0x6F); }

void power_on(Card& card) {
  try {
    card.power_on();
  } catch (const ImageError&) {
    std::abort();  // recovery must always leave a loadable image
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Eeprom eeprom = Eeprom::in_memory(24);
  PersistentMemory::format(eeprom);
  Card card(std::move(eeprom));
  card.install(std::make_unique<EchoApplet>(), 0, card.memory().size());
  power_on(card);

  std::size_t i = 0;
  while (i < size) {
    const std::uint8_t op = data[i++];
    if (op == 0xFF) {
      card.power_off();
      power_on(card);
      continue;
    }
    if (op == 0xFE) {
      card.reset();
      continue;
    }
    if (op == 0xFD) {
      if (size - i < 2) break;
      card.eeprom().arm({data[i], static_cast<CutMode>(data[i + 1] % 3), data[i + 1]});
      i += 2;
      continue;
    }
    std::size_t length = op;
    if (op == 0xFC) {
      if (size - i < 2) break;
      length = static_cast<std::size_t>((data[i] << 8) | data[i + 1]);
      i += 2;
    }
    if (length > size - i) length = size - i;
    const ByteView apdu(data + i, length);
    i += length;
    try {
      const Bytes response = card.process(apdu);
      if (response.size() < 2 || !plausible(response[response.size() - 2])) std::abort();
    } catch (const PowerLost&) {
      if (card.powered()) std::abort();
      card.eeprom().disarm();
      power_on(card);
    }
  }

  card.power_off();
  card.eeprom().disarm();
  PersistentMemory check(card.eeprom().clone());
  try {
    if (check.mount().journal != MountReport::Journal::Empty) std::abort();  // no commit left half-done
  } catch (const ImageError&) {
    std::abort();
  }
  if (check.stored_crc() != image_crc(check.eeprom().image())) std::abort();
  return 0;
}
