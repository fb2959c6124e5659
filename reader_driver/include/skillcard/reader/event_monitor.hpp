// Reader and card events from SCardGetStatusChange, watched on a thread of its own with the
// "\\?PnP?\Notification" pseudo-reader for readers coming and going; stop() (or destruction)
// ends the wait with SCardCancel. When pcscd goes away the monitor reports ServiceLost and every
// card and reader it knew as gone, then establishes a new context once pcscd is back.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
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
  // `on_event` runs on the monitor's thread. Cards already present when the monitor starts (or
  // when pcscd comes back) are reported as CardInserted, so a caller needs no separate scan.
  // on_event may call stop() (no event follows it); it must not destroy the monitor.
  EventMonitor(std::shared_ptr<PcscApi> api, std::function<void(const ReaderEvent&)> on_event);
  ~EventMonitor();
  EventMonitor(const EventMonitor&) = delete;
  EventMonitor& operator=(const EventMonitor&) = delete;
  void stop();

 private:
  void run();
  std::shared_ptr<PcscApi> api_;
  std::function<void(const ReaderEvent&)> on_event_;
  // Replaced by the monitor's thread after pcscd restarts; stop() cancels it from another.
  std::mutex context_mutex_;
  std::unique_ptr<Context> context_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace skillcard::reader
