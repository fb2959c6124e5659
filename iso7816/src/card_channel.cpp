// transmit_all: the GET RESPONSE / wrong-Le loop on top of CardChannel::transmit.
#include "skillcard/iso7816/card_channel.hpp"

#include <string>

namespace skillcard::iso7816 {

namespace {

// GET RESPONSE is an interindustry command but must travel on the original command's logical
// channel. GlobalPlatform's proprietary classes (80-83, C0-CF...) mirror the interindustry
// channel bits, so the channel is read from the class with b8 cleared. Secure messaging and
// chaining bits are dropped: GET RESPONSE only fetches what the card already produced.
std::uint8_t get_response_cla(std::uint8_t cla) {
  const auto c = static_cast<std::uint8_t>(cla & 0x7F);
  if ((c & 0x40) != 0) return static_cast<std::uint8_t>(0x40 | (c & 0x0F));  // channels 4-19
  return static_cast<std::uint8_t>(c & 0x03);                                // channels 0-3
}

ResponseApdu transmit_fixing_le(CardChannel& channel, const CommandApdu& command) {
  ResponseApdu response = channel.transmit(command);
  if (auto ne = corrected_le(response.sw())) {
    // Only once: a card answering 6Cxx again is broken and looping would not help.
    response = channel.transmit(command.with_ne(*ne));
  }
  return response;
}

}  // namespace

CardChannel::~CardChannel() = default;

ResponseApdu transmit_all(CardChannel& channel, const CommandApdu& command) {
  ResponseApdu response = transmit_fixing_le(channel, command);
  auto available = bytes_available(response.sw());
  if (!available) return response;

  Bytes data = response.data();
  const std::uint8_t cla = get_response_cla(command.cla());
  while (available) {
    try {
      response = transmit_fixing_le(channel, CommandApdu::get_response(*available).with_cla(cla));
    } catch (const UnknownOutcomeError&) {
      throw;
    } catch (const CardError& e) {
      // 61xx said the command ran: a card gone, reset or mute before its answer was fetched leaves
      // the outcome unknown, never "not run" (a REDEEM would otherwise be forgotten while the card
      // holds it).
      throw UnknownOutcomeError(std::string("the card ran the command but went away before its answer was fetched (") +
                                e.what() + ")");
    }
    available = bytes_available(response.sw());
    // Both checks bound the loop against a card that keeps answering 61xx.
    if (available && response.data().empty()) {
      throw CardError("card answered GET RESPONSE with " + to_string(response.sw()) + " but no data");
    }
    data.insert(data.end(), response.data().begin(), response.data().end());
    if (data.size() > ResponseApdu::kMaxNr) {
      throw CardError("card offered more than 65536 response bytes through GET RESPONSE");
    }
  }
  return ResponseApdu(data, response.sw());
}

}  // namespace skillcard::iso7816
