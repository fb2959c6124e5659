// SCP03 secure messaging (crypto/scp03_session.hpp) against every session in
// ../shared/vectors/scp03, on both ends and with both backends: the host produces the exact
// INITIALIZE UPDATE, EXTERNAL AUTHENTICATE and wrapped commands; the card, preset with the
// session's keys and sequence counter, produces the exact IU answer, accepts and unwraps every
// wrapped command and wraps the plain GET EID answer into exactly the recorded one. Then the
// refusals: flipped MACs, replays, wrong cryptograms, bad padding, commands after a failure.
#include "skillcard/crypto/scp03_session.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/openssl.hpp"

using namespace skillcard;
using namespace skillcard::crypto;
using namespace skillcard::crypto::scp03;
using iso7816::CommandApdu;
using iso7816::ResponseApdu;
using iso7816::StatusWord;
using Reason = SecureChannelError::Reason;

namespace {

const nlohmann::json& vectors() {
  static const nlohmann::json v = [] {
    std::ifstream in(std::string(SKILLCARD_SHARED_DIR) + "/vectors/scp03/scp03-vectors.json");
    if (!in) throw std::runtime_error("cannot open the SCP03 vectors under " SKILLCARD_SHARED_DIR);
    return nlohmann::json::parse(in);
  }();
  return v;
}

Bytes hex(const nlohmann::json& j) { return from_hex(j.get<std::string>()); }

struct Session {
  std::string name;
  Bytes enc, mac;
  std::uint8_t kvn;
  std::uint8_t level;
  Bytes iu_cmd, iu_rsp, ea_cmd, get_eid_cmd, get_eid_rsp;
  std::vector<Bytes> cases;  // wrapped case_1..case_4
};

std::vector<Session> sessions() {
  std::vector<Session> out;
  for (const auto& c : vectors()["cases"]) {
    const auto& ks = vectors()["keysets"][c["keyset"].get<std::string>()];
    Session s;
    s.name = c["keyset"].get<std::string>() + " level " + c["security_level"].get<std::string>();
    s.enc = hex(ks["enc"]);
    s.mac = hex(ks["mac"]);
    s.kvn = hex(ks["kvn"])[0];
    s.level = hex(c["security_level"])[0];
    s.iu_cmd = hex(c["init_update_cmd"]);
    s.iu_rsp = hex(c["init_update_rsp"]);
    s.ea_cmd = hex(c["ext_auth_cmd"]);
    s.get_eid_cmd = hex(c["get_eid_cmd"]);
    s.get_eid_rsp = hex(c["get_eid_rsp"]);
    for (int i = 1; i <= 4; ++i) s.cases.push_back(hex(c["case_" + std::to_string(i)]));
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<Bytes> plain_cases() {
  std::vector<Bytes> out;
  for (int i = 1; i <= 4; ++i) out.push_back(hex(vectors()["plain"]["case_" + std::to_string(i)]));
  return out;
}

Challenge host_challenge(const Session& s) {
  Challenge c{};
  std::copy_n(s.iu_cmd.begin() + 5, 8, c.begin());
  return c;
}

std::uint32_t sequence_counter(const Session& s) {
  return (std::uint32_t{s.iu_rsp[29]} << 16) | (std::uint32_t{s.iu_rsp[30]} << 8) | s.iu_rsp[31];
}

Bytes aid() { return hex(vectors()["card_challenge_context_aid"]); }

// A card session preset with the vector session's keys and counter, after IU and EA.
template <class B>
CardSession<B> open_card(const Session& s) {
  CardSession<B> card;
  card.initialize_update(s.enc, s.mac, s.kvn, sequence_counter(s), host_challenge(s), aid(),
                         ByteView(s.iu_rsp).first(10));
  card.external_authenticate(CommandApdu::parse(s.ea_cmd));
  return card;
}

template <class B>
HostSession<B> open_host(const Session& s) {
  HostSession<B> host;
  host.initialize_update(s.kvn, host_challenge(s));
  host.external_authenticate(s.enc, s.mac, InitializeUpdateResponse::parse(s.iu_rsp), s.level);
  return host;
}

template <class F>
Reason reason_of(F&& f) {
  try {
    f();
  } catch (const SecureChannelError& e) {
    return e.reason();
  }
  ADD_FAILURE() << "no SecureChannelError";
  return Reason::NoSession;
}

template <class B>
class Scp03Session : public ::testing::Test {};
using Backends = ::testing::Types<OpenSsl, MbedTls>;
TYPED_TEST_SUITE(Scp03Session, Backends);

}  // namespace

TYPED_TEST(Scp03Session, HostReproducesEverySharedSession) {
  const auto plain_eid = hex(vectors()["plain"]["get_eid_cmd"]);
  const auto plain_rsp = hex(vectors()["plain"]["get_eid_rsp"]);
  const auto plains = plain_cases();
  ASSERT_EQ(sessions().size(), 5u);
  for (const auto& s : sessions()) {
    SCOPED_TRACE(s.name);
    HostSession<TypeParam> host;
    EXPECT_EQ(to_hex(host.initialize_update(s.kvn, host_challenge(s)).encode()), to_hex(s.iu_cmd));
    const auto card = HostSession<TypeParam>::parse_initialize_update_response(s.iu_rsp);
    EXPECT_EQ(card.kvn, s.kvn);
    EXPECT_EQ(card.sequence_counter, sequence_counter(s));
    EXPECT_EQ(to_hex(host.external_authenticate(s.enc, s.mac, card, s.level).encode()), to_hex(s.ea_cmd));
    EXPECT_TRUE(host.is_open());
    EXPECT_EQ(to_hex(host.wrap(CommandApdu::parse(plain_eid)).encode()), to_hex(s.get_eid_cmd));
    const auto rsp = host.unwrap(ResponseApdu(s.get_eid_rsp, StatusWord::Success));
    EXPECT_EQ(to_hex(rsp.data()), to_hex(plain_rsp));
    EXPECT_EQ(rsp.sw(), StatusWord::Success);
    for (std::size_t i = 0; i < 4; ++i) {
      SCOPED_TRACE("case_" + std::to_string(i + 1));
      EXPECT_EQ(to_hex(host.wrap(CommandApdu::parse(plains[i])).encode()), to_hex(s.cases[i]));
    }
    EXPECT_EQ(host.counter(), 5u);
  }
}

TYPED_TEST(Scp03Session, CardReproducesEverySharedSession) {
  const auto plain_eid = hex(vectors()["plain"]["get_eid_cmd"]);
  const auto plain_rsp = hex(vectors()["plain"]["get_eid_rsp"]);
  const auto plains = plain_cases();
  for (const auto& s : sessions()) {
    SCOPED_TRACE(s.name);
    CardSession<TypeParam> card;
    const auto iu = CommandApdu::parse(s.iu_cmd);
    EXPECT_EQ(iu.p1(), s.kvn);
    const auto rsp =
        card.initialize_update(s.enc, s.mac, iu.p1(), sequence_counter(s),
                               CardSession<TypeParam>::host_challenge_of(iu), aid(), ByteView(s.iu_rsp).first(10));
    EXPECT_EQ(to_hex(rsp), to_hex(s.iu_rsp));  // card challenge, cryptogram, counter: all of it
    EXPECT_EQ(card.state(), CardSession<TypeParam>::State::Initialized);
    card.external_authenticate(CommandApdu::parse(s.ea_cmd));
    EXPECT_TRUE(card.is_open());
    EXPECT_EQ(card.level(), s.level);
    EXPECT_EQ(card.kvn(), s.kvn);
    EXPECT_EQ(to_hex(card.unwrap(CommandApdu::parse(s.get_eid_cmd)).encode()), to_hex(plain_eid));
    EXPECT_EQ(to_hex(card.wrap_response(plain_rsp, StatusWord::Success)), to_hex(s.get_eid_rsp));
    for (std::size_t i = 0; i < 4; ++i) {
      SCOPED_TRACE("case_" + std::to_string(i + 1));
      EXPECT_EQ(to_hex(card.unwrap(CommandApdu::parse(s.cases[i])).encode()), to_hex(plains[i]));
    }
    EXPECT_EQ(card.counter(), 5u);
  }
}

TYPED_TEST(Scp03Session, FlippedCommandMacClosesTheSession) {
  for (const auto& s : sessions()) {
    SCOPED_TRACE(s.name);
    for (std::size_t back = 1; back <= kMacSize; back += 7) {
      auto card = open_card<TypeParam>(s);
      auto bad = s.get_eid_cmd;
      bad[bad.size() - 1 - back] ^= 0x01;  // a MAC byte (the last byte is Le)
      EXPECT_EQ(reason_of([&] { card.unwrap(CommandApdu::parse(bad)); }), Reason::CommandMac);
      EXPECT_FALSE(card.is_open());
      // A command after the failure, even the genuine one, finds no session.
      EXPECT_EQ(reason_of([&] { card.unwrap(CommandApdu::parse(s.get_eid_cmd)); }), Reason::NoSession);
      EXPECT_EQ(card_status_word(Reason::CommandMac, false), StatusWord::SecurityStatusNotSatisfied);
    }
    // A flipped data byte fails the same way.
    auto card = open_card<TypeParam>(s);
    auto bad = s.cases[2];
    bad[6] ^= 0x80;
    EXPECT_EQ(reason_of([&] { card.unwrap(CommandApdu::parse(bad)); }), Reason::CommandMac);
  }
}

TYPED_TEST(Scp03Session, ReplayedOrReorderedCommandsAreRefused) {
  for (const auto& s : sessions()) {
    SCOPED_TRACE(s.name);
    auto card = open_card<TypeParam>(s);
    card.unwrap(CommandApdu::parse(s.get_eid_cmd));
    EXPECT_EQ(reason_of([&] { card.unwrap(CommandApdu::parse(s.get_eid_cmd)); }), Reason::CommandMac);
    EXPECT_FALSE(card.is_open());

    auto card2 = open_card<TypeParam>(s);
    EXPECT_EQ(reason_of([&] { card2.unwrap(CommandApdu::parse(s.cases[0])); }), Reason::CommandMac);  // skipped one

    // The same wrapped commands replayed into a fresh session (same keys, new challenge).
    CardSession<TypeParam> card3;
    card3.initialize_update(s.enc, s.mac, s.kvn, sequence_counter(s) + 1, host_challenge(s), aid(),
                            ByteView(s.iu_rsp).first(10));
    EXPECT_EQ(reason_of([&] { card3.external_authenticate(CommandApdu::parse(s.ea_cmd)); }), Reason::HostCryptogram);
  }
}

TYPED_TEST(Scp03Session, WrongHostCryptogramAndExternalAuthenticateShape) {
  const auto s = sessions()[2];  // AES-128, level 33
  {
    CardSession<TypeParam> card;
    card.initialize_update(s.enc, s.mac, s.kvn, sequence_counter(s), host_challenge(s), aid(),
                           ByteView(s.iu_rsp).first(10));
    auto bad = s.ea_cmd;
    bad[5] ^= 0x01;
    EXPECT_EQ(reason_of([&] { card.external_authenticate(CommandApdu::parse(bad)); }), Reason::HostCryptogram);
    EXPECT_EQ(card.state(), CardSession<TypeParam>::State::Closed);
    EXPECT_EQ(card_status_word(Reason::HostCryptogram, true), StatusWord::VerificationFailed);
    EXPECT_EQ(reason_of([&] { card.external_authenticate(CommandApdu::parse(s.ea_cmd)); }), Reason::NoSession);
  }
  {
    CardSession<TypeParam> card;
    card.initialize_update(s.enc, s.mac, s.kvn, sequence_counter(s), host_challenge(s), aid(),
                           ByteView(s.iu_rsp).first(10));
    auto bad = s.ea_cmd;
    bad.back() ^= 0x01;  // EXTERNAL AUTHENTICATE's own C-MAC
    EXPECT_EQ(reason_of([&] { card.external_authenticate(CommandApdu::parse(bad)); }), Reason::CommandMac);
    EXPECT_EQ(card_status_word(Reason::CommandMac, true), StatusWord::VerificationFailed);
  }
  {
    // The wrong static keys (another card, another role): cryptograms differ on both sides.
    CardSession<TypeParam> card;
    auto other = s.enc;
    other[0] ^= 1;
    card.initialize_update(other, s.mac, s.kvn, sequence_counter(s), host_challenge(s), aid(),
                           ByteView(s.iu_rsp).first(10));
    EXPECT_THROW(card.external_authenticate(CommandApdu::parse(s.ea_cmd)), SecureChannelError);
  }
  {
    CardSession<TypeParam> card;
    EXPECT_EQ(reason_of([&] { card.external_authenticate(CommandApdu::parse(s.ea_cmd)); }), Reason::NoSession);
    card.initialize_update(s.enc, s.mac, s.kvn, sequence_counter(s), host_challenge(s), aid(),
                           ByteView(s.iu_rsp).first(10));
    auto level2 = s.ea_cmd;
    level2[2] = 0x02;  // C-DECRYPTION without C-MAC
    EXPECT_EQ(reason_of([&] { card.external_authenticate(CommandApdu::parse(level2)); }), Reason::UnsupportedLevel);
    EXPECT_EQ(card_status_word(Reason::UnsupportedLevel, true), StatusWord::IncorrectP1P2);
  }
  {
    CardSession<TypeParam> card;
    card.initialize_update(s.enc, s.mac, s.kvn, sequence_counter(s), host_challenge(s), aid(),
                           ByteView(s.iu_rsp).first(10));
    auto plain_cla = s.ea_cmd;
    plain_cla[0] = 0x80;
    EXPECT_EQ(reason_of([&] { card.external_authenticate(CommandApdu::parse(plain_cla)); }), Reason::Malformed);
  }
  EXPECT_EQ(reason_of([] { CardSession<TypeParam>::host_challenge_of(CommandApdu(0x80, 0x50, 0x21, 0, Bytes(7))); }),
            Reason::Malformed);
}

TYPED_TEST(Scp03Session, HostRefusesWrongCardCryptogramAndResponseMac) {
  for (const auto& s : sessions()) {
    SCOPED_TRACE(s.name);
    HostSession<TypeParam> host;
    host.initialize_update(s.kvn, host_challenge(s));
    auto rsp = s.iu_rsp;
    rsp[21] ^= 0x01;
    EXPECT_EQ(
        reason_of([&] { host.external_authenticate(s.enc, s.mac, InitializeUpdateResponse::parse(rsp), s.level); }),
        Reason::CardCryptogram);
    EXPECT_FALSE(host.is_open());

    HostSession<TypeParam> host2;
    host2.initialize_update(static_cast<std::uint8_t>(s.kvn + 1), host_challenge(s));
    EXPECT_EQ(reason_of([&] {
                host2.external_authenticate(s.enc, s.mac, InitializeUpdateResponse::parse(s.iu_rsp), s.level);
              }),
              Reason::Malformed);
    EXPECT_EQ(reason_of([] { InitializeUpdateResponse::parse(Bytes(31)); }), Reason::Malformed);

    if (!(s.level & level::kRMac)) continue;
    auto host3 = open_host<TypeParam>(s);
    host3.wrap(CommandApdu::parse(hex(vectors()["plain"]["get_eid_cmd"])));
    auto bad = s.get_eid_rsp;
    bad.back() ^= 0x01;
    EXPECT_EQ(reason_of([&] { host3.unwrap(ResponseApdu(bad, StatusWord::Success)); }), Reason::ResponseMac);
    EXPECT_FALSE(host3.is_open());
    EXPECT_EQ(reason_of([&] { host3.wrap(CommandApdu(0x80, 0xCA, 0, 0x66, 256)); }), Reason::NoSession);

    // The right R-MAC under another status word: the SW is authenticated too.
    auto host4 = open_host<TypeParam>(s);
    host4.wrap(CommandApdu::parse(hex(vectors()["plain"]["get_eid_cmd"])));
    EXPECT_EQ(reason_of([&] { host4.unwrap(ResponseApdu(s.get_eid_rsp, iso7816::make_sw(0x62, 0x83))); }),
              Reason::ResponseMac);
    auto host5 = open_host<TypeParam>(s);
    host5.wrap(CommandApdu::parse(hex(vectors()["plain"]["get_eid_cmd"])));
    EXPECT_EQ(reason_of([&] { host5.unwrap(ResponseApdu(Bytes(4), StatusWord::Success)); }), Reason::ResponseMac);
  }
}

TYPED_TEST(Scp03Session, CardRefusesUnwrappedShortAndBadlyPaddedCommands) {
  const auto s = sessions()[1];  // AES-128, level 03 (C-DECRYPTION)
  {
    auto card = open_card<TypeParam>(s);
    EXPECT_EQ(reason_of([&] { card.unwrap(CommandApdu::parse(hex(vectors()["plain"]["case_2"]))); }),
              Reason::NotWrapped);
    EXPECT_FALSE(card.is_open());
    EXPECT_EQ(card_status_word(Reason::NotWrapped, false), StatusWord::SecurityStatusNotSatisfied);
  }
  {
    auto card = open_card<TypeParam>(s);
    EXPECT_EQ(reason_of([&] { card.unwrap(CommandApdu(0x84, 0xCA, 0, 0x66, Bytes(7))); }), Reason::Malformed);
    EXPECT_EQ(card_status_word(Reason::Malformed, false), StatusWord::IncorrectSmDataObjects);
  }
  {
    // A correctly MACed command whose decrypted data has no 80 00.. padding.
    auto card = open_card<TypeParam>(s);
    const auto hc = host_challenge(s);
    Challenge cc{};
    std::copy_n(s.iu_rsp.begin() + 13, 8, cc.begin());
    const auto keys = derive_session_keys<TypeParam>(s.enc, s.mac, hc, cc);
    const CmacTag zero{};
    const auto ea = CommandApdu::parse(s.ea_cmd);
    const auto chaining = detail::command_mac<TypeParam>(
        keys.s_mac.view(), zero, detail::mac_header(0x84, 0x82, ea.p1(), 0, 16), ByteView(ea.data()).first(8));
    const auto icv = TypeParam::aes_ecb_encrypt(keys.s_enc.view(), detail::counter_block(1, 0));
    auto body = TypeParam::aes_cbc_encrypt(keys.s_enc.view(), icv, Bytes(16, 0x11));
    const auto mac = detail::command_mac<TypeParam>(keys.s_mac.view(), chaining,
                                                    detail::mac_header(0x84, 0xF2, 0x20, 0x02, 24), body);
    body.insert(body.end(), mac.begin(), mac.begin() + 8);
    EXPECT_EQ(reason_of([&] { card.unwrap(CommandApdu(0x84, 0xF2, 0x20, 0x02, body)); }), Reason::Padding);
    EXPECT_FALSE(card.is_open());
    // Not whole blocks: malformed.
    auto card2 = open_card<TypeParam>(s);
    auto odd = Bytes(5, 0x22);
    const auto mac2 = detail::command_mac<TypeParam>(keys.s_mac.view(), chaining,
                                                     detail::mac_header(0x84, 0xF2, 0x20, 0x02, 13), odd);
    odd.insert(odd.end(), mac2.begin(), mac2.begin() + 8);
    EXPECT_EQ(reason_of([&] { card2.unwrap(CommandApdu(0x84, 0xF2, 0x20, 0x02, odd)); }), Reason::Malformed);
  }
  {
    CardSession<TypeParam> card;
    EXPECT_EQ(reason_of([&] { card.unwrap(CommandApdu::parse(s.cases[0])); }), Reason::NoSession);
    EXPECT_THROW(card.wrap_response({}, StatusWord::Success), SecureChannelError);
  }
}

TYPED_TEST(Scp03Session, PaddingHelpers) {
  EXPECT_EQ(to_hex(detail::pad(Bytes{})), "80000000000000000000000000000000");
  EXPECT_EQ(detail::pad(Bytes(16, 1)).size(), 32u);
  EXPECT_EQ(detail::unpad(detail::pad(Bytes(15, 0))), Bytes(15, 0));
  EXPECT_EQ(detail::unpad(detail::pad(Bytes{0x80, 0x00})), (Bytes{0x80, 0x00}));
  EXPECT_EQ(reason_of([] { detail::unpad(Bytes(16, 0)); }), Reason::Padding);
  auto two_blocks_of_padding = Bytes(32, 0);
  two_blocks_of_padding[0] = 0x80;
  EXPECT_EQ(reason_of([&] { detail::unpad(two_blocks_of_padding); }), Reason::Padding);
}

// Host with one backend, card with the other, every level: random commands of every case and
// length (extended ones too), answers with data, warnings with and without data, and errors.
template <class H, class C>
void cross_round_trip() {
  const Bytes enc = from_hex("404142434445464748494A4B4C4D4E4F");
  const Bytes mac = from_hex("505152535455565758595A5B5C5D5E5F");
  const Bytes card_aid = from_hex("F0736B696C6C6361726401");
  const Bytes div(as_bytes("4201000001").begin(), as_bytes("4201000001").end());
  for (std::uint8_t lvl :
       {std::uint8_t{0x01}, std::uint8_t{0x03}, std::uint8_t{0x11}, std::uint8_t{0x13}, std::uint8_t{0x33}}) {
    SCOPED_TRACE(static_cast<int>(lvl));
    HostSession<H> host;
    CardSession<C> card;
    const auto iu = host.initialize_update(0x22);
    const auto iu_rsp =
        card.initialize_update(enc, mac, iu.p1(), 7, CardSession<C>::host_challenge_of(iu), card_aid, div);
    const auto info = HostSession<H>::parse_initialize_update_response(iu_rsp);
    EXPECT_EQ(Bytes(info.diversification_data.begin(), info.diversification_data.end()), div);
    EXPECT_EQ(info.sequence_counter, 7u);
    card.external_authenticate(host.external_authenticate(enc, mac, info, lvl));
    for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 200u, 239u, 240u, 247u, 248u, 510u, 1000u}) {
      SCOPED_TRACE(n);
      Bytes data(n);
      for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(i * 7 + n);
      for (const auto& plain :
           {n == 0 ? CommandApdu(0x80, 0x32, 0x01, 0x00, 256) : CommandApdu(0x80, 0x40, 0, 0, data),
            n == 0 ? CommandApdu(0x00, 0x20, 0x00, 0x81) : CommandApdu(0x00, 0x20, 0, 0x81, data, 256)}) {
        const auto wrapped = host.wrap(plain);
        // What crosses the wire parses back to the same command, however it was encoded.
        EXPECT_EQ(card.unwrap(CommandApdu::parse(wrapped.encode())), plain);
        const auto answer = card.wrap_response(data, StatusWord::Success);
        EXPECT_EQ(host.unwrap(ResponseApdu(answer, StatusWord::Success)).data(), data);
      }
      // A warning (63C2) is protected; an error (6985) travels alone and keeps the session.
      card.unwrap(host.wrap(CommandApdu(0x00, 0x20, 0x00, 0x81, Bytes(12, 0x31), 256)));
      const auto warning = card.wrap_response({}, iso7816::make_sw(0x63, 0xC2));
      EXPECT_EQ(warning.size(), (lvl & level::kRMac) ? 8u : 0u);
      EXPECT_EQ(host.unwrap(ResponseApdu(warning, iso7816::make_sw(0x63, 0xC2))).sw(), iso7816::make_sw(0x63, 0xC2));
      card.unwrap(host.wrap(CommandApdu(0x80, 0x36, 0x00, 0x00, Bytes(37, 0x01), 256)));
      EXPECT_TRUE(card.wrap_response(Bytes(3), StatusWord::ConditionsNotSatisfied).empty());
      EXPECT_EQ(host.unwrap(ResponseApdu(StatusWord::ConditionsNotSatisfied)).sw(), StatusWord::ConditionsNotSatisfied);
      EXPECT_TRUE(host.is_open());
      EXPECT_TRUE(card.is_open());
    }
    EXPECT_EQ(host.counter(), card.counter());
  }
}

TEST(Scp03SessionCross, OpenSslHostMbedTlsCard) { cross_round_trip<OpenSsl, MbedTls>(); }
TEST(Scp03SessionCross, MbedTlsHostOpenSslCard) { cross_round_trip<MbedTls, OpenSsl>(); }
