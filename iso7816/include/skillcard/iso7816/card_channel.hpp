// The one seam between host code and a card, real (PC/SC reader) or simulated, plus its error
// types and the ISO/IEC 7816-4 response-fetching loop every caller would otherwise repeat.
#pragma once

#include <stdexcept>

#include "skillcard/iso7816/bytes.hpp"
#include "skillcard/iso7816/command_apdu.hpp"
#include "skillcard/iso7816/response_apdu.hpp"

namespace skillcard::iso7816 {

// Failures of the link to the card, as opposed to a card answering with an error status word.
class CardError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// No card was there when the command was about to be sent: it certainly did not execute.
class CardRemovedError : public CardError {
 public:
  using CardError::CardError;
};

// The command may or may not have executed on the card (no complete status word came back, the
// card went away mid-command). Neither success nor failure: the host must find out from the
// card's state (counters, journal) before retrying anything that is not idempotent.
class UnknownOutcomeError : public CardError {
 public:
  using CardError::CardError;
};

class CardChannel {
 public:
  virtual ~CardChannel();

  // Sends one command APDU and returns the card's answer as is: 61xx / 6Cxx are not followed
  // (see transmit_all). Throws CardRemovedError or UnknownOutcomeError as described above.
  virtual ResponseApdu transmit(const CommandApdu& command) = 0;
  virtual Bytes atr() const = 0;
  // Warm reset: the card loses its volatile state (selected applet, secure channel, PIN status).
  virtual void reset() = 0;

 protected:
  // Copying through the interface would slice; implementations decide for themselves.
  CardChannel() = default;
  CardChannel(const CardChannel&) = default;
  CardChannel& operator=(const CardChannel&) = default;
  CardChannel(CardChannel&&) = default;
  CardChannel& operator=(CardChannel&&) = default;
};

// transmit() plus the two transport fix-ups of ISO/IEC 7816-4:2005 §5.1.3 / §7.6.1:
// - 6Cxx: resend the same command once with Ne = xx (00 = 256);
// - 61xx: send GET RESPONSE with Ne = xx on the command's logical channel, again and again,
//   concatenating the data of every answer; the last answer's status word is returned.
// Throws CardError if the card keeps offering data past 65536 bytes, or answers a GET RESPONSE
// with 61xx but no data (it would never end). A card gone during GET RESPONSE is an
// UnknownOutcomeError: the command itself ran.
ResponseApdu transmit_all(CardChannel& channel, const CommandApdu& command);

}  // namespace skillcard::iso7816
