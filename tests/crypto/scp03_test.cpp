// SCP03 key derivation against the GlobalPlatform known-answer sessions in
// ../shared/vectors/scp03: the pseudo-random card challenge, the session keys, both
// cryptograms and the EXTERNAL AUTHENTICATE C-MAC, for AES-128 and AES-256, on both backends.
#include "skillcard/crypto/scp03.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/openssl.hpp"

using namespace skillcard;
using namespace skillcard::crypto;

namespace {

nlohmann::json load_vectors() {
  std::ifstream in(std::string(SKILLCARD_SHARED_DIR) + "/vectors/scp03/scp03-vectors.json");
  if (!in) throw std::runtime_error("cannot open the SCP03 vectors under " SKILLCARD_SHARED_DIR);
  return nlohmann::json::parse(in);
}

template <std::size_t N>
std::array<std::uint8_t, N> take(const Bytes& b, std::size_t offset) {
  std::array<std::uint8_t, N> out{};
  std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(offset), N, out.begin());
  return out;
}

template <class B>
class Scp03 : public ::testing::Test {};
using Backends = ::testing::Types<OpenSsl, MbedTls>;
TYPED_TEST_SUITE(Scp03, Backends);

}  // namespace

TYPED_TEST(Scp03, EverySharedSessionReproduces) {
  const auto v = load_vectors();
  const auto aid = from_hex(v["card_challenge_context_aid"].get<std::string>());
  ASSERT_EQ(v["cases"].size(), 5u);
  for (const auto& c : v["cases"]) {
    SCOPED_TRACE(c["keyset"].get<std::string>() + " level " + c["security_level"].get<std::string>());
    const auto& ks = v["keysets"][c["keyset"].get<std::string>()];
    const auto k_enc = from_hex(ks["enc"].get<std::string>());
    const auto k_mac = from_hex(ks["mac"].get<std::string>());
    const auto iu_cmd = from_hex(c["init_update_cmd"].get<std::string>());
    const auto iu_rsp = from_hex(c["init_update_rsp"].get<std::string>());
    const auto ea_cmd = from_hex(c["ext_auth_cmd"].get<std::string>());
    ASSERT_EQ(iu_rsp.size(), 32u);
    EXPECT_EQ(iu_rsp[10], from_hex(ks["kvn"].get<std::string>())[0]);

    const auto host_challenge = take<8>(iu_cmd, 5);
    const auto card_challenge = take<8>(iu_rsp, 13);
    const auto card_cryptogram = take<8>(iu_rsp, 21);
    const std::uint32_t counter = (std::uint32_t{iu_rsp[29]} << 16) | (std::uint32_t{iu_rsp[30]} << 8) | iu_rsp[31];

    EXPECT_EQ(scp03::pseudo_random_card_challenge<TypeParam>(k_enc, counter, aid), card_challenge);

    const auto keys = scp03::derive_session_keys<TypeParam>(k_enc, k_mac, host_challenge, card_challenge);
    EXPECT_EQ(keys.s_enc.size(), k_enc.size());
    EXPECT_EQ(scp03::card_cryptogram<TypeParam>(keys.s_mac.view(), host_challenge, card_challenge), card_cryptogram);
    EXPECT_EQ(scp03::host_cryptogram<TypeParam>(keys.s_mac.view(), host_challenge, card_challenge), take<8>(ea_cmd, 5));

    // EXTERNAL AUTHENTICATE's C-MAC: CMAC(S-MAC, 16 zero bytes of chaining || header || data).
    Bytes mac_input(16, 0);
    mac_input.insert(mac_input.end(), ea_cmd.begin(), ea_cmd.begin() + 13);
    const auto cmac = TypeParam::aes_cmac(keys.s_mac.view(), mac_input);
    EXPECT_TRUE(std::equal(cmac.begin(), cmac.begin() + 8, ea_cmd.begin() + 13));
  }
}

TYPED_TEST(Scp03, KdfLayoutMatchesGlobalPlatform) {
  // Built by hand here, independently of the implementation: 11 zero bytes, constant, 00,
  // L = 0x0080, i = 01, context.
  const auto key = from_hex("404142434445464748494A4B4C4D4E4F");
  const auto context = from_hex("0102030405060708");
  auto input = from_hex(
      "0000000000000000000000"
      "04"
      "00"
      "0080"
      "01");
  input.insert(input.end(), context.begin(), context.end());
  const auto expected = TypeParam::aes_cmac(key, input);
  const auto got = scp03::kdf<TypeParam>(key, scp03::Constant::SEnc, 128, context);
  EXPECT_EQ(to_hex(got.view()), to_hex(ByteView(expected)));

  // 256 bits: blocks i = 1 and i = 2, with L = 0x0100.
  auto in1 = from_hex(
      "0000000000000000000000"
      "04"
      "00"
      "0100"
      "01");
  auto in2 = from_hex(
      "0000000000000000000000"
      "04"
      "00"
      "0100"
      "02");
  in1.insert(in1.end(), context.begin(), context.end());
  in2.insert(in2.end(), context.begin(), context.end());
  const auto b1 = TypeParam::aes_cmac(key, in1);
  const auto b2 = TypeParam::aes_cmac(key, in2);
  EXPECT_EQ(to_hex(scp03::kdf<TypeParam>(key, scp03::Constant::SEnc, 256, context).view()),
            to_hex(ByteView(b1)) + to_hex(ByteView(b2)));
  EXPECT_THROW(scp03::kdf<TypeParam>(key, scp03::Constant::SEnc, 12, context), std::invalid_argument);
  // The block counter is one byte: more than 255 blocks would repeat the first ones.
  EXPECT_EQ(scp03::kdf<TypeParam>(key, scp03::Constant::SEnc, 255 * 128, context).size(), 255u * 16u);
  EXPECT_THROW(scp03::kdf<TypeParam>(key, scp03::Constant::SEnc, 256 * 128, context), std::invalid_argument);
}

TYPED_TEST(Scp03, DiversifiedCardKeysAreDistinctPerCardRoleAndType) {
  const auto counter_master = from_hex("000102030405060708090A0B0C0D0E0F");
  const auto site_master = from_hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF");
  const auto enc1 = scp03::diversify_card_key<TypeParam>(counter_master, scp03::KeyType::Enc, "4201000001");
  const auto enc1_again = scp03::diversify_card_key<TypeParam>(counter_master, scp03::KeyType::Enc, "4201000001");
  const auto enc2 = scp03::diversify_card_key<TypeParam>(counter_master, scp03::KeyType::Enc, "4201000002");
  const auto mac1 = scp03::diversify_card_key<TypeParam>(counter_master, scp03::KeyType::Mac, "4201000001");
  const auto site1 = scp03::diversify_card_key<TypeParam>(site_master, scp03::KeyType::Enc, "4201000001");
  EXPECT_EQ(enc1.size(), 16u);
  EXPECT_EQ(to_hex(enc1.view()), to_hex(enc1_again.view()));
  EXPECT_NE(to_hex(enc1.view()), to_hex(enc2.view()));
  EXPECT_NE(to_hex(enc1.view()), to_hex(mac1.view()));
  EXPECT_NE(to_hex(enc1.view()), to_hex(site1.view()));
  // The documented layout: constant 0x41 for ENC, context "SKCD" || card number.
  auto input = from_hex(
      "0000000000000000000000"
      "41"
      "00"
      "0080"
      "01");
  const auto ctx = as_bytes("SKCD4201000001");
  input.insert(input.end(), ctx.begin(), ctx.end());
  const auto expected = TypeParam::aes_cmac(counter_master, input);
  EXPECT_EQ(to_hex(enc1.view()), to_hex(ByteView(expected)));
}
