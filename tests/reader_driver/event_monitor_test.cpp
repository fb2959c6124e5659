// The event monitor over the fake PC/SC layer: insert, remove, readers coming and going, and a
// prompt stop through SCardCancel.
#include "skillcard/reader/event_monitor.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>

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
