#include "simcap/event_log.hpp"

#include <algorithm>
#include <cstdio>

namespace simcap {

std::string reason_text(const event& e) {
  if (e.type == event_type::alert && e.reason == event_reason::threshold) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "threshold_%g", e.threshold_permille / 1000.0);
    return buf;
  }
  return std::string(to_string(e.reason));
}

std::uint64_t event_log::append(event e) {
  std::lock_guard lock(mu_);
  e.id = next_id_++;
  events_.push_back(e);
  for (auto& [id, l] : listeners_) l(events_.back());
  return e.id;
}

std::vector<event> event_log::read(std::uint64_t after, std::size_t limit,
                                   const event_filter& f) const {
  std::vector<event> out;
  std::lock_guard lock(mu_);
  if (events_.empty()) return out;
  // Ids are dense from the first stored one.
  std::uint64_t first = events_.front().id;
  std::size_t i = after < first ? 0 : static_cast<std::size_t>(after - first + 1);
  for (; i < events_.size() && out.size() < limit; ++i) {
    const event& e = events_[i];
    if (f.product && e.product != *f.product) continue;
    if (f.sim && e.sim != *f.sim) continue;
    if (f.type && e.type != *f.type) continue;
    out.push_back(e);
  }
  return out;
}

void event_log::restore(const event& e) {
  std::lock_guard lock(mu_);
  events_.push_back(e);
  next_id_ = e.id + 1;
}

std::uint64_t event_log::last_id() const {
  std::lock_guard lock(mu_);
  return next_id_ - 1;
}

std::uint64_t event_log::add_listener(listener l) {
  std::lock_guard lock(mu_);
  listeners_.emplace_back(next_listener_, std::move(l));
  return next_listener_++;
}

void event_log::remove_listener(std::uint64_t id) {
  std::lock_guard lock(mu_);
  std::erase_if(listeners_, [id](const auto& entry) { return entry.first == id; });
}

}  // namespace simcap
