#include <algorithm>
#include <vector>

#include "catalog/calendar.hpp"
#include "shard/shard.hpp"
#include "state/limits.hpp"
#include "state/saturating.hpp"

// Products and their periods in a shard: what the catalog says of a product, the period a
// record counts in, when work is due, and the rollover at the anniversary.
namespace simcap::detail {

shard::shard_product& shard::product(std::uint16_t index) {
  if (index >= products_.size()) products_.resize(index + 1u);
  return products_[index];
}

void shard::learn_product(const product_info& info) {
  SIMCAP_ASSERT_OWNER();
  shard_product& p = product(info.index);
  if (p.known && info.version <= p.info.version) return;
  bool thresholds_changed = p.known && p.info.thresholds != info.thresholds;
  bool anniversary_changed = p.info.anniversary_day != info.anniversary_day ||
                             p.info.first_period_start != info.first_period_start;
  p.info = info;
  p.known = true;
  if (anniversary_changed && info.anniversary_day != 0) {
    p.period_start = kNoPeriod;
    set_period(p, clock_.now());
  }
  if (thresholds_changed) {
    // New thresholds: the fired bits no longer refer to the same thresholds; re-arm those
    // above the SIM's current ratio.
    table_.for_each([&](sim_slot& s) {
      if (s.product != info.index) return;
      std::uint8_t fired = 0;
      std::uint64_t lim = limit_bytes(s);
      for (std::size_t i = 0; i < info.thresholds.size(); ++i) {
        if (s.usage() >= threshold_bytes(lim, info.thresholds[i])) fired |= 1u << i;
      }
      s.alerts_fired = fired;
      touch_all(s);
      recompute_next(s, p);
    });
  }
}

void shard::set_period(shard_product& p, unix_seconds now) {
  if (p.info.anniversary_day == 0) return;
  unix_seconds start = std::max(p.info.first_period_start,
                                billing::period_start_containing(p.info.anniversary_day, now));
  if (p.period_start == kNoPeriod || start > p.period_start) {
    p.period_start = start;
    p.period_end = billing::next_period_start(p.info.anniversary_day, start);
    p.hourly.assign(static_cast<std::size_t>((p.period_end - p.period_start) / 3600), 0);
    p.changed = true;
  }
  refresh_next_due();
}

void shard::on_activation(shard_product& p, unix_seconds when) {
  if (p.period_start != kNoPeriod) return;
  learn_product(host_.first_activation(p.info.index, when));
}

void shard::refresh_next_due() noexcept {
  unix_seconds due = next_purge_;
  for (const shard_product& p : products_) due = std::min(due, p.period_end);
  if (!factory_deadlines_.empty()) due = std::min(due, factory_deadlines_.top().first);
  next_due_ = due;
}

void shard::run_due(unix_seconds now) {
  SIMCAP_ASSERT_OWNER();
  close_periods(now);
  while (!factory_deadlines_.empty() && factory_deadlines_.top().first <= now) {
    auto [when, key] = factory_deadlines_.top();
    factory_deadlines_.pop();
    sim_slot* s = table_.find(key);
    if (s == nullptr || s->state != static_cast<std::uint8_t>(sim_state::factory_test)) continue;
    if (static_cast<unix_seconds>(s->state_since) + opts_.factory_test_period.count() != when) {
      continue;  // a later factory test of the same SIM has its own deadline
    }
    end_factory_test(*s, product(s->product), event_reason::test_period, when);
  }
  if (now >= next_purge_) {
    const unix_seconds horizon = id_horizon(now);
    dedup_.purge(horizon);
    ids_purged_before_ = horizon;
    next_purge_ = now + 3600;
  }
  refresh_next_due();
}

unix_seconds shard::earliest_accepted(const shard_product& p, unix_seconds now) const noexcept {
  const unix_seconds grace = opts_.late_grace.count();
  if (p.period_start == kNoPeriod) return kNever;  // no SIM counts there yet but factory tests
  if (p.closed.empty()) return p.info.first_period_start - grace;
  const closed_period& cp = p.closed.back();
  if (now >= p.period_start + grace || cp.end != p.period_start) return p.period_start;
  return cp.start == p.info.first_period_start ? cp.start - grace : cp.start;
}

unix_seconds shard::id_horizon(unix_seconds now) const noexcept {
  unix_seconds h =
      now - (std::max(opts_.dedup_window, opts_.late_grace) + opts_.future_skew).count();
  for (const shard_product& p : products_) {
    if (p.known) h = std::min(h, earliest_accepted(p, now));
  }
  return h;
}

void shard::close_periods(unix_seconds now) {
  for (;;) {
    std::vector<std::uint16_t> due;
    for (std::size_t i = 0; i < products_.size(); ++i) {
      if (products_[i].period_end <= now) due.push_back(static_cast<std::uint16_t>(i));
    }
    if (due.empty()) return;
    std::vector<char> is_due(products_.size(), 0);
    std::vector<closed_period> closing(products_.size());
    for (std::uint16_t i : due) {
      is_due[i] = 1;
      closing[i].start = products_[i].period_start;
      closing[i].end = products_[i].period_end;
      products_[i].totals = fleet_usage{};  // rebuilt below, SIM by SIM
    }
    table_.for_each([&](sim_slot& s) {
      if (!is_due[s.product]) return;
      touch_all(s);
      shard_product& p = products_[s.product];
      closed_period& cp = closing[s.product];
      const bool chargeable = (s.flags & sim_slot::kFlagChargeable) != 0;
      if (chargeable || s.usage() != 0 || s.sms != 0) cp.lines.push_back(line_of_slot(s));
      rating_.erase(s.key);  // (the cut drops the product's entries)
      s.flags &= static_cast<std::uint8_t>(~sim_slot::kFlagRetiredChargeable);
      if (s.state == static_cast<std::uint8_t>(sim_state::factory_test)) {
        account(s, +1);
        return;
      }
      s.up = s.down = 0;
      s.sms = 0;
      s.alerts_fired = 0;
      s.open_day = 0;
      if (s.state == static_cast<std::uint8_t>(sim_state::paused) &&
          s.reason != static_cast<std::uint8_t>(pause_reason::none)) {
        set_state(s, sim_state::active, p.period_end, false);
        s.reason = static_cast<std::uint8_t>(pause_reason::none);
        emit(s, event_type::unpaused, event_reason::anniversary, p.period_end);
      }
      bool on = s.state == static_cast<std::uint8_t>(sim_state::active) ||
                s.state == static_cast<std::uint8_t>(sim_state::paused);
      s.flags = on ? (s.flags | sim_slot::kFlagChargeable) : (s.flags & ~sim_slot::kFlagChargeable);
      recompute_next(s, p);
      account(s, +1);
    });
    for (std::uint16_t i : due) {
      shard_product& p = products_[i];
      closed_period& cp = closing[i];
      // Earlier lives of SIMs released and imported again in the period: one line a SIM.
      for (auto& [key, l] : p.retired) cp.lines.push_back(l);
      p.retired.clear();
      // (stable: a SIM's current life comes first and keeps its home country)
      std::stable_sort(cp.lines.begin(), cp.lines.end(),
                       [](const closed_line& a, const closed_line& b) { return a.sim < b.sim; });
      std::size_t out = 0;
      for (std::size_t k = 0; k < cp.lines.size(); ++k) {
        if (out != 0 && cp.lines[out - 1].sim == cp.lines[k].sim) {
          merge_line(cp.lines[out - 1], cp.lines[k]);
        } else {
          if (out != k) cp.lines[out] = std::move(cp.lines[k]);
          ++out;
        }
      }
      cp.lines.resize(out);
      for (const closed_line& l : cp.lines) {
        sat_inc(cp.total_bytes, sat_add(l.bytes_up, l.bytes_down));
        cp.chargeable_sims += l.chargeable;
      }
      if (durable_) closed_changed_.push_back({i, cp.start, 0});
      p.closed.push_back(std::move(cp));
      while (p.closed.size() > std::max<std::size_t>(opts_.closed_periods_kept, 1)) {
        if (durable_) closed_dropped_.push_back({i, p.closed.front().start, 0});
        p.closed.pop_front();
      }
      p.changed = true;
      if (durable_) days_dropped_.push_back(i);
      p.period_start = p.period_end;
      p.period_end = billing::next_period_start(p.info.anniversary_day, p.period_start);
      p.hourly.assign(static_cast<std::size_t>((p.period_end - p.period_start) / 3600), 0);
    }
    // Per-day usage is kept for the current period only.
    days_.purge([&](std::uint64_t sim, std::int32_t day) {
      const sim_slot* s = table_.find(sim);
      if (s == nullptr) return false;
      const shard_product& p = products_[s->product];
      return p.period_start == kNoPeriod ||
             static_cast<unix_seconds>(day) * kSecondsPerDay >= p.period_start;
    });
  }
}

}  // namespace simcap::detail
