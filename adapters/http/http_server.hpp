#pragma once
// The HTTP control and query port on Boost.Beast. Each connection is a coroutine on its own
// strand: it reads one request at a time (so pipelined requests wait their turn), runs the
// handler on a small worker pool (handlers wait for shards; I/O threads never do), and writes
// the answer. Keep-alive, header and body limits (413 with the JSON error body), an idle
// timeout, and at most kMaxRequestsPerConnection requests on one connection.
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "http/http_api.hpp"
#include "net/connection_gate.hpp"
#include "net/tls_server.hpp"

namespace simcap {

struct http_server_options {
  unsigned io_threads = 1;
  unsigned workers = 2;
  std::size_t body_limit = 16u << 20;  // an import of 100k ICCIDs is about 2.2 MB
  std::size_t header_limit = 16u << 10;
  std::size_t max_target = 8u << 10;  // a longer request target is 414
  std::chrono::seconds idle_timeout{60};
  // A new connection's first request header must be in within this (slow or idle clients that
  // hold a socket without asking are closed).
  std::chrono::seconds header_timeout{10};
  std::size_t max_connections = 10'000;  // beyond it new connections are closed at once
  // Nice value of the I/O threads: below the ingest threads' so that a query is answered soon
  // after it arrives even when ingest keeps every core busy (best effort: see set_nice).
  int nice = -5;
  // Long-polls (GET /v1/events?wait=S) waiting at once; one more is answered 429.
  std::size_t max_long_polls = 256;
  // HTTPS (null: plain HTTP).
  std::shared_ptr<tls_server_context> tls;
};

class http_server {
 public:
  static constexpr std::size_t kMaxRequestsPerConnection = 10'000;

  http_server(http_api& api, const boost::asio::ip::tcp::endpoint& at,
              http_server_options opts = {});
  ~http_server();
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  void start();
  void stop();
  const connection_gate& gate() const noexcept { return gate_; }
  // Connections closed in their TLS handshake (simcap_tls_handshake_failures_total).
  std::uint64_t tls_refused() const noexcept {
    return tls_refused_.load(std::memory_order_relaxed);
  }

 private:
  // One connection: the TLS handshake when the port speaks it, then serve().
  boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket sock,
                                       connection_gate::ticket place);
  // The requests of one connection, in turn (Stream: beast::tcp_stream or its ssl_stream).
  template <class Stream>
  boost::asio::awaitable<void> serve(Stream& stream);
  void do_accept();
  // Waits, on the session's strand, until an event lands, the deadline passes or the client
  // goes away (false). Data the client pipelines meanwhile is kept in `buffer`.
  template <class Stream>
  boost::asio::awaitable<bool> wait_for_event(Stream& stream, boost::beast::flat_buffer& buffer,
                                              std::chrono::steady_clock::time_point deadline,
                                              std::uint64_t seen_generation, bool& watch_client);
  void wake_long_polls();

  http_api& api_;
  http_server_options opts_;
  // Long-polls: each waits on a timer of its own strand; an event landing bumps the generation
  // and cancels every waiting timer (one wake-up posted for a burst of events). Declared before
  // io_: sessions still waiting when the server stops unlist themselves as io_ is destroyed.
  std::uint64_t events_listener_ = 0;
  std::atomic<std::uint64_t> event_generation_{0};
  std::atomic<bool> wake_posted_{false};
  std::mutex waiters_mu_;
  std::list<std::shared_ptr<boost::asio::steady_timer>> waiters_;
  connection_gate gate_;  // before io_: the sessions' tickets go first
  boost::asio::io_context io_;
  boost::asio::thread_pool workers_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_wait_;  // the accept loop's back-off
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> tls_refused_{0};
};

}  // namespace simcap
