#include "outbound/outbound.hpp"

#include <spdlog/spdlog.h>

#include "outbound/smtp_transport.hpp"
#include "outbound/webhooks.hpp"
#include "simcap/thread_name.hpp"

namespace simcap::outbound {

service::service(engine& e, const std::vector<sink_config>& sinks) : eng_(e) {
  for (const sink_config& c : sinks) {
    sinks_.push_back(make_entry(c, std::nullopt));
    if (carrier_ == nullptr && c.kind == sink_config::kind_t::carrier) {
      carrier_ = sinks_.back()->s.get();
      carrier_->on_finished([this](const event& e, bool parked) { note_finished(e, parked); });
    }
  }
}

std::shared_ptr<service::entry> service::make_entry(const sink_config& c,
                                                    std::optional<webhook> hook) {
  auto en = std::make_shared<entry>();
  if (c.kind == sink_config::kind_t::email)
    en->t = std::make_unique<smtp_transport>(io_, c, eng_);
  else
    en->t = std::make_unique<http_transport>(io_, c);
  en->s = std::make_unique<sink>(c, eng_, *en->t, io_);
  en->hook = std::move(hook);
  return en;
}

std::vector<std::shared_ptr<service::entry>> service::live() const {
  std::lock_guard lock(sinks_mu_);
  return sinks_;
}

service::~service() { stop(); }

void service::start() {
  if (thread_.joinable()) return;
  work_.emplace(io_.get_executor());
  // The webhooks made at run time, back from the store.
  for (const auto& [key, value] : eng_.side_state("hook/")) {
    auto h = webhook_from_json(value);
    if (!h) {
      spdlog::error("outbound: {} in the store is unreadable; skipped", key);
      continue;
    }
    try {
      auto en = make_entry(webhook_sink(*h), *h);
      std::lock_guard lock(sinks_mu_);
      sinks_.push_back(std::move(en));
    } catch (const std::exception& ex) {
      spdlog::error("outbound: {}: {}; skipped", key, ex.what());
    }
  }
  bool new_sinks = false;
  for (auto& en : live()) new_sinks = en->s->start() || new_sinks;
  // A new sink's starting position is durable before any event it should get can exist.
  if (new_sinks) eng_.checkpoint();
  // Called under the event log's lock: a wake-up (one post a sink at most) and the network
  // state's note of a carrier event.
  listener_ = eng_.events().add_listener([this](const event& e) {
    note_event(e);
    std::lock_guard lock(sinks_mu_);
    for (auto& en : sinks_) en->s->wake();
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
  for (auto& en : live()) en->s->flush();
  work_.reset();
  io_.stop();
  thread_.join();
}

std::vector<sink_stats> service::stats() const {
  std::vector<sink_stats> out;
  for (const auto& en : live()) out.push_back(en->s->stats());
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
  for (auto& en : live()) {
    if (en->s->config().name == name) return en->s.get();
  }
  return nullptr;
}

std::expected<webhook, std::string> service::create_hook(webhook h) {
  std::lock_guard one(hooks_mu_);
  std::size_t n = 0;
  for (const auto& en : live()) n += en->hook.has_value();
  if (n >= kMaxWebhooks)
    return std::unexpected("at most " + std::to_string(kMaxWebhooks) + " webhooks");
  h.id = new_webhook_id();
  h.created_at = eng_.time_source().now();
  std::shared_ptr<entry> en;
  try {
    en = make_entry(webhook_sink(h), h);
  } catch (const std::exception& ex) {
    return std::unexpected(std::string(ex.what()));
  }
  // Its position (the next event) and the hook are durable before the answer.
  en->s->start();
  eng_.put_side_state("hook/" + h.id, webhook_json(h));
  eng_.checkpoint();
  {
    std::lock_guard lock(sinks_mu_);
    sinks_.push_back(en);
  }
  en->s->wake();  // events since start() found no listener for it
  return h;
}

std::vector<webhook> service::hooks() const {
  std::vector<webhook> out;
  for (const auto& en : live()) {
    if (en->hook) out.push_back(*en->hook);
  }
  return out;
}

bool service::delete_hook(const std::string& id) {
  std::lock_guard one(hooks_mu_);
  std::shared_ptr<entry> gone;
  {
    std::lock_guard lock(sinks_mu_);
    for (auto it = sinks_.begin(); it != sinks_.end(); ++it) {
      if ((*it)->hook && (*it)->hook->id == id) {
        gone = *it;
        sinks_.erase(it);
        retired_.push_back(gone);
        break;
      }
    }
  }
  if (!gone) return false;
  gone->s->retire();
  eng_.put_side_state("hook/" + id, "");
  eng_.checkpoint();
  return true;
}

}  // namespace simcap::outbound
