// libFuzzer target for the BER-TLV parser. Arbitrary bytes must either be refused with TlvError
// (any other exception escapes and is reported as a crash) or parse into objects that encode
// back to exactly the input, at the top level and inside every constructed object.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "skillcard/iso7816/tlv.hpp"

using namespace skillcard;
using namespace skillcard::iso7816;

namespace {

void check(ByteView input) {
  std::vector<Tlv> tlvs;
  try {
    tlvs = parse_tlvs(input);
  } catch (const TlvError&) {
    return;
  }
  Bytes again;
  for (const Tlv& t : tlvs) {
    const Bytes e = encode_tlv(t.tag, t.value);
    again.insert(again.end(), e.begin(), e.end());
    if (find_tlv(tlvs, t.tag) == nullptr) std::abort();
    // Each nesting level eats at least two bytes, so recursion depth stays below size / 2.
    if (t.constructed()) check(t.value);
  }
  if (!std::equal(again.begin(), again.end(), input.begin(), input.end())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check(ByteView(data, size));
  return 0;
}
