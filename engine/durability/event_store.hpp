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

// Retention. The store's values (of events and of index postings) each hold a run of ids, and
// the runs of one key prefix follow each other; a value goes when all its ids are below the
// first id kept, so no event at or above it loses its value or an index entry (the value that
// holds it stays whole: a few older events may stay with it).
//
// The first id of the oldest value of events (0: none).
std::uint64_t oldest_stored_event(const store& st);
// The first id of the first value of events, from the one holding `from` on, whose newest event
// is dated at or after t, looking at no more than max_events events (complete false: where it
// stopped).
struct dated_value {
  std::uint64_t id = 0;
  bool complete = true;
};
dated_value first_value_dated(const store& st, std::uint64_t from, unix_seconds t,
                              std::size_t max_events);
// Adds to wb the deletes of the values whose ids are all below `below` (of the index postings
// at most max_keys, the rest next time: a posting whose events are gone names nothing a reader
// is asked for). Returns the oldest id still stored: the first of the value holding `below`, or
// `below` when no value holds it.
struct events_purge {
  std::uint64_t oldest = 0;
  std::size_t keys = 0;  // keys deleted
  bool complete = true;  // false: postings below are left for the next purge
};
events_purge purge_events_below(const store& st, write_batch& wb, std::uint64_t below,
                                std::size_t max_keys);

}  // namespace simcap::detail
