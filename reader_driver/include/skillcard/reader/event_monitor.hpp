// Reader and card events from SCardGetStatusChange, watched on a thread of its own with the
// "\\?PnP?\Notification" pseudo-reader for readers coming and going; stop() (or destruction)
// ends the wait with SCardCancel.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "skillcard/reader/pcsc.hpp"

namespace skillcard::reader {

struct ReaderEvent {
  enum class Kind { CardInserted, CardRemoved, ReaderAdded, ReaderRemoved, ServiceLost };
  Kind kind;
  std::string reader;
  Bytes atr;  // CardInserted only
};
std::string_view to_string(ReaderEvent::Kind kind) noexcept;

class EventMonitor {
 public:
  // `on_event` runs on the monitor's thread. Cards already present when the monitor starts are
  // reported as CardInserted, so a caller needs no separate first scan.
  EventMonitor(std::shared_ptr<PcscApi> api, std::function<void(const ReaderEvent&)> on_event);
  ~EventMonitor();
  EventMonitor(const EventMonitor&) = delete;
  EventMonitor& operator=(const EventMonitor&) = delete;
  void stop();

 private:
  void run();
  std::shared_ptr<PcscApi> api_;
  std::function<void(const ReaderEvent&)> on_event_;
  Context context_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace skillcard::reader
