// The direct JSON writer of the verify answer: what it writes parses back as the same JSON the
// nlohmann path writes (so the two voucher views can never drift apart), strings are escaped,
// and numbers keep all 64 bits.
#include "json_writer.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "service_support.hpp"
#include "work.hpp"

namespace skillcard::service::detail {
namespace {

using json = nlohmann::json;

TEST(JsonWriter, VoucherIsTheSameJsonAsVoucherJson) {
  for (const std::uint64_t serial : {1U, 77U, 4096U}) {
    auto claims = testing::sample_claims(serial);
    claims.eligible_regions = {420100, 420102};
    claims.eligible_providers = serial == 77 ? std::vector<std::uint32_t>{} : std::vector<std::uint32_t>{10001};
    claims.expires_at = 0xFFFFFFFFFFFFFFFFULL;  // the widest number the claims can carry
    JsonWriter out;
    write_voucher(out, claims);
    const auto text = std::move(out).take();
    EXPECT_EQ(json::parse(text), voucher_json(claims)) << text;
  }
}

TEST(JsonWriter, EscapesQuotesBackslashesAndControlCharacters) {
  JsonWriter out;
  out.begin_object();
  out.key("a\"b").text("x\\y\n\x01 z");
  out.key("utf8").text("\xe6\x8a\x80\xe8\x83\xbd");  // 技能, unchanged
  out.key("list").numbers(std::vector<std::uint32_t>{});
  out.key("t").boolean(true);
  out.key("f").boolean(false);
  out.key("id").hex(std::vector<std::uint8_t>{0x00, 0xAB, 0x0F});
  out.key("inner").begin_object().key("n").number(0).end_object();
  out.end_object();
  const auto text = std::move(out).take();
  EXPECT_EQ(text,
            "{\"a\\\"b\":\"x\\\\y\\u000a\\u0001 z\",\"utf8\":\"\xe6\x8a\x80\xe8\x83\xbd\",\"list\":[],\"t\":true,"
            "\"f\":false,\"id\":\"00ab0f\",\"inner\":{\"n\":0}}");
  const auto parsed = json::parse(text);
  EXPECT_EQ(parsed.at("a\"b"), "x\\y\n\x01 z");
  EXPECT_EQ(parsed.at("inner").at("n"), 0);
}

}  // namespace
}  // namespace skillcard::service::detail
