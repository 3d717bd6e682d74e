#include <time.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <unordered_map>
#include <vector>

#include "durability/keys.hpp"
#include "durability/sim_blobs.hpp"
#include "durability/store.hpp"
#include "shard/shard.hpp"
#include "state/saturating.hpp"

// A shard's part of a checkpoint (cut), of recovery (recover) and of re-sharding (hand_over).
// The cut runs on the shard thread between record batches; recover and hand_over before the
// shard starts.
namespace simcap::detail {

namespace {
// The calling thread's CPU time (s): the cut's cost, not counting time the shard thread waited
// for a core (on a machine whose cores the feeds keep busy, others used that time).
double thread_cpu_seconds() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
}  // namespace

void shard::cut(write_batch& wb, shard_cut& out, std::uint64_t checkpoint, std::uint64_t durable) {
  SIMCAP_ASSERT_OWNER();
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = thread_cpu_seconds();
  // The dirty SIMs, as delta blobs of at most about kBlobBytes each (values that size come
  // from the heap and reuse its pages; bigger ones would be mapped and faulted in each time).
  std::uint32_t piece = 0;
  std::uint64_t cut_bytes = 0;
  blob_writer delta([&](std::string&& blob) {
    cut_bytes += blob.size();
    delta_bytes_ += blob.size();
    out.blobs.push_back(
        {shard_key(key_kind::delta, index_).be(checkpoint).be(piece++).str(), std::move(blob)});
  });
  auto take = [&](sim_slot& s) {
    delta.add(s, (s.flags & sim_slot::kFlagDirtyAll) != 0);
    s.flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
    ++out.sims;
  };
  // In memory order, reading the changed slots only; queries wait for a slice, not the cut.
  table_.take_dirty(take, [&] { run_reads(); });
  for (std::uint64_t key : erased_) {
    if (table_.find(key) != nullptr) continue;  // imported again since
    sim_slot gone{};
    gone.key = key;
    gone.state = kErased;
    delta.add(gone, true);
  }
  erased_.clear();
  delta.flush();

  // The base: a new one begins once the deltas since the last one outweigh the table, and is
  // written a slice per checkpoint so that no cut stops the shard for long. A slice weighs
  // about half what this cut's deltas did (at least kMinBaseSlice): the base is done by the time
  // twice as many deltas again have been written, so recovery reads at most about three tables
  // of deltas, and a base costs a cut no more than half its deltas (nor more than an eighth of
  // the table), however often checkpoints run. (A slice as heavy as the deltas made a busy
  // fleet's checkpoints a third bigger for recovery reading two tables instead of three.)
  const std::uint64_t table_bytes = table_.size() * sizeof(sim_slot);
  if (!build_.active && table_.size() != 0 && (base_gen_ == 0 || delta_bytes_ >= table_bytes)) {
    build_ = base_build{true, checkpoint, 0, table_.capacity(), 0};
    delta_bytes_ = 0;
  }
  if (build_.active && build_.capacity != table_.capacity()) {
    build_ = base_build{true, checkpoint, 0, table_.capacity(), 0};  // the table grew: start over
  }
  if (build_.active) {
    const std::uint64_t budget = std::clamp<std::uint64_t>(
        cut_bytes / 2, kMinBaseSlice,
        std::max<std::uint64_t>(kMinBaseSlice, build_.capacity / 8 * kSlotWeight));
    std::uint64_t written = 0;
    std::size_t end = build_.next_slot;
    {
      blob_writer chunk([&](std::string&& blob) {
        out.blobs.push_back(
            {shard_key(key_kind::base, index_).be(build_.gen).be(build_.chunk++).str(),
             std::move(blob)});
      });
      for (; end < build_.capacity && written < budget; ++end) {
        const sim_slot& s = table_.at(end);
        if (s.key != 0) {
          chunk.add(s, true);
          written += kSlotWeight;
        }
        if ((end & 0xfff) == 0xfff) run_reads();
      }
    }
    build_.next_slot = end;
    if (end == build_.capacity) {
      // Complete: it and the deltas after its first checkpoint are the SIMs' state (every slice
      // was cut at or after that checkpoint, so it holds whatever the deltas up to it hold);
      // older bases and deltas go.
      writer g;
      g.put(build_.gen).put(static_cast<std::uint64_t>(build_.capacity));
      wb.put(shard_key(key_kind::base_gen, index_).str(), g.str());
      wb.del_range(shard_key(key_kind::base, index_).be(std::uint64_t{0}).str(),
                   shard_key(key_kind::base, index_).be(build_.gen).str());
      wb.del_range(shard_key(key_kind::delta, index_).be(std::uint64_t{0}).str(),
                   shard_key(key_kind::delta, index_).be(build_.gen + 1).str());
      base_gen_ = build_.gen;
      build_.active = false;
    }
  }

  for (std::uint16_t product : days_dropped_) {
    // A closed period: its per-day usage and retired lines go (the lines are in 'L' now).
    for (key_kind kind : {key_kind::day, key_kind::retired, key_kind::rating}) {
      auto from = shard_key(kind, index_).be(product).str();
      auto to = shard_key(kind, index_).be(static_cast<std::uint16_t>(product + 1)).str();
      wb.del_range(from, to);
    }
  }
  days_dropped_.clear();
  for (auto [product, sim] : retired_changed_) {
    const auto& retired = products_[product].retired;
    auto it = retired.find(sim);
    auto key = shard_key(key_kind::retired, index_).be(product).be(sim).str();
    if (it == retired.end()) {
      wb.del(key);  // taken back, or the period closed since (then in 'L')
    } else {
      wb.put(key, line_value(it->second));
    }
  }
  retired_changed_.clear();
  for (auto [product, sim] : rating_changed_) {
    auto key = shard_key(key_kind::rating, index_).be(product).be(sim).str();
    auto it = rating_.find(sim);
    const sim_slot* s = table_.find(sim);
    if (it != rating_.end() && s != nullptr && s->product == product) {
      wb.put(key, rating_value(it->second.charge_day, it->second.away));
      it->second.listed = false;
    } else {
      wb.del(key);
    }
  }
  rating_changed_.clear();
  for (const day_ref& d : dirty_days_) {
    auto key = shard_key(key_kind::day, index_)
                   .be(d.product)
                   .be(d.sim)
                   .be(static_cast<std::uint32_t>(d.day))
                   .str();
    std::uint64_t bytes = days_.get(d.sim, d.day);
    if (bytes == 0) {
      wb.del(key);
    } else {
      wb.put(key, std::string_view(reinterpret_cast<const char*>(&bytes), sizeof bytes));
    }
  }
  dirty_days_.clear();

  for (std::size_t i = 0; i < products_.size(); ++i) {
    shard_product& p = products_[i];
    if (!p.changed) continue;
    p.changed = false;
    writer w;
    w.put(p.period_start).put(p.period_end).put(static_cast<std::uint32_t>(p.hourly.size()));
    w.raw(p.hourly.data(), p.hourly.size() * sizeof(std::uint64_t));
    wb.put(shard_key(key_kind::hourly, index_).be(static_cast<std::uint16_t>(i)).str(), w.str());
  }

  auto header = [&](std::uint16_t product, const closed_period& cp) {
    writer w;
    w.put(cp.end).put(cp.total_bytes).put(static_cast<std::uint64_t>(cp.chargeable_sims));
    wb.put(shard_key(key_kind::closed, index_)
               .be(product)
               .be(static_cast<std::uint64_t>(cp.start))
               .str(),
           w.str());
  };
  auto line = [&](std::uint16_t product, unix_seconds start, const closed_line& l) {
    wb.put(shard_key(key_kind::line, index_)
               .be(product)
               .be(static_cast<std::uint64_t>(start))
               .be(l.sim)
               .str(),
           line_value(l));
  };
  for (const closed_ref& c : closed_changed_) {
    if (c.product >= products_.size()) continue;
    auto& closed = products_[c.product].closed;
    auto cp = std::find_if(closed.begin(), closed.end(),
                           [&](const closed_period& x) { return x.start == c.start; });
    if (cp == closed.end()) continue;
    header(c.product, *cp);
    if (c.sim == 0) {
      for (const closed_line& l : cp->lines) line(c.product, cp->start, l);
      continue;
    }
    auto it = std::lower_bound(cp->lines.begin(), cp->lines.end(), c.sim,
                               [](const closed_line& l, std::uint64_t k) { return l.sim < k; });
    if (it != cp->lines.end() && it->sim == c.sim) line(c.product, cp->start, *it);
  }
  closed_changed_.clear();
  for (const closed_ref& c : closed_dropped_) {
    auto start = static_cast<std::uint64_t>(c.start);
    wb.del_range(shard_key(key_kind::line, index_).be(c.product).be(start).str(),
                 shard_key(key_kind::line, index_).be(c.product).be(start + 1).str());
    wb.del(shard_key(key_kind::closed, index_).be(c.product).be(start).str());
  }
  closed_dropped_.clear();

  if (ids_purged_before_ > 0) {
    // Id blobs of earlier versions: those whose newest id is older than the purge horizon hold
    // only expired ids.
    wb.del_range(
        shard_key(key_kind::ids, index_).be(std::uint64_t{0}).str(),
        shard_key(key_kind::ids, index_).be(static_cast<std::uint64_t>(ids_purged_before_)).str());
    ids_purged_before_ = 0;
  }
  dedup_.cut(wb, checkpoint, durable);
  const id_window_stats ids = dedup_.stats();
  ids_in_memory_.store(ids.in_memory, std::memory_order_relaxed);
  ids_in_store_.store(ids.in_store, std::memory_order_relaxed);
  ids_memory_bytes_.store(ids.memory_bytes, std::memory_order_relaxed);
  ids_store_reads_.store(ids.store_lookups, std::memory_order_relaxed);
  ids_moves_.store(ids.moves, std::memory_order_relaxed);
  ids_read_errors_.store(ids.lookup_errors, std::memory_order_relaxed);
  ids_files_.store(ids.files, std::memory_order_relaxed);
  ids_file_errors_.store(ids.file_errors, std::memory_order_relaxed);

  for (std::uint32_t f = 0; f < kMaxFeeds; ++f) {
    const std::uint64_t seq = feed_seq(f);
    if (seq == 0) continue;
    out.watermarks.push_back({f, seq});
    if (seq == feed_seq_written_[f]) continue;
    std::string name = host_.feed_name(f);
    if (name.empty()) continue;
    wb.put(shard_key(key_kind::watermark, index_).text(name).str(),
           std::string_view(reinterpret_cast<const char*>(&seq), sizeof seq));
    feed_seq_written_[f] = seq;
  }
  out.events = std::move(pending_events_);
  pending_events_ = {};
  pending_event_bytes_.store(0, std::memory_order_relaxed);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.cpu_seconds = thread_cpu_seconds() - cpu0;
}

void shard::hand_over(const std::vector<shard*>& to) {
  const auto n = static_cast<unsigned>(to.size());
  auto dest = [&](std::uint64_t key) -> shard& { return *to[engine::shard_for(key, n)]; };
  // Each table gets its room first: the SIMs come in this table's memory order (see recover).
  std::vector<std::size_t> incoming(n, 0);
  table_.for_each([&](const sim_slot& s) { ++incoming[engine::shard_for(s.key, n)]; });
  for (unsigned i = 0; i < n; ++i) to[i]->table_.reserve(to[i]->table_.size() + incoming[i]);
  for (std::size_t i = 0; i < products_.size(); ++i) {
    const shard_product& p = products_[i];
    if (!p.known) continue;
    for (std::size_t k = 0; k < to.size(); ++k) {
      shard_product& q = to[k]->product(static_cast<std::uint16_t>(i));
      q.period_start = p.period_start;
      q.period_end = p.period_end;
      if (q.hourly.size() < p.hourly.size()) q.hourly.resize(p.hourly.size(), 0);
      if (k == 0) {
        for (std::size_t h = 0; h < p.hourly.size(); ++h) sat_inc(q.hourly[h], p.hourly[h]);
      }
      q.changed = true;
      for (const closed_period& cp : p.closed) {
        auto it = std::find_if(q.closed.begin(), q.closed.end(),
                               [&](const closed_period& c) { return c.start == cp.start; });
        if (it == q.closed.end()) {
          closed_period empty;
          empty.start = cp.start;
          empty.end = cp.end;
          it = q.closed.insert(
              std::upper_bound(q.closed.begin(), q.closed.end(), cp.start,
                               [](unix_seconds s, const closed_period& c) { return s < c.start; }),
              std::move(empty));
        }
      }
    }
    for (const closed_period& cp : p.closed) {
      for (const closed_line& l : cp.lines) {
        shard& d = dest(l.sim);
        auto& closed = d.products_[i].closed;
        auto it = std::find_if(closed.begin(), closed.end(),
                               [&](const closed_period& c) { return c.start == cp.start; });
        it->lines.push_back(l);
        sat_inc(it->total_bytes, sat_add(l.bytes_up, l.bytes_down));
        it->chargeable_sims += l.chargeable;
      }
    }
    for (const auto& [key, l] : p.retired) {
      shard& d = dest(key);
      d.products_[i].retired[key] = l;
      d.retired_changed_.push_back({static_cast<std::uint16_t>(i), key});
    }
  }
  for (const auto& [key, e] : rating_) {
    const sim_slot* s = table_.find(key);
    if (s == nullptr) continue;
    shard& d = dest(key);
    sim_rating& moved = d.rating_[key];
    moved = e;
    moved.listed = false;
    d.rating_changed(s->product, key, moved);
  }
  for (shard* d : to) {
    for (std::size_t i = 0; i < d->products_.size(); ++i) {
      for (closed_period& cp : d->products_[i].closed) {
        std::sort(cp.lines.begin(), cp.lines.end(),
                  [](const closed_line& a, const closed_line& b) { return a.sim < b.sim; });
        d->closed_changed_.push_back({static_cast<std::uint16_t>(i), cp.start, 0});
      }
    }
  }
  table_.for_each([&](const sim_slot& s) {
    shard& d = dest(s.key);
    auto [slot, created] = d.table_.insert(s.key);
    *slot = s;
    slot->flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
    d.touch_all(*slot);
    d.codes_[s.country] = codes_[s.country];
    const shard_product& p = products_[s.product];
    if (p.period_start == kNoPeriod) return;
    const std::int32_t first = day_index(p.period_start);
    for (unsigned day = 0; day < s.open_day; ++day) {
      const std::uint64_t bytes = days_.get(s.key, first + static_cast<std::int32_t>(day));
      if (bytes == 0) continue;
      d.add_day(s.key, s.product, first + static_cast<std::int32_t>(day), bytes);
    }
  });
  dedup_.for_each_all([&](std::uint64_t fp, unix_seconds t) {
    for (shard* d : to) d->remember_id(fp, t);
  });
}

std::vector<std::pair<std::string, std::uint64_t>> shard::recover(const store& st) {
  SIMCAP_ASSERT_OWNER();
  const std::size_t prefix = kShardKeyPrefix;
  st.scan(shard_key(key_kind::hourly, index_).str(), [&](std::string_view k, std::string_view v) {
    shard_product& p = product(read_be<std::uint16_t>(k, prefix));
    reader r(v);
    p.period_start = r.get<unix_seconds>();
    p.period_end = r.get<unix_seconds>();
    p.hourly.assign(r.get<std::uint32_t>(), 0);
    for (auto& h : p.hourly) h = r.get<std::uint64_t>();
    p.changed = false;
    return true;
  });
  // SIMs: the last complete base, then the deltas after its first checkpoint, in order.
  std::string g;
  if (st.get(shard_key(key_kind::base_gen, index_).str(), g)) {
    reader r(g);
    base_gen_ = r.get<std::uint64_t>();
    table_.reserve_capacity(static_cast<std::size_t>(r.get<std::uint64_t>()));
  }
  auto account_state = [&](const sim_slot& s, int sign) {
    auto& c = by_state_[s.state];
    c.store(
        sign > 0 ? c.load(std::memory_order_relaxed) + 1 : c.load(std::memory_order_relaxed) - 1,
        std::memory_order_relaxed);
  };
  // SIMs first seen in a delta wait here and go into the table once every delta is read. A delta
  // lists its SIMs in the memory order of the table that wrote it, and a table that had to grow
  // on the way took them into ever longer probe runs (a store of 1M SIMs whose base was not
  // complete took 70 s to load instead of under a second). A base is loaded straight in: the
  // table has its capacity by then.
  std::unordered_map<std::uint64_t, sim_slot> added;
  bool from_base = true;
  auto load = [&](std::string_view blob) {
    decode_slots(blob, [&](const sim_slot& stored, bool all) {
      auto keep = [&](sim_slot& to) {
        to = stored;
        to.flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
      };
      if (from_base && all && stored.state != kErased) {
        auto [s, created] = table_.insert(stored.key);
        if (!created) account_state(*s, -1);
        keep(*s);
        account_state(*s, +1);
        return;
      }
      sim_slot* s = table_.find(stored.key);
      sim_slot* waiting = nullptr;
      if (s == nullptr) {
        auto it = added.find(stored.key);
        if (it != added.end()) waiting = &it->second;
      }
      if (!all) {
        // Usage only: the SIM was loaded before (a base or an earlier full entry).
        if (sim_slot* to = s != nullptr ? s : waiting) {
          to->up = stored.up;
          to->down = stored.down;
          to->sms = stored.sms;
          to->open_day = stored.open_day;
        }
        return;
      }
      if (stored.state == kErased) {
        if (s != nullptr) {
          account_state(*s, -1);
          table_.erase(stored.key);
        } else if (waiting != nullptr) {
          added.erase(stored.key);
        }
        return;
      }
      if (s == nullptr) {
        keep(added[stored.key]);  // first seen in a delta: waits
        return;
      }
      account_state(*s, -1);
      keep(*s);
      account_state(*s, +1);
    });
  };
  if (base_gen_ != 0) {
    st.scan(shard_key(key_kind::base, index_).be(base_gen_).str(),
            [&](std::string_view, std::string_view v) {
              load(v);
              return true;
            });
  }
  from_base = false;
  st.scan(shard_key(key_kind::delta, index_).str(), [&](std::string_view k, std::string_view v) {
    if (read_be<std::uint64_t>(k, prefix) > base_gen_) load(v);
    return true;
  });
  table_.reserve(table_.size() + added.size());
  for (const auto& [key, a] : added) {
    *table_.insert(key).first = a;
    account_state(a, +1);
  }
  added = {};
  table_.for_each([&](const sim_slot& s) {
    product(s.product);
    codes_[s.country] = host_.country_at(s.country);
    if (s.state == static_cast<std::uint8_t>(sim_state::factory_test)) {
      factory_deadlines_.push(
          {static_cast<unix_seconds>(s.state_since) + opts_.factory_test_period.count(), s.key});
    }
  });
  for (shard_product& p : products_) p.totals = fleet_usage{};
  table_.for_each([&](const sim_slot& s) { account(s, +1); });
  st.scan(shard_key(key_kind::retired, index_).str(), [&](std::string_view k, std::string_view v) {
    shard_product& p = product(read_be<std::uint16_t>(k, prefix));
    const closed_line l = line_of(read_be<std::uint64_t>(k, prefix + 2), v);
    p.retired[l.sim] = l;
    // Its usage and chargeable count are the product's, as before the restart.
    sat_inc(p.totals.bytes_up, l.bytes_up);
    sat_inc(p.totals.bytes_down, l.bytes_down);
    sat_inc<std::uint64_t>(p.totals.sms, l.sms);
    p.totals.chargeable_sims += l.chargeable;
    return true;
  });
  st.scan(shard_key(key_kind::rating, index_).str(), [&](std::string_view k, std::string_view v) {
    reader r(v);
    sim_rating& e = rating_[read_be<std::uint64_t>(k, prefix + 2)];
    e.charge_day = r.get<std::uint8_t>();
    e.away = get_away(r);
    return true;
  });
  st.scan(shard_key(key_kind::day, index_).str(), [&](std::string_view k, std::string_view v) {
    reader r(v);
    days_.add(read_be<std::uint64_t>(k, prefix + 2),
              static_cast<std::int32_t>(read_be<std::uint32_t>(k, prefix + 10)),
              r.get<std::uint64_t>());
    return true;
  });
  st.scan(shard_key(key_kind::closed, index_).str(), [&](std::string_view k, std::string_view v) {
    shard_product& p = product(read_be<std::uint16_t>(k, prefix));
    reader r(v);
    closed_period cp;
    cp.start = static_cast<unix_seconds>(read_be<std::uint64_t>(k, prefix + 2));
    cp.end = r.get<unix_seconds>();
    cp.total_bytes = r.get<std::uint64_t>();
    cp.chargeable_sims = static_cast<std::size_t>(r.get<std::uint64_t>());
    p.closed.push_back(std::move(cp));  // keys sort by start: oldest first
    return true;
  });
  st.scan(shard_key(key_kind::line, index_).str(), [&](std::string_view k, std::string_view v) {
    shard_product& p = product(read_be<std::uint16_t>(k, prefix));
    const auto start = static_cast<unix_seconds>(read_be<std::uint64_t>(k, prefix + 2));
    auto cp = std::find_if(p.closed.begin(), p.closed.end(),
                           [&](const closed_period& x) { return x.start == start; });
    if (cp == p.closed.end()) return true;
    cp->lines.push_back(line_of(read_be<std::uint64_t>(k, prefix + 10), v));  // keys sort by SIM
    return true;
  });
  // Record ids: the window's groups and logged table, then any of an earlier version's blobs.
  const unix_seconds horizon = id_horizon(clock_.now());
  dedup_.attach(&st, index_);
  dedup_.recover(st, horizon);
  st.scan(shard_key(key_kind::ids, index_).str(), [&](std::string_view, std::string_view v) {
    reader r(v);
    while (r.left() >= 16) {
      auto fp = r.get<std::uint64_t>();
      auto t = r.get<unix_seconds>();
      if (t >= horizon) dedup_.insert(fp, t);
    }
    return true;
  });
  std::vector<std::pair<std::string, std::uint64_t>> seqs;
  st.scan(shard_key(key_kind::watermark, index_).str(),
          [&](std::string_view k, std::string_view v) {
            reader r(v);
            seqs.push_back({std::string(k.substr(prefix)), r.get<std::uint64_t>()});
            return true;
          });
  refresh_next_due();
  return seqs;
}

}  // namespace simcap::detail
