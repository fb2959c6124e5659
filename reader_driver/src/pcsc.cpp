// Context, Connection, Transaction and PcscChannel.
#include "skillcard/reader/pcsc.hpp"

#include <algorithm>
#include <optional>

namespace skillcard::reader {

using iso7816::CommandApdu;
using iso7816::ResponseApdu;

Context::Context(std::shared_ptr<PcscApi> api) : api_(std::move(api)) {
  check(api_->establish_context(&handle_), "SCardEstablishContext", "");
}

Context::~Context() { api_->release_context(handle_); }

std::vector<std::string> Context::readers() const {
  std::vector<std::string> names;
  const auto rc = api_->list_readers(handle_, &names);
  if (rc == code::kNoReadersAvailable) return {};
  check(rc, "SCardListReaders", "");
  return names;
}

std::unique_ptr<Connection> Context::connect(const std::string& reader, Protocol protocols) const {
  PcscHandle card = 0;
  Protocol active = Protocol::T1;
  check(api_->connect(handle_, reader, protocols, &card, &active), "SCardConnect", reader);
  return std::make_unique<Connection>(api_, card, reader, active);
}

void Context::cancel() const { api_->cancel(handle_); }

bool Context::wait_until_removed(const Connection& card, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<ReaderState> states{{card.reader(), state::kUnaware, 0, {}}};
  std::optional<std::uint32_t> events;  // the reader's insert/remove counter at the first look
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const auto rc =
        api_->get_status_change(handle_, static_cast<std::uint32_t>(std::max<std::int64_t>(0, left.count())), states);
    if (rc == code::kTimeout) return false;
    if (rc == code::kUnknownReader || rc == code::kReaderUnavailable) return true;  // the reader went with it
    check(rc, "SCardGetStatusChange", card.reader());
    const auto now = states[0].event_state;
    if ((now & (state::kEmpty | state::kUnknown | state::kUnavailable)) != 0) return true;
    // A card is there; it is the connection's own only if nothing was taken out since: before
    // the first look the connection knows (SCardStatus), after it the event counter does, which
    // counts a removal and an insertion too quick for any one look to see the reader empty.
    if (!events) {
      events = now >> 16;
      if (!card.same_card_present()) return true;
    } else if ((now >> 16) != *events) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    states[0].current_state = now & ~state::kChanged;
  }
}

Connection::Connection(std::shared_ptr<PcscApi> api, PcscHandle card, std::string reader, Protocol active)
    : api_(std::move(api)), card_(card), reader_(std::move(reader)), protocol_(active) {}

Connection::~Connection() { api_->disconnect(card_, Disposition::Leave); }

Bytes Connection::atr() const {
  Bytes atr;
  check(api_->status(card_, &atr), "SCardStatus", reader_);
  return atr;
}

bool Connection::same_card_present() const {
  Bytes atr;
  const auto rc = api_->status(card_, &atr);
  if (rc == code::kSuccess) return true;
  if (rc == code::kRemovedCard || rc == code::kNoSmartcard || rc == code::kResetCard || rc == code::kUnpoweredCard ||
      rc == code::kReaderUnavailable)
    return false;
  check(rc, "SCardStatus", reader_);
  return true;
}

void Connection::reconnect(Disposition init) {
  check(api_->reconnect(card_, Protocol::Any, init, &protocol_), "SCardReconnect", reader_);
}

Transaction Connection::begin_transaction() { return Transaction(*this); }

PcscCode Connection::transmit_raw(ByteView command, Bytes* response) {
  return api_->transmit(card_, protocol_, command, response);
}

Transaction::Transaction(Connection& connection) : connection_(&connection) {
  check(connection.api().begin_transaction(connection.handle()), "SCardBeginTransaction", connection.reader());
}

Transaction::~Transaction() {
  if (connection_ != nullptr) connection_->api().end_transaction(connection_->handle(), Disposition::Leave);
}

void Transaction::end(Disposition disposition) {
  if (connection_ == nullptr) return;
  auto* c = connection_;
  connection_ = nullptr;
  check(c->api().end_transaction(c->handle(), disposition), "SCardEndTransaction", c->reader());
}

PcscChannel::PcscChannel(Connection& connection, LengthMode mode, TraceOptions trace)
    : connection_(connection), mode_(mode), trace_(std::move(trace)) {}

Bytes PcscChannel::atr() const { return connection_.atr(); }

void PcscChannel::reset() { connection_.reconnect(Disposition::Reset); }

ResponseApdu PcscChannel::transmit(const CommandApdu& command) {
  if (mode_ == LengthMode::ShortWithChaining && command.is_extended_required() && command.data().size() > 255) {
    const auto pieces = iso7816::split_for_chaining(command);
    for (std::size_t i = 0; i + 1 < pieces.size(); ++i) {
      const auto answer = exchange(pieces[i]);
      // A card that refuses a link of the chain ends it: its status word is the answer.
      if (!answer.is_success()) return answer;
    }
    return exchange(pieces.back());
  }
  return exchange(command);
}

ResponseApdu PcscChannel::exchange(const CommandApdu& requested) {
  // A reader limited to short APDUs asks for at most 256 bytes; the card offers the rest with
  // 61xx, which iso7816::transmit_all collects.
  const bool shorten = mode_ == LengthMode::ShortWithChaining && requested.ne() && *requested.ne() > 256;
  const CommandApdu command = shorten ? requested.with_ne(256) : requested;
  const auto encoded = mode_ == LengthMode::Extended ? command.encode() : command.encode(iso7816::LengthForm::Short);
  if (trace_.sink) {
    trace_.sink("> " + connection_.reader() + " " +
                (trace_.secure_debug ? to_hex(encoded) : command.header_string() + " (data hidden)"));
  }
  Bytes response;
  const auto rc = connection_.transmit_raw(encoded, &response);
  const std::string where = "reader '" + connection_.reader() + "'";
  switch (rc) {
    case code::kSuccess:
      break;
    case code::kNoSmartcard:
      throw iso7816::CardRemovedError("no card in " + where + " when sending " + command.header_string() +
                                      ": the command did not run");
    case code::kResetCard:
      throw CardResetError(rc, "SCardTransmit", connection_.reader(), CallSite::current());
    // Refused before anything went to the reader: the command did not run.
    case code::kInvalidHandle:
    case code::kSharingViolation:
    case code::kUnknownReader:
    case code::kUnpoweredCard:
      throw_pcsc(rc, "SCardTransmit", connection_.reader(), CallSite::current());
    case code::kRemovedCard:
    case code::kNotTransacted:
    case code::kReaderUnavailable:
    case code::kUnresponsiveCard:
    case code::kCommError:
      throw iso7816::UnknownOutcomeError("the card in " + where + " went away during " + command.header_string() +
                                         " (" + describe_code(rc) + "): the command may or may not have run");
    default:
      // Anything else may come after the command reached the card — pcscd gone mid-exchange
      // (SCARD_E_NO_SERVICE), an answer larger than the buffer, an internal error — so nothing
      // may conclude that it did not run.
      throw iso7816::UnknownOutcomeError("SCardTransmit to " + where + " failed during " + command.header_string() +
                                         " (" + describe_code(rc) + "): the command may or may not have run");
  }
  if (response.size() < 2) {
    throw iso7816::UnknownOutcomeError("the card in " + where + " answered " + std::to_string(response.size()) +
                                       " bytes to " + command.header_string() +
                                       ": no status word, the command may or may not have run");
  }
  auto answer = ResponseApdu::parse(response);
  if (trace_.sink) {
    trace_.sink("< " + connection_.reader() + " " + iso7816::to_string(answer.sw()) + " (" +
                std::to_string(answer.data().size()) + " bytes" +
                (trace_.secure_debug ? ": " + to_hex(answer.data()) : std::string(", data hidden")) + ")");
  }
  return answer;
}

}  // namespace skillcard::reader
