// libFuzzer target for one schemas decoder, chosen at build time (SKILLCARD_FUZZ_DECODER).
// Besides "never crash, never allocate what the input merely declares" (-rss_limit_mb), it
// checks determinism: whatever decodes must re-encode to exactly the bytes it came from.
#include <cstdlib>

#include "skillcard/schemas/card_certificate.hpp"
#include "skillcard/schemas/portfolio.hpp"
#include "skillcard/schemas/receipt.hpp"
#include "skillcard/schemas/trust_list.hpp"
#include "skillcard/schemas/voucher.hpp"

using namespace skillcard;
using namespace skillcard::schemas;

namespace {

template <class Claims>
void check_signed(const Signed<Claims>& s) {
  if (encode_payload(s.claims) != Bytes(s.envelope.payload().begin(), s.envelope.payload().end())) std::abort();
}

void run(ByteView in) {
#if SKILLCARD_FUZZ_DECODER == 1
  check_signed(decode_voucher_token(in));
#elif SKILLCARD_FUZZ_DECODER == 2
  check_signed(decode_receipt(in));
#elif SKILLCARD_FUZZ_DECODER == 3
  check_signed(decode_card_certificate(in));
#elif SKILLCARD_FUZZ_DECODER == 4
  check_signed(decode_portfolio_digest(in));
#elif SKILLCARD_FUZZ_DECODER == 5
  if (encode(decode_certificate_record(in)) != Bytes(in.begin(), in.end())) std::abort();
#elif SKILLCARD_FUZZ_DECODER == 6
  check_signed(decode_trust_list(in));
#elif SKILLCARD_FUZZ_DECODER == 7
  // COSE verify: any structure, a verifier that accepts everything, so that every path up to
  // and including the Sig_structure is exercised; the verdict must be consistent.
  const auto cose = CoseSign1::decode(in);
  bool called = false;
  const auto verdict = cose.verify([&](ByteView tbs, const crypto::EcSignature&) {
    called = true;
    return tbs.size() >= 12;
  });
  if (verdict.ok() != called) std::abort();
  if (verdict.ok() && (cose.algorithm() != kAlgEs256 || cose.signature().size() != 64)) std::abort();
#else
#error "SKILLCARD_FUZZ_DECODER must select a decoder"
#endif
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    run(ByteView(data, size));
  } catch (const DecodeError&) {
    // refused with a reason: fine
  }
  return 0;
}
