#pragma once
// The engine's event log: appended to by shard threads and the engine's control plane, read by
// any thread. In memory for now; ids are monotonically increasing from 1.
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "simcap/event.hpp"

namespace simcap {

struct event_filter {
  std::optional<std::uint16_t> product;
  std::optional<std::uint64_t> sim;
  std::optional<event_type> type;
};

class event_log {
 public:
  using listener = std::function<void(const event&)>;

  // Assigns the next id, stores the event and returns the id. Thread-safe.
  std::uint64_t append(event e);
  // Events with id > after that match the filter, oldest first, at most limit.
  std::vector<event> read(std::uint64_t after, std::size_t limit, const event_filter& f = {}) const;
  std::uint64_t last_id() const;
  // Puts back an event read from the store (ids ascending, after any already here); no listener.
  void restore(const event& e);
  // Listeners are called synchronously for every appended event, in id order, under the log's
  // lock: keep them short (post anything longer elsewhere). Any number may be added.
  std::uint64_t add_listener(listener l);
  void remove_listener(std::uint64_t id);

 private:
  mutable std::mutex mu_;
  std::deque<event> events_;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_listener_ = 1;
  std::vector<std::pair<std::uint64_t, listener>> listeners_;
};

}  // namespace simcap
