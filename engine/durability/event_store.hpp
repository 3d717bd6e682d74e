#pragma once
// The event log in the store: the events of each checkpoint in values of up to kBlobBytes keyed
// by their first id, and four indexes (by SIM, product, type, product + type) whose values are
// the events themselves (56 bytes each), so that a filtered read of old events walks one index and
// never the whole log. The event log keeps the newest events in memory and pages older ones from
// here.
#include <cstdint>
#include <vector>

#include "durability/store.hpp"
#include "simcap/event_log.hpp"

namespace simcap::detail {

// The events (ids assigned, ascending) with their index entries, into a checkpoint's batch.
void put_events(write_batch& wb, const std::vector<event>& events);
// event_log::pager over the store.
void read_stored_events(const store& st, std::uint64_t from, std::uint64_t below, std::size_t limit,
                        const event_filter& f, std::vector<event>& out);
// At recovery: indexes the events a store written before the indexes holds (once), puts the
// newest in_memory events back into the log, its next id after the newest, and the rest
// behind the log's pager.
void recover_events(store& st, event_log& log, std::size_t in_memory);

}  // namespace simcap::detail
