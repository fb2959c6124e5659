// APDU round trips/s host -> pcscd -> vpcd -> skillcard-sim, against a raw echo card that
// answers 9000 at once over the same path with the same socket options (TCP_NODELAY, and
// TCP_QUICKACK re-set after every read), in one run: the ratio is what the card OS and the
// simulator's transport add on top of pcscd and vpcd (goal >= 0.8). Starts its own pcscd with
// the integration tests' fixture script, on its own vpcd port; needs root, as CI has.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <thread>

#include "bench_json.hpp"
#include "skillcard/reader/pcsc.hpp"

using namespace skillcard;
using namespace skillcard::reader;

namespace {

constexpr int kPort = 29983;  // apart from the tests' 29963, below the ephemeral port range
const std::string kDir = "/tmp/skillcard-pcsc-bench-" + std::to_string(::getpid());

bool read_exact(int fd, std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    const auto got = ::recv(fd, p, n, 0);
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);  // as skillcard-sim does
  return true;
}

void send_frame(int fd, ByteView payload) {
  Bytes frame{static_cast<std::uint8_t>(payload.size() >> 8), static_cast<std::uint8_t>(payload.size())};
  frame.insert(frame.end(), payload.begin(), payload.end());
  (void)!::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
}

// A vpcd card that answers every APDU with 9000: the baseline path.
void raw_echo_card(int port, std::atomic<bool>& stop, std::atomic<int>& fd_out) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  while (!stop && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd_out = fd;
  const Bytes atr = from_hex("3B8080010101");
  std::uint8_t head[2];
  Bytes payload;
  while (!stop && read_exact(fd, head, 2)) {
    payload.resize(static_cast<std::size_t>(head[0] << 8 | head[1]));
    if (!read_exact(fd, payload.data(), payload.size())) break;
    if (payload.size() == 1) {
      if (payload[0] == 0x04) send_frame(fd, atr);  // get ATR; power on/off/reset need no answer
    } else {
      send_frame(fd, from_hex("9000"));
    }
  }
  ::close(fd);
}

int run_script(const std::string& args) {
  return std::system((std::string(SKILLCARD_PCSCD_FIXTURE) + " " + args).c_str());
}

bool wait_present(const Context& context, const std::string& reader) {
  for (int i = 0; i < 100; ++i) {
    try {
      context.connect(reader);
      return true;
    } catch (const iso7816::CardError&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return false;
}

// After a phase, pcscd notices the cards leaving only after a moment.
void wait_empty(const std::string& reader) {
  Context context;
  for (int i = 0; i < 100; ++i) {
    try {
      context.connect(reader);
    } catch (const NoCardError&) {
      return;
    } catch (const iso7816::CardError&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

struct Phase {
  double sim;
  double raw;
};

// One measurement with the simulator on vpcd slot `sim_slot` and the raw card on the other.
Phase measure(int sim_slot, bool quick) {
  const std::string image = kDir + "/card-" + std::to_string(sim_slot) + ".img";
  const std::string endpoint = "127.0.0.1:" + std::to_string(kPort + sim_slot);
  const pid_t sim = ::fork();
  if (sim == 0) {
    ::execl(SKILLCARD_SIM_BINARY, SKILLCARD_SIM_BINARY, "--image", image.c_str(), "--create", "--echo-applet", "--vpcd",
            endpoint.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> raw_fd{-1};
  std::thread raw([&] { raw_echo_card(kPort + 1 - sim_slot, stop, raw_fd); });
  auto cleanup = [&] {
    stop = true;
    if (raw_fd >= 0) ::shutdown(raw_fd, SHUT_RDWR);
    ::kill(sim, SIGTERM);
    ::waitpid(sim, nullptr, 0);
    raw.join();
  };
  try {
    Context context;
    const std::string sim_reader = "Virtual PCD 00 0" + std::to_string(sim_slot);
    const std::string raw_reader = "Virtual PCD 00 0" + std::to_string(1 - sim_slot);
    if (!wait_present(context, sim_reader) || !wait_present(context, raw_reader)) {
      throw std::runtime_error("the cards did not appear in pcscd's readers");
    }
    auto sim_connection = context.connect(sim_reader);
    auto raw_connection = context.connect(raw_reader);
    PcscChannel sim_channel(*sim_connection);
    PcscChannel raw_channel(*raw_connection);
    if (!iso7816::transmit_all(sim_channel, iso7816::CommandApdu::select_by_aid(from_hex("F0736B696C6C63617264FE")))
             .is_success()) {
      throw std::runtime_error("the echo applet did not answer SELECT");
    }
    const iso7816::CommandApdu echo(0x80, 0x10, 0x00, 0x00, from_hex("AA"), std::size_t{256});
    auto one = [](PcscChannel& channel, const iso7816::CommandApdu& command) -> std::size_t {
      if (!channel.transmit(command).is_success()) throw std::runtime_error("APDU failed");
      return 1;
    };
    const auto c =
        bench::compare([&] { return one(sim_channel, echo); }, [&] { return one(raw_channel, echo); }, quick ? 3 : 7,
                       quick ? std::chrono::milliseconds(150) : std::chrono::milliseconds(500));
    sim_connection.reset();
    raw_connection.reset();
    cleanup();
    return {c.value, c.baseline};
  } catch (...) {
    cleanup();
    throw;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = bench::quick_only(
      argc, argv, "pcsc_bench [--quick]   (--quick: fewer and shorter rounds, as CI runs it; needs root)");
  if (run_script("start " + kDir + " " + std::to_string(kPort) + " >/dev/null") != 0) {
    std::cerr << "pcsc_bench: could not start pcscd (needs root, pcscd and vsmartcard-vpcd)\n";
    return 1;
  }
  ::setenv("PCSCLITE_CSOCK_NAME", (kDir + "/run/pcscd.comm").c_str(), 1);
  int status = 1;
  try {
    // vpcd's two slots are not equally fast: measure both ways round and combine, so that the
    // slot cancels out of the ratio.
    const auto a = measure(0, quick);
    wait_empty("Virtual PCD 00 00");
    wait_empty("Virtual PCD 00 01");
    const auto b = measure(1, quick);
    const double sim = std::sqrt(a.sim * b.sim);
    const double raw = std::sqrt(a.raw * b.raw);
    const bool met = bench::report(
        "reader.apdu_roundtrip_pcscd_vpcd", sim, "APDUs/s", raw, 0.8,
        "host -> pcscd -> vpcd -> skillcard-sim (echo applet) vs a raw 9000 card on the same path and socket options, "
        "geometric mean over both vpcd slots; " +
            std::to_string(static_cast<int>(1e6 / sim)) + " us per APDU");
    status = met ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "pcsc_bench: " << e.what() << "\n";
  }
  run_script("stop " + kDir + " >/dev/null");
  std::filesystem::remove_all(kDir);
  return status;
}
