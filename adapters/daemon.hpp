#pragma once
// simcapd as a library: builds the engine, the feed port and the outbound pieces from a
// daemon_config, loads the configured products and their ICCID files, opens the ports, and
// shuts everything down in order. The main and the end-to-end tests both use it.
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "config.hpp"
#include "dead_letter_file.hpp"
#include "feed/feed_server.hpp"
#include "http/http_api.hpp"
#include "http/http_server.hpp"
#include "outbound/outbound.hpp"
#include "simcap/clock.hpp"
#include "simcap/engine.hpp"

namespace simcap {

class daemon {
 public:
  // Throws std::runtime_error when something cannot start (data dir, address in use, ...).
  daemon(daemon_config cfg, bool simulated_clock);
  bool simulated_clock() const noexcept { return simulated_; }
  ~daemon();

  void start();
  // Stops accepting, drains what was read into the shards, stops the engine.
  void stop();

  engine& eng() noexcept { return *engine_; }
  feed_registry& feeds() noexcept { return *feeds_; }
  std::uint16_t feed_port() const;
  std::uint16_t http_port() const;
  std::string http_address() const;
  // "ADDRESS:PORT" the feed port is bound to.
  std::string feed_address() const;
  const daemon_config& config() const noexcept { return cfg_; }
  std::filesystem::path dead_letter_path() const { return cfg_.data_dir / "deadletter.jsonl"; }
  // One line of counters for the log.
  std::string stats_line() const;
  // SIGHUP: loads the TLS certificate and key files again (new connections use them, open ones
  // keep theirs). Empty when they loaded (or no port speaks TLS), else why not: the ports keep
  // the certificate they had.
  std::string reload_tls();

 private:
  void load_products();
  std::string tls_metrics() const;

  daemon_config cfg_;
  std::unique_ptr<clock> clock_;
  std::shared_ptr<tls_server_context> http_tls_, feed_tls_;  // null: plain
  std::atomic<std::uint64_t> tls_reloads_{0}, tls_reload_failures_{0};
  std::unique_ptr<dead_letter_file> dead_letters_;
  std::unique_ptr<engine> engine_;
  std::unique_ptr<feed_registry> feeds_;
  std::unique_ptr<feed_server> feed_server_;
  std::unique_ptr<http_api> http_api_;
  std::unique_ptr<http_server> http_server_;
  std::unique_ptr<outbound::service> outbound_;
  std::uint64_t logger_listener_ = 0;
  bool started_ = false;
  bool simulated_ = false;
};

}  // namespace simcap
