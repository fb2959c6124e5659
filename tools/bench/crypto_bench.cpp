// Crypto benchmarks (JSON lines): ES256 verify through our API with a cached key against raw
// OpenSSL in the same run (goal >= 0.95x), what caching the parsed key saves, the card
// backend's sign and verify, and the SCP03 KDF.
#include <openssl/evp.h>

#include "bench_json.hpp"
#include "skillcard/crypto/key_cache.hpp"
#include "skillcard/crypto/mbedtls.hpp"
#include "skillcard/crypto/openssl.hpp"
#include "skillcard/crypto/scp03.hpp"

using namespace skillcard;
using namespace skillcard::crypto;

int main(int argc, char** argv) {
  const bool quick =
      bench::quick_only(argc, argv, "crypto_bench [--quick]   (--quick: fewer and shorter rounds, as CI runs it)");
  const int rounds = quick ? 3 : 7;
  const auto per_round = quick ? std::chrono::milliseconds(60) : std::chrono::milliseconds(200);

  const auto key = OpenSsl::PrivateKey::generate();
  // A voucher-token-sized message (the Sig_structure of a ~180-byte COSE_Sign1).
  Bytes message(160);
  OpenSsl::random_bytes(message);
  const auto sig = key.sign(message);

  // Raw OpenSSL baseline: pre-parsed EVP_PKEY and a pre-encoded DER signature, the idiomatic
  // EVP_DigestVerify per operation.
  unsigned char der[80];
  std::size_t der_len = sizeof der;
  {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.native());
    EVP_DigestSign(ctx, der, &der_len, message.data(), message.size());
    EVP_MD_CTX_free(ctx);
  }
  EVP_PKEY* raw_key = key.native();
  auto raw_verify = [&]() -> std::size_t {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, raw_key);
    const int ok = EVP_DigestVerify(ctx, der, der_len, message.data(), message.size());
    EVP_MD_CTX_free(ctx);
    if (ok != 1) std::abort();
    return 1;
  };

  // The service's path: the token's protected header names the kid; the key comes from the
  // cache by kid (put there when the trust list was loaded).
  PublicKeyCache cache;
  const auto pub = key.public_key();
  const auto kid = kid_of<OpenSsl>(pub);
  cache.get(pub);
  auto cached_verify = [&]() -> std::size_t {
    if (!OpenSsl::verify(*cache.find(kid), message, sig)) std::abort();
    return 1;
  };
  auto uncached_verify = [&]() -> std::size_t {
    if (!OpenSsl::verify(pub, message, sig)) std::abort();
    return 1;
  };

  bool ok = true;
  auto c = bench::compare(cached_verify, raw_verify, rounds, per_round);
  ok &= bench::report("crypto.es256_verify_cached", c.value, "ops/s", c.baseline, 0.95,
                      "OpenSsl::verify via PublicKeyCache vs raw EVP_DigestVerify, same key and message");
  c = bench::compare(uncached_verify, cached_verify, rounds, per_round);
  bench::report("crypto.es256_verify_uncached", c.value, "ops/s", c.baseline, std::nullopt,
                "parsing the key on every verify, against the cached path: why keys are cached by kid");

  const auto card_key = MbedTls::PrivateKey::from_scalar(key.scalar().view());
  const auto card_vkey = MbedTls::VerifyKey::parse(pub);
  c = bench::compare([&]() -> std::size_t { return MbedTls::verify(card_vkey, message, sig) ? 1 : 0; }, cached_verify,
                     rounds, per_round);
  bench::report("crypto.mbedtls_es256_verify", c.value, "ops/s", c.baseline, std::nullopt,
                "card backend verify against the OpenSSL cached path");
  // Signatures are consumed (their first byte is folded into a sink) so none is optimised away.
  volatile std::uint8_t sink = 0;
  c = bench::compare(
      [&]() -> std::size_t {
        sink = static_cast<std::uint8_t>(sink ^ card_key.sign(message)[0]);
        return 1;
      },
      [&]() -> std::size_t {
        sink = static_cast<std::uint8_t>(sink ^ key.sign(message)[0]);
        return 1;
      },
      rounds, per_round);
  bench::report("crypto.mbedtls_es256_sign", c.value, "ops/s", c.baseline, std::nullopt,
                "card backend deterministic sign against OpenSSL sign");

  const Bytes k(16, 0x42);
  const Bytes ctx(16, 0x17);
  c = bench::compare(
      [&]() -> std::size_t { return scp03::kdf<MbedTls>(k, scp03::Constant::SMac, 128, ctx).size() == 16; },
      [&]() -> std::size_t { return scp03::kdf<OpenSsl>(k, scp03::Constant::SMac, 128, ctx).size() == 16; }, rounds,
      per_round);
  bench::report("crypto.scp03_kdf_mbedtls", c.value, "ops/s", c.baseline, std::nullopt,
                "one 128-bit SCP03 KDF output, card backend against OpenSSL");
  return ok ? 0 : 1;
}
