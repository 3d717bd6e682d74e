#include <algorithm>

#include "engine_impl.hpp"

// Rating at the engine (SPEC §11): every shard rates its part of a product for each discount a
// volume tier can give, and the engine picks the product's tier from the chargeable SIMs of all
// shards; invoices rate the merged lines one by one.
namespace simcap {

std::size_t engine::impl::discount_index(std::uint64_t chargeable) const {
  std::size_t best = 0;
  for (std::size_t i = 0; opts.rates && i < opts.rates->tiers.size(); ++i) {
    if (chargeable >= opts.rates->tiers[i].min_sims) best = i + 1;
  }
  return best;
}

const rater* engine::rating() const noexcept { return impl_->rates ? &*impl_->rates : nullptr; }

void engine::rate_sim(sim_view& v) const {
  if (!impl_->rates || v.period_start == 0) return;
  auto idx = impl_->products.index_of(v.product);
  if (!idx) return;
  std::uint64_t chargeable = 0;
  for (std::size_t n : impl_->shards.call_all(
           [&](detail::shard& sh) { return sh.usage_of(*idx, false).chargeable_sims; }))
    chargeable += n;
  closed_line l;
  if (v.state != sim_state::factory_test) {  // test usage is free
    l.bytes_up = v.bytes_up;
    l.bytes_down = v.bytes_down;
  }
  l.chargeable = v.chargeable;
  l.charge_day = v.charge_day;
  l.country = pack_country(v.country);
  l.away = v.away;
  const auto days = static_cast<unsigned>((v.period_end - v.period_start) / kSecondsPerDay);
  const bool pooled = impl_->products.info_at(*idx).pool_bytes != 0;
  v.charges = impl_->rates->rate(rating_input_of(l), days,
                                 impl_->discounts[impl_->discount_index(chargeable)], pooled);
}

control_result<invoice> engine::invoice_of(std::string_view product, unix_seconds start) const {
  auto idx = impl_->products.index_of(product);
  if (!idx) return std::unexpected(error(control_errc::unknown_product, "no such product"));
  if (!impl_->rates) {
    return std::unexpected(error(control_errc::not_found, "no rate table is configured"));
  }
  invoice inv;
  inv.product = std::string(product);
  auto view = get_product(product);
  std::vector<closed_line> lines;
  if (view && view->period_start != 0 && view->period_start == start) {
    inv.open = true;
    inv.start = view->period_start;
    inv.end = view->period_end;
    for (auto& part :
         impl_->shards.call_all([&](detail::shard& sh) { return sh.open_lines_of(*idx); })) {
      for (auto& l : part) lines.push_back(std::move(l));
    }
  } else {
    bool found = false;
    for (auto& part : impl_->shards.call_all([&](detail::shard& sh) {
           std::vector<closed_period> mine = sh.closed_of(*idx, true);
           std::erase_if(mine, [&](const closed_period& cp) { return cp.start != start; });
           return mine;
         })) {
      for (auto& cp : part) {
        found = true;
        inv.start = cp.start;
        inv.end = cp.end;
        for (auto& l : cp.lines) lines.push_back(std::move(l));
      }
    }
    if (!found) {
      return std::unexpected(
          error(control_errc::not_found, "no period of the product starts at that time"));
    }
  }
  std::sort(lines.begin(), lines.end(),
            [](const closed_line& a, const closed_line& b) { return a.sim < b.sim; });
  for (const closed_line& l : lines) {
    inv.chargeable_sims += l.chargeable;
    inv.total_bytes += l.usage_bytes();
  }
  inv.discount_ppm = impl_->discounts[impl_->discount_index(inv.chargeable_sims)];
  const auto days = static_cast<unsigned>((inv.end - inv.start) / kSecondsPerDay);
  inv.lines.reserve(lines.size());
  const detail::product_info info = impl_->products.info_at(*idx);
  const bool pooled = info.pool_bytes != 0;
  for (closed_line& l : lines) {
    sim_charges c = impl_->rates->rate(rating_input_of(l), days, inv.discount_ppm, pooled);
    inv.base += c.base;
    for (const zone_charge& z : c.zones) {
      inv.data_within += z.charge_within;
      inv.data_over += z.charge_over;
    }
    inv.roaming += c.roaming;
    inv.lines.push_back({std::move(l), std::move(c)});
  }
  if (pooled) {
    // (the pool's price and overage are not discounted; in pause mode, bytes past the pool are
    // reported, not charged)
    inv.pool = view ? view->pool_price : 0;
    inv.pool_overage = impl_->pool_charge(*idx, inv.total_bytes) - inv.pool;
    if (info.pool_pause && inv.total_bytes > info.pool_bytes) {
      inv.pool_overshoot_bytes = inv.total_bytes - info.pool_bytes;
    }
  }
  inv.total = inv.base + inv.data_within + inv.data_over + inv.pool + inv.pool_overage;
  return inv;
}

}  // namespace simcap
