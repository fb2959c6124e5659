// A fake PC/SC layer for the reader driver's unit tests: scripted APDU exchanges and reader /
// card events, with SCardGetStatusChange semantics (block until something changes, or cancel).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>

#include "skillcard/reader/pcsc_api.hpp"

namespace skillcard::reader::test {

class FakePcsc final : public PcscApi {
 public:
  struct Exchange {
    Bytes expected_command;
    PcscCode rc = code::kSuccess;
    Bytes response;
  };

  // --- what tests set up and observe ---
  void add_reader(const std::string& name) {
    std::lock_guard lock(mutex_);
    readers_.push_back(name);
    changed_.notify_all();
  }
  void remove_reader(const std::string& name) {
    std::lock_guard lock(mutex_);
    readers_.erase(std::remove(readers_.begin(), readers_.end(), name), readers_.end());
    cards_.erase(name);
    changed_.notify_all();
  }
  void insert_card(const std::string& reader, Bytes atr) {
    std::lock_guard lock(mutex_);
    ++events_[reader];
    cards_[reader] = std::move(atr);
    changed_.notify_all();
  }
  void remove_card(const std::string& reader) {
    std::lock_guard lock(mutex_);
    if (reader == connected_reader_) connected_card_gone_ = true;  // as pcsc-lite's event counter
    if (cards_.count(reader)) ++events_[reader];
    cards_.erase(reader);
    changed_.notify_all();
  }
  void script(std::vector<Exchange> exchanges) {
    std::lock_guard lock(mutex_);
    script_.assign(exchanges.begin(), exchanges.end());
  }
  std::vector<Bytes> sent() {
    std::lock_guard lock(mutex_);
    return sent_;
  }
  std::size_t script_left() {
    std::lock_guard lock(mutex_);
    return script_.size();
  }
  // pcscd restarted: contexts established before answer SCARD_E_NO_SERVICE, as pcsc-lite's do
  // once their socket is gone; a new one works.
  void restart_service() {
    std::lock_guard lock(mutex_);
    ++generation_;
    changed_.notify_all();
  }
  // A SCardGetStatusChange is blocked waiting for a change (it counts itself under the lock, so
  // seen from here it has checked the states and let go of the lock to wait).
  bool blocked_in_wait() {
    std::lock_guard lock(mutex_);
    return waiting_ > 0;
  }
  // Called (outside the fake's lock) as each SCardGetStatusChange begins, before it can block.
  std::function<void()> on_wait_entry;
  // pcsc-lite's SCardCancel ends only a wait already blocking; without this the fake's is sticky.
  bool cancel_only_while_waiting = false;
  PcscCode establish_rc = code::kSuccess;
  PcscCode next_reconnect_rc = code::kSuccess;
  int transactions_begun = 0;
  int transactions_ended = 0;
  int reconnects = 0;
  Disposition last_end_disposition = Disposition::Leave;

  // --- PcscApi ---
  PcscCode establish_context(PcscHandle* context) override {
    std::lock_guard lock(mutex_);
    *context = generation_;
    return establish_rc;
  }
  PcscCode release_context(PcscHandle) override { return code::kSuccess; }
  PcscCode list_readers(PcscHandle context, std::vector<std::string>* readers) override {
    std::lock_guard lock(mutex_);
    if (context != generation_) return code::kNoService;
    *readers = readers_;
    return readers_.empty() ? code::kNoReadersAvailable : code::kSuccess;
  }
  PcscCode get_status_change(PcscHandle context, std::uint32_t timeout_ms, std::vector<ReaderState>& states) override {
    if (on_wait_entry) on_wait_entry();
    std::unique_lock lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    ++waiting_;
    struct Leave {
      int& n;
      ~Leave() { --n; }
    } leave{waiting_};
    for (;;) {
      if (context != generation_) return code::kNoService;
      if (cancelled_) {
        cancelled_ = false;
        return code::kCancelled;
      }
      bool any = false;
      for (auto& s : states) {
        const auto now = actual_state(s.reader);
        s.event_state = now;
        if (s.reader != kPnp && now & state::kPresent) s.atr = cards_[s.reader];
        if ((now & ~state::kChanged) != (s.current_state & ~state::kChanged)) {
          s.event_state |= state::kChanged;
          any = true;
        }
      }
      if (any) return code::kSuccess;
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return code::kTimeout;
    }
  }
  PcscCode cancel(PcscHandle) override {
    std::lock_guard lock(mutex_);
    if (cancel_only_while_waiting && waiting_ == 0) return code::kSuccess;  // lost, as pcsc-lite's
    cancelled_ = true;
    changed_.notify_all();
    return code::kSuccess;
  }
  PcscCode connect(PcscHandle, const std::string& reader, Protocol, PcscHandle* card, Protocol* active) override {
    std::lock_guard lock(mutex_);
    if (std::find(readers_.begin(), readers_.end(), reader) == readers_.end()) return code::kUnknownReader;
    if (!cards_.count(reader)) return code::kNoSmartcard;
    *card = 7;
    *active = Protocol::T1;
    connected_reader_ = reader;
    connected_card_gone_ = false;
    return code::kSuccess;
  }
  PcscCode reconnect(PcscHandle, Protocol, Disposition, Protocol* active) override {
    ++reconnects;
    *active = Protocol::T1;
    return std::exchange(next_reconnect_rc, code::kSuccess);
  }
  PcscCode disconnect(PcscHandle, Disposition) override { return code::kSuccess; }
  PcscCode begin_transaction(PcscHandle) override {
    ++transactions_begun;
    return code::kSuccess;
  }
  PcscCode end_transaction(PcscHandle, Disposition disposition) override {
    ++transactions_ended;
    last_end_disposition = disposition;
    return code::kSuccess;
  }
  PcscCode transmit(PcscHandle, Protocol, ByteView command, Bytes* response) override {
    std::lock_guard lock(mutex_);
    sent_.emplace_back(command.begin(), command.end());
    if (script_.empty()) throw std::logic_error("unexpected APDU " + to_hex(command));
    const auto step = script_.front();
    script_.pop_front();
    if (!step.expected_command.empty() && step.expected_command != Bytes(command.begin(), command.end())) {
      throw std::logic_error("expected APDU " + to_hex(step.expected_command) + ", got " + to_hex(command));
    }
    *response = step.rc == code::kSuccess ? step.response : Bytes{};
    return step.rc;
  }
  PcscCode status(PcscHandle, Bytes* atr) override {
    std::lock_guard lock(mutex_);
    if (connected_card_gone_ || !cards_.count(connected_reader_)) return code::kRemovedCard;
    *atr = cards_[connected_reader_];
    return code::kSuccess;
  }

  static constexpr const char* kPnp = "\\\\?PnP?\\Notification";

 private:
  std::uint32_t actual_state(const std::string& reader) {
    if (reader == kPnp) return static_cast<std::uint32_t>(readers_.size()) << 16;  // as pcsc-lite does
    if (std::find(readers_.begin(), readers_.end(), reader) == readers_.end()) return state::kUnknown;
    // pcsc-lite's per-reader count of card insertions and removals, in the upper 16 bits.
    const auto count = events_.count(reader) ? events_.at(reader) : 0u;
    return (count << 16) | (cards_.count(reader) ? state::kPresent : state::kEmpty);
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> readers_;
  std::map<std::string, Bytes> cards_;
  std::map<std::string, std::uint32_t> events_;  // insertions and removals per reader
  std::deque<Exchange> script_;
  std::vector<Bytes> sent_;
  std::string connected_reader_;
  bool connected_card_gone_ = false;  // taken out since the connect, whatever is in the reader now
  bool cancelled_ = false;
  PcscHandle generation_ = 1;
  int waiting_ = 0;
};

}  // namespace skillcard::reader::test
