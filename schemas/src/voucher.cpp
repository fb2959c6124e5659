// Voucher token codec (claim keys: docs/design.md, "Voucher token").
#include "skillcard/schemas/voucher.hpp"

#include "codec_util.hpp"

namespace skillcard::schemas {

namespace {
constexpr std::string_view kWhat = "voucher token";
constexpr std::int64_t kVersion = -1, kIss = 1, kSub = 2, kExp = 4, kNbf = 5, kIat = 6, kCti = 7, kProgramme = -2,
                       kOccupation = -3, kLevel = -4, kFund = -5, kFace = -6, kHours = -7, kOnline = -8, kRegions = -9,
                       kProviders = -10;
constexpr std::size_t kMaxEligible = 4;
using detail::range;
using detail::require;
}  // namespace

bool region_eligible(std::span<const std::uint32_t> eligible, std::uint32_t site_region) noexcept {
  for (const auto code : {site_region, site_region / 100 * 100, site_region / 10000 * 10000}) {
    for (const auto r : eligible)
      if (r == code) return true;
  }
  return false;
}

void check(const VoucherClaims& c) {
  require(c.issuer >= 100000 && c.issuer <= 999999, kWhat, kIss, "issuing bureau",
          [&] { return range(c.issuer, 100000, 999999); });
  require(is_known(c.programme), kWhat, kProgramme, "programme type",
          [&] { return std::to_string(static_cast<unsigned>(c.programme)) + " is not a programme type"; });
  require(c.occupation >= 1000000 && c.occupation <= 9999999, kWhat, kOccupation, "occupation code",
          [&] { return range(c.occupation, 1000000, 9999999); });
  require(c.level >= 1 && c.level <= 5, kWhat, kLevel, "skill level", [&] { return range(c.level, 1, 5); });
  const auto fund = static_cast<unsigned>(c.fund);
  require(fund >= 1 && fund <= 4, kWhat, kFund, "fund source", [&] { return range(fund, 1, 4); });
  require(c.face_value_fen >= 1, kWhat, kFace, "face value", "must be at least 1 fen");
  require(c.planned_hours >= 1, kWhat, kHours, "planned hours", "must be at least 1");
  require(c.planned_online_hours <= c.planned_hours, kWhat, kOnline, "planned online hours", [&] {
    return std::to_string(c.planned_online_hours) + " exceeds the planned total " + std::to_string(c.planned_hours);
  });
  const auto eligible = c.eligible_regions.size() + c.eligible_providers.size();
  require(eligible >= 1 && eligible <= kMaxEligible, kWhat, kRegions, "eligible regions and providers",
          [&] { return std::to_string(eligible) + " codes, expected 1..4 in all"; });
  require(detail::ascending_unique(c.eligible_regions), kWhat, kRegions, "eligible regions",
          "must be ascending without repeats");
  require(detail::ascending_unique(c.eligible_providers), kWhat, kProviders, "eligible providers",
          "must be ascending without repeats");
  for (auto r : c.eligible_regions) {
    require(r >= 100000 && r <= 999999, kWhat, kRegions, "eligible regions", [&] { return range(r, 100000, 999999); });
  }
  for (auto p : c.eligible_providers) require(p >= 1, kWhat, kProviders, "eligible providers", "provider id 0");
  require(c.issued_at <= c.not_before, kWhat, kNbf, "not before", "earlier than issued-at");
  require(c.not_before < c.expires_at, kWhat, kExp, "expiry", "not after not-before");
  // The card keeps times as uint32 (docs/design.md, "Time"): good until 2106.
  require(c.expires_at <= UINT32_MAX, kWhat, kExp, "expiry", "beyond the card's 32-bit time");
}

Bytes encode_payload(const VoucherClaims& c) {
  check(c);
  cbor::MapWriter w;
  w.uint(kVersion, kVoucherFormatVersion)
      .uint(kIss, c.issuer)
      .bytes(kCti, c.id)
      .bytes(kSub, c.holder)
      .uint(kProgramme, static_cast<std::uint64_t>(c.programme))
      .uint(kOccupation, c.occupation)
      .uint(kLevel, c.level)
      .uint(kFund, static_cast<std::uint64_t>(c.fund))
      .uint(kFace, c.face_value_fen)
      .uint(kHours, c.planned_hours)
      .uint(kOnline, c.planned_online_hours)
      .uint(kIat, c.issued_at)
      .uint(kNbf, c.not_before)
      .uint(kExp, c.expires_at);
  if (!c.eligible_regions.empty()) w.uint_array(kRegions, {c.eligible_regions.begin(), c.eligible_regions.end()});
  if (!c.eligible_providers.empty()) {
    w.uint_array(kProviders, {c.eligible_providers.begin(), c.eligible_providers.end()});
  }
  return w.encode();
}

VoucherClaims decode_voucher_claims(ByteView payload) {
  const auto item = cbor::load(payload, {kMaxVoucherToken, 4}, kWhat);
  cbor::MapReader r(item.root(), std::string(kWhat));
  r.version(kVoucherFormatVersion);
  VoucherClaims c;
  c.issuer = detail::narrow<std::uint32_t>(r.uint(kIss, "issuing bureau", 0, UINT32_MAX));
  c.id = detail::to_array<8>(r.bytes(kCti, "voucher id", 8, 8));
  c.holder = detail::to_array<16>(r.bytes(kSub, "holder reference", 16, 16));
  c.programme = static_cast<Programme>(r.uint(kProgramme, "programme type", 0, 255));
  c.occupation = detail::narrow<std::uint32_t>(r.uint(kOccupation, "occupation code", 0, UINT32_MAX));
  c.level = detail::narrow<std::uint8_t>(r.uint(kLevel, "skill level", 0, 255));
  c.fund = static_cast<FundSource>(r.uint(kFund, "fund source", 0, 255));
  c.face_value_fen = detail::narrow<std::uint32_t>(r.uint(kFace, "face value", 0, UINT32_MAX));
  c.planned_hours = detail::narrow<std::uint16_t>(r.uint(kHours, "planned hours", 0, UINT16_MAX));
  c.planned_online_hours = detail::narrow<std::uint16_t>(r.uint(kOnline, "planned online hours", 0, UINT16_MAX));
  if (auto v = r.optional_uint_array(kRegions, "eligible regions", 0, UINT32_MAX, kMaxEligible)) {
    c.eligible_regions.assign(v->begin(), v->end());
  }
  if (auto v = r.optional_uint_array(kProviders, "eligible providers", 0, UINT32_MAX, kMaxEligible)) {
    c.eligible_providers.assign(v->begin(), v->end());
  }
  c.issued_at = r.uint(kIat, "issued at", 0, UINT32_MAX);  // the card keeps times as uint32
  c.not_before = r.uint(kNbf, "not before", 0, UINT32_MAX);
  c.expires_at = r.uint(kExp, "expiry", 0, UINT32_MAX);
  r.finish();
  detail::check_decoded(c);
  return c;
}

Bytes sign_voucher(const VoucherClaims& claims, const crypto::Kid& kid, const SignFunction& sign) {
  auto token = CoseSign1::sign(kid, std::nullopt, encode_payload(claims), sign);
  if (token.size() > kMaxVoucherToken) {
    throw std::invalid_argument("voucher token would be " + std::to_string(token.size()) + " bytes, at most 200");
  }
  return token;
}

Signed<VoucherClaims> decode_voucher_token(ByteView token) {
  return detail::decode_signed<VoucherClaims>(token, kMaxVoucherToken, std::nullopt, kWhat, decode_voucher_claims);
}

}  // namespace skillcard::schemas
