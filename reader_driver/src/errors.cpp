// PC/SC code to error type.
#include "skillcard/reader/errors.hpp"

namespace skillcard::reader {

namespace {
std::string message(PcscCode code, const std::string& call, const std::string& reader, const CallSite& where) {
  return call + (reader.empty() ? "" : " on reader '" + reader + "'") + " failed: " + describe_code(code) + " (in " +
         where.function + " at " + where.file + ":" + std::to_string(where.line) + ")";
}
}  // namespace

PcscError::PcscError(PcscCode code, std::string call, std::string reader, CallSite where)
    : iso7816::CardError(message(code, call, reader, where)),
      code_(code),
      call_(std::move(call)),
      reader_(std::move(reader)),
      where_(where) {}

std::string_view card_link_code(const iso7816::CardError& e) noexcept {
  if (dynamic_cast<const ServiceNotRunningError*>(&e)) return "READER_SERVICE_DOWN";
  if (dynamic_cast<const NoReadersError*>(&e) || dynamic_cast<const UnknownReaderError*>(&e) ||
      dynamic_cast<const ReaderUnavailableError*>(&e)) {
    return "NO_READER";
  }
  if (dynamic_cast<const SharingViolationError*>(&e)) return "READER_BUSY";
  if (dynamic_cast<const NoCardError*>(&e)) return "NO_CARD";
  if (dynamic_cast<const UnresponsiveCardError*>(&e)) return "CARD_UNRESPONSIVE";
  return "CARD_REMOVED";
}

void throw_pcsc(PcscCode rc, const std::string& call, const std::string& reader, CallSite where) {
  switch (rc) {
    case code::kNoService:
    case code::kServiceStopped:
      throw ServiceNotRunningError(rc, call, reader, where);
    case code::kNoReadersAvailable:
      throw NoReadersError(rc, call, reader, where);
    case code::kUnknownReader:
      throw UnknownReaderError(rc, call, reader, where);
    case code::kNoSmartcard:
      throw NoCardError(rc, call, reader, where);
    case code::kRemovedCard:
      throw CardRemovedError(rc, call, reader, where);
    case code::kResetCard:
      throw CardResetError(rc, call, reader, where);
    case code::kUnresponsiveCard:
    case code::kUnpoweredCard:
      throw UnresponsiveCardError(rc, call, reader, where);
    case code::kSharingViolation:
      throw SharingViolationError(rc, call, reader, where);
    case code::kTimeout:
      throw TimeoutError(rc, call, reader, where);
    case code::kCancelled:
      throw CancelledError(rc, call, reader, where);
    case code::kReaderUnavailable:
      throw ReaderUnavailableError(rc, call, reader, where);
    default:
      throw PcscError(rc, call, reader, where);
  }
}

}  // namespace skillcard::reader
