// libFuzzer target for the APDU decoders. Arbitrary bytes must either be refused with
// ApduFormatError (any other exception escapes and is reported as a crash) or decode to a value
// whose encoding in the same length form gives back exactly the input, and which survives
// parse(encode(x)) == x in both forms. Responses are checked the same way.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "skillcard/iso7816/command_apdu.hpp"
#include "skillcard/iso7816/response_apdu.hpp"

using namespace skillcard;
using namespace skillcard::iso7816;

namespace {

void check_command(ByteView input) {
  std::optional<CommandApdu> parsed;
  try {
    parsed = CommandApdu::parse(input);
  } catch (const ApduFormatError&) {
    return;
  }
  const CommandApdu& command = *parsed;
  // A 00 fifth byte with at least two more bytes after it can only be an extended encoding.
  const bool extended = input.size() >= 7 && input[4] == 0x00;
  const Bytes same_form = command.encode(extended ? LengthForm::Extended : LengthForm::Short);
  if (!std::equal(same_form.begin(), same_form.end(), input.begin(), input.end())) std::abort();
  if (!(CommandApdu::parse(command.encode()) == command)) std::abort();
  if (!(CommandApdu::parse(command.encode(LengthForm::Extended)) == command)) std::abort();
  if (command.header_string().size() < 11) std::abort();

  // Chaining must cut the data into pieces that join back, with the bit on all but the last.
  const std::size_t chunk = 1 + input.back() % 255;
  std::vector<CommandApdu> parts;
  try {
    parts = split_for_chaining(command, chunk);
  } catch (const std::invalid_argument&) {
    return;  // proprietary class or already chained, with data longer than one chunk
  }
  Bytes joined;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    if (parts.size() > 1 && parts[i].is_chained() == last) std::abort();
    joined.insert(joined.end(), parts[i].data().begin(), parts[i].data().end());
  }
  if (joined != command.data() || parts.back().ne() != command.ne()) std::abort();
}

void check_response(ByteView input) {
  try {
    const ResponseApdu response = ResponseApdu::parse(input);
    const Bytes again = response.encode();
    if (!std::equal(again.begin(), again.end(), input.begin(), input.end())) std::abort();
  } catch (const ApduFormatError&) {
    if (input.size() >= 2 && input.size() <= ResponseApdu::kMaxNr + 2) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  check_command(input);
  check_response(input);
  return 0;
}
