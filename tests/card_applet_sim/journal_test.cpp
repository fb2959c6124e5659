// Tearing tests: every cut point (before, during and after each physical page write) of sample
// 1-, 2-, 8- and 15-page commits and of multi-step sequences, at the memory and at the card
// level; recovery must leave exactly a state after some prefix of the commit steps, with a
// loadable image, and must itself survive being cut.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "skillcard/card/in_process_channel.hpp"
#include "skillcard/card/persistent_memory.hpp"
#include "test_support.hpp"

namespace skillcard::card {
namespace {

using testing::formatted;
using testing::make_card;
using testing::send;
using testing::TestApplet;

constexpr CutMode kModes[] = {CutMode::Before, CutMode::During, CutMode::After};
constexpr std::uint64_t kSeeds[] = {1, 0xC0FFEE};

const char* name(CutMode m) { return m == CutMode::Before ? "before" : m == CutMode::During ? "during" : "after"; }

Bytes area(const PersistentMemory& m) {
  const ByteView v = m.read(0, m.size());
  return Bytes(v.begin(), v.end());
}

// A memory with some committed history, so that "old" is not simply all zero.
Eeprom base_image() {
  PersistentMemory m(formatted(47));
  m.mount();
  auto tx = m.begin();
  for (std::size_t p = 0; p < 30; p += 3) tx.fill(p * kPageSize + 5, 7, static_cast<std::uint8_t>(0x40 + p));
  tx.commit();
  return m.eeprom().clone();
}

using Steps = std::function<void(PersistentMemory&)>;

struct CutOutcome {
  std::size_t state_index;  // which of the allowed prefix states recovery produced
  MountReport report;
};

// Runs `steps` on a copy of `base` with a cut at (index, mode), powers on again and checks the
// result is one of `allowed` (states after 0, 1, … steps) and the image is valid.
CutOutcome cut_and_recover(const Eeprom& base, const Steps& steps, const std::vector<Bytes>& allowed,
                           std::uint64_t index, CutMode mode, std::uint64_t seed) {
  PersistentMemory m(base.clone());
  m.mount();
  m.eeprom().arm({index, mode, seed});
  EXPECT_THROW(steps(m), PowerLost) << "cut " << index << " " << name(mode);
  EXPECT_FALSE(m.mounted());
  m.eeprom().restore_power();
  MountReport report;
  try {
    report = m.mount();
  } catch (const ImageError& e) {
    ADD_FAILURE() << "cut " << index << " " << name(mode) << ": image refused after recovery: " << e.what();
    return {SIZE_MAX, report};
  }
  EXPECT_EQ(m.stored_crc(), image_crc(m.eeprom().image()));
  const Bytes state = area(m);
  const auto it = std::find(allowed.begin(), allowed.end(), state);
  EXPECT_NE(it, allowed.end()) << "cut " << index << " " << name(mode) << " left a state outside every prefix";
  // A second power-on finds nothing left to do and changes nothing.
  PersistentMemory again(m.eeprom().clone());
  EXPECT_EQ(again.mount().journal, MountReport::Journal::Empty);
  EXPECT_EQ(area(again), state);
  return {static_cast<std::size_t>(it - allowed.begin()), report};
}

// The states after 0..k steps, and the physical writes of the whole sequence.
std::pair<std::vector<Bytes>, std::uint64_t> prefix_states(const Eeprom& base, const std::vector<Steps>& steps) {
  PersistentMemory m(base.clone());
  m.mount();
  std::vector<Bytes> states{area(m)};
  const auto before = m.eeprom().writes();
  for (const auto& step : steps) {
    step(m);
    states.push_back(area(m));
  }
  return {states, m.eeprom().writes() - before};
}

Steps fill_pages(std::size_t first, std::size_t count, std::uint8_t value) {
  return [=](PersistentMemory& m) {
    auto tx = m.begin();
    // Unaligned, so that the first and last pages mix old and new bytes.
    tx.fill(first * kPageSize + 3, count * kPageSize - 6, value);
    tx.commit();
  };
}

void check_single_commit(std::size_t applet_pages) {
  const Eeprom base = base_image();
  const Steps step = fill_pages(2, applet_pages, 0xA5);
  const auto [states, writes] = prefix_states(base, {step});
  const std::size_t n = applet_pages + 1;
  ASSERT_EQ(writes, 2 * n + 2);
  ASSERT_NE(states[0], states[1]);
  for (std::uint64_t i = 0; i < writes; ++i) {
    for (CutMode mode : kModes) {
      for (std::uint64_t seed : kSeeds) {
        const CutOutcome out = cut_and_recover(base, step, states, i, mode, seed);
        // Exactly old before the commit point (write n, the record), exactly new after it.
        const bool committed = i > n || (i == n && mode == CutMode::After);
        EXPECT_EQ(out.state_index, committed ? 1u : 0u) << applet_pages << " pages, cut " << i << " " << name(mode);
        // Replay happens exactly when the record is complete and not yet cleared.
        const bool record_live = (i == n && mode == CutMode::After) || (i > n && i < 2 * n + 1) ||
                                 (i == 2 * n + 1 && mode == CutMode::Before);
        if (record_live) {
          EXPECT_EQ(out.report.journal, MountReport::Journal::Replayed) << "cut " << i << " " << name(mode);
          EXPECT_EQ(out.report.pages_replayed, n);
        }
        if (i == n && mode == CutMode::During) {
          EXPECT_EQ(out.report.journal, MountReport::Journal::Discarded) << "a torn record is discarded";
        }
        if (i < n) {
          EXPECT_EQ(out.report.journal, MountReport::Journal::Empty) << "cut " << i << " " << name(mode);
        }
      }
    }
  }
  // One write further: the cut never fires and the commit completes.
  PersistentMemory m(base.clone());
  m.mount();
  m.eeprom().arm({writes, CutMode::Before, 0});
  step(m);
  EXPECT_EQ(area(m), states[1]);
}

TEST(Journal, EveryCutPointOfAOnePageCommit) { check_single_commit(1); }
TEST(Journal, EveryCutPointOfATwoPageCommit) { check_single_commit(2); }
TEST(Journal, EveryCutPointOfAnEightPageCommit) { check_single_commit(8); }
// 14 applet pages + the header = the 15 pages the journal holds.
TEST(Journal, EveryCutPointOfAFifteenPageCommit) { check_single_commit(14); }

TEST(Journal, EveryCutPointOfATwoStepSequence) {
  const Eeprom base = base_image();
  // Overlapping pages, so that each prefix is a different state.
  const std::vector<Steps> steps = {fill_pages(0, 3, 0x11), fill_pages(2, 4, 0x22)};
  const Steps both = [&](PersistentMemory& m) {
    for (const auto& s : steps) s(m);
  };
  const auto [states, writes] = prefix_states(base, steps);
  ASSERT_EQ(writes, (2 * 4 + 2) + (2 * 5 + 2));
  ASSERT_EQ(std::set<Bytes>(states.begin(), states.end()).size(), 3u);
  std::set<std::size_t> seen;
  for (std::uint64_t i = 0; i < writes; ++i) {
    for (CutMode mode : kModes) {
      const CutOutcome out = cut_and_recover(base, both, states, i, mode, 42);
      seen.insert(out.state_index);
      // The commit points are the records: write 4 (step 1: 3 pages + header) and write 15.
      const auto after = [&](std::uint64_t point) { return i > point || (i == point && mode == CutMode::After); };
      const std::size_t expected = after(15) ? 2u : after(4) ? 1u : 0u;
      EXPECT_EQ(out.state_index, expected) << "cut " << i << " " << name(mode);
    }
  }
  EXPECT_EQ(seen, (std::set<std::size_t>{0, 1, 2}));
}

TEST(Journal, RecoveryCutAtEveryPointIsRedone) {
  const Eeprom base = base_image();
  const Steps step = fill_pages(1, 8, 0x77);
  const auto [states, writes] = prefix_states(base, {step});
  const std::size_t n = 9;
  // Cuts that leave a live commit record, so that power-on has a replay to do.
  for (std::uint64_t i : {std::uint64_t{n}, std::uint64_t{n + 1}, std::uint64_t{n + 5}, std::uint64_t{2 * n}}) {
    PersistentMemory torn(base.clone());
    torn.mount();
    torn.eeprom().arm({i, i == n ? CutMode::After : CutMode::During, 9});
    ASSERT_THROW(step(torn), PowerLost);
    // How many writes the recovery itself makes: n pages in place + clearing the record.
    PersistentMemory probe(torn.eeprom().clone());
    const auto before = probe.eeprom().writes();
    ASSERT_EQ(probe.mount().journal, MountReport::Journal::Replayed);
    const std::uint64_t recovery_writes = probe.eeprom().writes() - before;
    ASSERT_EQ(recovery_writes, n + 1);
    for (std::uint64_t j = 0; j < recovery_writes; ++j) {
      for (CutMode mode : kModes) {
        PersistentMemory m(torn.eeprom().clone());
        m.eeprom().arm({j, mode, j});
        EXPECT_THROW(m.mount(), PowerLost) << "recovery cut " << j << " " << name(mode);
        EXPECT_FALSE(m.mounted());
        m.eeprom().restore_power();
        ASSERT_NO_THROW(m.mount()) << "recovery cut " << j << " " << name(mode);
        EXPECT_EQ(area(m), states[1]) << "commit cut " << i << ", recovery cut " << j << " " << name(mode);
      }
    }
  }
}

TEST(Journal, TornHeaderPageIsRepairedByReplay) {
  const Eeprom base = base_image();
  const Steps step = fill_pages(0, 1, 0x99);
  const auto [states, writes] = prefix_states(base, {step});
  PersistentMemory m(base.clone());
  m.mount();
  // Writes 0-1 journal images, 2 the record, 3 the header in place (it goes first), 4 page 17.
  m.eeprom().arm({3, CutMode::During, 5});
  ASSERT_THROW(step(m), PowerLost);
  EXPECT_NE(to_hex(m.eeprom().page(0)), to_hex(base.page(0))) << "the header is torn";
  m.eeprom().restore_power();
  const MountReport r = m.mount();
  EXPECT_EQ(r.journal, MountReport::Journal::Replayed);
  EXPECT_EQ(area(m), states[1]);
  EXPECT_EQ(to_hex(m.eeprom().page(0).first(8)), to_hex(base.page(0).first(8)));
}

TEST(Journal, GarbageInTheRecordPageIsDiscardedOnlyForAValidImage) {
  Eeprom e = base_image();
  Bytes garbage(kPageSize, 0xEE);
  e.write_page(kJournalRecordPage, garbage);
  PersistentMemory m(e.clone());
  EXPECT_EQ(m.mount().journal, MountReport::Journal::Discarded);
  EXPECT_EQ(to_hex(m.eeprom().page(kJournalRecordPage)), to_hex(Bytes(kPageSize, 0)));
  // With a broken header too, the image is refused and nothing is written to it.
  Eeprom broken = e.clone();
  Bytes header(broken.page(0).begin(), broken.page(0).end());
  header[0] = 'X';
  broken.write_page(0, header);
  PersistentMemory refused(std::move(broken));
  const auto writes = refused.eeprom().writes();
  EXPECT_THROW(refused.mount(), ImageError);
  EXPECT_EQ(refused.eeprom().writes(), writes);
  EXPECT_EQ(refused.eeprom().page(kJournalRecordPage)[0], 0xEE);
}

// The same guarantee seen from outside: a two-step command of an applet (a PIN check commits
// "try spent" before comparing), cut at every write, through the in-process transport.
TEST(Journal, EveryCutPointOfATwoStepAppletCommand) {
  auto personalised = make_card();
  personalised->power_on();
  ASSERT_EQ(send(*personalised, testing::select_hex(TestApplet::kAid(), "0C", false)), "9000");
  ASSERT_EQ(send(*personalised,
                 "0052000004"
                 "31323334"),
            "9000");
  const Eeprom base = personalised->eeprom().clone();
  // Window bytes 0-4: tries left, successful checks.
  const std::vector<std::string> allowed = {"0300000000", "0200000000", "0300000001"};
  auto run = [&](std::optional<PowerCut> cut) {
    auto card = make_card(nullptr, nullptr, base.clone());
    card->power_on();
    InProcessChannel channel(*card);
    EXPECT_EQ(channel.transmit(iso7816::CommandApdu::select_by_aid(TestApplet::kAid())).sw(),
              iso7816::StatusWord::Success);
    if (cut) card->eeprom().arm(*cut);
    const iso7816::CommandApdu verify(0x00, TestApplet::kInsVerify, 0x00, 0x00, from_hex("31323334"));
    std::uint64_t writes = 0;
    if (cut) {
      EXPECT_THROW(channel.transmit(verify), iso7816::UnknownOutcomeError);
      EXPECT_FALSE(card->powered());
      EXPECT_THROW(channel.transmit(verify), iso7816::CardRemovedError);
      channel.reset();  // power-on: recovery
    } else {
      EXPECT_TRUE(channel.transmit(verify).is_success());
      writes = card->last_command_writes();
    }
    const std::string state = to_hex(card->memory().read(testing::kTestOffset, 5));
    return std::make_pair(state, writes);
  };
  const auto [final_state, writes] = run(std::nullopt);
  ASSERT_EQ(final_state, allowed[2]);
  ASSERT_EQ(writes, 12u);
  for (std::uint64_t i = 0; i < writes; ++i) {
    for (CutMode mode : kModes) {
      const std::string state = run(PowerCut{i, mode, i * 31}).first;
      // Step 1's record is write 2, step 2's is write 8.
      const auto after = [&](std::uint64_t point) { return i > point || (i == point && mode == CutMode::After); };
      const std::string& expected = after(8) ? allowed[2] : after(2) ? allowed[1] : allowed[0];
      EXPECT_EQ(state, expected) << "cut " << i << " " << name(mode);
    }
  }
}

}  // namespace
}  // namespace skillcard::card
