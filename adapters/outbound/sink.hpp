#pragma once
// One outbound sink (SPEC §12): reads the event log from its position, keeps the events it
// wants (types, products), and delivers them through its transport, in id order per SIM (per
// product for events without a SIM), up to max_in_flight requests at once, retrying with
// back-off, parking permanent failures. Runs on its strand of the outbound I/O thread.
//
// Memory is bounded: at most `window` events are picked up and not finished; the rest wait in
// the event log. The position (the next id to read and the ids picked up but not finished) is
// side state of the engine, written with the checkpoints: after a crash delivery resumes there,
// and only unfinished events go again (at least once; the Idempotency-Key lets a receiver drop
// a repeat).
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.hpp"
#include "outbound/backoff.hpp"
#include "simcap/engine.hpp"

namespace simcap::outbound {

struct request {
  std::vector<event> events;    // in id order
  std::string body;             // the event JSON, or {"events":[...]}
  std::string idempotency_key;  // "<id>" or "<first>-<last>"
};

struct answer {
  unsigned status = 0;  // 0: no answer (connection error, timeout)
  std::string body;     // the first KiB of it
  std::optional<std::chrono::milliseconds> retry_after;
  std::string error;  // why there was no answer
  // Set by a transport that decides itself (SMTP's reply classes); else the status decides.
  std::optional<outcome> verdict;
};

// How a sink's requests leave: HTTP(S) in simcapd, a fake in the unit tests. post() calls done
// exactly once, from any thread.
class transport {
 public:
  virtual ~transport() = default;
  virtual void post(const request& r, std::function<void(answer)> done) = 0;
};

struct parked_event {
  event ev;
  unsigned status = 0;
  std::string answer;
  unix_seconds parked_at = 0;
};

struct sink_stats {
  std::string name;
  std::string kind;
  std::uint64_t delivered = 0, retried = 0, parked = 0, backlog = 0;
  // Event ids below the sink's position that the store's retention deleted before the sink read
  // them (since the start; some may be of types or products it does not take).
  std::uint64_t expired = 0;
  double oldest_undelivered_age_s = 0;
  std::string last_error;
  std::array<std::uint64_t, 9> duration_buckets{};  // request durations (kDurationBounds, +Inf)
  double duration_sum = 0;
};
inline constexpr std::array<double, 8> kDurationBounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};

class sink {
 public:
  sink(sink_config cfg, engine& eng, transport& t, boost::asio::io_context& io);
  sink(const sink&) = delete;
  sink& operator=(const sink&) = delete;

  // Loads the position and parked events from the side state (a sink new to the store starts
  // at the next event, or at the oldest with start = "oldest"), then delivers. Any thread.
  // True for a sink new to the store: its first position is side state now, and the caller
  // checkpoints it before any event can follow.
  bool start();
  // Events were added to the log. Any thread (cheap: posts one wake-up at most).
  void wake();
  // Whether the sink wants an event.
  bool wants(const event& e) const;

  sink_stats stats() const;
  std::vector<parked_event> dead_letters() const;
  // Writes the position to the side state now (before a stop). Not from the strand.
  void flush();
  // Puts the parked events back into delivery, in id order; returns how many.
  std::size_t redrive();
  // Stops the sink for good and removes its position and dead letters from the side state
  // (its undelivered events are dropped); returns once done. Not from the strand. The object
  // must live on until the transport's requests are answered (the service keeps it).
  void retire();
  const sink_config& config() const noexcept { return cfg_; }
  // Called on the sink's strand when an event is finished: delivered, or parked.
  void on_finished(std::function<void(const event&, bool parked)> f) {
    on_finished_ = std::move(f);
  }
  // Whether an event the sink wants is finished (delivered or parked). Any thread.
  bool finished(std::uint64_t id) const;
  bool is_parked(std::uint64_t id) const;
  // Every event below this id was finished before the start (once start()'s work has run).
  std::uint64_t recovered_floor() const noexcept { return floor_.load(); }

 private:
  using clock = std::chrono::steady_clock;
  struct lane {
    std::deque<event> events;  // the head is sent (or waits for its retry) first
    bool busy = false;         // its head is in a request or waiting for a retry
    unsigned attempt = 0;
  };
  std::uint64_t lane_of(const event& e) const noexcept;
  void pump();
  void send_ready();
  void finish(const request& r, const answer& a, clock::time_point t0);
  void done_with(const event& e);
  void skip_expired();
  void save_position();
  void write_position();
  std::string event_body(const event& e) const;

  const sink_config cfg_;
  engine& eng_;
  transport& transport_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer save_timer_;
  std::vector<event_type> types_;
  const std::size_t window_;
  std::atomic<bool> wake_posted_{false};

  // On the strand.
  std::uint64_t next_ = 1;        // the next id to read
  std::set<std::uint64_t> open_;  // picked up, not finished
  // The position recovered at start: ids below recovered_next_ and not in recovered_open_ were
  // finished before the restart.
  std::uint64_t recovered_next_ = 0;
  std::set<std::uint64_t> recovered_open_;
  std::atomic<std::uint64_t> next_seen_{1};  // next_, for stats()
  std::atomic<std::uint64_t> floor_{1};
  std::unordered_map<std::uint64_t, lane> lanes_;
  std::deque<std::uint64_t> ready_;  // lanes whose head can be sent
  unsigned in_flight_ = 0;
  bool save_pending_ = false;
  bool retired_ = false;
  std::mt19937_64 rng_{std::random_device{}()};

  std::function<void(const event&, bool)> on_finished_;
  mutable std::mutex mu_;  // what other threads read
  sink_stats stats_;
  std::map<std::uint64_t, parked_event> parked_;
  std::map<std::uint64_t, unix_seconds> open_times_;
  std::uint64_t recovered_next_seen_ = 0;  // the recovered position, for finished()
  std::set<std::uint64_t> recovered_open_seen_;
};

// The event as JSON: the fields of GET /v1/events.
std::string event_json(const event& e, const engine& eng);

}  // namespace simcap::outbound
