// The event monitor over the fake PC/SC layer: insert, remove, readers coming and going, and a
// prompt stop through SCardCancel.
#include "skillcard/reader/event_monitor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "fake_pcsc.hpp"

using namespace skillcard;
using namespace skillcard::reader;
using Kind = ReaderEvent::Kind;

namespace {

class Recorder {
 public:
  void operator()(const ReaderEvent& e) {
    std::lock_guard lock(mutex_);
    events_.push_back(e);
    cv_.notify_all();
  }
  // Waits until `n` events have arrived (or fails after 5 s).
  std::vector<ReaderEvent> wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(5), [&] { return events_.size() >= n; }))
        << "only " << events_.size() << " events";
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<ReaderEvent> events_;
};

}  // namespace

TEST(EventMonitor, CardsAndReadersComeAndGo) {
  auto fake = std::make_shared<test::FakePcsc>();
  fake->add_reader("A");
  fake->insert_card("A", from_hex("3B00"));
  Recorder rec;
  EventMonitor monitor(fake, std::ref(rec));
  auto events = rec.wait_for(1);
  EXPECT_EQ(events[0].kind, Kind::CardInserted);  // already present at start
  EXPECT_EQ(events[0].reader, "A");
  EXPECT_EQ(to_hex(events[0].atr), "3B00");

  fake->remove_card("A");
  events = rec.wait_for(2);
  EXPECT_EQ(events[1].kind, Kind::CardRemoved);

  fake->add_reader("B");
  events = rec.wait_for(3);
  EXPECT_EQ(events[2].kind, Kind::ReaderAdded);
  EXPECT_EQ(events[2].reader, "B");

  fake->insert_card("B", from_hex("3B01"));
  events = rec.wait_for(4);
  EXPECT_EQ(events[3].kind, Kind::CardInserted);
  EXPECT_EQ(events[3].reader, "B");

  fake->remove_reader("B");  // with its card
  events = rec.wait_for(6);
  EXPECT_EQ(events[4].kind, Kind::CardRemoved);
  EXPECT_EQ(events[5].kind, Kind::ReaderRemoved);
  EXPECT_EQ(events[5].reader, "B");
}

// "Stop at the first card": stop() from the callback ends the loop without the thread waiting for
// itself; no event follows, and the owner's destructor still joins.
TEST(EventMonitor, StopFromTheCallbackEndsTheLoop) {
  auto fake = std::make_shared<test::FakePcsc>();
  fake->add_reader("A");
  std::atomic<EventMonitor*> self{nullptr};
  std::atomic<int> seen{0};
  {
    EventMonitor monitor(fake, [&](const ReaderEvent&) {
      ++seen;
      if (auto* m = self.load()) m->stop();
    });
    self = &monitor;
    fake->insert_card("A", from_hex("3B00"));
    for (int i = 0; i < 500 && seen == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(seen, 1);
    fake->remove_card("A");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(seen, 1) << "an event after stop()";
  }  // the destructor joins
}

TEST(EventMonitor, StopEndsTheWaitPromptly) {
  auto fake = std::make_shared<test::FakePcsc>();
  fake->add_reader("A");
  Recorder rec;
  auto monitor = std::make_unique<EventMonitor>(fake, std::ref(rec));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it block in GetStatusChange
  const auto start = std::chrono::steady_clock::now();
  monitor.reset();  // its 60 s wait must end through SCardCancel, not the timeout
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

// pcscd restarted (an upgrade, a crash): the old context is dead for good. The monitor says so,
// reports what it knew as gone, and with a new context announces the readers and cards again.
TEST(EventMonitor, RecoversAfterPcscdRestarts) {
  auto fake = std::make_shared<test::FakePcsc>();
  fake->add_reader("A");
  fake->insert_card("A", from_hex("3B00"));
  Recorder rec;
  EventMonitor monitor(fake, std::ref(rec));
  ASSERT_EQ(rec.wait_for(1)[0].kind, Kind::CardInserted);
  fake->restart_service();
  auto events = rec.wait_for(6);
  ASSERT_GE(events.size(), 6u);
  EXPECT_EQ(events[1].kind, Kind::ServiceLost);
  EXPECT_EQ(events[2].kind, Kind::CardRemoved);
  EXPECT_EQ(events[3].kind, Kind::ReaderRemoved);
  EXPECT_EQ(events[4].kind, Kind::ReaderAdded);
  EXPECT_EQ(events[4].reader, "A");
  EXPECT_EQ(events[5].kind, Kind::CardInserted);
  EXPECT_EQ(events[5].reader, "A");
  fake->add_reader("B");  // and it keeps watching on the new context
  events = rec.wait_for(7);
  EXPECT_EQ(events[6].kind, Kind::ReaderAdded);
  EXPECT_EQ(events[6].reader, "B");
}

// SCardCancel ends only a wait already blocking: a stop() that lands just before the next wait
// begins would otherwise leave it blocking for its whole minute.
TEST(EventMonitor, AStopJustBeforeTheNextWaitIsStillPrompt) {
  auto fake = std::make_shared<test::FakePcsc>();
  fake->cancel_only_while_waiting = true;
  fake->add_reader("A");
  Recorder rec;
  std::atomic<bool> armed{false};
  std::atomic<bool> stop_started{false};
  std::thread stopper;
  std::chrono::steady_clock::duration stop_took{};
  EventMonitor* watched = nullptr;
  fake->on_wait_entry = [&] {
    if (!armed.exchange(false)) return;
    stopper = std::thread([&] {
      const auto start = std::chrono::steady_clock::now();
      watched->stop();
      stop_took = std::chrono::steady_clock::now() - start;
    });
    stop_started = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the first cancel is lost
  };
  {
    EventMonitor monitor(fake, std::ref(rec));
    watched = &monitor;
    fake->insert_card("A", from_hex("3B00"));
    rec.wait_for(1);  // reported: the monitor is on to its next wait (or about to be)
    // Armed only once that wait blocks, however slow the machine: armed earlier, the hook would
    // fire on the wait the removal below is meant to end.
    for (int i = 0; i < 2000 && !fake->blocked_in_wait(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(fake->blocked_in_wait());
    armed = true;
    fake->remove_card("A");  // ends that wait; the one after it meets the stop
    rec.wait_for(2);
    for (int i = 0; i < 500 && !stop_started; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(stop_started);
    stopper.join();
  }
  EXPECT_LT(stop_took, std::chrono::seconds(5));
}

// A card taken out and another put in while the monitor's callback was busy (no wait running):
// present before and after, but pcsc-lite's event counter moved — reported as removed, inserted.
TEST(EventMonitor, ACardSwappedBetweenWaitsIsReportedRemovedAndInserted) {
  auto fake = std::make_shared<test::FakePcsc>();
  fake->add_reader("A");
  std::mutex gate;
  std::unique_lock hold(gate);
  Recorder rec;
  EventMonitor monitor(fake, [&](const ReaderEvent& e) {
    rec(e);
    if (e.kind == Kind::CardInserted && to_hex(e.atr) == "3B01") std::lock_guard wait_for_the_swap(gate);
  });
  fake->insert_card("A", from_hex("3B01"));
  rec.wait_for(1);  // the callback now waits on `gate`
  fake->remove_card("A");
  fake->insert_card("A", from_hex("3B02"));
  hold.unlock();
  const auto events = rec.wait_for(3);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[1].kind, Kind::CardRemoved);
  EXPECT_EQ(events[2].kind, Kind::CardInserted);
  EXPECT_EQ(to_hex(events[2].atr), "3B02");
}
