// Starts skillcard-server as a child process for process-level tests (kill -9, several
// instances on one ledger): waits for its "listening on" line, reads the port, and stops it
// with the signal the test chooses. Test code only.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace skillcard::testing {

class ServerProcess {
 public:
  // `args` after the binary; the listen address is added (127.0.0.1, any free port).
  ServerProcess(const std::string& binary, std::vector<std::string> args, const std::filesystem::path& log_dir) {
    static int n = 0;
    out_ = log_dir / ("server-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".out");
    err_ = std::filesystem::path(out_).replace_extension(".err");
    args.insert(args.begin(), binary);
    args.emplace_back("--listen");
    args.emplace_back("127.0.0.1:0");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      if (!std::freopen(out_.c_str(), "w", stdout) || !std::freopen(err_.c_str(), "w", stderr)) ::_exit(126);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(out_);
      std::string line;
      while (std::getline(in, line)) {
        const auto at = line.find("listening on 127.0.0.1:");
        if (at != std::string::npos) {
          port_ = static_cast<std::uint16_t>(std::stoul(line.substr(at + 23)));
          return;
        }
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("skillcard-server exited at start: " + log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop(SIGKILL);
    throw std::runtime_error("skillcard-server did not start: " + log());
  }
  ~ServerProcess() {
    stop(SIGKILL);
    std::filesystem::remove(out_);
    std::filesystem::remove(err_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  std::uint16_t port() const { return port_; }
  // Sends `sig` and waits; returns the exit status, or 128 + the signal that ended it.
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return status_;
  }
  std::string log() const {
    std::ifstream in(err_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::filesystem::path out_, err_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int status_ = -1;
};

}  // namespace skillcard::testing
