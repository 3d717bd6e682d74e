#pragma once
// The feed port (SPEC §6): TCP, JSON lines both ways. The server accepts connections and runs
// each as a feed_session (session.hpp) on its own strand; the registry holds the configured
// feeds, their credentials and counters.
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "net/connection_gate.hpp"
#include "net/tls_server.hpp"
#include "simcap/dead_letter.hpp"
#include "simcap/engine.hpp"

namespace simcap {

class feed_session;

// The configured feeds: credentials, the applied watermark, counters. Thread-safe.
class feed_registry {
 public:
  struct feed {
    std::string name;
    std::string token;
    std::string cert_cn;  // non-empty: the client certificate must carry this name
    std::uint32_t engine_id = 0;
    std::atomic<std::uint64_t> watermark{0};   // every seq up to it has been handled
    std::atomic<std::uint64_t> records{0};     // handed to the shards
    std::atomic<std::uint64_t> duplicates{0};  // seq not above the watermark
    std::array<std::atomic<std::uint64_t>, kRejectReasonCount> rejected{};
    std::atomic<std::int64_t> last_seen{0};  // Unix seconds of the last line
    std::atomic<std::uint32_t> sessions{0};  // connected now

    std::mutex mu;                        // guards session
    std::weak_ptr<feed_session> session;  // the session that owns the feed now
  };

  feed_registry(engine& e, const std::vector<feed_config>& feeds);
  // The feed for this name and token (compared in constant time), or nullptr.
  feed* authenticate(std::string_view name, std::string_view token);
  std::vector<const feed*> all() const;

 private:
  std::vector<std::unique_ptr<feed>> feeds_;
};

struct feed_server_options {
  unsigned io_threads = 1;
  std::chrono::milliseconds ack_interval{200};
  std::size_t read_size = 2048 * 1024;  // bytes parsed as one chunk, at most
  // A chunk is filled by reads of at most this many bytes: the copy out of the socket runs in
  // the kernel, where this thread is not preempted, so a long one would hold a core away from
  // the query threads for a millisecond or more.
  std::size_t recv_slice = 256 * 1024;
  std::size_t chunks_per_session = 4;
  std::chrono::milliseconds hello_timeout{10'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds takeover_timeout{30'000};
  std::size_t max_connections = 10'000;  // beyond it new connections are closed at once
  // A session's rejects and acks not yet taken by its peer: above it the session reads no more
  // of its socket until the peer reads (back-pressure, as for records).
  std::size_t max_pending_write = 4u << 20;
  // TLS on the port (null: plain TCP); with client_ca, mutual TLS.
  std::shared_ptr<tls_server_context> tls;
};

class feed_server {
 public:
  feed_server(engine& e, feed_registry& feeds, dead_letter_sink& dead_letters,
              const boost::asio::ip::tcp::endpoint& at, feed_server_options opts);
  ~feed_server();

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  void start();
  // Stops accepting, stops reading every session, waits until what they read is applied and
  // acknowledged (at most `grace`), then closes them and joins the I/O threads.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

  // For sessions.
  engine& eng() noexcept { return engine_; }
  feed_registry& feeds() noexcept { return feeds_; }
  dead_letter_sink& dead_letters() noexcept { return dead_letters_; }
  const feed_server_options& options() const noexcept { return opts_; }
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  const connection_gate& gate() const noexcept { return gate_; }
  // Every session's bytes waiting to be written to its peer, and the times a session stopped
  // reading for them (sessions keep these).
  std::atomic<std::int64_t>& pending_write_bytes() noexcept { return pending_write_bytes_; }
  std::atomic<std::uint64_t>& write_waits() noexcept { return write_waits_; }
  std::atomic<std::uint64_t>& store_waits() noexcept { return store_waits_; }
  // Connections closed in their TLS handshake (simcap_tls_handshake_failures_total).
  std::atomic<std::uint64_t>& tls_refused() noexcept { return tls_refused_; }
  std::string write_metrics() const;
  // A session has drained (stop() waits for that).
  void session_drained();

 private:
  void do_accept();

  engine& engine_;
  feed_registry& feeds_;
  dead_letter_sink& dead_letters_;
  feed_server_options opts_;
  connection_gate gate_;  // before io_: the sessions' tickets go first
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_wait_;  // the accept loop's back-off
  std::vector<std::thread> threads_;
  mutable std::mutex sessions_mu_;
  std::list<std::weak_ptr<feed_session>> sessions_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> pending_write_bytes_{0};
  std::atomic<std::uint64_t> write_waits_{0};
  std::atomic<std::uint64_t> store_waits_{0};  // reads held while the store could not write
  std::atomic<std::uint64_t> tls_refused_{0};
  std::uint64_t checkpoint_listener_ = 0;  // engine::add_checkpoint_listener
  std::mutex drain_mu_;
  std::condition_variable drain_cv_;
};

}  // namespace simcap
