#pragma once
// One port's open connections against its cap ([server] max_connections), and its accept
// loop's back-off when the process runs out of file descriptors.
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace simcap {

class connection_gate {
 public:
  connection_gate(std::string_view port, std::size_t max) : port_(port), max_(max) {}
  connection_gate(const connection_gate&) = delete;
  connection_gate& operator=(const connection_gate&) = delete;

  // Held by a connection for its life: its place under the cap.
  class ticket {
   public:
    ticket() = default;
    explicit ticket(connection_gate* g) : g_(g) {}
    ticket(ticket&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
    ticket& operator=(ticket&& o) noexcept {
      if (this != &o) {
        release();
        g_ = std::exchange(o.g_, nullptr);
      }
      return *this;
    }
    ~ticket() { release(); }

   private:
    void release() {
      if (g_ != nullptr) g_->open_.fetch_sub(1, std::memory_order_relaxed);
      g_ = nullptr;
    }
    connection_gate* g_ = nullptr;
  };

  // A place for a connection just accepted, or none when the port is at its cap (the caller
  // closes it; counted).
  std::optional<ticket> admit();
  // After a failed accept: how long to wait before the next (zero: at once). Running out of
  // descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) backs off from 10 ms, doubling to
  // 1 s while it lasts, and is logged once a streak.
  std::chrono::milliseconds accept_failed(const boost::system::error_code& ec);
  void accepted() { backoff_ = std::chrono::milliseconds(0); }
  // After a failed accept: calls again() at once or, after accept_failed's back-off, from the
  // timer (not when the timer is cancelled).
  template <class F>
  void retry_accept(boost::asio::steady_timer& timer, const boost::system::error_code& ec,
                    F again) {
    const auto wait = accept_failed(ec);
    if (wait.count() == 0) return again();
    timer.expires_after(wait);
    timer.async_wait([again = std::move(again)](boost::system::error_code tec) mutable {
      if (!tec) again();
    });
  }

  std::size_t open() const { return open_.load(std::memory_order_relaxed); }
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  std::uint64_t accept_errors() const { return accept_errors_.load(std::memory_order_relaxed); }
  std::size_t max() const { return max_; }

 private:
  std::string port_;
  std::size_t max_;
  std::atomic<std::size_t> open_{0};
  std::atomic<std::uint64_t> refused_{0}, accept_errors_{0};
  std::chrono::milliseconds backoff_{0};  // the accept loop's (one strand)
};

// The Prometheus text of both ports' gates.
std::string connection_metrics(const connection_gate& http, const connection_gate& feed);

}  // namespace simcap
