#pragma once
// The outbound sinks (SPEC §12) and the thread they run on: one I/O thread for every sink
// (each on its own strand, with its own connections), woken by the event log's listener. A
// slow or dead receiver holds only its own sink: ingest, the ports and the other sinks never
// wait for it, and its backlog stays in the event log.
#include <boost/asio.hpp>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "config.hpp"
#include "outbound/http_transport.hpp"
#include "outbound/sink.hpp"

namespace simcap::outbound {

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

 private:
  engine& eng_;
  boost::asio::io_context io_;  // first: the sinks' timers and strands live in it
  std::vector<std::unique_ptr<http_transport>> transports_;
  std::vector<std::unique_ptr<sink>> sinks_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::uint64_t listener_ = 0;
};

}  // namespace simcap::outbound
