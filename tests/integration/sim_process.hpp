// Starts and stops skillcard-sim processes for the PC/SC integration tests, and waits for the
// simulated card to show up in (or leave) a pcscd reader.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "skillcard/reader/pcsc.hpp"

namespace skillcard::integration {

inline std::uint16_t vpcd_port() { return static_cast<std::uint16_t>(std::stoi(SKILLCARD_VPCD_PORT)); }
inline std::string reader_name(int slot) { return "Virtual PCD 00 0" + std::to_string(slot); }

// An image the test made (a personalised card): served as it is, and kept when the process stops,
// so that a later SimProcess can serve the same card again.
struct ExistingImage {
  std::filesystem::path path;
};

class SimProcess {
 public:
  // Serves a fresh image (with the echo applet) on vpcd slot 0 or 1.
  explicit SimProcess(int slot, std::vector<std::string> extra = {}) {
    image_ =
        std::filesystem::temp_directory_path() / ("skillcard-sim-" + std::to_string(::getpid()) + "-" +
                                                  std::to_string(slot) + "-" + std::to_string(counter()++) + ".img");
    std::filesystem::remove(image_);
    owns_image_ = true;
    start(slot, {"--create", "--echo-applet"}, std::move(extra));
  }
  // Serves an existing image (the training applet on a personalised one) on vpcd slot 0 or 1.
  SimProcess(int slot, ExistingImage image, std::vector<std::string> extra = {}) : image_(std::move(image.path)) {
    start(slot, {}, std::move(extra));
  }
  ~SimProcess() {
    stop();
    if (owns_image_) std::filesystem::remove(image_);
  }
  SimProcess(const SimProcess&) = delete;
  SimProcess& operator=(const SimProcess&) = delete;

  // SIGTERM and wait: the simulator must exit cleanly (status 0).
  int stop() {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_status_;
  }
  void signal(int sig) const { ::kill(pid_, sig); }

 private:
  void start(int slot, std::vector<std::string> options, std::vector<std::string> extra) {
    std::vector<std::string> args{SKILLCARD_SIM_BINARY, "--image", image_.string(), "--vpcd",
                                  "127.0.0.1:" + std::to_string(vpcd_port() + slot)};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::filesystem::path image_;
  bool owns_image_ = false;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

// Polls the reader's state through SCardGetStatusChange until the card is (or is not) there.
inline bool wait_for_card(const reader::Context& context, const std::string& name, bool present,
                          std::chrono::seconds limit = std::chrono::seconds(15)) {
  std::vector<reader::ReaderState> states{{name, reader::state::kUnaware, 0, {}}};
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto rc = context.api()->get_status_change(context.handle(), 250, states);
    if (rc == reader::code::kSuccess || rc == reader::code::kTimeout) {
      const bool is_present =
          (states[0].event_state & reader::state::kPresent) != 0 && (states[0].event_state & reader::state::kMute) == 0;
      if (is_present == present) return true;
      states[0].current_state = states[0].event_state & ~reader::state::kChanged;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return false;
}

}  // namespace skillcard::integration
