#include <algorithm>

#include "shard/shard.hpp"

// Queries of a shard's SIMs and products. They only read: a borrower runs them on an idle
// shard under its lock, or the shard thread between batches (shard.hpp).
namespace simcap::detail {

sim_view shard::make_view(const sim_slot& s) const {
  const shard_product& p = products_[s.product];
  sim_view v;
  v.id = iccid::from_key(s.key);
  v.product = p.info.id;
  v.state = static_cast<sim_state>(s.state);
  v.reason = static_cast<pause_reason>(s.reason);
  v.mb_limit = s.mb_limit;
  v.limit_override = (s.flags & sim_slot::kFlagLimitOverride) != 0;
  v.limit_bytes = limit_bytes(s);
  v.bytes_up = s.up;
  v.bytes_down = s.down;
  v.sms = s.sms;
  v.first_activated = s.first_activated;
  v.last_activated = s.last_activated;
  v.updated_at = s.updated_at;
  v.country_index = s.country;
  if (p.period_start != kNoPeriod) {
    v.period_start = p.period_start;
    v.period_end = p.period_end;
  }
  return v;
}

std::optional<sim_view> shard::view(std::uint64_t key, std::optional<std::uint16_t> scope) const {
  SIMCAP_ASSERT_OWNER();
  const sim_slot* s = table_.find(key);
  if (s == nullptr || (scope && s->product != *scope)) return std::nullopt;
  return make_view(*s);
}

std::vector<std::uint64_t> shard::select(std::optional<std::uint16_t> product,
                                         std::optional<sim_state> state,
                                         bool include_released) const {
  SIMCAP_ASSERT_OWNER();
  std::vector<std::uint64_t> keys;
  table_.for_each([&](const sim_slot& s) {
    if (product && s.product != *product) return;
    auto st = static_cast<sim_state>(s.state);
    if (state ? st != *state : (st == sim_state::released && !include_released)) return;
    keys.push_back(s.key);
  });
  std::sort(keys.begin(), keys.end());
  return keys;
}

fleet_usage shard::usage_of(std::uint16_t index) const {
  SIMCAP_ASSERT_OWNER();
  if (index >= products_.size()) return {};
  const shard_product& p = products_[index];
  fleet_usage u = p.totals;
  if (p.period_start != kNoPeriod) {
    u.period_start = p.period_start;
    u.period_end = p.period_end;
    u.by_hour = p.hourly;
  }
  return u;
}

std::optional<std::vector<day_bytes>> shard::days_of(std::uint64_t key,
                                                     std::optional<std::uint16_t> scope,
                                                     unix_seconds now) const {
  SIMCAP_ASSERT_OWNER();
  const sim_slot* s = table_.find(key);
  if (s == nullptr || (scope && s->product != *scope)) return std::nullopt;
  std::vector<day_bytes> out;
  const shard_product& p = products_[s->product];
  if (p.period_start == kNoPeriod) return out;
  const unix_seconds last = std::min(now, p.period_end - 1);
  const std::int32_t first = day_index(p.period_start);
  const std::uint64_t open_bytes = s->usage() - closed_days_bytes(*s, p);
  for (unix_seconds d = p.period_start; d <= last; d += kSecondsPerDay) {
    const auto rel = static_cast<std::uint16_t>((d - p.period_start) / kSecondsPerDay);
    std::uint64_t bytes = rel < s->open_day    ? days_.get(key, first + rel)
                          : rel == s->open_day ? open_bytes
                                               : 0;
    if (static_cast<sim_state>(s->state) == sim_state::factory_test)
      bytes = 0;  // test usage is free
    out.push_back({d, bytes});
  }
  return out;
}

std::vector<closed_period> shard::closed_of(std::uint16_t index, bool itemized) const {
  SIMCAP_ASSERT_OWNER();
  std::vector<closed_period> out;
  if (index >= products_.size()) return out;
  for (const closed_period& cp : products_[index].closed) {
    closed_period c{cp.start, cp.end, cp.total_bytes, cp.chargeable_sims, {}};
    if (itemized) c.lines = cp.lines;
    out.push_back(std::move(c));
  }
  return out;
}

const std::unordered_map<std::uint64_t, closed_line>& shard::retired_of(std::uint16_t index) const {
  SIMCAP_ASSERT_OWNER();
  static const std::unordered_map<std::uint64_t, closed_line> none;
  return index < products_.size() ? products_[index].retired : none;
}

}  // namespace simcap::detail
