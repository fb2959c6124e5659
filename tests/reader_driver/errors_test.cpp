// PC/SC codes map to the right error types, and messages name reader, call and code.
#include "skillcard/reader/errors.hpp"

#include <PCSC/pcsclite.h>
#include <gtest/gtest.h>

using namespace skillcard::reader;

namespace {
template <class E>
void expect_type(PcscCode rc) {
  try {
    throw_pcsc(rc, "SCardConnect", "Virtual PCD 00 00", skillcard::CallSite::current());
  } catch (const E& e) {
    EXPECT_EQ(e.code(), rc);
    const std::string what = e.what();
    EXPECT_NE(what.find("Virtual PCD 00 00"), std::string::npos) << what;
    EXPECT_NE(what.find("SCardConnect"), std::string::npos) << what;
    EXPECT_NE(what.find(describe_code(rc)), std::string::npos) << what;
    EXPECT_NE(what.find("errors_test.cpp"), std::string::npos) << what;
    return;
  }
  ADD_FAILURE() << "wrong type for " << describe_code(rc);
}
PcscCode norm(LONG rc) { return static_cast<PcscCode>(static_cast<std::uint32_t>(rc)); }
}  // namespace

TEST(PcscErrors, EveryHandledCodeHasItsType) {
  expect_type<ServiceNotRunningError>(code::kNoService);
  expect_type<ServiceNotRunningError>(code::kServiceStopped);
  expect_type<NoReadersError>(code::kNoReadersAvailable);
  expect_type<UnknownReaderError>(code::kUnknownReader);
  expect_type<NoCardError>(code::kNoSmartcard);
  expect_type<CardRemovedError>(code::kRemovedCard);
  expect_type<CardResetError>(code::kResetCard);
  expect_type<UnresponsiveCardError>(code::kUnresponsiveCard);
  expect_type<UnresponsiveCardError>(code::kUnpoweredCard);
  expect_type<SharingViolationError>(code::kSharingViolation);
  expect_type<TimeoutError>(code::kTimeout);
  expect_type<CancelledError>(code::kCancelled);
  expect_type<ReaderUnavailableError>(code::kReaderUnavailable);
  expect_type<PcscError>(code::kCommError);
  // All are CardErrors, so a host can catch the family through the core interface.
  EXPECT_THROW(throw_pcsc(code::kTimeout, "x", "", skillcard::CallSite::current()), skillcard::iso7816::CardError);
}

// A terminal shows each failure of its link to the card in the catalogue's words: a stopped
// pcscd or a missing reader is not "the card was removed".
TEST(PcscErrors, EachFailureHasTheCatalogueCodeATerminalShows) {
  const auto code_of = [](PcscCode rc) -> std::string {
    try {
      throw_pcsc(rc, "SCardConnect", "r", skillcard::CallSite::current());
    } catch (const skillcard::iso7816::CardError& e) {
      return std::string(card_link_code(e));
    }
    return "";
  };
  EXPECT_EQ(code_of(code::kNoService), "READER_SERVICE_DOWN");
  EXPECT_EQ(code_of(code::kServiceStopped), "READER_SERVICE_DOWN");
  EXPECT_EQ(code_of(code::kNoReadersAvailable), "NO_READER");
  EXPECT_EQ(code_of(code::kUnknownReader), "NO_READER");
  EXPECT_EQ(code_of(code::kReaderUnavailable), "NO_READER");
  EXPECT_EQ(code_of(code::kSharingViolation), "READER_BUSY");
  EXPECT_EQ(code_of(code::kNoSmartcard), "NO_CARD");
  EXPECT_EQ(code_of(code::kUnresponsiveCard), "CARD_UNRESPONSIVE");
  EXPECT_EQ(code_of(code::kRemovedCard), "CARD_REMOVED");
  EXPECT_EQ(code_of(code::kResetCard), "CARD_REMOVED");
  EXPECT_EQ(card_link_code(skillcard::iso7816::CardRemovedError("gone")), "CARD_REMOVED");
}

TEST(PcscErrors, CodesMatchPcscLite) {
  EXPECT_EQ(code::kCancelled, norm(SCARD_E_CANCELLED));
  EXPECT_EQ(code::kNoSmartcard, norm(SCARD_E_NO_SMARTCARD));
  EXPECT_EQ(code::kNotTransacted, norm(SCARD_E_NOT_TRANSACTED));
  EXPECT_EQ(code::kRemovedCard, norm(SCARD_W_REMOVED_CARD));
  EXPECT_EQ(code::kResetCard, norm(SCARD_W_RESET_CARD));
  EXPECT_EQ(code::kNoService, norm(SCARD_E_NO_SERVICE));
  EXPECT_EQ(code::kNoReadersAvailable, norm(SCARD_E_NO_READERS_AVAILABLE));
  EXPECT_EQ(code::kReaderUnavailable, norm(SCARD_E_READER_UNAVAILABLE));
  EXPECT_EQ(code::kUnresponsiveCard, norm(SCARD_W_UNRESPONSIVE_CARD));
  EXPECT_EQ(state::kPresent, static_cast<std::uint32_t>(SCARD_STATE_PRESENT));
  EXPECT_EQ(state::kChanged, static_cast<std::uint32_t>(SCARD_STATE_CHANGED));
  EXPECT_EQ(describe_code(0x80100069), "SCARD_W_REMOVED_CARD (0x80100069)");
}
