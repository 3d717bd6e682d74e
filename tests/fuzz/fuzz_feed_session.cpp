// libFuzzer: a whole feed session over a socket on 127.0.0.1, against a live in-memory engine
// (two shards, product acme with two SIMs): the input is what the peer sends, after a valid
// hello when its first byte is odd (else the input brings its own). The peer sends it all,
// half-closes and reads everything simcap writes back until simcap closes. The port reads in
// small chunks, so lines and hellos are split across reads and chunks. Every line written back
// must be a JSON object of the protocol (welcome, ack, reject or error), and the session must
// end: a session still open 8 s after the peer half-closed is a hang.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "feed/feed_server.hpp"
#include "fuzz_world.hpp"

namespace {

using namespace simcap;

struct world : fuzz::engine_world {
  world() : feeds(*eng, {{"carrier-a", "secret", ""}}) {
    feed_server_options fo;
    fo.ack_interval = std::chrono::milliseconds(5);
    fo.hello_timeout = std::chrono::seconds(2);
    fo.read_size = 8192;  // above a line's 4 KiB, so that every line fits a chunk
    fo.recv_slice = 1000;
    fo.chunks_per_session = 2;
    server = std::make_unique<feed_server>(
        *eng, feeds, dl,
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0), fo);
    server->start();
    port = server->local_endpoint().port();
  }
  ~world() { server->stop(std::chrono::seconds(2)); }
  feed_registry feeds;
  std::unique_ptr<feed_server> server;
  std::uint16_t port = 0;
};

// The harness's own checks: says which failed before the crash that libFuzzer reports.
[[noreturn]] void fail(const char* why) {
  std::fprintf(stderr, "fuzz_feed_session: %s\n", why);
  __builtin_trap();
}

// The same for a system call that failed, with its errno.
[[noreturn]] void fail_call(const char* what) {
  std::fprintf(stderr, "fuzz_feed_session: %s: %s (errno %d)\n", what, std::strerror(errno), errno);
  __builtin_trap();
}

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd < 0) fail_call("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  // libFuzzer's -timeout watchdog is a SIGALRM whose handler has no SA_RESTART: a connect it
  // interrupts returns EINTR and goes on in the background. Wait for it to finish.
  if (errno != EINTR) fail_call("connect");
  pollfd p{fd, POLLOUT, 0};
  while (::poll(&p, 1, -1) < 0) {
    if (errno != EINTR) fail_call("poll on connect");
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) fail_call("getsockopt");
  if (err != 0) {
    errno = err;
    fail_call("connect");
  }
  return fd;
}

// Sends `out` and half-closes, reading what comes back meanwhile, until the peer closes; traps
// on a hang.
std::string talk(int fd, std::string_view out) {
  std::string in;
  bool closed_write = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  for (;;) {
    if (out.empty() && !closed_write) {
      ::shutdown(fd, SHUT_WR);
      closed_write = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0};
    if (std::chrono::steady_clock::now() > deadline) fail("the session hangs");
    if (::poll(&p, 1, 100) <= 0) continue;
    if (p.revents & POLLOUT) {
      const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        out.remove_prefix(static_cast<std::size_t>(n));
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        out = {};  // simcap closed while we were sending (a bad hello): read what it said
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return in;
      if (n > 0) in.append(buf, static_cast<std::size_t>(n));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static world w;
  if (size == 0 || size > (64u << 10)) return 0;
  std::string out;
  if (data[0] & 1) out = "{\"hello\":{\"feed\":\"carrier-a\",\"token\":\"secret\"}}\n";
  out.append(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int fd = connect_to(w.port);
  const std::string in = talk(fd, out);
  ::close(fd);
  std::string_view rest(in);
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    if (nl == std::string_view::npos) fail("a reply line without its end");
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(rest.substr(0, nl), ec);
    if (ec || !v.is_object() || v.as_object().size() != 1) fail("a reply line not of the protocol");
    const auto& o = v.as_object();
    if (!o.contains("welcome") && !o.contains("ack") && !o.contains("reject") &&
        !o.contains("error")) {
      fail("a reply line not of the protocol");
    }
    rest.remove_prefix(nl + 1);
  }
  return 0;
}
