#pragma once
// The engine's event log: appended to by the checkpointer (once the events are in the store) and
// the engine's control plane, read by any thread; ids increase by one from 1.
//
// Memory is bounded: the log keeps the newest `in_memory` events (and indexes of them by
// product, SIM, type and product + type, so a filtered read does not scan); older ones are read
// through the pager, from the store, which indexes them the same way. Without a pager (no store)
// every event stays in memory.
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "simcap/event.hpp"

namespace simcap {

struct event_filter {
  std::optional<std::uint16_t> product;
  std::optional<std::uint64_t> sim;
  std::optional<event_type> type;
  bool matches(const event& e) const noexcept {
    return (!product || e.product == *product) && (!sim || e.sim == *sim) &&
           (!type || e.type == *type);
  }
};

class event_log {
 public:
  using listener = std::function<void(const event&)>;
  // Appends to out the events with from <= id < below that match f, ascending, until out holds
  // limit events. Any thread, outside the log's lock.
  using pager = std::function<void(std::uint64_t from, std::uint64_t below, std::size_t limit,
                                   const event_filter& f, std::vector<event>& out)>;

  // Events older than the newest in_memory are dropped from memory and read through p from now
  // on. Before any reader runs.
  void page_older_through(pager p, std::size_t in_memory);

  // Assigns the next id, stores the event and returns the id. Thread-safe.
  std::uint64_t append(event e);
  // Events with id > after that match the filter, oldest first, at most limit.
  std::vector<event> read(std::uint64_t after, std::size_t limit, const event_filter& f = {}) const;
  std::uint64_t last_id() const;
  // Puts back an event read from the store (ids ascending, after any already here); no listener.
  void restore(const event& e);
  // The next id is after last (recovery, when the newest events are not restored in memory).
  void restore_last_id(std::uint64_t last);
  // The events below id are gone (the store's retention deleted them): dropped from memory,
  // and never asked of the pager again. The floor only rises.
  void forget_below(std::uint64_t id);
  // The oldest id the log may still hold: reads begin there.
  std::uint64_t first_retained() const;
  // Events held in memory now.
  std::size_t in_memory() const;
  // Listeners are called synchronously for every appended event, in id order, under the log's
  // lock: keep them short (post anything longer elsewhere). Any number may be added.
  std::uint64_t add_listener(listener l);
  void remove_listener(std::uint64_t id);

 private:
  void add(const event& e);  // under mu_
  void trim();               // under mu_
  void pop_front();          // under mu_
  // Memory events with id > after matching f, into out (up to limit). Under mu_.
  void read_memory(std::uint64_t after, std::size_t limit, const event_filter& f,
                   std::vector<event>& out) const;

  mutable std::mutex mu_;
  std::deque<event> events_;  // ids first_id_ .. next_id_ - 1
  std::uint64_t first_id_ = 1;
  std::uint64_t next_id_ = 1;
  std::uint64_t floor_ = 1;  // ids below are gone for good
  // Ids in memory, by filter value (ascending).
  std::unordered_map<std::uint16_t, std::deque<std::uint64_t>> by_product_;
  std::unordered_map<std::uint32_t, std::deque<std::uint64_t>> by_product_type_;
  std::unordered_map<std::uint8_t, std::deque<std::uint64_t>> by_type_;
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> by_sim_;
  pager pager_;
  std::size_t in_memory_ = 0;  // 0: unbounded
  std::uint64_t next_listener_ = 1;
  std::vector<std::pair<std::uint64_t, listener>> listeners_;
};

}  // namespace simcap
