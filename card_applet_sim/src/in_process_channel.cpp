// CardChannel over a Card in the same process.
#include "skillcard/card/in_process_channel.hpp"

namespace skillcard::card {

iso7816::ResponseApdu InProcessChannel::transmit(const iso7816::CommandApdu& command) {
  if (!card_->powered()) throw iso7816::CardRemovedError("card is powered off");
  Bytes response;
  try {
    response = card_->process(command.encode());
  } catch (const PowerLost& e) {
    throw iso7816::UnknownOutcomeError(std::string("card lost power during ") + command.header_string() + ": " +
                                       e.what());
  }
  return iso7816::ResponseApdu::parse(response);
}

Bytes InProcessChannel::atr() const { return Card::atr(); }

void InProcessChannel::reset() { card_->reset(); }

}  // namespace skillcard::card
