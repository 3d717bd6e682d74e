#include "durability/event_store.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <limits>
#include <string_view>

#include "durability/keys.hpp"
#include "durability/sim_blobs.hpp"

namespace simcap::detail {

namespace {

static_assert(sizeof(event) == 56, "the stored event layout");
static_assert(std::is_trivially_copyable_v<event>);

std::string_view bytes_of(const event& e) { return {reinterpret_cast<const char*>(&e), sizeof e}; }

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

// The index key prefix a filter reads (the narrowest it names).
std::string index_prefix(const event_filter& f) {
  if (f.sim) return index_key('s').be(*f.sim).str();
  if (f.product && f.type)
    return index_key('q').be(*f.product).be(static_cast<std::uint8_t>(*f.type)).str();
  if (f.type) return index_key('t').be(static_cast<std::uint8_t>(*f.type)).str();
  return index_key('p').be(*f.product).str();
}

void put_index(write_batch& wb, const event& e) {
  const std::string_view v = bytes_of(e);
  if (e.sim != 0) wb.put(index_key('s').be(e.sim).be(e.id).str(), v);
  wb.put(index_key('p').be(e.product).be(e.id).str(), v);
  wb.put(index_key('t').be(static_cast<std::uint8_t>(e.type)).be(e.id).str(), v);
  wb.put(index_key('q').be(e.product).be(static_cast<std::uint8_t>(e.type)).be(e.id).str(), v);
}

void put_indexed_up_to(write_batch& wb, std::uint64_t id) {
  writer w;
  w.put(id);
  wb.put(index_key('w').str(), w.str());
}

// Calls f for every stored event with id >= from, ascending, until it returns false.
template <class F>
void scan_events(const store& st, std::uint64_t from, F&& f) {
  const std::string prefix = key_of(key_kind::events).str();
  st.scan_from(prefix, key_of(key_kind::events).be(from).str(), true,
               [&](std::string_view, std::string_view v) {
                 event e;
                 for (std::size_t at = 0; event_from(v, at, e); at += sizeof e) {
                   if (e.id < from) continue;
                   if (!f(e)) return false;
                 }
                 return true;
               });
}

}  // namespace

void put_events(write_batch& wb, const std::vector<event>& events) {
  if (events.empty()) return;
  const std::size_t per_value = kBlobBytes / sizeof(event);
  for (std::size_t at = 0; at < events.size(); at += per_value) {
    const std::size_t k = std::min(per_value, events.size() - at);
    wb.put(key_of(key_kind::events).be(events[at].id).str(),
           std::string_view(reinterpret_cast<const char*>(events.data() + at), k * sizeof(event)));
  }
  for (const event& e : events) put_index(wb, e);
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
  const std::string prefix = index_prefix(f);
  key_builder start(prefix[0]);
  start.text(std::string_view(prefix).substr(1)).be(from);
  st.scan_from(prefix, start.str(), false, [&](std::string_view k, std::string_view v) {
    if (read_be<std::uint64_t>(k, prefix.size()) >= below || out.size() >= limit) return false;
    event e;
    if (event_from(v, 0, e) && f.matches(e)) out.push_back(e);
    return true;
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
    write_batch wb;
    std::size_t n = 0;
    scan_events(st, indexed + 1, [&](const event& e) {
      put_index(wb, e);
      if (++n % 65536 == 0) {
        put_indexed_up_to(wb, e.id);
        st.write(wb);
        wb = write_batch();
      }
      return true;
    });
    put_indexed_up_to(wb, last);
    st.write(wb);
  }
  const std::uint64_t from = in_memory != 0 && last > in_memory ? last - in_memory + 1 : 1;
  scan_events(st, from, [&](const event& e) {
    log.restore(e);
    return true;
  });
  log.restore_last_id(last);
}

}  // namespace simcap::detail
