#include "outbound/outbound.hpp"

#include "outbound/smtp_transport.hpp"
#include "simcap/thread_name.hpp"

namespace simcap::outbound {

service::service(engine& e, const std::vector<sink_config>& sinks) : eng_(e) {
  for (const sink_config& c : sinks) {
    if (c.kind == sink_config::kind_t::email)
      transports_.push_back(std::make_unique<smtp_transport>(io_, c, eng_));
    else
      transports_.push_back(std::make_unique<http_transport>(io_, c));
    sinks_.push_back(std::make_unique<sink>(c, eng_, *transports_.back(), io_));
    if (carrier_ == nullptr && c.kind == sink_config::kind_t::carrier) {
      carrier_ = sinks_.back().get();
      carrier_->on_finished([this](const event& e, bool parked) { note_finished(e, parked); });
    }
  }
}

service::~service() { stop(); }

void service::start() {
  if (sinks_.empty() || thread_.joinable()) return;
  work_.emplace(io_.get_executor());
  bool new_sinks = false;
  for (auto& s : sinks_) new_sinks = s->start() || new_sinks;
  // A new sink's starting position is durable before any event it should get can exist.
  if (new_sinks) eng_.checkpoint();
  // Called under the event log's lock: a wake-up (one post a sink at most) and the network
  // state's note of a carrier event.
  listener_ = eng_.events().add_listener([this](const event& e) {
    note_event(e);
    for (auto& s : sinks_) s->wake();
  });
  if (carrier_ != nullptr) {
    // After the sinks loaded their positions (posted before, run before on the one thread): the
    // latest carrier event of every SIM that may not be in sync. Below the carrier's recovered
    // floor every event was finished: only the parked ones, and what followed them for their
    // SIM, can leave a SIM failed; from the floor on, the log says.
    boost::asio::post(io_, [this] {
      const auto note = [this](const event& e) {
        note_event(e);
        if (carrier_->finished(e.id)) note_finished(e, carrier_->is_parked(e.id));
      };
      for (const parked_event& p : carrier_->dead_letters()) {
        note(p.ev);
        if (p.ev.sim == 0) continue;
        event_filter f;
        f.sim = p.ev.sim;
        for (const event& e : eng_.events().read(p.ev.id, 10'000, f)) note(e);
      }
      std::uint64_t after = carrier_->recovered_floor() - 1;
      for (;;) {
        const auto evs = eng_.events().read(after, 4096);
        if (evs.empty()) break;
        for (const event& e : evs) note(e);
        after = evs.back().id;
      }
    });
  }
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

void service::note_event(const event& e) {
  if (carrier_ == nullptr || e.sim == 0 || !carrier_->wants(e)) return;
  std::lock_guard lock(net_mu_);
  auto [it, created] =
      net_.try_emplace(e.sim, net_entry{e.id, e.time, e.product, network_state::kind::pending});
  if (!created) {
    if (it->second.id >= e.id) return;
    if (it->second.state == network_state::kind::pending) net_counts_[it->second.product].first--;
    if (it->second.state == network_state::kind::failed) net_counts_[it->second.product].second--;
    it->second = net_entry{e.id, e.time, e.product, network_state::kind::pending};
  }
  net_counts_[e.product].first++;
}

void service::note_finished(const event& e, bool parked) {
  std::lock_guard lock(net_mu_);
  auto it = net_.find(e.sim);
  if (it == net_.end() || it->second.id != e.id || it->second.state != network_state::kind::pending)
    return;
  net_counts_[it->second.product].first--;
  if (parked) {
    it->second.state = network_state::kind::failed;
    net_counts_[it->second.product].second++;
  } else {
    net_.erase(it);  // in sync: nothing to keep
  }
}

service::network_state service::network_of(std::uint64_t sim) const {
  std::lock_guard lock(net_mu_);
  auto it = net_.find(sim);
  if (it == net_.end()) return {};
  return network_state{it->second.state, it->second.id, it->second.since};
}

std::pair<std::size_t, std::size_t> service::network_counts(std::uint16_t product) const {
  std::lock_guard lock(net_mu_);
  auto it = net_counts_.find(product);
  return it == net_counts_.end() ? std::pair<std::size_t, std::size_t>{} : it->second;
}

sink* service::find(std::string_view name) {
  for (auto& s : sinks_) {
    if (s->config().name == name) return s.get();
  }
  return nullptr;
}

}  // namespace simcap::outbound
