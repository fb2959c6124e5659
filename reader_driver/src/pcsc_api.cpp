// The real PcscApi over libpcsclite.
#include "skillcard/reader/pcsc_api.hpp"

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <cstdio>

namespace skillcard::reader {

namespace {

static_assert(code::kNoSmartcard == static_cast<PcscCode>(static_cast<std::uint32_t>(SCARD_E_NO_SMARTCARD)));

// PC/SC's LONG is signed; its error codes have the top bit set. Keep them as the positive
// 32-bit numbers everyone writes (0x8010000C), whatever LONG's width is.
PcscCode norm(LONG rc) { return static_cast<PcscCode>(static_cast<std::uint32_t>(rc)); }

class SystemPcsc final : public PcscApi {
 public:
  PcscCode establish_context(PcscHandle* context) override {
    SCARDCONTEXT ctx = 0;
    const auto rc = norm(SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx));
    *context = static_cast<PcscHandle>(ctx);
    return rc;
  }
  PcscCode release_context(PcscHandle context) override {
    return norm(SCardReleaseContext(static_cast<SCARDCONTEXT>(context)));
  }
  PcscCode list_readers(PcscHandle context, std::vector<std::string>* readers) override {
    readers->clear();
    std::string buffer;
    PcscCode rc = code::kSuccess;
    // A reader plugged in between asking for the size and for the names makes the list longer
    // than the buffer (SCARD_E_INSUFFICIENT_BUFFER): ask again, a few times.
    for (int attempt = 0; attempt < 5; ++attempt) {
      DWORD size = 0;
      rc = norm(SCardListReaders(static_cast<SCARDCONTEXT>(context), nullptr, nullptr, &size));
      if (rc != code::kSuccess) return rc;
      buffer.assign(size, '\0');
      rc = norm(SCardListReaders(static_cast<SCARDCONTEXT>(context), nullptr, buffer.data(), &size));
      if (rc != norm(SCARD_E_INSUFFICIENT_BUFFER)) break;
    }
    if (rc != code::kSuccess) return rc;
    // A multi-string: names separated by NUL, ended by an empty name.
    for (std::size_t pos = 0; pos < buffer.size() && buffer[pos] != '\0';) {
      const auto end = buffer.find('\0', pos);
      readers->push_back(buffer.substr(pos, end - pos));
      pos = end + 1;
    }
    return rc;
  }
  PcscCode get_status_change(PcscHandle context, std::uint32_t timeout_ms, std::vector<ReaderState>& states) override {
    std::vector<SCARD_READERSTATE> native(states.size());
    for (std::size_t i = 0; i < states.size(); ++i) {
      native[i].szReader = states[i].reader.c_str();
      native[i].dwCurrentState = states[i].current_state;
    }
    const auto rc = norm(SCardGetStatusChange(static_cast<SCARDCONTEXT>(context), timeout_ms, native.data(),
                                              static_cast<DWORD>(native.size())));
    for (std::size_t i = 0; i < states.size(); ++i) {
      states[i].event_state = static_cast<std::uint32_t>(native[i].dwEventState);
      states[i].atr.assign(native[i].rgbAtr, native[i].rgbAtr + std::min<DWORD>(native[i].cbAtr, MAX_ATR_SIZE));
    }
    return rc;
  }
  PcscCode cancel(PcscHandle context) override { return norm(SCardCancel(static_cast<SCARDCONTEXT>(context))); }
  PcscCode connect(PcscHandle context, const std::string& reader, Protocol protocols, PcscHandle* card,
                   Protocol* active) override {
    SCARDHANDLE handle = 0;
    DWORD proto = 0;
    const auto rc = norm(SCardConnect(static_cast<SCARDCONTEXT>(context), reader.c_str(), SCARD_SHARE_SHARED,
                                      static_cast<DWORD>(protocols), &handle, &proto));
    *card = static_cast<PcscHandle>(handle);
    *active = static_cast<Protocol>(proto);
    return rc;
  }
  PcscCode reconnect(PcscHandle card, Protocol protocols, Disposition init, Protocol* active) override {
    DWORD proto = 0;
    const auto rc = norm(SCardReconnect(static_cast<SCARDHANDLE>(card), SCARD_SHARE_SHARED,
                                        static_cast<DWORD>(protocols), static_cast<DWORD>(init), &proto));
    *active = static_cast<Protocol>(proto);
    return rc;
  }
  PcscCode disconnect(PcscHandle card, Disposition disposition) override {
    return norm(SCardDisconnect(static_cast<SCARDHANDLE>(card), static_cast<DWORD>(disposition)));
  }
  PcscCode begin_transaction(PcscHandle card) override {
    return norm(SCardBeginTransaction(static_cast<SCARDHANDLE>(card)));
  }
  PcscCode end_transaction(PcscHandle card, Disposition disposition) override {
    return norm(SCardEndTransaction(static_cast<SCARDHANDLE>(card), static_cast<DWORD>(disposition)));
  }
  PcscCode transmit(PcscHandle card, Protocol protocol, ByteView command, Bytes* response) override {
    const SCARD_IO_REQUEST* pci = protocol == Protocol::T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    response->resize(MAX_BUFFER_SIZE_EXTENDED);
    DWORD length = static_cast<DWORD>(response->size());
    const auto rc = norm(SCardTransmit(static_cast<SCARDHANDLE>(card), pci, command.data(),
                                       static_cast<DWORD>(command.size()), nullptr, response->data(), &length));
    response->resize(rc == code::kSuccess ? length : 0);
    return rc;
  }
  PcscCode status(PcscHandle card, Bytes* atr) override {
    BYTE buffer[MAX_ATR_SIZE];
    DWORD atr_len = sizeof buffer;
    DWORD state = 0, proto = 0;
    const auto rc =
        norm(SCardStatus(static_cast<SCARDHANDLE>(card), nullptr, nullptr, &state, &proto, buffer, &atr_len));
    atr->assign(buffer, buffer + (rc == code::kSuccess ? atr_len : 0));
    return rc;
  }
};

}  // namespace

std::shared_ptr<PcscApi> system_pcsc() { return std::make_shared<SystemPcsc>(); }

std::string describe_code(PcscCode rc) {
  const char* name = "unknown PC/SC code";
  switch (rc) {
    case code::kSuccess:
      name = "SCARD_S_SUCCESS";
      break;
    case code::kCancelled:
      name = "SCARD_E_CANCELLED";
      break;
    case code::kInvalidHandle:
      name = "SCARD_E_INVALID_HANDLE";
      break;
    case code::kUnknownReader:
      name = "SCARD_E_UNKNOWN_READER";
      break;
    case code::kTimeout:
      name = "SCARD_E_TIMEOUT";
      break;
    case code::kSharingViolation:
      name = "SCARD_E_SHARING_VIOLATION";
      break;
    case code::kNoSmartcard:
      name = "SCARD_E_NO_SMARTCARD";
      break;
    case code::kCommError:
      name = "SCARD_F_COMM_ERROR";
      break;
    case code::kNotTransacted:
      name = "SCARD_E_NOT_TRANSACTED";
      break;
    case code::kReaderUnavailable:
      name = "SCARD_E_READER_UNAVAILABLE";
      break;
    case code::kNoService:
      name = "SCARD_E_NO_SERVICE";
      break;
    case code::kServiceStopped:
      name = "SCARD_E_SERVICE_STOPPED";
      break;
    case code::kNoReadersAvailable:
      name = "SCARD_E_NO_READERS_AVAILABLE";
      break;
    case code::kUnresponsiveCard:
      name = "SCARD_W_UNRESPONSIVE_CARD";
      break;
    case code::kUnpoweredCard:
      name = "SCARD_W_UNPOWERED_CARD";
      break;
    case code::kResetCard:
      name = "SCARD_W_RESET_CARD";
      break;
    case code::kRemovedCard:
      name = "SCARD_W_REMOVED_CARD";
      break;
    default:
      break;
  }
  char hex[24];  // LONG is 64 bits here: a negative code prints 16 digits
  std::snprintf(hex, sizeof hex, "0x%08llX", static_cast<unsigned long long>(rc));
  return std::string(name) + " (" + hex + ")";
}

}  // namespace skillcard::reader
