// The card's side of a wrapped VERIFY leaves no unwiped copy of the PIN block on the heap: the
// session's unwrap and the applet's command are wiped after use (tests/support/heap_scanner.hpp).
// Its own executable, because the scanner replaces the global operator new/delete.
#include <gtest/gtest.h>

#include "../support/heap_scanner.hpp"
#include "training_support.hpp"

using namespace skillcard;
using namespace skillcard::card;
using namespace skillcard::card::testing;
namespace heap_scan = skillcard::testing::heap_scan;

TEST(TrainingAppletWipe, TheScannerSeesAnUnwipedCopy) {
  const auto block = training::pin_block(kPin);
  EXPECT_EQ(heap_scan::freed_holding_during(block,
                                            [&] {
                                              auto* copy = new Bytes(block);
                                              delete copy;
                                            }),
            1);
}

namespace {
// The card powered, the training applet selected, a site session open (PIN not yet verified).
void power_on_and_open_a_site_session(Card& card, Terminal& t) {
  card.power_on();
  ASSERT_EQ(t.select().sw(), iso7816::StatusWord::Success);
  ASSERT_EQ(t.open(Role::Site), iso7816::StatusWord::Success);
}
}  // namespace

// A wrong PIN, so that the block scanned for is only the one the terminal sent: the card's own
// (stored) PIN block is in its persistent memory's pages by design, and in their journal copies.
TEST(TrainingAppletWipe, AWrappedVerifyLeavesNoPlainPinBlockOnTheCardsHeap) {
  auto card = make_training_card();
  Terminal t(*card);
  ASSERT_NO_FATAL_FAILURE(power_on_and_open_a_site_session(*card, t));
  const std::string sent = "987654";
  ASSERT_NE(sent, kPin);
  const auto block = training::pin_block(sent);
  const auto wrapped = t.host().wrap(cmd::verify(sent));  // the host's copies stay out of the scan
  std::optional<iso7816::ResponseApdu> answer;
  EXPECT_EQ(heap_scan::freed_holding_during(block, [&] { answer = t.send_raw(wrapped); }), 0)
      << "the card freed a heap block still holding the PIN block it was sent";
  // Not vacuous: the card decrypted the block and compared it (a try spent, 63C2).
  EXPECT_EQ(answer->sw(), iso7816::make_verification_failed(2));
  EXPECT_EQ(training::read_state(card->memory()).tries_left, 2);
}

// The PIN blocks a counter or the holder sets, and the stored block a right VERIFY compares with
// (page 17 also holds the try counter, so every VERIFY rewrites it): no freed heap block keeps
// them — the memory's pending pages are wiped after their commit.
TEST(TrainingAppletWipe, PinChangesAndARightVerifyLeaveNoPinBlockOnTheCardsHeap) {
  auto card = make_training_card();
  Terminal t(*card);
  ASSERT_NO_FATAL_FAILURE(power_on_and_open_a_site_session(*card, t));
  const auto stored = training::pin_block(kPin);
  auto wrapped = t.host().wrap(cmd::verify(kPin));
  std::optional<iso7816::ResponseApdu> answer;
  EXPECT_EQ(heap_scan::freed_holding_during(stored, [&] { answer = t.send_raw(wrapped); }), 0);
  EXPECT_EQ(answer->sw(), iso7816::StatusWord::Success);

  t.close();
  ASSERT_EQ(t.open(Role::Counter), iso7816::StatusWord::Success);  // PIN changes are the counter's
  const std::string changed = "246810";
  wrapped = t.host().wrap(cmd::change(kPin, changed));
  EXPECT_EQ(heap_scan::freed_holding_during(training::pin_block(changed), [&] { answer = t.send_raw(wrapped); }), 0);
  EXPECT_EQ(answer->sw(), iso7816::StatusWord::Success);

  const std::string reset = "135790";
  wrapped = t.host().wrap(cmd::reset_retry_counter(reset));
  EXPECT_EQ(heap_scan::freed_holding_during(training::pin_block(reset), [&] { answer = t.send_raw(wrapped); }), 0);
  EXPECT_EQ(answer->sw(), iso7816::StatusWord::Success);
  EXPECT_EQ(training::read_state(card->memory()).pin_block, training::pin_block(reset));
}
