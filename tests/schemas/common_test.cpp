// Diagnostic notation and shared helpers.
#include "skillcard/schemas/common.hpp"

#include <gtest/gtest.h>

using namespace skillcard;
using namespace skillcard::schemas;

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
