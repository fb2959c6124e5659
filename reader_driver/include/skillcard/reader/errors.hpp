// The reader driver's error types: one class per PC/SC failure a caller handles differently,
// each naming the reader, the SCard* call, PC/SC's code and our call site.
#pragma once

#include <string>
#include <string_view>

#include "skillcard/iso7816/call_site.hpp"
#include "skillcard/iso7816/card_channel.hpp"
#include "skillcard/reader/pcsc_api.hpp"

namespace skillcard::reader {

class PcscError : public iso7816::CardError {
 public:
  PcscError(PcscCode code, std::string call, std::string reader, CallSite where);
  PcscCode code() const noexcept { return code_; }
  const std::string& call() const noexcept { return call_; }
  const std::string& reader() const noexcept { return reader_; }
  const CallSite& where() const noexcept { return where_; }

 private:
  PcscCode code_;
  std::string call_;
  std::string reader_;
  CallSite where_;
};

#define SKILLCARD_PCSC_ERROR(Name) \
  class Name : public PcscError {  \
   public:                         \
    using PcscError::PcscError;    \
  }
SKILLCARD_PCSC_ERROR(ServiceNotRunningError);  // pcscd is not running or stopped
SKILLCARD_PCSC_ERROR(NoReadersError);          // no reader attached
SKILLCARD_PCSC_ERROR(UnknownReaderError);      // that reader name does not exist (any more)
SKILLCARD_PCSC_ERROR(NoCardError);             // the reader is empty
SKILLCARD_PCSC_ERROR(CardRemovedError);        // the card left while we held a connection
SKILLCARD_PCSC_ERROR(CardResetError);          // someone reset the card: volatile state is gone, reconnect
SKILLCARD_PCSC_ERROR(UnresponsiveCardError);   // mute card, or unpowered
SKILLCARD_PCSC_ERROR(SharingViolationError);   // another application holds the card exclusively
SKILLCARD_PCSC_ERROR(TimeoutError);
SKILLCARD_PCSC_ERROR(CancelledError);          // SCardCancel ended the wait
SKILLCARD_PCSC_ERROR(ReaderUnavailableError);  // the reader went away
#undef SKILLCARD_PCSC_ERROR

// Throws the PcscError subclass for `code` (PcscError itself for the rest).
[[noreturn]] void throw_pcsc(PcscCode code, const std::string& call, const std::string& reader, CallSite where);

// The refusal catalogue's code (docs/design.md) a terminal shows for a failure between it and the
// card: READER_SERVICE_DOWN, NO_READER, READER_BUSY, NO_CARD, CARD_UNRESPONSIVE, or CARD_REMOVED
// (a card taken out or reset, and any other failure of the link).
std::string_view card_link_code(const iso7816::CardError& error) noexcept;

// The one checked wrapper: every SCard* result goes through it.
inline void check(PcscCode code, const char* call, const std::string& reader, CallSite where = CallSite::current()) {
  if (code != code::kSuccess) throw_pcsc(code, call, reader, where);
}

}  // namespace skillcard::reader
