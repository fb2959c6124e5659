// PublicKeyCache: parse once per key, find by kid, never confuse two keys.
#include "skillcard/crypto/key_cache.hpp"

#include <gtest/gtest.h>

#include <thread>

using namespace skillcard;
using namespace skillcard::crypto;

TEST(PublicKeyCache, ParsesOncePerKey) {
  PublicKeyCache cache;
  const auto key = OpenSsl::PrivateKey::generate();
  const auto a = cache.get(key.public_key());
  const auto b = cache.get(key.public_key());
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find(kid_of<OpenSsl>(key.public_key())).get(), a.get());
  const auto msg = as_bytes("m");
  EXPECT_TRUE(OpenSsl::verify(*a, msg, key.sign(msg)));
}

TEST(PublicKeyCache, DistinctKeysAndUnknownKid) {
  PublicKeyCache cache;
  const auto k1 = OpenSsl::PrivateKey::generate();
  const auto k2 = OpenSsl::PrivateKey::generate();
  EXPECT_NE(cache.get(k1.public_key()).get(), cache.get(k2.public_key()).get());
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find(Kid{}), nullptr);
}

TEST(PublicKeyCache, OffCurveKeyIsNotCached) {
  PublicKeyCache cache;
  Bytes point(65, 0x01);
  point[0] = 0x04;
  EXPECT_THROW(cache.get(EcPublicKey::from_uncompressed(point)), CryptoError);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(PublicKeyCache, CapacityBoundsMemory) {
  PublicKeyCache cache(4);
  for (int i = 0; i < 10; ++i) cache.get(OpenSsl::PrivateKey::generate().public_key());
  EXPECT_LE(cache.size(), 4u);
}

TEST(PublicKeyCache, ConcurrentUse) {
  PublicKeyCache cache;
  const auto key = OpenSsl::PrivateKey::generate();
  const auto msg = as_bytes("concurrent");
  const auto sig = key.sign(msg);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) ok += OpenSsl::verify(*cache.get(key.public_key()), msg, sig) ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(cache.size(), 1u);
}
