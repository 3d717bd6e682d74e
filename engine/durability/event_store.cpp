#include "durability/event_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string_view>

#include "durability/keys.hpp"

namespace simcap::detail {

namespace {

static_assert(sizeof(event) == 56, "the stored event layout");
static_assert(std::is_trivially_copyable_v<event>);

bool event_from(std::string_view v, std::size_t at, event& e) {
  if (at + sizeof e > v.size()) return false;
  std::memcpy(static_cast<void*>(&e), v.data() + at, sizeof e);
  return true;
}

key_builder index_key(char which) {
  key_builder k = key_of(key_kind::event_index);
  k.text(std::string_view(&which, 1));
  return k;
}

// The per-SIM index groups SIMs into 4096 buckets (a posting value per bucket a checkpoint).
std::uint16_t bucket_of(std::uint64_t sim) {
  return static_cast<std::uint16_t>((sim * 0x9E3779B97F4A7C15ULL) >> 52);
}

// Ids (or SIM, id pairs) in one posting value at most.
constexpr std::size_t kPostingIds = 8192;
// Events in one value of the log: small, so that reading a sparse event costs little.
constexpr std::size_t kEventsPerValue = 256;

// The posting prefix a filter reads (the narrowest it names).
std::string posting_prefix(const event_filter& f) {
  if (f.sim) return index_key('s').be(bucket_of(*f.sim)).str();
  if (f.product && f.type)
    return index_key('q').be(*f.product).be(static_cast<std::uint8_t>(*f.type)).str();
  if (f.type) return index_key('t').be(static_cast<std::uint8_t>(*f.type)).str();
  return index_key('p').be(*f.product).str();
}

template <class T>
void append_raw(std::string& v, T x) {
  v.append(reinterpret_cast<const char*>(&x), sizeof x);
}
template <class T>
T raw_at(std::string_view v, std::size_t at) {
  T x;
  std::memcpy(&x, v.data() + at, sizeof x);
  return x;
}

std::string with_id(const std::string& prefix, std::uint64_t id) {
  key_builder k(prefix[0]);
  k.text(std::string_view(prefix).substr(1)).be(id);
  return k.str();
}

// The events' index entries: for every product, type, product + type and SIM bucket the events
// have, values of up to kPostingIds ids (SIM buckets: SIM, id pairs sorted by SIM), each keyed
// by its first id. A checkpoint writes a few keys, not one an event.
void put_postings(write_batch& wb, const std::vector<event>& events) {
  std::map<std::string, std::vector<std::uint64_t>> ids;
  std::map<std::uint16_t, std::vector<std::pair<std::uint64_t, std::uint64_t>>> sims;
  for (const event& e : events) {
    const auto t = static_cast<std::uint8_t>(e.type);
    ids[index_key('p').be(e.product).str()].push_back(e.id);
    ids[index_key('t').be(t).str()].push_back(e.id);
    ids[index_key('q').be(e.product).be(t).str()].push_back(e.id);
    if (e.sim != 0) sims[bucket_of(e.sim)].emplace_back(e.sim, e.id);
  }
  for (const auto& [prefix, list] : ids) {
    for (std::size_t at = 0; at < list.size(); at += kPostingIds) {
      std::string v;
      const std::size_t end = std::min(list.size(), at + kPostingIds);
      for (std::size_t i = at; i < end; ++i) append_raw(v, list[i]);
      wb.put(with_id(prefix, list[at]), v);
    }
  }
  for (auto& [bucket, list] : sims) {
    for (std::size_t at = 0; at < list.size(); at += kPostingIds) {
      const std::size_t end = std::min(list.size(), at + kPostingIds);
      const std::uint64_t first = list[at].second;  // before sorting by SIM
      std::sort(list.begin() + static_cast<std::ptrdiff_t>(at),
                list.begin() + static_cast<std::ptrdiff_t>(end));
      std::string v;
      for (std::size_t i = at; i < end; ++i) {
        append_raw(v, list[i].first);
        append_raw(v, list[i].second);
      }
      wb.put(index_key('s').be(bucket).be(first).str(), v);
    }
  }
}

void put_indexed_up_to(write_batch& wb, std::uint64_t id) {
  writer w;
  w.put(id);
  wb.put(index_key('w').str(), w.str());
}

// Calls f for every stored event with id >= from, ascending, until it returns false.
template <class F>
void scan_events(store_cursor& c, std::uint64_t from, F&& f) {
  const std::string prefix = key_of(key_kind::events).str();
  for (c.seek_floor(key_of(key_kind::events).be(from).str(), prefix);
       c.valid() && c.key().starts_with(prefix); c.next()) {
    const std::string_view v = c.value();
    event e;
    for (std::size_t at = 0; event_from(v, at, e); at += sizeof e) {
      if (e.id < from) continue;
      if (!f(e)) return;
    }
  }
}
template <class F>
void scan_events(const store& st, std::uint64_t from, F&& f) {
  st.walk([&](store_cursor& c) { scan_events(c, from, f); });
}

// The events of ascending ids that match f, into out up to limit: one read a value of events.
void fetch_events(store_cursor& c, const std::vector<std::uint64_t>& ids, const event_filter& f,
                  std::size_t limit, std::vector<event>& out) {
  std::size_t i = 0;
  while (i < ids.size() && out.size() < limit) {
    const std::size_t before = i;
    scan_events(c, ids[i], [&](const event& e) {
      // Ids not in the log (deleted by retention, their postings not yet) are skipped.
      while (i < ids.size() && ids[i] < e.id) ++i;
      if (i >= ids.size() || out.size() >= limit) return false;
      if (e.id < ids[i]) return e.id + kEventsPerValue > ids[i];  // close: read on
      if (f.matches(e)) out.push_back(e);
      ++i;
      return true;
    });
    if (i == before) ++i;  // nothing at or after it
  }
}

}  // namespace

void put_events(write_batch& wb, const std::vector<event>& events) {
  if (events.empty()) return;
  for (std::size_t at = 0; at < events.size(); at += kEventsPerValue) {
    const std::size_t k = std::min(kEventsPerValue, events.size() - at);
    wb.put(key_of(key_kind::events).be(events[at].id).str(),
           std::string_view(reinterpret_cast<const char*>(events.data() + at), k * sizeof(event)));
  }
  put_postings(wb, events);
  put_indexed_up_to(wb, events.back().id);
}

void read_stored_events(const store& st, std::uint64_t from, std::uint64_t below, std::size_t limit,
                        const event_filter& f, std::vector<event>& out) {
  if (from >= below || out.size() >= limit) return;
  if (!f.sim && !f.product && !f.type) {
    scan_events(st, from, [&](const event& e) {
      if (e.id >= below || out.size() >= limit) return false;
      out.push_back(e);
      return true;
    });
    return;
  }
  // The ids the narrowest index names, in [from, below), ascending, a round of values at a
  // time; each round's events are read from the log (ids in a row share a value) and checked
  // against the rest of the filter. One cursor for it all: a cursor sorts the store's unflushed
  // writes when it is made.
  st.walk([&](store_cursor& c) {
    const std::string prefix = posting_prefix(f);
    std::string resume = with_id(prefix, from);
    bool floor = true;  // the value before `from` may hold ids at or after it
    std::vector<std::uint64_t> ids;
    for (bool more = true; more && out.size() < limit;) {
      ids.clear();
      more = false;
      std::string last_key;
      if (floor) {
        c.seek_floor(resume, prefix);
      } else {
        c.seek(resume);
      }
      for (; c.valid() && c.key().starts_with(prefix); c.next()) {
        const std::string_view k = c.key(), v = c.value();
        if (read_be<std::uint64_t>(k, prefix.size()) >= below) break;
        last_key.assign(k);
        if (f.sim) {
          // SIM, id pairs sorted by SIM: the SIM's ids are one run.
          std::size_t lo = 0, hi = v.size() / 16;
          const std::size_t n = hi;
          while (lo < hi) {
            const std::size_t mid = (lo + hi) / 2;
            if (raw_at<std::uint64_t>(v, mid * 16) < *f.sim)
              lo = mid + 1;
            else
              hi = mid;
          }
          for (std::size_t i = lo; i < n && raw_at<std::uint64_t>(v, i * 16) == *f.sim; ++i) {
            const auto id = raw_at<std::uint64_t>(v, i * 16 + 8);
            if (id >= from && id < below) ids.push_back(id);
          }
        } else {
          for (std::size_t at = 0; at + 8 <= v.size(); at += 8) {
            const auto id = raw_at<std::uint64_t>(v, at);
            if (id >= from && id < below) ids.push_back(id);
          }
        }
        if (ids.size() >= limit - out.size() + kPostingIds) {
          more = true;  // enough for this round; the next starts after this value
          break;
        }
      }
      std::sort(ids.begin(), ids.end());
      fetch_events(c, ids, f, limit, out);
      resume = last_key + '\0';
      floor = false;
    }
  });
}

void recover_events(store& st, event_log& log, std::size_t in_memory) {
  // The newest id: the last event of the last value.
  std::uint64_t last = 0;
  const std::string prefix = key_of(key_kind::events).str();
  st.scan_from(prefix, key_of(key_kind::events).be(std::numeric_limits<std::uint64_t>::max()).str(),
               true, [&](std::string_view, std::string_view v) {
                 event e;
                 if (v.size() >= sizeof e && event_from(v, v.size() - sizeof e, e)) last = e.id;
                 return false;
               });
  if (last == 0) return;
  // A store written before the indexes: index its events now, in batches.
  std::string w;
  std::uint64_t indexed = 0;
  if (st.get(index_key('w').str(), w)) indexed = reader(w).get<std::uint64_t>();
  if (indexed < last && st.writable()) {
    spdlog::info("indexing events {}..{} of the store", indexed + 1, last);
    std::vector<event> chunk;
    const auto flush = [&] {
      if (chunk.empty()) return;
      write_batch wb;
      put_postings(wb, chunk);
      put_indexed_up_to(wb, chunk.back().id);
      st.write(wb);
      chunk.clear();
    };
    scan_events(st, indexed + 1, [&](const event& e) {
      chunk.push_back(e);
      if (chunk.size() == 65536) flush();
      return true;
    });
    flush();
  }
  const std::uint64_t from = in_memory != 0 && last > in_memory ? last - in_memory + 1 : 1;
  scan_events(st, from, [&](const event& e) {
    log.restore(e);
    return true;
  });
  log.restore_last_id(last);
}

std::uint64_t oldest_stored_event(const store& st) {
  std::uint64_t first = 0;
  const std::string prefix = key_of(key_kind::events).str();
  st.scan(prefix, [&](std::string_view k, std::string_view) {
    first = read_be<std::uint64_t>(k, prefix.size());
    return false;
  });
  return first;
}

dated_value first_value_dated(const store& st, std::uint64_t from, unix_seconds t,
                              std::size_t max_events) {
  const std::string prefix = key_of(key_kind::events).str();
  std::uint64_t at = from;
  std::size_t seen = 0;
  bool complete = true;
  st.scan_from(prefix, key_of(key_kind::events).be(from).str(), true,
               [&](std::string_view k, std::string_view v) {
                 at = read_be<std::uint64_t>(k, prefix.size());
                 event newest;
                 if (v.size() < sizeof newest || !event_from(v, v.size() - sizeof newest, newest))
                   return true;
                 if (newest.time >= t) return false;
                 if (seen >= max_events) {
                   complete = false;
                   return false;
                 }
                 seen += v.size() / sizeof newest;
                 at = newest.id + 1;  // every event of this value is older
                 return true;
               });
  return {std::max(at, from), complete};
}

namespace {

// The highest id a value holds: of events, its last event's; of index postings by product or
// type, its last id; by SIM bucket (SIM, id pairs sorted by SIM), the highest of its ids.
std::uint64_t highest_id(std::string_view key, std::string_view v) {
  if (key[0] == static_cast<char>(key_kind::events)) {
    event e;
    return v.size() >= sizeof e && event_from(v, v.size() - sizeof e, e) ? e.id : 0;
  }
  if (key[1] != 's') return v.size() >= 8 ? raw_at<std::uint64_t>(v, v.size() - 8) : 0;
  std::uint64_t high = 0;
  for (std::size_t at = 0; at + 16 <= v.size(); at += 16)
    high = std::max(high, raw_at<std::uint64_t>(v, at + 8));
  return high;
}

// For each key prefix of the kind in turn (the key less its last 8 bytes, a first id): deletes
// the values of that prefix whose ids are all below `below` (a prefix's values hold runs of ids
// that follow each other, so the first that holds one at or above it ends the prefix's purge).
// Keys of another length, and "I w", are not runs. Stops after max_keys deletes (false then).
// first_kept: the first id of the first value kept (of the last prefix), or `below`. One cursor
// for the whole walk.
bool purge_runs(store_cursor& c, write_batch& wb, std::string_view kind, std::size_t key_size,
                std::uint64_t below, std::size_t max_keys, std::size_t& keys,
                std::uint64_t& first_kept) {
  c.seek(kind);
  while (c.valid() && c.key().starts_with(kind)) {
    const std::string_view key = c.key();
    if (key_size != 0 ? key.size() != key_size : key.size() < kind.size() + 9 || key[1] == 'w') {
      c.next();
      continue;
    }
    const std::string prefix(key.substr(0, key.size() - 8));
    first_kept = below;
    for (; c.valid() && c.key().starts_with(prefix); c.next()) {
      if (c.key().size() != prefix.size() + 8) continue;
      if (highest_id(c.key(), c.value()) >= below) {
        first_kept = std::min(below, read_be<std::uint64_t>(c.key(), prefix.size()));
        break;
      }
      if (keys >= max_keys) return false;
      wb.del(c.key());
      ++keys;
    }
    c.seek(prefix + std::string(8, '\xff') + '\0');
  }
  return true;
}

}  // namespace

events_purge purge_events_below(const store& st, write_batch& wb, std::uint64_t below,
                                std::size_t max_keys) {
  events_purge p;
  p.oldest = below;
  st.walk([&](store_cursor& c) {
    // The values of events first, whole (256 events a value at most): the floor moves with them.
    purge_runs(c, wb, key_of(key_kind::events).str(), 1 + 8, below,
               std::numeric_limits<std::size_t>::max(), p.keys, p.oldest);
    // Then the index postings of the events deleted, at most max_keys of them.
    std::uint64_t unused = 0;
    p.complete = purge_runs(c, wb, key_of(key_kind::event_index).str(), 0, p.oldest,
                            p.keys + max_keys, p.keys, unused);
  });
  return p;
}

}  // namespace simcap::detail
