#pragma once
// The outbound sinks (SPEC §12) and the thread they run on: one I/O thread for every sink
// (each on its own strand, with its own connections), woken by the event log's listener. A
// slow or dead receiver holds only its own sink: ingest, the ports and the other sinks never
// wait for it, and its backlog stays in the event log.
//
// Sinks come from the config and, at run time, from webhooks created over HTTP (Particle's
// /v1/webhooks): those are side state of the store ("hook/<id>"), started again at every start.
#include <boost/asio.hpp>
#include <expected>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config.hpp"
#include "outbound/http_transport.hpp"
#include "outbound/sink.hpp"

namespace simcap::outbound {

// A webhook created at run time (API.md "Particle-compatible webhooks"): a webhook sink named
// "hook-<id>" receiving the events whose type starts with `event`.
struct webhook {
  std::string id;     // 24 hex digits, like Particle's
  std::string event;  // a type prefix; "" for every event
  std::string url;
  std::string request_type = "POST";
  std::string product;                                       // "" for every product
  std::vector<std::pair<std::string, std::string>> headers;  // Authorization included
  bool reject_unauthorized = true;
  bool no_defaults = false;
  unix_seconds created_at = 0;
};
inline constexpr std::size_t kMaxWebhooks = 100;

class service {
 public:
  service(engine& e, const std::vector<sink_config>& sinks);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // After engine::start() (the sinks' positions are side state of the store).
  void start();
  // Stops delivery; what is in flight goes again after the next start (at least once).
  void stop();
  std::vector<sink_stats> stats() const;
  sink* find(std::string_view name);

  // Run-time webhooks. create_hook assigns the id and the creation time, starts the sink and
  // returns once the hook is durable (a checkpoint); the error says what is wrong with it.
  std::expected<webhook, std::string> create_hook(webhook h);
  std::vector<webhook> hooks() const;
  // Stops the hook's sink, drops its undelivered events; false when there is no such hook.
  bool delete_hook(const std::string& id);
  // Whether start() ran (hooks can be made).
  bool running() const { return thread_.joinable(); }

  // Whether the carrier's network has confirmed a SIM's latest enforcement event (SPEC §12):
  // the first carrier sink's view; without one every SIM is in sync.
  struct network_state {
    enum class kind { in_sync, pending, failed } state = kind::in_sync;
    std::uint64_t event_id = 0;
    unix_seconds since = 0;
  };
  network_state network_of(std::uint64_t sim) const;
  // SIMs of a product pending and failed now.
  std::pair<std::size_t, std::size_t> network_counts(std::uint16_t product) const;

 private:
  struct entry {
    std::unique_ptr<transport> t;
    std::unique_ptr<sink> s;
    std::optional<webhook> hook;
  };
  std::shared_ptr<entry> make_entry(const sink_config& c, std::optional<webhook> hook);
  std::vector<std::shared_ptr<entry>> live() const;

  engine& eng_;
  boost::asio::io_context io_;  // first: the sinks' timers and strands live in it
  // The sinks. Taken briefly (never while calling into a sink or the engine): the event log's
  // listener takes it under the log's lock.
  mutable std::mutex sinks_mu_;
  std::vector<std::shared_ptr<entry>> sinks_;
  std::vector<std::shared_ptr<entry>> retired_;  // deleted hooks, alive until the service goes
  std::mutex hooks_mu_;                          // one create or delete at a time
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::uint64_t listener_ = 0;

  // The carrier sink's latest event of each SIM that has one, and its state.
  void note_event(const event& e);
  void note_finished(const event& e, bool parked);
  sink* carrier_ = nullptr;
  mutable std::mutex net_mu_;
  struct net_entry {
    std::uint64_t id;
    unix_seconds since;
    std::uint16_t product;
    network_state::kind state;
  };
  std::unordered_map<std::uint64_t, net_entry> net_;
  std::unordered_map<std::uint16_t, std::pair<std::size_t, std::size_t>>
      net_counts_;  // pending, failed
};

}  // namespace simcap::outbound
