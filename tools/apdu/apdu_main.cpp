// skillcard-apdu: lists PC/SC readers, watches card and reader events, and sends APDUs given in
// hex — the same driver the counter, site and kiosk use, for a real CCID reader or the
// simulator behind pcscd + vpcd. Data fields are hidden in traces unless --secure-debug.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "skillcard/reader/event_monitor.hpp"
#include "skillcard/reader/pcsc.hpp"

using namespace skillcard;
using namespace skillcard::reader;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }

int list_readers() {
  Context context;
  const auto readers = context.readers();
  if (readers.empty()) {
    std::cout << "no readers (is a reader plugged in, or vpcd configured?)\n";
    return 0;
  }
  for (const auto& name : readers) {
    std::cout << name << ": ";
    try {
      auto connection = context.connect(name);
      std::cout << "card present, ATR " << to_hex(connection->atr()) << "\n";
    } catch (const NoCardError&) {
      std::cout << "empty\n";
    } catch (const iso7816::CardError& e) {
      std::cout << e.what() << "\n";
    }
  }
  return 0;
}

int watch() {
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  EventMonitor monitor(system_pcsc(), [](const ReaderEvent& e) {
    std::cout << to_string(e.kind) << (e.reader.empty() ? "" : ": " + e.reader)
              << (e.atr.empty() ? "" : " ATR " + to_hex(e.atr)) << std::endl;
  });
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return 0;
}

int send(const std::string& reader_name, const std::vector<std::string>& apdus, bool short_only, bool secure_debug,
         bool raw) {
  // Every APDU parsed before the card is touched: a typo in the third must not leave the first
  // two sent (a VERIFY counts a try).
  std::vector<iso7816::CommandApdu> commands;
  for (std::size_t i = 0; i < apdus.size(); ++i) {
    const auto& hex = apdus[i];
    try {
      commands.push_back(iso7816::CommandApdu::parse(from_hex(hex)));
    } catch (const std::exception& e) {
      // The header only, as the traces: the data may be a PIN block or a key (a VERIFY typed
      // with a wrong length), and stderr ends up in logs.
      const auto shown = secure_debug ? hex : hex.substr(0, std::min<std::size_t>(hex.size(), 8)) + "…";
      throw std::invalid_argument("APDU " + std::to_string(i + 1) + " ('" + shown + "', " + std::to_string(hex.size()) +
                                  " hex digits): " + e.what() + "; nothing was sent");
    }
  }
  Context context;
  std::string name = reader_name;
  if (name.empty()) {
    for (const auto& r : context.readers()) {
      try {
        context.connect(r);
        name = r;
        break;
      } catch (const NoCardError&) {
      }
    }
    if (name.empty()) throw iso7816::CardError("no reader with a card; name one with --reader");
  }
  auto connection = context.connect(name);
  TraceOptions trace{secure_debug, [](const std::string& line) { std::cerr << line << "\n"; }};
  PcscChannel channel(*connection, short_only ? LengthMode::ShortWithChaining : LengthMode::Extended, trace);
  auto tx = connection->begin_transaction();  // our APDUs are never interleaved with another application's
  int worst = 0;
  for (const auto& command : commands) {
    const auto response = raw ? channel.transmit(command) : iso7816::transmit_all(channel, command);
    std::cout << to_hex(response.data()) << (response.data().empty() ? "" : " ") << iso7816::to_string(response.sw())
              << "  " << iso7816::describe(response.sw()) << "\n";
    if (!response.is_success()) worst = 1;
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skillcard-apdu: PC/SC readers, events and APDUs (docs/readers.md)"};
  app.require_subcommand(1);
  app.add_subcommand("list", "list readers, with the ATR of any card present");
  app.add_subcommand("watch", "print card and reader events until Ctrl-C");
  std::string reader;
  std::vector<std::string> apdus;
  bool short_only = false, secure_debug = false, raw = false;
  auto* send_cmd = app.add_subcommand("send", "send APDUs (hex) in one transaction; exit 1 if any answer is not 9000");
  send_cmd->add_option("--reader", reader, "reader name (default: the first with a card)");
  send_cmd->add_flag("--short", short_only, "short APDUs only: chain long commands, cap Le at 256");
  send_cmd->add_flag("--raw", raw, "do not follow 61xx / 6Cxx");
  send_cmd->add_flag("--secure-debug", secure_debug, "trace APDU data too (PINs and keys appear!)");
  send_cmd->add_option("apdu", apdus, "APDUs in hex, e.g. 00A4040007A0000000041010")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; any other parse error is bad arguments, exit 2 (CLI11 prints why).
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (app.got_subcommand("list")) return list_readers();
    if (app.got_subcommand("watch")) return watch();
    return send(reader, apdus, short_only, secure_debug, raw);
  } catch (const ServiceNotRunningError& e) {
    std::cerr << "skillcard-apdu: the PC/SC service is not running (start pcscd): " << e.what() << "\n";
    return 3;
  } catch (const iso7816::UnknownOutcomeError& e) {
    std::cerr << "skillcard-apdu: unknown outcome: " << e.what() << "\n";
    return 4;
  } catch (const iso7816::CardError& e) {
    std::cerr << "skillcard-apdu: " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-apdu: " << e.what() << "\n";
    return 2;
  }
}
