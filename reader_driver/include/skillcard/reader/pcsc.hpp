// RAII over PC/SC: a Context (SCARDCONTEXT), a Connection to one reader's card (SCARDHANDLE),
// a Transaction scope guard, and PcscChannel, the core CardChannel over a connection.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "skillcard/iso7816/card_channel.hpp"
#include "skillcard/reader/errors.hpp"
#include "skillcard/reader/pcsc_api.hpp"

namespace skillcard::reader {

class Connection;

class Context {
 public:
  explicit Context(std::shared_ptr<PcscApi> api = system_pcsc());  // ServiceNotRunningError, ...
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Reader names; empty when no reader is attached (not an error for a caller listing them).
  std::vector<std::string> readers() const;
  std::unique_ptr<Connection> connect(const std::string& reader, Protocol protocols = Protocol::Any) const;
  // Ends a blocking call on this context from another thread (SCardCancel).
  void cancel() const;
  // Blocks until the card of `card` has left its reader (taken out, even if another card was
  // put in since, or the reader itself gone): true; or until `timeout` has passed with that card
  // still there: false. Throws what SCardGetStatusChange fails with otherwise (CancelledError
  // after cancel()).
  bool wait_until_removed(const Connection& card, std::chrono::milliseconds timeout) const;
  const std::shared_ptr<PcscApi>& api() const noexcept { return api_; }
  PcscHandle handle() const noexcept { return handle_; }

 private:
  std::shared_ptr<PcscApi> api_;
  PcscHandle handle_ = 0;
};

class Transaction;

class Connection {
 public:
  Connection(std::shared_ptr<PcscApi> api, PcscHandle card, std::string reader, Protocol active);
  ~Connection();  // SCardDisconnect, leaving the card as it is
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& reader() const noexcept { return reader_; }
  Protocol protocol() const noexcept { return protocol_; }
  Bytes atr() const;
  // Whether the card this connection was made to is still in the reader (SCardStatus): false
  // once it was taken out, even if another card has been put in since — the kiosk then clears
  // the screen at once instead of waiting for the new card to leave.
  bool same_card_present() const;
  // After CardResetError, or to reset the card on purpose (Disposition::Reset).
  void reconnect(Disposition init);
  // Exclusive use of the card until the guard ends (SCardBeginTransaction/EndTransaction).
  Transaction begin_transaction();
  // One SCardTransmit. Returns PC/SC's code; `response` holds the raw answer on success.
  PcscCode transmit_raw(ByteView command, Bytes* response);
  PcscApi& api() noexcept { return *api_; }
  PcscHandle handle() const noexcept { return card_; }

 private:
  std::shared_ptr<PcscApi> api_;
  PcscHandle card_;
  std::string reader_;
  Protocol protocol_;
};

// Ends the transaction when it goes out of scope; end() ends it early and can reset the card.
class Transaction {
 public:
  explicit Transaction(Connection& connection);
  ~Transaction();
  Transaction(Transaction&& other) noexcept : connection_(other.connection_) { other.connection_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  void end(Disposition disposition = Disposition::Leave);

 private:
  Connection* connection_;
};

// APDU trace: command headers and status words only, never data (PINs, keys, personal data),
// unless secure debugging is switched on for a session on purpose.
struct TraceOptions {
  bool secure_debug = false;
  std::function<void(const std::string&)> sink;  // no sink: no trace
};

enum class LengthMode {
  Extended,           // send extended-length APDUs when a command needs them
  ShortWithChaining,  // split long commands with command chaining (ISO 7816-4 §5.1.1.1)
};

// The core CardChannel over a PC/SC connection. transmit() is one exchange as the contract
// says (61xx/6Cxx are followed by iso7816::transmit_all on top), except that long commands
// are chained in ShortWithChaining mode. Errors:
// - no card when sending (SCARD_E_NO_SMARTCARD): iso7816::CardRemovedError, it did not run;
// - an answer shorter than 2 bytes, or the card removed or mute mid-command (with vpcd: success
//   with 0 bytes, then SCARD_E_NOT_TRANSACTED, then SCARD_W_REMOVED_CARD): UnknownOutcomeError;
// - SCARD_W_RESET_CARD before sending: CardResetError (the card's session state is gone).
class PcscChannel final : public iso7816::CardChannel {
 public:
  explicit PcscChannel(Connection& connection, LengthMode mode = LengthMode::Extended, TraceOptions trace = {});
  iso7816::ResponseApdu transmit(const iso7816::CommandApdu& command) override;
  Bytes atr() const override;
  void reset() override;

 private:
  iso7816::ResponseApdu exchange(const iso7816::CommandApdu& command);
  Connection& connection_;
  LengthMode mode_;
  TraceOptions trace_;
};

}  // namespace skillcard::reader
