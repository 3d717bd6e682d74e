#include <algorithm>

#include "engine_impl.hpp"
#include "state/limits.hpp"
#include "state/saturating.hpp"

// Pools (SPEC §11): the shards count a pooled product's bytes and report each batch's to the
// engine, which keeps the product's total for its current period here, across shards; the shard
// whose report crosses a threshold or the pool emits the event, and in pause mode the engine
// asks every shard to pause the product's SIMs (a task each shard runs before its next batch).
namespace simcap {

detail::shard_host::pool_crossing engine::impl::pool_add(const detail::product_info& p,
                                                         unix_seconds period_start,
                                                         std::uint64_t bytes) {
  pool_crossing c;
  {
    std::lock_guard lock(pool_mu);
    if (pools.size() <= p.index) pools.resize(p.index + 1u);
    pool_entry& e = pools[p.index];
    if (period_start > e.period_start) e = pool_entry{period_start, 0, 0, false};
    if (period_start < e.period_start || p.pool_bytes == 0) return c;  // a shard's old period
    e.used = detail::sat_add(e.used, bytes);
    c.used = e.used;
    for (std::size_t i = 0; i < p.thresholds.size() && i < 32; ++i) {
      const std::uint32_t bit = 1u << i;
      if (!(e.fired & bit) && e.used >= detail::threshold_bytes(p.pool_bytes, p.thresholds[i])) {
        e.fired |= bit;
        c.thresholds.push_back(p.thresholds[i]);
      }
    }
    if (!e.exhausted && e.used >= p.pool_bytes) {
      e.exhausted = true;
      c.exhausted = true;
    }
  }
  if (c.exhausted && p.pool_pause) post_pool_change(p.index, true, p.pool_bytes, true);
  return c;
}

bool engine::impl::pool_exhausted(std::uint16_t product, unix_seconds period_start) const {
  std::lock_guard lock(pool_mu);
  return product < pools.size() && pools[product].period_start == period_start &&
         pools[product].exhausted;
}

void engine::impl::post_pool_change(std::uint16_t product, bool pause, std::uint64_t pool_bytes,
                                    bool measured) {
  const unix_seconds now = clk.now();
  if (measured) {
    std::lock_guard lock(pool_mu);
    pausing = pool_pause_clock{product, pool_bytes, std::chrono::steady_clock::now(),
                               static_cast<unsigned>(shards.size())};
  }
  for (const auto& sh : shards) {
    sh->post_task(new detail::fn_task([this, product, pause, now, measured](detail::shard& s) {
      if (!pause) {
        s.unpause_for_pool(product, now);
        return;
      }
      s.pause_for_pool(product, now);
      if (!measured) return;
      std::lock_guard lock(pool_mu);
      if (pausing.product != product || pausing.left == 0 || --pausing.left != 0) return;
      // The last shard: how long it took, and how far the pool's usage ran past it meanwhile.
      ++pool_pauses;
      last_pool_pause_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - pausing.began).count();
      const std::uint64_t used = product < pools.size() ? pools[product].used : 0;
      last_pool_overshoot_bytes = used > pausing.pool_bytes ? used - pausing.pool_bytes : 0;
    }));
  }
}

void engine::impl::pools_changed(const detail::product_info& p, unix_seconds period_start) {
  if (period_start == 0) return;  // no period yet: nothing counted
  std::uint64_t used = 0;
  if (p.pool_bytes != 0) {
    for (const fleet_usage& u :
         shards.call_all([&](detail::shard& sh) { return sh.usage_of(p.index, false); }))
      used = detail::sat_add(used, u.usage_bytes());
  }
  bool became_exhausted = false, exhausted = false;
  {
    std::lock_guard lock(pool_mu);
    if (pools.size() <= p.index) pools.resize(p.index + 1u);
    pool_entry& e = pools[p.index];
    const bool was = e.period_start == period_start && e.exhausted;
    e.period_start = period_start;
    e.used = used;
    e.fired = 0;
    for (std::size_t i = 0; p.pool_bytes != 0 && i < p.thresholds.size() && i < 32; ++i) {
      if (used >= detail::threshold_bytes(p.pool_bytes, p.thresholds[i])) e.fired |= 1u << i;
    }
    exhausted = p.pool_bytes != 0 && used >= p.pool_bytes;
    e.exhausted = exhausted;
    became_exhausted = exhausted && !was;
  }
  if (became_exhausted) {
    event ev;
    ev.time = clk.now();
    ev.product = p.index;
    ev.type = event_type::pool_exhausted;
    ev.reason = event_reason::pool_changed;
    ev.usage_bytes = used;
    ev.limit_bytes = p.pool_bytes;
    ev.period_start = period_start;
    publish(ev);
  }
  // (both idempotent: only active SIMs pause, only SIMs paused for the pool unpause)
  post_pool_change(p.index, exhausted && p.pool_pause);
}

void engine::impl::rebuild_pools() {
  for (std::uint16_t i = 0; i < products.size(); ++i) {
    const detail::product_info p = products.info_at(i);
    if (p.pool_bytes == 0) continue;
    std::uint64_t used = 0;
    unix_seconds start = 0;
    for (const auto& sh : shards) {
      const fleet_usage u = sh->usage_of(i, false);
      used = detail::sat_add(used, u.usage_bytes());
      start = std::max(start, u.period_start);
    }
    if (start == 0) continue;
    std::lock_guard lock(pool_mu);
    if (pools.size() <= i) pools.resize(i + 1u);
    pool_entry& e = pools[i];
    e = pool_entry{start, used, 0, used >= p.pool_bytes};
    for (std::size_t t = 0; t < p.thresholds.size() && t < 32; ++t) {
      if (used >= detail::threshold_bytes(p.pool_bytes, p.thresholds[t])) e.fired |= 1u << t;
    }
    // A pause that was not yet durable when the process stopped happens again.
    if (e.exhausted && p.pool_pause) {
      for (const auto& sh : shards) sh->pause_for_pool(i, clk.now());
    }
  }
}

void engine::impl::fill_pool(fleet_usage& u, std::uint16_t product) const {
  const detail::product_info p = products.info_at(product);
  if (p.pool_bytes == 0) return;
  u.pool_mb = p.pool_bytes / std::max<std::uint64_t>(opts.mb_bytes, 1);
  u.pool_mode = p.pool_pause ? pool_action::pause : pool_action::overage;
  u.pool_exhausted = pool_exhausted(product, u.period_start);
}

micros engine::impl::pool_charge(std::uint16_t product, std::uint64_t total_bytes) const {
  if (!rates) return 0;
  const detail::product_info p = products.info_at(product);
  if (p.pool_bytes == 0) return 0;
  const auto view = products.view(p.id);
  micros m = view ? view->pool_price : 0;
  if (!p.pool_pause && total_bytes > p.pool_bytes) {
    m += rates->pool_overage(pack_country(view ? view->country : std::string()),
                             total_bytes - p.pool_bytes);
  }
  return m;
}

}  // namespace simcap
