// The event loop: one SCardGetStatusChange over every reader plus the PnP pseudo-reader.
#include "skillcard/reader/event_monitor.hpp"

#include <algorithm>
#include <chrono>

namespace skillcard::reader {

namespace {
constexpr const char* kPnp = "\\\\?PnP?\\Notification";
constexpr std::uint32_t kWaitMs = 60'000;  // a cap, not a poll: SCardCancel ends it at once

bool present(std::uint32_t s) { return (s & state::kPresent) != 0 && (s & state::kMute) == 0; }
// pcsc-lite counts a reader's card insertions and removals in the upper 16 bits of its state.
std::uint32_t event_count(std::uint32_t s) { return s >> 16; }
}  // namespace

std::string_view to_string(ReaderEvent::Kind kind) noexcept {
  switch (kind) {
    case ReaderEvent::Kind::CardInserted:
      return "card inserted";
    case ReaderEvent::Kind::CardRemoved:
      return "card removed";
    case ReaderEvent::Kind::ReaderAdded:
      return "reader added";
    case ReaderEvent::Kind::ReaderRemoved:
      return "reader removed";
    case ReaderEvent::Kind::ServiceLost:
      return "PC/SC service lost";
  }
  return "unknown";
}

EventMonitor::EventMonitor(std::shared_ptr<PcscApi> api, std::function<void(const ReaderEvent&)> on_event)
    : api_(api), on_event_(std::move(on_event)), context_(std::make_unique<Context>(std::move(api))) {
  thread_ = std::thread([this] {
    run();
    finished_ = true;
  });
}

EventMonitor::~EventMonitor() { stop(); }

void EventMonitor::stop() {
  stopping_ = true;
  // From on_event (say, "stop at the first card"): the loop ends when the callback returns; the
  // thread cannot wait for itself. The owner's later stop() or destructor joins it.
  if (std::this_thread::get_id() == thread_.get_id()) return;
  // SCardCancel ends only a wait already blocking: one that starts just after it would run its
  // full minute. So cancel until the thread has seen `stopping_`.
  while (!finished_) {
    {
      std::lock_guard lock(context_mutex_);
      if (context_) context_->cancel();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (thread_.joinable()) thread_.join();
}

void EventMonitor::run() {
  // states[0] is the PnP pseudo-reader; the rest are the readers we know.
  std::vector<ReaderState> states{{kPnp, state::kUnaware, 0, {}}};
  auto sync_readers = [&](bool announce) {
    std::vector<std::string> names;
    const auto rc = api_->list_readers(context_->handle(), &names);
    if (rc != code::kSuccess && rc != code::kNoReadersAvailable) return rc;
    for (auto it = states.begin() + 1; it != states.end();) {
      if (std::find(names.begin(), names.end(), it->reader) == names.end()) {
        if (present(it->current_state)) on_event_({ReaderEvent::Kind::CardRemoved, it->reader, {}});
        on_event_({ReaderEvent::Kind::ReaderRemoved, it->reader, {}});
        it = states.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& name : names) {
      const bool known = std::any_of(states.begin() + 1, states.end(), [&](const auto& s) { return s.reader == name; });
      if (!known) {
        if (announce) on_event_({ReaderEvent::Kind::ReaderAdded, name, {}});
        states.push_back({name, state::kUnaware, 0, {}});
      }
    }
    return code::kSuccess;
  };

  // pcscd is gone: what we knew is gone with it. A context is bound to pcscd's socket, so a new
  // one is established once pcscd answers again; then its readers and cards are announced.
  const auto service_lost = [&] {
    on_event_({ReaderEvent::Kind::ServiceLost, "", {}});
    for (auto it = states.begin() + 1; it != states.end(); ++it) {
      if (present(it->current_state)) on_event_({ReaderEvent::Kind::CardRemoved, it->reader, {}});
      on_event_({ReaderEvent::Kind::ReaderRemoved, it->reader, {}});
    }
    states.resize(1);
    states[0] = {kPnp, state::kUnaware, 0, {}};
  };
  const auto reestablish = [&] {
    try {
      auto fresh = std::make_unique<Context>(api_);
      std::lock_guard lock(context_mutex_);
      context_.swap(fresh);
      return true;
    } catch (const std::exception&) {
      return false;  // not back yet
    }
  };

  bool service_up = sync_readers(false) == code::kSuccess;
  while (!stopping_) {
    if (!service_up) {
      // Wait a moment, then see whether pcscd is back.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (stopping_) return;
      service_up = reestablish() && sync_readers(true) == code::kSuccess;
      continue;
    }
    const auto rc = api_->get_status_change(context_->handle(), kWaitMs, states);
    if (stopping_ || rc == code::kCancelled) return;
    if (rc == code::kTimeout) continue;
    if (rc == code::kNoService || rc == code::kServiceStopped || rc == code::kInvalidHandle) {
      service_lost();
      service_up = false;
      continue;
    }
    if (rc == code::kUnknownReader || rc == code::kReaderUnavailable) {
      sync_readers(true);
      continue;
    }
    if (rc != code::kSuccess) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    bool readers_changed = false;
    for (std::size_t i = 0; i < states.size(); ++i) {
      auto& s = states[i];
      if ((s.event_state & state::kChanged) == 0) continue;
      if (i == 0) {
        readers_changed = true;
      } else if ((s.event_state & (state::kUnknown | state::kUnavailable)) != 0) {
        // The reader went away: sync_readers reports its card and then the reader, from the
        // state we last saw.
        readers_changed = true;
        continue;
      } else if (present(s.event_state) && !present(s.current_state)) {
        on_event_({ReaderEvent::Kind::CardInserted, s.reader, s.atr});
      } else if (!present(s.event_state) && present(s.current_state)) {
        on_event_({ReaderEvent::Kind::CardRemoved, s.reader, {}});
      } else if (present(s.event_state) && present(s.current_state) &&
                 event_count(s.event_state) != event_count(s.current_state)) {
        // Present before and now, but pcsc-lite's per-reader event counter moved: the card was
        // taken out and one put in (the same or another) while we were not waiting.
        on_event_({ReaderEvent::Kind::CardRemoved, s.reader, {}});
        on_event_({ReaderEvent::Kind::CardInserted, s.reader, s.atr});
      }
      s.current_state = s.event_state & ~state::kChanged;
    }
    if (readers_changed) sync_readers(true);
  }
}

}  // namespace skillcard::reader
