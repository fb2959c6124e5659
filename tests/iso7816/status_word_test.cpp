// Tests for status word constants, family helpers, descriptions and StatusWordError.
#include "skillcard/iso7816/status_word.hpp"

#include <gtest/gtest.h>

namespace skillcard::iso7816 {
namespace {

std::uint16_t raw(StatusWord sw) { return static_cast<std::uint16_t>(sw); }

TEST(StatusWord, NamedValuesMatchIso7816_4) {
  // Values transcribed from ISO/IEC 7816-4:2005 Tables 5 and 6.
  EXPECT_EQ(raw(StatusWord::Success), 0x9000);
  EXPECT_EQ(raw(StatusWord::BytesAvailable), 0x6100);
  EXPECT_EQ(raw(StatusWord::WarningNvUnchanged), 0x6200);
  EXPECT_EQ(raw(StatusWord::VerificationFailed), 0x63C0);
  EXPECT_EQ(raw(StatusWord::MemoryFailure), 0x6581);
  EXPECT_EQ(raw(StatusWord::WrongLength), 0x6700);
  EXPECT_EQ(raw(StatusWord::LogicalChannelNotSupported), 0x6881);
  EXPECT_EQ(raw(StatusWord::SecureMessagingNotSupported), 0x6882);
  EXPECT_EQ(raw(StatusWord::LastCommandOfChainExpected), 0x6883);
  EXPECT_EQ(raw(StatusWord::CommandChainingNotSupported), 0x6884);
  EXPECT_EQ(raw(StatusWord::SecurityStatusNotSatisfied), 0x6982);
  EXPECT_EQ(raw(StatusWord::AuthenticationMethodBlocked), 0x6983);
  EXPECT_EQ(raw(StatusWord::ReferenceDataNotUsable), 0x6984);
  EXPECT_EQ(raw(StatusWord::ConditionsNotSatisfied), 0x6985);
  EXPECT_EQ(raw(StatusWord::CommandNotAllowedNoEf), 0x6986);
  EXPECT_EQ(raw(StatusWord::ExpectedSmDataObjectsMissing), 0x6987);
  EXPECT_EQ(raw(StatusWord::IncorrectSmDataObjects), 0x6988);
  EXPECT_EQ(raw(StatusWord::WrongData), 0x6A80);
  EXPECT_EQ(raw(StatusWord::FunctionNotSupported), 0x6A81);
  EXPECT_EQ(raw(StatusWord::FileNotFound), 0x6A82);
  EXPECT_EQ(raw(StatusWord::RecordNotFound), 0x6A83);
  EXPECT_EQ(raw(StatusWord::NotEnoughMemory), 0x6A84);
  EXPECT_EQ(raw(StatusWord::IncorrectP1P2), 0x6A86);
  EXPECT_EQ(raw(StatusWord::LcInconsistentWithP1P2), 0x6A87);
  EXPECT_EQ(raw(StatusWord::ReferencedDataNotFound), 0x6A88);
  EXPECT_EQ(raw(StatusWord::WrongP1P2), 0x6B00);
  EXPECT_EQ(raw(StatusWord::WrongLe), 0x6C00);
  EXPECT_EQ(raw(StatusWord::InsNotSupported), 0x6D00);
  EXPECT_EQ(raw(StatusWord::ClaNotSupported), 0x6E00);
  EXPECT_EQ(raw(StatusWord::NoPreciseDiagnosis), 0x6F00);
}

TEST(StatusWord, SplitsAndJoinsBytes) {
  EXPECT_EQ(sw1(StatusWord::FileNotFound), 0x6A);
  EXPECT_EQ(sw2(StatusWord::FileNotFound), 0x82);
  EXPECT_EQ(make_sw(0x90, 0x00), StatusWord::Success);
  EXPECT_EQ(make_sw(0x6A, 0x82), StatusWord::FileNotFound);
}

TEST(StatusWord, UnknownValuesAreKept) {
  const StatusWord odd = make_sw(0x12, 0x34);
  EXPECT_EQ(raw(odd), 0x1234);
  EXPECT_EQ(sw1(odd), 0x12);
  EXPECT_EQ(sw2(odd), 0x34);
  EXPECT_EQ(to_string(odd), "1234");
  EXPECT_EQ(describe(odd), "unknown status '1234'");
  EXPECT_EQ(describe(make_sw(0x6A, 0x99)), "unknown status '6A99'");
}

TEST(StatusWord, OnlyNineThousandIsSuccess) {
  EXPECT_TRUE(is_success(StatusWord::Success));
  EXPECT_FALSE(is_success(make_sw(0x61, 0x10)));  // processed, but data still waits
  EXPECT_FALSE(is_success(make_sw(0x90, 0x01)));
  EXPECT_FALSE(is_success(StatusWord::WarningNvUnchanged));
}

TEST(StatusWord, BytesAvailable) {
  EXPECT_EQ(bytes_available(make_sw(0x61, 0x10)), 16u);
  EXPECT_EQ(bytes_available(make_sw(0x61, 0x01)), 1u);
  EXPECT_EQ(bytes_available(make_sw(0x61, 0xFF)), 255u);
  EXPECT_EQ(bytes_available(make_sw(0x61, 0x00)), 256u);
  EXPECT_EQ(bytes_available(StatusWord::Success), std::nullopt);
  EXPECT_EQ(bytes_available(make_sw(0x6C, 0x10)), std::nullopt);
}

TEST(StatusWord, CorrectedLe) {
  EXPECT_EQ(corrected_le(make_sw(0x6C, 0x0A)), 10u);
  EXPECT_EQ(corrected_le(make_sw(0x6C, 0x00)), 256u);
  EXPECT_EQ(corrected_le(make_sw(0x61, 0x0A)), std::nullopt);
  EXPECT_EQ(corrected_le(StatusWord::WrongLength), std::nullopt);
}

TEST(StatusWord, RetriesLeft) {
  EXPECT_EQ(retries_left(make_sw(0x63, 0xC3)), 3);
  EXPECT_EQ(retries_left(make_sw(0x63, 0xC0)), 0);
  EXPECT_EQ(retries_left(make_sw(0x63, 0xCF)), 15);
  EXPECT_EQ(retries_left(make_sw(0x63, 0x00)), std::nullopt);
  EXPECT_EQ(retries_left(make_sw(0x63, 0x81)), std::nullopt);
  EXPECT_EQ(retries_left(make_sw(0x62, 0xC3)), std::nullopt);
  EXPECT_EQ(retries_left(StatusWord::AuthenticationMethodBlocked), std::nullopt);
}

TEST(StatusWord, FamilyBuilders) {
  EXPECT_EQ(raw(make_bytes_available(1)), 0x6101);
  EXPECT_EQ(raw(make_bytes_available(255)), 0x61FF);
  EXPECT_EQ(raw(make_bytes_available(256)), 0x6100);
  EXPECT_THROW(make_bytes_available(0), std::invalid_argument);
  EXPECT_THROW(make_bytes_available(257), std::invalid_argument);

  EXPECT_EQ(raw(make_wrong_le(16)), 0x6C10);
  EXPECT_EQ(raw(make_wrong_le(256)), 0x6C00);
  EXPECT_THROW(make_wrong_le(0), std::invalid_argument);
  EXPECT_THROW(make_wrong_le(300), std::invalid_argument);

  EXPECT_EQ(raw(make_verification_failed(2)), 0x63C2);
  EXPECT_EQ(raw(make_verification_failed(0)), 0x63C0);
  EXPECT_EQ(raw(make_verification_failed(15)), 0x63CF);
  EXPECT_THROW(make_verification_failed(-1), std::invalid_argument);
  EXPECT_THROW(make_verification_failed(16), std::invalid_argument);

  for (std::size_t n = 1; n <= 256; ++n) {
    EXPECT_EQ(bytes_available(make_bytes_available(n)), n);
    EXPECT_EQ(corrected_le(make_wrong_le(n)), n);
  }
}

TEST(StatusWord, ToStringIsFourUpperCaseHexDigits) {
  EXPECT_EQ(to_string(StatusWord::FileNotFound), "6A82");
  EXPECT_EQ(to_string(StatusWord::Success), "9000");
  EXPECT_EQ(to_string(make_sw(0x0A, 0x0B)), "0A0B");
}

TEST(StatusWord, Describe) {
  EXPECT_EQ(describe(StatusWord::FileNotFound), "6A82 file or application not found");
  EXPECT_EQ(describe(StatusWord::Success), "9000 success");
  EXPECT_EQ(describe(StatusWord::SecurityStatusNotSatisfied), "6982 security status not satisfied");
  EXPECT_EQ(describe(StatusWord::AuthenticationMethodBlocked), "6983 authentication method blocked");
  EXPECT_EQ(describe(StatusWord::WrongLength), "6700 wrong length");
  EXPECT_EQ(describe(make_sw(0x63, 0xC2)), "63C2 verification failed, 2 tries left");
  EXPECT_EQ(describe(make_sw(0x63, 0xC0)), "63C0 verification failed, 0 tries left");
  EXPECT_EQ(describe(make_sw(0x61, 0x10)), "6110 success, 16 more bytes available");
  EXPECT_EQ(describe(make_sw(0x61, 0x00)), "6100 success, 256 more bytes available");
  EXPECT_EQ(describe(make_sw(0x6C, 0x20)), "6C20 wrong Le, exact length is 32");
}

TEST(StatusWord, EveryNamedValueHasADescription) {
  for (auto sw : {StatusWord::Success,
                  StatusWord::WarningNvUnchanged,
                  StatusWord::MemoryFailure,
                  StatusWord::WrongLength,
                  StatusWord::LogicalChannelNotSupported,
                  StatusWord::SecureMessagingNotSupported,
                  StatusWord::LastCommandOfChainExpected,
                  StatusWord::CommandChainingNotSupported,
                  StatusWord::SecurityStatusNotSatisfied,
                  StatusWord::AuthenticationMethodBlocked,
                  StatusWord::ReferenceDataNotUsable,
                  StatusWord::ConditionsNotSatisfied,
                  StatusWord::CommandNotAllowedNoEf,
                  StatusWord::ExpectedSmDataObjectsMissing,
                  StatusWord::IncorrectSmDataObjects,
                  StatusWord::WrongData,
                  StatusWord::FunctionNotSupported,
                  StatusWord::FileNotFound,
                  StatusWord::RecordNotFound,
                  StatusWord::NotEnoughMemory,
                  StatusWord::IncorrectP1P2,
                  StatusWord::LcInconsistentWithP1P2,
                  StatusWord::ReferencedDataNotFound,
                  StatusWord::WrongP1P2,
                  StatusWord::InsNotSupported,
                  StatusWord::ClaNotSupported,
                  StatusWord::NoPreciseDiagnosis}) {
    const std::string d = describe(sw);
    EXPECT_EQ(d.rfind(to_string(sw) + " ", 0), 0u) << d;
    EXPECT_EQ(d.find("unknown"), std::string::npos) << d;
  }
}

TEST(StatusWordError, CarriesTheStatusWord) {
  const StatusWordError plain(StatusWord::ConditionsNotSatisfied);
  EXPECT_EQ(plain.sw(), StatusWord::ConditionsNotSatisfied);
  EXPECT_STREQ(plain.what(), "6985 conditions of use not satisfied");

  const StatusWordError detailed(make_sw(0x63, 0xC1), "wrong PIN");
  EXPECT_EQ(detailed.sw(), make_sw(0x63, 0xC1));
  EXPECT_STREQ(detailed.what(), "63C1 verification failed, 1 try left: wrong PIN");

  try {
    throw StatusWordError(StatusWord::SecurityStatusNotSatisfied);
  } catch (const std::runtime_error& e) {
    const auto* sw_error = dynamic_cast<const StatusWordError*>(&e);
    ASSERT_NE(sw_error, nullptr);
    EXPECT_EQ(sw_error->sw(), StatusWord::SecurityStatusNotSatisfied);
  }
}

}  // namespace
}  // namespace skillcard::iso7816
