// The in-process transport: a CardChannel straight onto a Card object, no sockets, for unit
// tests and host-side tests. A power cut during a command surfaces as the same unknown-outcome
// error a real reader reports when the card goes away mid-command.
#pragma once

#include "skillcard/card/card.hpp"
#include "skillcard/iso7816/card_channel.hpp"

namespace skillcard::card {

class InProcessChannel : public iso7816::CardChannel {
 public:
  // Borrows the card, which must outlive the channel; does not power it on (see reset()).
  explicit InProcessChannel(Card& card) noexcept : card_(&card) {}

  // Encodes the command in the shortest form, runs it and parses the answer. Throws
  // CardRemovedError when the card is powered off (the command did not run) and
  // UnknownOutcomeError when power was lost during the command (it may have committed).
  iso7816::ResponseApdu transmit(const iso7816::CommandApdu& command) override;
  Bytes atr() const override;
  // Warm reset; a reader facing a card without power does a cold reset (power-on) instead.
  void reset() override;

 private:
  Card* card_;
};

}  // namespace skillcard::card
