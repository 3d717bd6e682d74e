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

namespace {
std::uint32_t product_type(std::uint16_t product, event_type t) noexcept {
  return (static_cast<std::uint32_t>(product) << 8) | static_cast<std::uint8_t>(t);
}

// Removes the oldest id of a key's index (it is the front: ids are appended ascending).
template <class Map, class Key>
void pop_front_of(Map& m, const Key& k) {
  auto it = m.find(k);
  if (it == m.end()) return;
  it->second.erase(it->second.begin());
  if (it->second.empty()) m.erase(it);
}
}  // namespace

void event_log::page_older_through(pager p, std::size_t in_memory) {
  std::lock_guard lock(mu_);
  pager_ = std::move(p);
  in_memory_ = in_memory;
  trim();
}

void event_log::add(const event& e) {
  if (events_.empty()) first_id_ = e.id;
  events_.push_back(e);
  by_product_[e.product].push_back(e.id);
  by_type_[static_cast<std::uint8_t>(e.type)].push_back(e.id);
  by_product_type_[product_type(e.product, e.type)].push_back(e.id);
  if (e.sim != 0) by_sim_[e.sim].push_back(e.id);
  next_id_ = e.id + 1;
}

void event_log::pop_front() {
  const event& e = events_.front();
  pop_front_of(by_product_, e.product);
  pop_front_of(by_type_, static_cast<std::uint8_t>(e.type));
  pop_front_of(by_product_type_, product_type(e.product, e.type));
  if (e.sim != 0) pop_front_of(by_sim_, e.sim);
  events_.pop_front();
  ++first_id_;
}

void event_log::trim() {
  if (!pager_ || in_memory_ == 0) return;
  while (events_.size() > in_memory_) pop_front();
}

void event_log::forget_below(std::uint64_t id) {
  std::lock_guard lock(mu_);
  if (id <= floor_) return;
  floor_ = id;
  while (!events_.empty() && first_id_ < id) pop_front();
  if (events_.empty()) first_id_ = std::max(first_id_, std::min(id, next_id_));
}

std::uint64_t event_log::first_retained() const {
  std::lock_guard lock(mu_);
  return floor_;
}

std::uint64_t event_log::append(event e) {
  std::lock_guard lock(mu_);
  e.id = next_id_;
  add(e);
  for (auto& [id, l] : listeners_) l(events_.back());
  trim();
  return e.id;
}

void event_log::read_memory(std::uint64_t after, std::size_t limit, const event_filter& f,
                            std::vector<event>& out) const {
  if (events_.empty() || out.size() >= limit) return;
  const auto at = [this](std::uint64_t id) -> const event& { return events_[id - first_id_]; };
  // The ids of the narrowest index the filter names, or every id.
  const auto walk = [&](const auto& ids) {
    for (auto it = std::upper_bound(ids.begin(), ids.end(), after);
         it != ids.end() && out.size() < limit; ++it) {
      const event& e = at(*it);
      if (f.matches(e)) out.push_back(e);
    }
  };
  const auto walk_key = [&](const auto& index, const auto& key) {
    if (auto it = index.find(key); it != index.end()) walk(it->second);
  };
  if (f.sim) {
    walk_key(by_sim_, *f.sim);
  } else if (f.product && f.type) {
    walk_key(by_product_type_, product_type(*f.product, *f.type));
  } else if (f.type) {
    walk_key(by_type_, static_cast<std::uint8_t>(*f.type));
  } else if (f.product) {
    walk_key(by_product_, *f.product);
  } else {
    for (std::uint64_t id = std::max(after + 1, first_id_); id < next_id_ && out.size() < limit;
         ++id)
      out.push_back(at(id));
  }
}

std::vector<event> event_log::read(std::uint64_t after, std::size_t limit,
                                   const event_filter& f) const {
  std::vector<event> out;
  std::uint64_t from = after + 1;
  for (;;) {
    std::uint64_t first = 0;
    {
      std::lock_guard lock(mu_);
      from = std::max(from, floor_);
      if (!pager_ || from >= first_id_) {
        read_memory(from - 1, limit, f, out);
        return out;
      }
      first = first_id_;
    }
    // Older than the window: from the store, outside the lock. The window may move on
    // meanwhile; the next round reads what it left behind.
    pager_(from, first, limit, f, out);
    if (out.size() >= limit) return out;
    from = first;
  }
}

void event_log::restore(const event& e) {
  std::lock_guard lock(mu_);
  add(e);
  trim();
}

void event_log::restore_last_id(std::uint64_t last) {
  std::lock_guard lock(mu_);
  if (last + 1 > next_id_) {
    next_id_ = last + 1;
    if (events_.empty()) first_id_ = next_id_;
  }
}

std::size_t event_log::in_memory() const {
  std::lock_guard lock(mu_);
  return events_.size();
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
