#include "outbound/outbound.hpp"

#include "simcap/thread_name.hpp"

namespace simcap::outbound {

service::service(engine& e, const std::vector<sink_config>& sinks) : eng_(e) {
  for (const sink_config& c : sinks) {
    transports_.push_back(std::make_unique<http_transport>(io_, c));
    sinks_.push_back(std::make_unique<sink>(c, eng_, *transports_.back(), io_));
  }
}

service::~service() { stop(); }

void service::start() {
  if (sinks_.empty() || thread_.joinable()) return;
  work_.emplace(io_.get_executor());
  for (auto& s : sinks_) s->start();
  // Called under the event log's lock: a wake-up only (one post a sink at most).
  listener_ = eng_.events().add_listener([this](const event&) {
    for (auto& s : sinks_) s->wake();
  });
  thread_ = std::thread([this] {
    set_thread_name("outbound");
    io_.run();
  });
}

void service::stop() {
  if (!thread_.joinable()) return;
  eng_.events().remove_listener(listener_);
  for (auto& s : sinks_) s->flush();
  work_.reset();
  io_.stop();
  thread_.join();
}

std::vector<sink_stats> service::stats() const {
  std::vector<sink_stats> out;
  for (const auto& s : sinks_) out.push_back(s->stats());
  return out;
}

sink* service::find(std::string_view name) {
  for (auto& s : sinks_) {
    if (s->config().name == name) return s.get();
  }
  return nullptr;
}

}  // namespace simcap::outbound
