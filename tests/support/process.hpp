#pragma once
// Runs the project's binaries as a user would: a child process with its output in files.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace simcap::testing {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class child {
 public:
  child(std::vector<std::string> argv, const std::filesystem::path& out,
        const std::filesystem::path& err)
      : out_(out), err_(err) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~child() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  // (Not once it has been waited for: its pid may be another process's by then.)
  void signal(int sig) {
    if (pid_ > 0 && !status_) ::kill(pid_, sig);
  }
  // Exit code, or nullopt when it did not exit in time (or died of a signal: -signal).
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_ && std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
  }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }
  // Waits until stdout has a line starting with `prefix`; returns the rest of that line.
  std::optional<std::string> wait_for_line(const std::string& prefix,
                                           std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::istringstream in(out());
      for (std::string line; std::getline(in, line);) {
        if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
      }
      if (wait(std::chrono::milliseconds(0))) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path out_, err_;
};

// simcapd (bin) on a config, both ports on 127.0.0.1 port 0, its output in dir/d.out and
// dir/d.err; started() says whether it printed both ports within 20 s (else see proc->err()).
struct simcapd_process {
  simcapd_process(const std::string& bin, const std::filesystem::path& config,
                  const std::filesystem::path& dir)
      : proc(std::make_unique<child>(
            std::vector<std::string>{bin, "--config", config.string(), "--feed", "127.0.0.1:0",
                                     "--http", "127.0.0.1:0"},
            dir / "d.out", dir / "d.err")) {
    const auto h = proc->wait_for_line("http listening on 127.0.0.1:", std::chrono::seconds(20));
    const auto f = proc->wait_for_line("feed listening on 127.0.0.1:", std::chrono::seconds(20));
    if (h && f) {
      http_port = static_cast<std::uint16_t>(std::stoi(*h));
      feed_port = static_cast<std::uint16_t>(std::stoi(*f));
    }
  }
  bool started() const { return http_port != 0 && feed_port != 0; }

  std::unique_ptr<child> proc;
  std::uint16_t http_port = 0, feed_port = 0;
};

}  // namespace simcap::testing
