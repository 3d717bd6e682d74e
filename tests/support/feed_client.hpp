#pragma once
// A plain blocking TCP client for tests of the feed port.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace simcap::testing {

// A TCP connection to 127.0.0.1:port; -1 when it cannot connect.
inline int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  ::close(fd);
  return -1;
}

class feed_client {
 public:
  explicit feed_client(std::uint16_t port) {
    fd_ = connect_loopback(port);
    if (fd_ < 0) throw std::runtime_error("connect failed");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~feed_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  feed_client(const feed_client&) = delete;
  feed_client& operator=(const feed_client&) = delete;

  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Sends what the socket takes without blocking; returns the bytes taken.
  std::size_t send_some(std::string_view data) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // The next line, or nullopt on timeout or when the peer closed (then closed() is true).
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (closed_) return std::nullopt;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char tmp[65536];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        closed_ = true;
        continue;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }
  bool closed() const { return closed_; }
  // Everything the peer sends until it closes (or the timeout), unread lines included.
  std::string read_to_close(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::string all;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto line = read_line(std::chrono::milliseconds(50));
      if (line) {
        all += *line + "\n";
      } else if (closed_) {
        break;
      }
    }
    return all + std::exchange(buf_, {});
  }
  // Waits for the peer to close (reading and dropping lines).
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_ && std::chrono::steady_clock::now() < deadline)
      read_line(std::chrono::milliseconds(50));
    return closed_;
  }

 private:
  int fd_ = -1;
  std::string buf_;
  bool closed_ = false;
};

}  // namespace simcap::testing
