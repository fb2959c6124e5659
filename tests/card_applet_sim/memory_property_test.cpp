// Property test of the persistent memory against a plain byte-vector model: random multi-page
// transactions, random power cuts (any write, any mode) and power cycles; after every recovery
// the memory equals the model before or after the cut transaction — exactly the one its
// commit point says — and the image always loads.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "skillcard/card/persistent_memory.hpp"
#include "test_support.hpp"

namespace skillcard::card {
namespace {

Bytes area(const PersistentMemory& m) {
  const ByteView v = m.read(0, m.size());
  return Bytes(v.begin(), v.end());
}

RC_GTEST_PROP(MemoryProperty, RandomTransactionsAndCutsMatchAModel, ()) {
  const auto pages = *rc::gen::inRange<std::size_t>(18, 48);
  PersistentMemory m(testing::formatted(pages));
  m.mount();
  Bytes model(m.size(), 0);
  const int transactions = *rc::gen::inRange(1, 30);
  for (int t = 0; t < transactions; ++t) {
    Bytes next = model;
    std::size_t applet_pages = 0;
    std::optional<PowerCut> cut;
    {
      auto tx = m.begin();
      const int writes = *rc::gen::inRange(0, 5);
      for (int w = 0; w < writes; ++w) {
        const auto offset = *rc::gen::inRange<std::size_t>(0, m.size());
        const auto length = *rc::gen::inRange<std::size_t>(0, std::min<std::size_t>(300, m.size() - offset) + 1);
        const auto data = *rc::gen::container<Bytes>(length, rc::gen::arbitrary<std::uint8_t>());
        const std::size_t before = tx.pages();
        try {
          tx.write(offset, data);
          std::copy(data.begin(), data.end(), next.begin() + static_cast<std::ptrdiff_t>(offset));
        } catch (const TransactionTooLarge&) {
          RC_ASSERT(tx.pages() == before);  // refused whole
        }
        RC_ASSERT(tx.pages() <= kMaxCommitPages - 1);
      }
      applet_pages = tx.pages();
      if (applet_pages > 0 && *rc::gen::inRange(0, 3) != 0) {
        const std::uint64_t cost = 2 * (applet_pages + 1) + 2;
        cut = PowerCut{*rc::gen::inRange<std::uint64_t>(0, cost),
                       *rc::gen::element(CutMode::Before, CutMode::During, CutMode::After),
                       *rc::gen::arbitrary<std::uint64_t>()};
        m.eeprom().arm(*cut);
        RC_ASSERT_THROWS_AS(tx.commit(), PowerLost);
      } else {
        tx.commit();
      }
    }
    if (cut) {
      m.eeprom().restore_power();
      m.mount();  // throws ImageError if recovery left a bad image: the property fails
      const std::uint64_t record = applet_pages + 1;
      const bool committed = cut->write_index > record || (cut->write_index == record && cut->mode == CutMode::After);
      RC_ASSERT(area(m) == (committed ? next : model));
      model = committed ? next : model;
    } else {
      model = next;
    }
    RC_ASSERT(area(m) == model);
    RC_ASSERT(m.stored_crc() == image_crc(m.eeprom().image()));
    if (*rc::gen::inRange(0, 4) == 0) {
      // A power cycle between commands finds a clean journal and the same bytes.
      PersistentMemory again(m.eeprom().clone());
      RC_ASSERT(again.mount().journal == MountReport::Journal::Empty);
      RC_ASSERT(area(again) == model);
    }
  }
}

}  // namespace
}  // namespace skillcard::card
