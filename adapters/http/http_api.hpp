#pragma once
// The HTTP control and query API (API.md) as a function from request to response, testable
// without sockets. The routes are a table (routes.hpp, handlers in routes_*.cpp). handle()
// calls the engine's synchronous API, so it blocks on the shards' answers: the server runs it on
// a worker pool, never on an I/O thread or a shard thread.
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "feed/feed_server.hpp"
#include "simcap/engine.hpp"

namespace simcap {

namespace outbound {
class service;
}

struct http_request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // path and query, as received
  std::string authorization;
  std::string content_type;
  std::string body;
  std::string accept = {};
};

struct http_response {
  unsigned status = 200;
  std::string body;  // JSON unless content_type says otherwise; empty for 204 and HEAD
  std::string content_type = "application/json";
  // Set by long-poll routes (events?wait=S) that found nothing yet: the server asks again each
  // time an event lands, for at most this long, then sends the last answer.
  std::chrono::seconds long_poll{0};
};

class http_api {
 public:
  http_api(engine& e, std::vector<token_config> tokens, feed_registry* feeds, bool simulated_clock);

  http_response handle(const http_request& req);
  // Answers, without a worker thread, the reads the shards can answer on their own (GET of one
  // SIM, fleet usage: the routes with a `read`): calls `done` once, in this thread or on a shard
  // thread, and returns true. Returns false, and calls nothing, for every other request
  // (including errors): handle() answers those.
  bool handle_async(const http_request& req, std::function<void(http_response)> done);

  void set_ready(bool r) noexcept { ready_.store(r); }
  bool ready() const noexcept { return ready_.load(); }
  bool simulated_clock() const noexcept { return simulated_clock_; }
  const feed_registry* feeds() const noexcept { return feeds_; }
  // The outbound sinks, for their routes and metrics (none until set).
  void set_outbound(outbound::service* s) noexcept { outbound_ = s; }
  outbound::service* outbound() const noexcept { return outbound_; }
  // The event log long-polls wait on, and how many wait now (kept by the server).
  event_log& events() noexcept { return eng_.events(); }
  const rater* rating() const noexcept { return eng_.rating(); }
  std::atomic<std::size_t>& long_polls() noexcept { return long_polls_; }
  // Prometheus text of the HTTP counters (the rest of /metrics: metrics.cpp).
  std::string http_metrics() const;
  // More of /metrics from other parts (the dead-letter log, the ports): set before serving.
  void add_metrics(std::function<std::string()> f) { more_metrics_.push_back(std::move(f)); }
  const std::vector<std::function<std::string()>>& more_metrics() const { return more_metrics_; }
  // The route a request matched, for metrics ("/v1/sims/:iccid", or "unmatched").
  static std::string route_of(const http_request& req);
  void count(const std::string& route, unsigned status);

 private:
  engine& eng_;
  std::vector<token_config> tokens_;
  feed_registry* feeds_;
  outbound::service* outbound_ = nullptr;
  std::vector<std::function<std::string()>> more_metrics_;
  bool simulated_clock_;
  std::atomic<bool> ready_{false};
  std::atomic<std::size_t> long_polls_{0};
  mutable std::mutex counts_mu_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> counts_;
};

}  // namespace simcap
