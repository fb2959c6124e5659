// Strict request parsing (server/service/src/request.cpp): the shortcut for a body that is one
// plain string member takes exactly the bodies that mean that to the full parser, and leaves
// every other body to it.
#include "request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace skillcard::service::detail {
namespace {

constexpr FieldRule kTokenOnly[] = {{"token", Kind::String, true}};

TEST(SolePlainString, TakesTheOneMemberWithJsonWhitespace) {
  EXPECT_EQ(sole_plain_string(R"({"token":"abc-_09"})", "token"), "abc-_09");
  EXPECT_EQ(sole_plain_string(" \t\r\n{ \"token\" :\n\"x y\" } \n", "token"), "x y");
  EXPECT_EQ(sole_plain_string(R"({"token":""})", "token"), "");
}

TEST(SolePlainString, LeavesEveryOtherBodyToTheFullParser) {
  for (const std::string body : {
           "", "{}",
           R"({"token":"a","token":"b"})",  // duplicate: the full parser refuses it
           R"({"token":"a","other":1})",    // unknown member
           R"({"tokens":"a"})",             // another name
           R"({"tok\u0065n":"a"})",         // an escaped name
           R"({"token":"a\u0041"})",        // an escape in the value
           R"({"token":"a\"b"})",           // an escaped quote
           "{\"token\":\"a\x01\"}",         // a control character (invalid JSON)
           "{\"token\":\"\xe6\x8a\x80\"}",  // non-ASCII: UTF-8 is checked by the full parser
           R"({"token":1})",                // a number
           R"({"token":"a"} x)",            // trailing text
           R"({"token":"a")",               // unterminated object
           R"({"token":"a)",                // unterminated string
           R"(["token","a"])",              // not an object
           R"({"token":"a",})",             // a trailing comma
       }) {
    EXPECT_FALSE(sole_plain_string(body, "token").has_value()) << body;
  }
}

// Whatever the shortcut takes, the full parser takes too, with the same value.
TEST(SolePlainString, AgreesWithParseObject) {
  for (const std::string body : {R"({"token":"abc"})", " { \"token\" : \"a b~!\" } ", R"({"token":""})"}) {
    const auto plain = sole_plain_string(body, "token");
    ASSERT_TRUE(plain.has_value()) << body;
    const auto parsed = parse_object(body, kTokenOnly, false);
    EXPECT_EQ(text(parsed, "token"), *plain) << body;
  }
}

TEST(Base64urlText, NamesTheFieldWhenTooLargeOrNotBase64url) {
  EXPECT_EQ(base64url_text("AAEC", "token", 3), (Bytes{0, 1, 2}));
  for (const std::string value : {"AAECAw", "AA=E", "A+/A"}) {
    try {
      (void)base64url_text(value, "token", 3, "outer.");
      ADD_FAILURE() << value << " was accepted";
    } catch (const Refused& refused) {
      EXPECT_EQ(refused.response.status, 400);
      EXPECT_NE(refused.response.body.find("\"outer.token\""), std::string::npos) << refused.response.body;
    }
  }
}

}  // namespace
}  // namespace skillcard::service::detail
