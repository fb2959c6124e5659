// Diagnostic notation and shared helpers.
#include "skillcard/schemas/common.hpp"

#include <gtest/gtest.h>

using namespace skillcard;
using namespace skillcard::schemas;

// RFC 8949 §8: the most negative integer in full, text as a JSON string (control characters
// escaped, so one item is one line in a log).
TEST(Diagnostic, MostNegativeIntegerAndControlCharacters) {
  EXPECT_EQ(to_diagnostic(from_hex("3BFFFFFFFFFFFFFFFF")), "-18446744073709551616");
  EXPECT_EQ(to_diagnostic(from_hex("3BFFFFFFFFFFFFFFFE")), "-18446744073709551615");
  EXPECT_EQ(to_diagnostic(from_hex("20")), "-1");
  EXPECT_EQ(to_diagnostic(from_hex("640A090D01")), R"("\n\t\r\u0001")");
  EXPECT_EQ(to_diagnostic(from_hex("6322615C")), R"("\"a\\")");
}

TEST(Diagnostic, PrintsEveryTypeWeUse) {
  EXPECT_EQ(to_diagnostic(from_hex("D28443A10126A0430102034100")), "18([h'A10126', {}, h'010203', h'00'])");
  EXPECT_EQ(to_diagnostic(from_hex("A3"
                                   "01"
                                   "623A22"
                                   "2001"
                                   "3818"
                                   "1818")),
            "{1: \":\\\"\", -1: 1, -25: 24}");
  EXPECT_EQ(to_diagnostic(from_hex("83F4F5F6")), "[false, true, null]");
  EXPECT_THROW(to_diagnostic(from_hex("9A10000000")), DecodeError);
}

TEST(Programme, KnownValues) {
  EXPECT_TRUE(is_known(Programme::CareWorker));
  EXPECT_TRUE(is_known(Programme::TrainInPlaceOfWork));
  EXPECT_FALSE(is_known(static_cast<Programme>(12)));
  EXPECT_FALSE(is_known(static_cast<Programme>(0)));
}
