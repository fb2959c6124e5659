// skillcard-sim: serves one card image to pcscd through vsmartcard's vpcd, so the simulated
// card appears in a real reader. SIGTERM/SIGINT stop it cleanly; SIGUSR1 pulls the card during
// the next APDU (see docs/card-os.md, "skillcard-sim").
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "skillcard/card/card.hpp"
#include "skillcard/card/echo_applet.hpp"
#include "skillcard/card/training_applet.hpp"
#include "skillcard/card/vpcd_client.hpp"

using namespace skillcard;
using namespace skillcard::card;

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitImage = 3;

std::atomic<VpcdClient*> g_client{nullptr};

extern "C" void on_stop_signal(int) {
  if (auto* c = g_client.load()) c->request_stop();
}
extern "C" void on_pull_signal(int) {
  if (auto* c = g_client.load()) c->pull_card();
}

void install_handler(int signal_number, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(signal_number, &action, nullptr);
}

// "HOST:PORT" or "[IPv6]:PORT".
bool split_endpoint(const std::string& text, std::string& host, std::uint16_t& port) {
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string::npos) return false;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (host.empty() || port_text.empty() || port_text.size() > 5) return false;
  unsigned long value = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned long>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

void log_line(std::string_view line) { std::cerr << "skillcard-sim: " << line << std::endl; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skillcard-sim: the simulated skillcard card, served to pcscd through vpcd"};
  std::filesystem::path image;
  bool create = false;
  std::size_t pages = 192;
  std::string vpcd = "127.0.0.1:35963";
  bool allow_remote = false;
  std::optional<std::uint64_t> pull_after;
  std::string pull_on;
  std::string cut_on;
  bool echo = false;
  bool training_on = false;
  bool training_off = false;
  bool fsync = false;
  bool verbose = false;
  unsigned reinsert_ms = 1000;
  app.add_option("--image", image, "card image file (written through, page by page)")->required();
  app.add_flag("--create", create, "create and format the image if the file does not exist");
  app.add_option("--pages", pages, "page count of a created image (18..256; the training applet needs 192)")
      ->check(CLI::Range(18, 256));
  app.add_option("--vpcd", vpcd, "vpcd endpoint HOST:PORT (default 127.0.0.1:35963)");
  app.add_flag("--allow-remote", allow_remote, "allow a vpcd endpoint that is not a loopback address");
  app.add_option("--pull-after", pull_after,
                 "pull the card after the card processed APDU number N (1-based): no answer is sent");
  app.add_option("--pull-on", pull_on,
                 "pull the card during the first APDU starting with these hex bytes (e.g. 8014), once");
  app.add_option("--cut-on", cut_on,
                 "cut the power inside the first APDU starting with HEX, once, before its page write N "
                 "(HEX[:N], N from 0, default 0): the command does not complete and no answer is sent");
  app.add_flag("--echo-applet", echo, "install the diagnostic echo applet (AID F0736B696C6C63617264FE)");
  app.add_flag("--training-applet", training_on,
               "install the training applet over pages 17-191 (default: on when the image is personalised)");
  app.add_flag("--no-training-applet", training_off, "never install the training applet");
  app.add_flag("--fsync", fsync, "fdatasync at each journal barrier (survives an OS crash; slower)");
  app.add_option("--reinsert-delay-ms", reinsert_ms, "how long a pulled card stays out (default 1000)");
  app.add_flag("-v,--verbose", verbose, "log every APDU header and status word (never APDU data) to stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  VpcdOptions options;
  if (!split_endpoint(vpcd, options.host, options.port)) {
    std::cerr << "skillcard-sim: --vpcd wants HOST:PORT, got '" << vpcd << "'\n";
    return kExitUsage;
  }
  options.allow_remote = allow_remote;
  options.pull_after = pull_after;
  if (!pull_on.empty()) {
    try {
      options.pull_on = from_hex(pull_on);
    } catch (const HexError& e) {
      std::cerr << "skillcard-sim: --pull-on: " << e.what() << "\n";
      return kExitUsage;
    }
  }
  if (!cut_on.empty()) {
    // HEX[:N]
    const auto colon = cut_on.find(':');
    const std::string index = colon == std::string::npos ? "0" : cut_on.substr(colon + 1);
    try {
      if (index.empty() || index.size() > 9 || index.find_first_not_of("0123456789") != std::string::npos)
        throw HexError("the write index after ':' must be a number");
      options.cut_on = VpcdOptions::CutOn{from_hex(cut_on.substr(0, colon)), std::stoull(index)};
      if (options.cut_on->prefix.empty()) throw HexError("no command bytes before ':'");
    } catch (const HexError& e) {
      std::cerr << "skillcard-sim: --cut-on wants HEX[:N]: " << e.what() << "\n";
      return kExitUsage;
    }
  }
  options.reinsert_delay = std::chrono::milliseconds(reinsert_ms);
  if (verbose) options.log = log_line;
  if (training_on && (training_off || echo)) {
    // The echo applet lives in pages 188-191, inside the training applet's window.
    std::cerr << "skillcard-sim: --training-applet cannot be combined with "
              << (training_off ? "--no-training-applet" : "--echo-applet") << "\n";
    return kExitUsage;
  }

  try {
    const Durability durability = fsync ? Durability::System : Durability::Process;
    std::optional<Eeprom> eeprom;
    if (create && !std::filesystem::exists(image)) {
      eeprom.emplace(Eeprom::create_file(image, pages, durability));
      PersistentMemory::format(*eeprom);
      std::cerr << "skillcard-sim: created " << image.string() << " (" << pages << " pages)\n";
    } else {
      eeprom.emplace(Eeprom::open_file(image, durability));
    }
    Card card(std::move(*eeprom));
    // The training applet by default on a personalised 192-page image (docs/card-commands.md).
    std::string training_note;
    if (!echo && !training_off && card.eeprom().page_count() == training::kImagePages) {
      card.power_on();
      const bool personalised = training::is_personalised(card.memory().read(0, training::layout::kReserved));
      if (personalised || training_on) {
        training::install(card);
        training_note = personalised
                            ? " with the training applet (card " + training::read_state(card.memory()).card_number + ")"
                            : " with the training applet (image not personalised: it answers 6985)";
      }
      card.power_off();
    } else if (training_on) {
      std::cerr << "skillcard-sim: --training-applet needs a " << training::kImagePages << "-page image, "
                << image.string() << " has " << card.eeprom().page_count() << "\n";
      return kExitUsage;
    }
    if (echo) {
      // The last four pages: inside the area the v1 memory map reserves (162-191), so the
      // echo applet never overlaps the training applet's data.
      const std::size_t window = std::min<std::size_t>(4 * kPageSize, card.memory().size());
      card.install(std::make_unique<EchoApplet>(), card.memory().size() - window, window);
    }
    // Check the image once before serving, so that a refused image fails fast with exit 3.
    card.power_on();
    card.power_off();

    VpcdClient client(card, options);
    g_client.store(&client);
    install_handler(SIGTERM, on_stop_signal);
    install_handler(SIGINT, on_stop_signal);
    install_handler(SIGUSR1, on_pull_signal);
    ::signal(SIGPIPE, SIG_IGN);
    std::cerr << "skillcard-sim: serving " << image.string() << " to vpcd " << vpcd << training_note << " (pid "
              << ::getpid() << ")" << std::endl;
    client.run();
    g_client.store(nullptr);
    std::cerr << "skillcard-sim: stopped after " << client.apdus() << " APDUs" << std::endl;
    return 0;
  } catch (const ImageError& e) {
    std::cerr << "skillcard-sim: " << e.what() << " [" << to_string(e.reason()) << "]\n";
    return kExitImage;
  } catch (const VpcdConfigError& e) {
    std::cerr << "skillcard-sim: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "skillcard-sim: " << e.what() << "\n";
    return kExitError;
  }
}
