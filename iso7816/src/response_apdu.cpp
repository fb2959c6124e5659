// Response APDU encoding and decoding.
#include "skillcard/iso7816/response_apdu.hpp"

#include <string>

namespace skillcard::iso7816 {

ResponseApdu::ResponseApdu(ByteView data, StatusWord sw) : data_(data.begin(), data.end()), sw_(sw) {
  if (data_.size() > kMaxNr) {
    throw std::invalid_argument("data: Nr must be at most 65536, got " + std::to_string(data_.size()));
  }
}

ResponseApdu ResponseApdu::parse(ByteView response) {
  if (response.size() < 2) {
    throw ApduFormatError(StatusWord::WrongLength,
                          "response of " + std::to_string(response.size()) + " bytes has no status word");
  }
  const std::size_t nr = response.size() - 2;
  if (nr > kMaxNr) {
    throw ApduFormatError(StatusWord::WrongLength, "response data of " + std::to_string(nr) + " bytes exceeds 65536");
  }
  return ResponseApdu(response.first(nr), make_sw(response[nr], response[nr + 1]));
}

Bytes ResponseApdu::encode() const {
  Bytes out;
  out.reserve(data_.size() + 2);
  out.insert(out.end(), data_.begin(), data_.end());
  out.push_back(sw1());
  out.push_back(sw2());
  return out;
}

}  // namespace skillcard::iso7816
