// The diagnostic echo applet's commands.
#include "skillcard/card/echo_applet.hpp"

#include <algorithm>

#include "skillcard/iso7816/status_word.hpp"

namespace skillcard::card {

using iso7816::StatusWord;
using iso7816::StatusWordError;

namespace {

std::size_t p1p2(const iso7816::CommandApdu& c) { return static_cast<std::size_t>((c.p1() << 8) | c.p2()); }

void require_p1p2_zero(const iso7816::CommandApdu& c) {
  if (c.p1() != 0 || c.p2() != 0) throw StatusWordError(StatusWord::IncorrectP1P2);
}

void require_range(const AppletStorage& storage, std::size_t offset, std::size_t length) {
  if (offset > storage.size() || length > storage.size() - offset) {
    throw StatusWordError(StatusWord::WrongP1P2, "outside the storage window");
  }
}

}  // namespace

const Bytes& EchoApplet::kAid() {
  static const Bytes aid{0xF0, 0x73, 0x6B, 0x69, 0x6C, 0x6C, 0x63, 0x61, 0x72, 0x64, 0xFE};
  return aid;
}

Bytes EchoApplet::process(const iso7816::CommandApdu& command, AppletContext& context) {
  if (command.cla() != kCla) {
    const bool secure = (command.cla() & 0x0C) != 0;
    throw StatusWordError(secure ? StatusWord::SecureMessagingNotSupported : StatusWord::ClaNotSupported);
  }
  const Bytes& data = command.data();
  switch (command.ins()) {
    case kInsEcho:
      require_p1p2_zero(command);
      if (data.empty()) throw StatusWordError(StatusWord::WrongLength, "ECHO needs data");
      return data;
    case kInsGenerate: {
      require_p1p2_zero(command);
      if (!data.empty() || !command.ne()) throw StatusWordError(StatusWord::WrongLength, "GENERATE is case 2");
      Bytes out(*command.ne());
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(i);
      return out;
    }
    case kInsIncrement: {
      require_p1p2_zero(command);
      if (!data.empty()) throw StatusWordError(StatusWord::WrongLength);
      auto& storage = context.storage();
      require_range(storage, 0, 4);
      const ByteView v = storage.read(0, 4);
      const std::uint32_t next =
          ((std::uint32_t{v[0]} << 24) | (std::uint32_t{v[1]} << 16) | (std::uint32_t{v[2]} << 8) | v[3]) + 1;
      const Bytes out{static_cast<std::uint8_t>(next >> 24), static_cast<std::uint8_t>(next >> 16),
                      static_cast<std::uint8_t>(next >> 8), static_cast<std::uint8_t>(next)};
      auto tx = storage.begin();
      tx.write(0, out);
      tx.commit();
      return out;
    }
    case kInsWrite: {
      if (data.empty()) throw StatusWordError(StatusWord::WrongLength, "WRITE needs data");
      auto& storage = context.storage();
      require_range(storage, p1p2(command), data.size());
      auto tx = storage.begin();
      try {
        tx.write(p1p2(command), data);
      } catch (const TransactionTooLarge&) {
        throw StatusWordError(StatusWord::WrongLength, "WRITE spans more pages than one commit holds");
      }
      tx.commit();
      return {};
    }
    case kInsRead: {
      if (!data.empty() || !command.ne()) throw StatusWordError(StatusWord::WrongLength, "READ is case 2");
      const auto& storage = context.storage();
      const std::size_t offset = p1p2(command);
      if (offset >= storage.size()) throw StatusWordError(StatusWord::WrongP1P2, "outside the storage window");
      // Like READ BINARY: a read running past the end returns what there is.
      const ByteView bytes = storage.read(offset, std::min(*command.ne(), storage.size() - offset));
      return Bytes(bytes.begin(), bytes.end());
    }
    case kInsSetVolatile: {
      require_p1p2_zero(command);
      if (data.empty() || data.size() > kVolatileCapacity) throw StatusWordError(StatusWord::WrongLength);
      auto ram = context.transient();
      ram[0] = static_cast<std::uint8_t>(data.size());
      std::copy(data.begin(), data.end(), ram.begin() + 1);
      return {};
    }
    case kInsGetVolatile: {
      require_p1p2_zero(command);
      if (!data.empty()) throw StatusWordError(StatusWord::WrongLength);
      auto ram = context.transient();
      return Bytes(ram.begin() + 1, ram.begin() + 1 + ram[0]);
    }
    case kInsRaise: {
      // 61xx-6Fxx and 9000 only: anything else is no status word (61xx and 6Cxx become 6F00).
      const bool plausible =
          (command.p1() >= 0x61 && command.p1() <= 0x6F) || (command.p1() == 0x90 && command.p2() == 0);
      if (!plausible) throw StatusWordError(StatusWord::IncorrectP1P2, "RAISE of a non-status word");
      throw StatusWordError(iso7816::make_sw(command.p1(), command.p2()), "raised on request");
    }
    default:
      throw StatusWordError(StatusWord::InsNotSupported);
  }
}

}  // namespace skillcard::card
