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
  v.chargeable = (s.flags & sim_slot::kFlagChargeable) != 0;
  if (auto it = rating_.find(s.key); it != rating_.end()) {
    v.charge_day = it->second.charge_day;
    v.away = it->second.away;
  }
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

fleet_usage shard::usage_of(std::uint16_t index, bool by_hour) const {
  SIMCAP_ASSERT_OWNER();
  if (index >= products_.size()) return {};
  const shard_product& p = products_[index];
  fleet_usage u = p.totals;
  if (p.period_start != kNoPeriod) {
    u.period_start = p.period_start;
    u.period_end = p.period_end;
    if (by_hour) u.by_hour = p.hourly;
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

std::vector<std::uint64_t> shard::unused_of(std::uint16_t index, unix_seconds now) const {
  SIMCAP_ASSERT_OWNER();
  std::vector<std::uint64_t> keys;
  if (index >= products_.size()) return keys;
  const shard_product& p = products_[index];
  if (p.period_start == kNoPeriod || p.totals.unused_charged_sims == 0) return keys;
  const unix_seconds since = now - opts_.unused_after.count();
  table_.for_each([&](const sim_slot& s) {
    if (s.product != index || s.state != static_cast<std::uint8_t>(sim_state::active) ||
        s.usage() != 0) {
      return;
    }
    if (std::max<unix_seconds>(s.state_since, p.period_start) <= since) keys.push_back(s.key);
  });
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<closed_period> shard::closed_of(std::uint16_t index, bool itemized,
                                            std::span<const std::uint32_t> discounts) const {
  SIMCAP_ASSERT_OWNER();
  std::vector<closed_period> out;
  if (index >= products_.size()) return out;
  for (const closed_period& cp : products_[index].closed) {
    closed_period c;
    c.start = cp.start;
    c.end = cp.end;
    c.total_bytes = cp.total_bytes;
    c.chargeable_sims = cp.chargeable_sims;
    if (itemized) c.lines = cp.lines;
    if (rater_) {
      const bool pooled = products_[index].info.pool_bytes != 0;
      c.costs.assign(discounts.size(), 0);
      for (const closed_line& l : cp.lines) {
        const rating_input in = rating_input_of(l);
        for (std::size_t d = 0; d < discounts.size(); ++d)
          c.costs[d] += rater_->total(in, cp.days(), discounts[d], pooled);
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

closed_line shard::line_of_slot(const sim_slot& s) const {
  closed_line l;
  l.sim = s.key;
  l.bytes_up = s.up;
  l.bytes_down = s.down;
  l.sms = s.sms;
  l.chargeable = (s.flags & sim_slot::kFlagChargeable) != 0;
  l.country = codes_[s.country];
  if (auto it = rating_.find(s.key); it != rating_.end()) {
    l.charge_day = it->second.charge_day;
    l.away = it->second.away;
  }
  return l;
}

std::vector<closed_line> shard::open_lines_of(std::uint16_t index) const {
  SIMCAP_ASSERT_OWNER();
  std::vector<closed_line> lines;
  if (index >= products_.size()) return lines;
  const shard_product& p = products_[index];
  table_.for_each([&](const sim_slot& s) {
    if (s.product != index) return;
    const bool chargeable = (s.flags & sim_slot::kFlagChargeable) != 0;
    if (chargeable || s.usage() != 0 || s.sms != 0 || p.retired.contains(s.key)) {
      lines.push_back(line_of_slot(s));
      if (s.state == static_cast<std::uint8_t>(sim_state::factory_test)) {
        lines.back().bytes_up = lines.back().bytes_down = 0;  // test usage is free
      }
    }
  });
  for (const auto& [key, l] : p.retired) lines.push_back(l);
  std::stable_sort(lines.begin(), lines.end(),
                   [](const closed_line& a, const closed_line& b) { return a.sim < b.sim; });
  std::size_t out = 0;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    if (out != 0 && lines[out - 1].sim == lines[k].sim) {
      merge_line(lines[out - 1], lines[k]);
    } else {
      if (out != k) lines[out] = std::move(lines[k]);
      ++out;
    }
  }
  lines.resize(out);
  return lines;
}

std::vector<micros> shard::open_cost_of(std::uint16_t index,
                                        std::span<const std::uint32_t> discounts) const {
  SIMCAP_ASSERT_OWNER();
  std::vector<micros> costs(discounts.size(), 0);
  if (!rater_ || index >= products_.size()) return costs;
  const shard_product& p = products_[index];
  if (p.period_start == kNoPeriod) return costs;
  const auto days = static_cast<unsigned>((p.period_end - p.period_start) / kSecondsPerDay);
  const bool pooled = p.info.pool_bytes != 0;
  auto add = [&](const closed_line& l) {
    const rating_input in = rating_input_of(l);
    for (std::size_t d = 0; d < discounts.size(); ++d)
      costs[d] += rater_->total(in, days, discounts[d], pooled);
  };
  table_.for_each([&](const sim_slot& s) {
    if (s.product != index || !(s.flags & sim_slot::kFlagChargeable)) return;
    if (p.retired.contains(s.key)) return;  // with its earlier life, below
    if (s.state == static_cast<std::uint8_t>(sim_state::factory_test)) return;
    // (most SIMs have no rating entry: rated from the slot without a copy)
    rating_input in;
    in.home = codes_[s.country];
    in.chargeable = true;
    in.usage = s.usage();
    if (auto it = rating_.find(s.key); it != rating_.end()) {
      in.charge_day = it->second.charge_day;
      in.away = it->second.away.data();
      in.away_count = it->second.away.size();
    }
    for (std::size_t d = 0; d < discounts.size(); ++d)
      costs[d] += rater_->total(in, days, discounts[d], pooled);
  });
  for (const auto& [key, l] : p.retired) {
    const sim_slot* s = table_.find(key);
    if (s == nullptr || s->product != index) {
      add(l);
      continue;
    }
    closed_line both = line_of_slot(*s);
    merge_line(both, l);
    add(both);
  }
  return costs;
}

const std::unordered_map<std::uint64_t, closed_line>& shard::retired_of(std::uint16_t index) const {
  SIMCAP_ASSERT_OWNER();
  static const std::unordered_map<std::uint64_t, closed_line> none;
  return index < products_.size() ? products_[index].retired : none;
}

}  // namespace simcap::detail
