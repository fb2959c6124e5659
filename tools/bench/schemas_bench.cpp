// Schema benchmarks (JSON lines): encode and decode ops/s of every structure, each against a
// same-run libcbor baseline, and the size of every structure against its limit.
//
// - decode: decode_*() of the signed bytes (strict validation, COSE profile, claims; no
//   signature check) against libcbor's raw cbor_load + cbor_decref of the same bytes: the
//   envelope (outer tag 18 taken off, which libcbor 0.8 refuses), the protected header and the
//   payload. The ratio is what strictness costs; no goal.
// - encode: sign_*() with a constant signature (so no ECDSA: check, build, sort the keys,
//   serialise payload and envelope, Sig_structure) against cbor_serialize_alloc of the same
//   payload and envelope pre-built as libcbor items. No goal.
// - size: value = bytes, baseline = the structure's limit (so ratio = size / limit, lower is
//   better), met = size <= limit.
#include <cbor.h>

#include <cstdlib>

#include "bench_json.hpp"
#include "formats/examples.hpp"

using namespace skillcard;
using namespace skillcard::schemas;
namespace ex = skillcard::examples;

namespace {

volatile std::size_t sink = 0;  // results are folded in here so none is optimised away

struct ItemRef {
  cbor_item_t* item = nullptr;
  explicit ItemRef(cbor_item_t* i) : item(i) {
    if (item == nullptr) throw std::runtime_error("libcbor could not load a benchmark item");
  }
  ItemRef(const ItemRef&) = delete;
  ItemRef& operator=(const ItemRef&) = delete;
  ~ItemRef() { cbor_decref(&item); }
};

cbor_item_t* raw_load(ByteView bytes) {
  cbor_load_result result{};
  cbor_item_t* item = cbor_load(bytes.data(), bytes.size(), &result);
  if (item == nullptr || result.error.code != CBOR_ERR_NONE || result.read != bytes.size()) std::abort();
  return item;
}

std::size_t raw_serialize(const cbor_item_t* item) {
  unsigned char* buffer = nullptr;
  std::size_t capacity = 0;
  const std::size_t n = cbor_serialize_alloc(item, &buffer, &capacity);
  std::free(buffer);
  if (n == 0) std::abort();
  return n;
}

// The tagged COSE_Sign1 without its one-byte tag head (D2): what libcbor 0.8 can load.
ByteView untagged(ByteView signed_bytes) {
  if (signed_bytes.empty() || signed_bytes[0] != 0xD2) throw std::logic_error("expected tag 18");
  return signed_bytes.subspan(1);
}

struct Options {
  int rounds;
  std::chrono::milliseconds per_round;
};

// Encode and decode lines for one signed structure.
template <class Claims, class Sign, class Decode>
void bench_signed(const std::string& name, const Claims& claims, const ex::ExampleKey& key, Sign sign, Decode decode,
                  const Options& o) {
  const Bytes encoded = sign(claims, key.kid, key.signer());
  const auto envelope = CoseSign1::decode(encoded);
  crypto::EcSignature fixed{};
  std::copy(envelope.signature().begin(), envelope.signature().end(), fixed.begin());
  const SignFunction constant = [&fixed](ByteView) { return fixed; };
  if (sign(claims, key.kid, constant) != encoded) throw std::logic_error(name + ": encoder is not deterministic");

  const ItemRef payload_item(raw_load(envelope.payload()));
  cbor_item_t* array = raw_load(untagged(encoded));
  const ItemRef envelope_item(cbor_build_tag(18, array));  // the tag holds its own reference
  cbor_decref(&array);
  auto ours_encode = [&]() -> std::size_t {
    sink = sink + sign(claims, key.kid, constant).size();
    return 1;
  };
  auto libcbor_encode = [&]() -> std::size_t {
    sink = sink + raw_serialize(payload_item.item) + raw_serialize(envelope_item.item);
    return 1;
  };
  auto c = bench::compare(ours_encode, libcbor_encode, o.rounds, o.per_round);
  bench::report("schemas." + name + "_encode", c.value, "ops/s", c.baseline, std::nullopt,
                "sign_* with a constant signature (no ECDSA) vs libcbor cbor_serialize_alloc of the same payload and "
                "envelope pre-built; " +
                    std::to_string(encoded.size()) + " bytes");

  auto ours_decode = [&]() -> std::size_t {
    sink = sink + decode(encoded).envelope.payload().size();
    return 1;
  };
  auto libcbor_decode = [&]() -> std::size_t {
    cbor_item_t* outer = raw_load(untagged(encoded));
    cbor_item_t* header = raw_load(envelope.protected_bytes());
    cbor_item_t* payload = raw_load(envelope.payload());
    sink = sink + cbor_map_size(payload) + cbor_map_size(header) + cbor_array_size(outer);
    cbor_decref(&payload);
    cbor_decref(&header);
    cbor_decref(&outer);
    return 1;
  };
  c = bench::compare(ours_decode, libcbor_decode, o.rounds, o.per_round);
  bench::report("schemas." + name + "_decode", c.value, "ops/s", c.baseline, std::nullopt,
                "strict decode_* (no signature check) vs libcbor 0.8 cbor_load+cbor_decref of the same envelope "
                "(outer tag 18 taken off), protected header and payload; " +
                    std::to_string(encoded.size()) + " bytes");
}

void bench_record(const CertificateRecord& record, const Options& o) {
  const Bytes encoded = encode(record);
  const ItemRef item(raw_load(encoded));
  auto c = bench::compare(
      [&]() -> std::size_t {
        sink = sink + encode(record).size();
        return 1;
      },
      [&]() -> std::size_t {
        sink = sink + raw_serialize(item.item);
        return 1;
      },
      o.rounds, o.per_round);
  bench::report("schemas.certificate_record_encode", c.value, "ops/s", c.baseline, std::nullopt,
                "encode() (check, build, sort, serialise) vs libcbor cbor_serialize_alloc of the same map pre-built; " +
                    std::to_string(encoded.size()) + " bytes");
  c = bench::compare(
      [&]() -> std::size_t {
        sink = sink + decode_certificate_record(encoded).issuer.size();
        return 1;
      },
      [&]() -> std::size_t {
        cbor_item_t* map = raw_load(encoded);
        sink = sink + cbor_map_size(map);
        cbor_decref(&map);
        return 1;
      },
      o.rounds, o.per_round);
  bench::report("schemas.certificate_record_decode", c.value, "ops/s", c.baseline, std::nullopt,
                "strict decode_certificate_record vs libcbor 0.8 cbor_load+cbor_decref of the same bytes; " +
                    std::to_string(encoded.size()) + " bytes");
}

bool size_line(const std::string& name, std::size_t size, std::size_t limit, const std::string& what) {
  const bool met = size <= limit;
  bench::report("schemas." + name + "_size", static_cast<double>(size), "bytes", static_cast<double>(limit),
                std::nullopt, what + "; baseline = the limit (" + std::to_string(limit) + " bytes), lower is better",
                met);
  return met;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick =
      bench::quick_only(argc, argv, "schemas_bench [--quick]   (--quick: fewer and shorter rounds, as CI runs it)");
  const Options o{quick ? 3 : 7, quick ? std::chrono::milliseconds(60) : std::chrono::milliseconds(200)};
  try {
    const ex::Keys k;
    bench_signed("voucher_token", ex::voucher(), k.voucher_signer, sign_voucher, decode_voucher_token, o);
    bench_signed("receipt", ex::receipt(), k.card_receipt, sign_receipt, decode_receipt, o);
    bench_signed("card_certificate", ex::card_certificate(k), k.card_ca, sign_card_certificate, decode_card_certificate,
                 o);
    bench_record(ex::record(), o);
    bench_signed("portfolio_digest", ex::portfolio_digest(), k.portfolio_signer, sign_portfolio_digest,
                 decode_portfolio_digest, o);
    bench_signed("trust_list", ex::trust_list(k), k.root, sign_trust_list, decode_trust_list, o);

    const auto sized = [](auto sign, const auto& claims, const ex::ExampleKey& key) {
      return sign(claims, key.kid, key.signer()).size();
    };
    bool ok = true;
    ok &= size_line("voucher_token", sized(sign_voucher, ex::voucher(), k.voucher_signer), kMaxVoucherToken,
                    "the example voucher token (docs/formats.md)");
    ok &= size_line("voucher_token_worst", sized(sign_voucher, ex::voucher_worst(), k.voucher_signer), kMaxVoucherToken,
                    "4 eligible codes, 4-byte integers, 65535 hours");
    ok &= size_line("receipt", sized(sign_receipt, ex::receipt(), k.card_receipt), kMaxReceipt, "the example receipt");
    ok &= size_line("receipt_worst", sized(sign_receipt, ex::receipt_worst(), k.card_receipt), kMaxReceipt,
                    "uint32 site, counter and time, 65535 hours");
    ok &= size_line("card_certificate", sized(sign_card_certificate, ex::card_certificate(k), k.card_ca),
                    kMaxCardCertificate, "the example card certificate (fits pages 22-25)");
    ok &= size_line("certificate_record", encode(ex::record()).size(), kMaxCertificateRecord,
                    "the example certificate record");
    ok &= size_line("certificate_record_worst", encode(ex::record_worst()).size(), kMaxCertificateRecord,
                    "128-byte texts, 32-byte salt");
    ok &= size_line("portfolio_digest", sized(sign_portfolio_digest, ex::portfolio_digest(), k.portfolio_signer),
                    kMaxPortfolioDigest, "3 certificate digests");
    ok &= size_line("portfolio_digest_worst",
                    sized(sign_portfolio_digest, ex::portfolio_digest_worst(), k.portfolio_signer), kMaxPortfolioDigest,
                    "11 digests, the card's 510 bytes");
    ok &= size_line("trust_list", sized(sign_trust_list, ex::trust_list(k), k.root), kMaxTrustList, "2 entries");
    ok &= size_line("trust_list_max", sized(sign_trust_list, ex::trust_list_of(kMaxTrustEntries), k.root),
                    kMaxTrustList, "256 entries, the most a decoder takes");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "schemas_bench: " << e.what() << "\n";
    return 1;
  }
}
