// A scripted CardChannel for tests: answers each command with the next scripted reply and keeps
// what was sent, so a test can check both sides of an exchange byte for byte.
#pragma once

#include <deque>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "skillcard/iso7816/card_channel.hpp"

namespace skillcard::iso7816::testing {

class FakeChannel : public CardChannel {
 public:
  explicit FakeChannel(Bytes atr = from_hex("3B8080018080")) : atr_(std::move(atr)) {}

  // The next command gets this response (data and status word, as hex).
  FakeChannel& reply(const std::string& response_hex) {
    script_.emplace_back(ResponseApdu::parse(from_hex(response_hex)));
    return *this;
  }
  // The next command fails with this error instead.
  FakeChannel& fail(std::exception_ptr error) {
    script_.emplace_back(std::move(error));
    return *this;
  }

  ResponseApdu transmit(const CommandApdu& command) override {
    sent_.push_back(to_hex(command.encode()));
    // logic_error, not a CardError, so that a test cannot mistake a script bug for card trouble.
    if (script_.empty()) throw std::logic_error("FakeChannel: unscripted command " + sent_.back());
    auto step = std::move(script_.front());
    script_.pop_front();
    if (auto* error = std::get_if<std::exception_ptr>(&step)) std::rethrow_exception(*error);
    return std::get<ResponseApdu>(std::move(step));
  }

  Bytes atr() const override { return atr_; }
  void reset() override { ++resets_; }

  // Every command sent so far, hex-encoded as on the wire.
  const std::vector<std::string>& sent() const { return sent_; }
  std::size_t unused_replies() const { return script_.size(); }
  int resets() const { return resets_; }

 private:
  Bytes atr_;
  std::deque<std::variant<ResponseApdu, std::exception_ptr>> script_;
  std::vector<std::string> sent_;
  int resets_ = 0;
};

}  // namespace skillcard::iso7816::testing
