#include <algorithm>
#include <limits>
#include <utility>

#include "shard/shard.hpp"
#include "state/limits.hpp"
#include "state/saturating.hpp"

// The record path: a batch from the queue, record by record, into the SIM's period (or the
// closed one, late), then what it crosses (alerts, the limit's pause).
namespace simcap::detail {

void shard::reject(record_batch& b, const usage_record& r, reject_reason why,
                   std::string_view detail) {
  bump(rejected_[static_cast<std::size_t>(why)]);
  std::string feed = host_.feed_name(b.feed);
  std::string_view raw;
  if (static_cast<std::size_t>(r.line_offset) + r.line_length <= b.text.size()) {
    raw = b.text.substr(r.line_offset, r.line_length);
  }
  dead_letter d;
  d.time = clock_.now();
  d.feed = feed;
  if (r.seq != 0) d.seq = r.seq;
  d.reason = why;
  d.detail = detail;
  d.raw = raw;
  dead_letters_.write(d);
  b.on_reject(r, why, detail);
}

// (always inlined: it is the body of the record loop, run once a record)
[[gnu::always_inline]] inline void shard::count_in_period(sim_slot& s, shard_product& p,
                                                          const usage_record& r, unix_seconds t,
                                                          unix_seconds now) {
  const auto state = static_cast<sim_state>(s.state);
  touch(s);
  p.changed = true;
  const std::uint64_t bytes = sat_add(r.up, r.down);
  if (state != sim_state::factory_test) {
    if (networks_ != nullptr) rate_record(s, r, bytes);
    add_to_buckets(s, p, t, bytes);
    fleet_usage& u = p.totals;
    u.unused_charged_sims -= state == sim_state::active && s.usage() == 0 && bytes != 0;
    sat_inc(u.bytes_up, r.up);
    sat_inc(u.bytes_down, r.down);
    sat_inc<std::uint64_t>(u.sms, r.sms);
    if (p.info.pool_bytes != 0 && bytes != 0) {
      if (p.pool_delta == 0) pools_touched_.push_back(s.product);
      sat_inc(p.pool_delta, bytes);
    }
  }
  sat_inc(s.up, r.up);
  sat_inc(s.down, r.down);
  sat_inc(s.sms, r.sms);
  if (sat_add(s.up, s.down) >= s.next_action || (r.sms != 0 && state == sim_state::factory_test)) {
    enforce(s, p, now);
  }
}

void shard::apply(record_batch& b) {
  SIMCAP_ASSERT_OWNER();
  const unix_seconds now = clock_.now();
  if (now >= next_due_) run_due(now);
  const usage_record* recs = b.records.data();
  const std::size_t n = b.records.size();
  // Records of this feed up to its watermark were applied here before (a feed resending after
  // a restart or a reconnect): duplicates.
  const std::uint64_t seen = feed_seq(b.feed);
  constexpr std::size_t kAhead = 24;
  // The table and the id set are far bigger than the cache: fetch ahead what later records need.
  auto prefetch = [&](const usage_record& r) {
    table_.prefetch(r.sim);
    if (r.id_hash != 0) dedup_.prefetch(id_fingerprint(r.sim, r.id_hash), r.event_time);
  };
  for (std::size_t i = 0; i < std::min(n, kAhead); ++i) prefetch(recs[i]);
  std::uint64_t counted = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) prefetch(recs[i + kAhead]);
    const usage_record& r = recs[i];
    if (r.seq != 0 && r.seq <= seen) {
      bump(duplicate_ids_);
      continue;
    }
    sim_slot* s = table_.find(r.sim);
    if (s == nullptr) {
      reject(b, r, reject_reason::unknown_iccid, "no SIM with this ICCID has been imported");
      continue;
    }
    const auto state = static_cast<sim_state>(s->state);
    shard_product& p = products_[s->product];
    if (!counts_usage(state) && !used_before_release(*s, p, r)) {
      reject(b, r, reject_reason::not_counted_state,
             state == sim_state::released ? "SIM is released" : "SIM was never activated");
      continue;
    }
    if (r.event_time < p.period_start) {
      counted += apply_late(b, r, *s, p, now);
      continue;
    }
    if (r.id_hash != 0 && !remember_id(id_fingerprint(r.sim, r.id_hash), r.event_time)) {
      bump(duplicate_ids_);
      continue;
    }
    count_in_period(*s, p, r, r.event_time, now);
    ++counted;
  }
  bump(counted_, counted);
  if (!pools_touched_.empty()) report_pools(now);
  if (b.upto_seq > seen) set_feed_seq(b.feed, b.upto_seq);
}

bool shard::used_before_release(const sim_slot& s, const shard_product& p,
                                const usage_record& r) const {
  // A late record of a SIM released after the anniversary: it counts if the SIM was chargeable
  // in that period and the record is dated before the release.
  if (static_cast<sim_state>(s.state) != sim_state::released || p.closed.empty() ||
      r.event_time >= p.period_start || r.event_time >= static_cast<unix_seconds>(s.state_since)) {
    return false;
  }
  const closed_period& cp = p.closed.back();
  auto it = std::lower_bound(cp.lines.begin(), cp.lines.end(), s.key,
                             [](const closed_line& l, std::uint64_t k) { return l.sim < k; });
  return it != cp.lines.end() && it->sim == s.key && it->chargeable;
}

void shard::add_to_buckets(sim_slot& s, shard_product& p, unix_seconds t, std::uint64_t bytes) {
  if (p.period_start == kNoPeriod || p.hourly.empty()) return;
  // Records dated just past the period end (within future_skew) count in its last hour.
  t = std::clamp(t, p.period_start, p.period_end - 1);
  sat_inc(p.hourly[static_cast<std::size_t>((t - p.period_start) / 3600)], bytes);
  const auto day = static_cast<std::uint8_t>((t - p.period_start) / kSecondsPerDay);
  if (day == s.open_day) return;  // the usual case: nothing else to do
  const std::int32_t first = day_index(p.period_start);
  if (day < s.open_day) {
    add_day(s.key, s.product, first + day, bytes);  // a record of an earlier day
    return;
  }
  // The SIM's open day is over: store what it used that day, and open the new one.
  const std::uint64_t closed = closed_days_bytes(s, p);
  const std::uint64_t open_bytes = s.usage() > closed ? s.usage() - closed : 0;
  if (open_bytes != 0) add_day(s.key, s.product, first + s.open_day, open_bytes);
  s.open_day = day;
}

std::uint64_t shard::closed_days_bytes(const sim_slot& s, const shard_product& p) const {
  const std::int32_t first = day_index(p.period_start);
  std::uint64_t sum = 0;
  for (unsigned d = 0; d < s.open_day; ++d)
    sum = sat_add(sum, days_.get(s.key, first + static_cast<std::int32_t>(d)));
  return sum;
}

bool shard::apply_late(record_batch& b, const usage_record& r, sim_slot& s, shard_product& p,
                       unix_seconds now) {
  if (r.event_time < earliest_accepted(p, now)) {
    reject(b, r, reject_reason::too_late,
           p.closed.empty() ? "record is dated before the product's first period"
                            : "record is for a period closed more than late_grace ago");
    return false;
  }
  if (r.id_hash != 0 && !remember_id(id_fingerprint(r.sim, r.id_hash), r.event_time)) {
    bump(duplicate_ids_);
    return false;
  }
  if (p.closed.empty()) {
    // Still in the first period: a record dated before it, within late_grace, counts in it, on
    // its first day.
    count_in_period(s, p, r, p.period_start, now);
    return true;
  }
  std::uint16_t owner = s.product;
  closed_period* cp = &p.closed.back();
  auto it = line_in(*cp, r.sim);
  const bool here = it != cp->lines.end() && it->sim == r.sim;
  // Dated before the SIM's life in this product began (it was transferred in): the line of the
  // product it left, if that period is the record's.
  if (!here || (it->chargeable && day_of(*cp, r.event_time) < it->charge_day)) {
    if (auto before = transferred_line(r.sim, s.product, r.event_time)) {
      owner = before->first;
      cp = before->second;
      it = line_in(*cp, r.sim);
    }
  }
  if (durable_) closed_changed_.push_back({owner, cp->start, r.sim});
  if (it == cp->lines.end() || it->sim != r.sim) {
    closed_line l;
    l.sim = r.sim;
    l.country = codes_[s.country];
    it = cp->lines.insert(it, std::move(l));
  }
  // The SIM's limit in that life: its own, or its old product's default (an override moves
  // with a transfer only when kept).
  const std::uint64_t limit =
      owner == s.product || (s.flags & sim_slot::kFlagLimitOverride) != 0
          ? limit_bytes(s)
          : std::uint64_t{products_[owner].info.default_mb_limit} * opts_.mb_bytes;
  if (networks_ != nullptr) {
    // Split at the SIM's limit now, against what the closed line has.
    const std::uint64_t bytes = sat_add(r.up, r.down);
    const std::uint64_t over = bytes_over(it->usage_bytes(), bytes, limit);
    const country_code c = r.mccmnc == 0 ? it->country : networks_->code_of(r.mccmnc);
    if (over != 0 || c != it->country)
      add_country_bytes(it->away, it->country, c, bytes - over, over);
  }
  sat_inc(it->bytes_up, r.up);
  sat_inc(it->bytes_down, r.down);
  sat_inc(it->sms, r.sms);
  sat_inc(cp->total_bytes, r.up + r.down);
  bump(late_);
  event e;
  e.time = now;
  e.sim = s.key;
  e.product = owner;
  e.type = event_type::late_adjustment;
  e.reason = event_reason::late_record;
  e.usage_bytes = sat_add(it->bytes_up, it->bytes_down);
  e.limit_bytes = limit;
  e.period_start = cp->start;
  publish(e);
  return true;
}

std::vector<closed_line>::iterator shard::line_in(closed_period& cp, std::uint64_t sim) {
  return std::lower_bound(cp.lines.begin(), cp.lines.end(), sim,
                          [](const closed_line& l, std::uint64_t k) { return l.sim < k; });
}

unsigned shard::day_of(const closed_period& cp, unix_seconds t) noexcept {
  return t <= cp.start ? 0 : static_cast<unsigned>((t - cp.start) / kSecondsPerDay);
}

std::optional<std::pair<std::uint16_t, closed_period*>> shard::transferred_line(
    std::uint64_t sim, std::uint16_t current, unix_seconds t) {
  for (std::size_t i = 0; i < products_.size(); ++i) {
    shard_product& q = products_[i];
    if (i == current || q.closed.empty()) continue;
    closed_period& cp = q.closed.back();
    if (t < cp.start || t >= cp.end) continue;
    auto it = line_in(cp, sim);
    if (it != cp.lines.end() && it->sim == sim && it->transferred_out) {
      return std::pair{static_cast<std::uint16_t>(i), &cp};
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- pools

void shard::report_pools(unix_seconds now) {
  for (std::uint16_t i : pools_touched_) {
    shard_product& p = products_[i];
    const std::uint64_t bytes = std::exchange(p.pool_delta, 0);
    if (bytes == 0) continue;
    shard_host::pool_crossing c = host_.pool_add(p.info, p.period_start, bytes);
    auto product_event = [&](event_type type, std::uint16_t threshold) {
      event e;
      e.time = now;
      e.product = i;
      e.type = type;
      e.reason =
          type == event_type::pool_alert ? event_reason::threshold : event_reason::pool_exhausted;
      e.threshold_permille = threshold;
      e.usage_bytes = c.used;
      e.limit_bytes = p.info.pool_bytes;
      e.period_start = p.period_start;
      publish(e);
    };
    for (std::uint16_t t : c.thresholds) product_event(event_type::pool_alert, t);
    if (c.exhausted) product_event(event_type::pool_exhausted, 0);
  }
  pools_touched_.clear();
}

void shard::hold_for_pool(sim_slot& s, const shard_product& p, unix_seconds now) {
  if (!p.info.pool_pause || p.info.pool_bytes == 0 ||
      s.state != static_cast<std::uint8_t>(sim_state::active) ||
      !host_.pool_exhausted(s.product, p.period_start)) {
    return;
  }
  pause_at_pool(s, p, now);
}

void shard::pause_at_pool(sim_slot& s, const shard_product& p, unix_seconds now) {
  set_state(s, sim_state::paused, now);
  s.reason = static_cast<std::uint8_t>(pause_reason::pool_exhausted);
  emit(s, event_type::paused, event_reason::pool_exhausted, now);
  recompute_next(s, p);
}

void shard::pause_for_pool(std::uint16_t product, unix_seconds now) {
  SIMCAP_ASSERT_OWNER();
  if (product >= products_.size()) return;
  const shard_product& p = products_[product];
  table_.for_each([&](sim_slot& s) {
    if (s.product == product && s.state == static_cast<std::uint8_t>(sim_state::active)) {
      pause_at_pool(s, p, now);
    }
  });
}

void shard::unpause_for_pool(std::uint16_t product, unix_seconds now) {
  SIMCAP_ASSERT_OWNER();
  if (product >= products_.size()) return;
  shard_product& p = products_[product];
  table_.for_each([&](sim_slot& s) {
    if (s.product != product || s.state != static_cast<std::uint8_t>(sim_state::paused) ||
        s.reason != static_cast<std::uint8_t>(pause_reason::pool_exhausted)) {
      return;
    }
    touch_all(s);
    if (s.usage() >= limit_bytes(s)) {
      s.reason = static_cast<std::uint8_t>(pause_reason::data_limit);  // its own limit holds it
      return;
    }
    set_state(s, sim_state::active, now);
    s.reason = static_cast<std::uint8_t>(pause_reason::none);
    emit(s, event_type::unpaused, event_reason::pool_changed, now);
    recompute_next(s, p);
  });
}

// ---------------------------------------------------------------- rating

void add_country_bytes(std::vector<country_bytes>& away, country_code home, country_code c,
                       std::uint64_t within, std::uint64_t over) {
  if (c == home) within = 0;  // the home country's within the limit is implied
  if (within == 0 && over == 0) return;
  for (country_bytes& b : away) {
    if (b.country != c) continue;
    sat_inc(b.within, within);
    sat_inc(b.over, over);
    return;
  }
  away.push_back({c, within, over});
}

void merge_line(closed_line& into, const closed_line& from) {
  if (into.country == 0 && into.usage_bytes() == 0 && into.away.empty())
    into.country = from.country;
  if (from.chargeable) {
    into.charge_day =
        into.chargeable ? std::min(into.charge_day, from.charge_day) : from.charge_day;
  }
  if (from.country != into.country) {
    // The other life's home bytes are not this one's: they count as bytes of their country.
    std::uint64_t accounted = 0;
    for (const country_bytes& b : from.away)
      accounted = sat_add(accounted, sat_add(b.within, b.over));
    const std::uint64_t implied =
        from.usage_bytes() > accounted ? from.usage_bytes() - accounted : 0;
    add_country_bytes(into.away, into.country, from.country, implied, 0);
  }
  // (bytes of this life's home country within the limit become implied ones)
  for (const country_bytes& b : from.away)
    add_country_bytes(into.away, into.country, b.country, b.within, b.over);
  sat_inc(into.bytes_up, from.bytes_up);
  sat_inc(into.bytes_down, from.bytes_down);
  sat_inc(into.sms, from.sms);
  into.chargeable = into.chargeable || from.chargeable;
  into.transferred_out = into.transferred_out || from.transferred_out;
}

void shard::add_away(std::uint64_t sim, std::uint16_t product, country_code home, country_code c,
                     std::uint64_t within, std::uint64_t over) {
  sim_rating& e = rating_[sim];
  add_country_bytes(e.away, home, c, within, over);
  rating_changed(product, sim, e);
}

void shard::note_chargeable(const sim_slot& s, const shard_product& p, unix_seconds now) {
  if (networks_ == nullptr || p.period_start == kNoPeriod || now <= p.period_start) return;
  const auto day = static_cast<std::uint8_t>(
      std::min<unix_seconds>((now - p.period_start) / kSecondsPerDay, 255));
  if (day == 0) return;
  sim_rating& e = rating_[s.key];
  e.charge_day = day;
  rating_changed(s.product, s.key, e);
}

// ---------------------------------------------------------------- enforcement

void shard::recompute_next(sim_slot& s, const shard_product& p) const noexcept {
  const auto state = static_cast<sim_state>(s.state);
  if (state == sim_state::factory_test) {
    s.next_action = opts_.factory_test_bytes;
    return;
  }
  std::uint64_t lim = limit_bytes(s);
  std::uint64_t next = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t i = 0; i < p.info.thresholds.size(); ++i) {
    if (!(s.alerts_fired & (1u << i)))
      next = std::min(next, threshold_bytes(lim, p.info.thresholds[i]));
  }
  if (state == sim_state::active) next = std::min(next, lim);
  s.next_action = next;
}

void shard::emit(const sim_slot& s, event_type type, event_reason why, unix_seconds when,
                 std::uint16_t threshold) {
  event e;
  e.time = when;
  e.sim = s.key;
  e.product = s.product;
  e.type = type;
  e.reason = why;
  e.threshold_permille = threshold;
  e.usage_bytes = s.usage();
  e.limit_bytes = limit_bytes(s);
  publish(e);
}

void shard::publish(const event& e) {
  if (durable_) {
    pending_events_.push_back(e);  // ids come with the checkpoint that makes them durable
  } else {
    events_.append(e);
  }
}

void shard::add_day(std::uint64_t sim, std::uint16_t product, std::int32_t day,
                    std::uint64_t bytes) {
  days_.add(sim, day, bytes);
  if (durable_) dirty_days_.push_back({sim, product, day});
}

void shard::account(const sim_slot& s, int sign) noexcept {
  fleet_usage& t = products_[s.product].totals;
  auto add = [sign](auto& field, std::uint64_t v) {
    if (sign > 0)
      field += v;
    else
      field -= v;
  };
  // (bytes saturate per SIM; the totals are sums of at most a fleet of them)
  const auto st = static_cast<sim_state>(s.state);
  add(t.sims_by_state[s.state], 1);
  if (st != sim_state::factory_test) {
    add(t.bytes_up, s.up);
    add(t.bytes_down, s.down);
    add(t.sms, s.sms);
  }
  if ((s.flags & (sim_slot::kFlagChargeable | sim_slot::kFlagRetiredChargeable)) ==
      sim_slot::kFlagChargeable) {
    add(t.chargeable_sims, 1);
  }
  if (st == sim_state::active && s.usage() == 0) add(t.unused_charged_sims, 1);
}

void shard::enforce(sim_slot& s, shard_product& p, unix_seconds now) {
  touch_all(s);
  const auto state = static_cast<sim_state>(s.state);
  if (state == sim_state::factory_test) {
    if (s.usage() >= opts_.factory_test_bytes) {
      end_factory_test(s, p, event_reason::data_threshold, now);
    } else if (s.sms >= opts_.factory_test_sms) {
      end_factory_test(s, p, event_reason::sms_threshold, now);
    } else {
      recompute_next(s, p);
      return;
    }
    // What the crossing record used past the test's threshold is chargeable usage already.
    if (s.usage() >= s.next_action) enforce(s, p, now);
    return;
  }
  const std::uint64_t lim = limit_bytes(s), used = s.usage();
  bool pause_due = state == sim_state::active && used >= lim;
  auto pause = [&] {
    set_state(s, sim_state::paused, now);
    s.reason = static_cast<std::uint8_t>(pause_reason::data_limit);
    emit(s, event_type::paused, event_reason::data_limit, now);
    pause_due = false;
  };
  const auto& th = p.info.thresholds;
  for (std::size_t i = 0; i < th.size(); ++i) {
    if (pause_due && th[i] > 1000) pause();  // alerts up to the limit come before the pause
    if (!(s.alerts_fired & (1u << i)) && used >= threshold_bytes(lim, th[i])) {
      s.alerts_fired |= static_cast<std::uint8_t>(1u << i);
      emit(s, event_type::alert, event_reason::threshold, now, th[i]);
    }
  }
  if (pause_due) pause();
  recompute_next(s, p);
}

}  // namespace simcap::detail
