#include <algorithm>
#include <atomic>
#include <memory>

#include "engine_impl.hpp"

// Queries: one SIM (from its shard, borrowed when idle), lists and fleet figures (every shard
// adds its part), closed periods, and the engine's counters.
namespace simcap {

control_result<sim_view> engine::get_sim(iccid id, std::string_view scope) const {
  auto sc = impl_->scope_of(scope);
  if (!sc) return std::unexpected(sc.error());
  auto v =
      impl_->shards.call(shard_for(id), [&](detail::shard& sh) { return sh.view(id.key(), *sc); });
  if (!v) return std::unexpected(error(control_errc::not_found, "no such SIM"));
  impl_->products.fill_country(*v);
  rate_sim(*v);
  return *v;
}

void engine::get_sim_async(iccid id, std::string_view scope,
                           std::function<void(control_result<sim_view>)> done) const {
  auto sc = impl_->scope_of(scope);
  if (!sc) {
    done(std::unexpected(sc.error()));
    return;
  }
  impl_->shards.read(
      shard_for(id),
      [key = id.key(), scope = *sc](detail::shard& sh) { return sh.view(key, scope); },
      [this, done = std::move(done)](std::optional<sim_view> v) {
        if (v) {
          impl_->products.fill_country(*v);
          done(std::move(*v));
        } else {
          done(std::unexpected(error(control_errc::not_found, "no such SIM")));
        }
      });
}

sim_page engine::list_sims(const sim_filter& f, std::size_t offset, std::size_t limit) const {
  sim_page page;
  std::optional<std::uint16_t> product;
  if (f.product) {
    product = impl_->products.index_of(*f.product);
    if (!product) return page;
  }
  const unix_seconds now = impl_->clk.now();
  auto parts = impl_->shards.call_all([&](detail::shard& sh) {
    if (f.unused) {
      return product ? sh.unused_of(*product, now) : std::vector<std::uint64_t>{};
    }
    return sh.select(product, f.state, f.include_released);
  });
  std::vector<std::uint64_t> keys;
  for (auto& p : parts) keys.insert(keys.end(), p.begin(), p.end());
  std::sort(keys.begin(), keys.end());
  page.total = keys.size();
  if (offset >= keys.size()) return page;
  std::size_t end = std::min(keys.size(), offset + limit);
  std::vector<std::uint64_t> wanted(keys.begin() + static_cast<std::ptrdiff_t>(offset),
                                    keys.begin() + static_cast<std::ptrdiff_t>(end));
  auto views = impl_->shards.call_all([&](detail::shard& sh) {
    std::vector<sim_view> out;
    for (std::uint64_t k : wanted) {
      if (shard_for(k, shard_count()) != sh.index()) continue;
      if (auto v = sh.view(k, std::nullopt)) out.push_back(std::move(*v));
    }
    return out;
  });
  for (auto& v : views) {
    for (auto& s : v) page.sims.push_back(std::move(s));
  }
  std::sort(page.sims.begin(), page.sims.end(),
            [](const sim_view& a, const sim_view& b) { return a.id < b.id; });
  for (sim_view& v : page.sims) {
    impl_->products.fill_country(v);
    rate_sim(v);
  }
  return page;
}

namespace {
fleet_usage add_up(const std::vector<fleet_usage>& parts) {
  fleet_usage total;
  for (const fleet_usage& u : parts) {
    total.bytes_up += u.bytes_up;
    total.bytes_down += u.bytes_down;
    total.sms += u.sms;
    for (std::size_t i = 0; i < total.sims_by_state.size(); ++i) {
      total.sims_by_state[i] += u.sims_by_state[i];
    }
    total.chargeable_sims += u.chargeable_sims;
    total.unused_charged_sims += u.unused_charged_sims;
    if (total.by_hour.size() < u.by_hour.size()) total.by_hour.resize(u.by_hour.size());
    for (std::size_t h = 0; h < u.by_hour.size(); ++h) total.by_hour[h] += u.by_hour[h];
  }
  return total;
}

// With a rate table each shard's part carries its cost at each discount (costs); the product's
// chargeable SIMs pick the discount.
void pick_cost(fleet_usage& total, const std::vector<std::vector<micros>>& costs,
               std::size_t discount, std::uint32_t ppm) {
  micros sum = 0;
  for (const auto& c : costs) sum += discount < c.size() ? c[discount] : 0;
  total.estimated_cost = sum;
  total.discount_ppm = ppm;
}
}  // namespace

control_result<fleet_usage> engine::product_usage(std::string_view product) const {
  auto idx = impl_->products.index_of(product);
  if (!idx) return std::unexpected(error(control_errc::unknown_product, "no such product"));
  const auto& discounts = impl_->discounts;
  const unix_seconds now = impl_->clk.now();
  auto parts = impl_->shards.call_all([&](detail::shard& sh) {
    fleet_usage u = sh.usage_of(*idx);
    u.unused_charged_sims = sh.unused_of(*idx, now).size();
    return std::pair{std::move(u), sh.open_cost_of(*idx, discounts)};
  });
  std::vector<fleet_usage> usage;
  std::vector<std::vector<micros>> costs;
  for (auto& [u, c] : parts) {
    usage.push_back(std::move(u));
    costs.push_back(std::move(c));
  }
  fleet_usage total = add_up(usage);
  if (impl_->rates) {
    const std::size_t d = impl_->discount_index(total.chargeable_sims);
    pick_cost(total, costs, d, discounts[d]);
    *total.estimated_cost += impl_->pool_charge(*idx, total.usage_bytes());
  }
  auto view = get_product(product);
  total.period_start = view->period_start;
  total.period_end = view->period_end;
  impl_->fill_pool(total, *idx);
  return total;
}

void engine::product_usage_async(std::string_view product,
                                 std::function<void(control_result<fleet_usage>)> done) const {
  auto idx = impl_->products.index_of(product);
  if (!idx) {
    done(std::unexpected(error(control_errc::unknown_product, "no such product")));
    return;
  }
  struct gather {
    std::vector<fleet_usage> parts;
    std::vector<std::vector<micros>> costs;
    std::atomic<unsigned> left;
    std::string product;
    std::function<void(control_result<fleet_usage>)> done;
  };
  const unsigned n = shard_count();
  auto g = std::make_shared<gather>();
  g->parts.resize(n);
  g->costs.resize(n);
  g->left.store(n);
  g->product = std::string(product);
  g->done = std::move(done);
  for (unsigned s = 0; s < n; ++s) {
    impl_->shards.read(
        s,
        [index = *idx, &discounts = impl_->discounts, now = impl_->clk.now()](detail::shard& sh) {
          fleet_usage u = sh.usage_of(index);
          u.unused_charged_sims = sh.unused_of(index, now).size();
          return std::pair{std::move(u), sh.open_cost_of(index, discounts)};
        },
        [this, g, s, index = *idx](std::pair<fleet_usage, std::vector<micros>> part) {
          g->parts[s] = std::move(part.first);
          g->costs[s] = std::move(part.second);
          if (g->left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
          fleet_usage total = add_up(g->parts);
          if (impl_->rates) {
            const std::size_t d = impl_->discount_index(total.chargeable_sims);
            pick_cost(total, g->costs, d, impl_->discounts[d]);
            *total.estimated_cost += impl_->pool_charge(index, total.usage_bytes());
          }
          if (auto view = get_product(g->product)) {
            total.period_start = view->period_start;
            total.period_end = view->period_end;
          }
          impl_->fill_pool(total, index);
          g->done(std::move(total));
        });
  }
}

control_result<std::pair<sim_view, std::vector<day_bytes>>> engine::sim_usage_by_day(
    iccid id, std::string_view scope) const {
  auto sc = impl_->scope_of(scope);
  if (!sc) return std::unexpected(sc.error());
  const unix_seconds now = impl_->clk.now();
  auto r = impl_->shards.call(shard_for(id), [&](detail::shard& sh) {
    return std::pair{sh.view(id.key(), *sc), sh.days_of(id.key(), *sc, now)};
  });
  if (!r.first || !r.second) return std::unexpected(error(control_errc::not_found, "no such SIM"));
  impl_->products.fill_country(*r.first);
  rate_sim(*r.first);
  return std::pair{std::move(*r.first), std::move(*r.second)};
}

control_result<std::vector<closed_period>> engine::closed_periods(std::string_view product,
                                                                  bool itemized) const {
  auto idx = impl_->products.index_of(product);
  if (!idx) return std::unexpected(error(control_errc::unknown_product, "no such product"));
  auto parts = impl_->shards.call_all(
      [&](detail::shard& sh) { return sh.closed_of(*idx, itemized, impl_->discounts); });
  std::vector<closed_period> merged;
  for (auto& list : parts) {
    for (auto& cp : list) {
      auto it = std::find_if(merged.begin(), merged.end(),
                             [&](const closed_period& m) { return m.start == cp.start; });
      if (it == merged.end()) {
        merged.push_back(std::move(cp));
        continue;
      }
      it->total_bytes += cp.total_bytes;
      it->chargeable_sims += cp.chargeable_sims;
      for (std::size_t d = 0; d < std::min(it->costs.size(), cp.costs.size()); ++d)
        it->costs[d] += cp.costs[d];
      it->lines.insert(it->lines.end(), cp.lines.begin(), cp.lines.end());
    }
  }
  for (auto& m : merged) {
    if (impl_->rates && !m.costs.empty()) {
      m.cost = m.costs[std::min(m.costs.size() - 1, impl_->discount_index(m.chargeable_sims))] +
               impl_->pool_charge(*idx, m.total_bytes);
    }
    std::sort(m.lines.begin(), m.lines.end(),
              [](const closed_line& a, const closed_line& b) { return a.sim < b.sim; });
  }
  std::sort(merged.begin(), merged.end(),
            [](const closed_period& a, const closed_period& b) { return a.start > b.start; });
  return merged;
}

engine_stats engine::stats() const {
  engine_stats st;
  for (const auto& s : impl_->shards) {
    auto c = s->read_counters();
    st.records_counted += c.counted;
    st.late_records += c.late;
    st.duplicate_ids += c.duplicate_ids;
    st.ids_in_memory += c.ids.in_memory;
    st.ids_in_store += c.ids.in_store;
    st.ids_memory_bytes += c.ids.memory_bytes;
    st.ids_store_reads += c.ids.store_lookups;
    st.ids_moves += c.ids.moves;
    st.ids_read_errors += c.ids.lookup_errors;
    st.ids_files += c.ids.files;
    st.ids_file_errors += c.ids.file_errors;
    st.events_waiting_bytes += s->pending_event_bytes();
    for (std::size_t i = 0; i < kRejectReasonCount; ++i) st.rejected[i] += c.rejected[i];
    for (std::size_t i = 0; i < kSimStateCount; ++i) st.sims_by_state[i] += c.by_state[i];
    st.queue_depth.push_back(s->queue_depth());
    if (st.apply_bucket_counts.empty()) st.apply_bucket_counts.assign(c.apply_buckets.size(), 0);
    for (std::size_t i = 0; i < c.apply_buckets.size(); ++i)
      st.apply_bucket_counts[i] += c.apply_buckets[i];
    st.apply_seconds += static_cast<double>(c.apply_nanos) / 1e9;
  }
  st.apply_bucket_bounds.assign(detail::shard::kApplyBuckets.begin(),
                                detail::shard::kApplyBuckets.end());
  {
    std::lock_guard lock(impl_->stats_mu);
    st.checkpoints = impl_->stats.checkpoints;
    st.last_checkpoint_seconds = impl_->stats.last_checkpoint_seconds;
    st.last_checkpoint_time = impl_->stats.last_checkpoint_time;
    st.last_checkpoint_sims = impl_->stats.last_checkpoint_sims;
    st.last_cut_seconds = impl_->stats.last_cut_seconds;
    st.events_purged = impl_->stats.events_purged;
  }
  if (impl_->st) {
    st.store_bytes = impl_->st->disk_bytes();
    const std::uint64_t last = impl_->events.last_id(), first = impl_->events.first_retained();
    st.events_stored = last >= first ? last - first + 1 : 0;
  }
  {
    std::lock_guard lock(impl_->pool_mu);
    st.pool_pauses = impl_->pool_pauses;
    st.last_pool_pause_seconds = impl_->last_pool_pause_seconds;
    st.last_pool_overshoot_bytes = impl_->last_pool_overshoot_bytes;
  }
  return st;
}

}  // namespace simcap
