#include "shard.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <limits>

#include "simcap/thread_name.hpp"
#include "calendar.hpp"
#include "codec.hpp"
#include "saturating.hpp"

namespace simcap::detail {

namespace {

std::uint64_t threshold_bytes(std::uint64_t limit, std::uint16_t permille) noexcept {
  auto v = (static_cast<unsigned __int128>(limit) * permille + 999) / 1000;
  return v > std::numeric_limits<std::uint64_t>::max() ? std::numeric_limits<std::uint64_t>::max()
                                                       : static_cast<std::uint64_t>(v);
}

std::uint32_t u32_time(unix_seconds t) noexcept {
  return t <= 0 ? 0u : static_cast<std::uint32_t>(std::min<unix_seconds>(t, 0xffffffffLL));
}

std::vector<sim_action> allowed_actions(sim_state s) {
  switch (s) {
    case sim_state::issued:
      return {sim_action::activate, sim_action::start_factory_test, sim_action::release};
    case sim_state::factory_test: return {sim_action::release};
    case sim_state::active: return {sim_action::deactivate, sim_action::release};
    case sim_state::paused:
      return {sim_action::activate, sim_action::reactivate, sim_action::deactivate,
              sim_action::release};
    case sim_state::deactivated:
      return {sim_action::activate, sim_action::reactivate, sim_action::release};
    case sim_state::released: return {};
  }
  return {};
}

control_error transition_error(sim_state current, sim_action a) {
  std::string msg = "cannot ";
  msg += to_string(a);
  msg += " a SIM that is ";
  msg += to_string(current);
  return control_error{control_errc::invalid_transition, std::move(msg), current,
                       allowed_actions(current)};
}

}  // namespace

shard::shard(unsigned index, const engine_options& opts, const clock& clk, event_log& events,
             dead_letter_sink& dead_letters, shard_host& host)
    : index_(index),
      opts_(opts),
      clock_(clk),
      events_(events),
      dead_letters_(dead_letters),
      host_(host),
      queue_(1024),
      table_(opts.expected_sims),
      durable_(!opts.store_dir.empty()) {}

shard::~shard() { stop(); }

void shard::start() {
  if (thread_.joinable()) return;
  stopping_.store(false);
  thread_ = std::thread([this] {
    set_thread_name("shard-" + std::to_string(index_));
    prefer_short_slices(std::chrono::microseconds(200));
    owner_ = std::this_thread::get_id();
    loop();
    owner_ = std::thread::id{};
  });
}

void shard::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  queue_.enqueue(shard_msg{});  // wakes the thread
  thread_.join();
}

void shard::lock_busy() {
  // A query answered in another thread holds the lock for a microsecond or two: spin a little
  // before sleeping on it.
  for (int i = 0; i < 200; ++i) {
    if (busy_.try_lock()) {
      holder_.store(std::this_thread::get_id(), std::memory_order_relaxed);
      return;
    }
    std::this_thread::yield();
  }
  busy_.lock();
  holder_.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

void shard::loop() {
  shard_msg msgs[64];
  lock_busy();
  for (;;) {
    run_tasks();
    std::size_t n = queue_.try_dequeue_bulk(msgs, 64);
    if (n == 0) {
      busy_.unlock();
      n = queue_.wait_dequeue_bulk_timed(msgs, 64, std::chrono::milliseconds(100));
      lock_busy();
    }
    for (std::size_t i = 0; i < n; ++i) {
      run_tasks();
      handle(msgs[i]);
    }
    unix_seconds now = clock_.now();
    if (now >= next_due_) run_due(now);
    if (stopping_.load(std::memory_order_acquire) && queue_.size_approx() == 0 &&
        tasks_.size_approx() == 0 && reads_.size_approx() == 0) {
      run_tasks();
      break;
    }
  }
  busy_.unlock();
}

void shard::run_tasks() {
  run_reads();
  shard_task* t = nullptr;
  while (tasks_.try_dequeue(t)) {
    t->run(*this);
    delete t;
  }
}

void shard::run_reads() {
  shard_task* t = nullptr;
  while (reads_.try_dequeue(t)) {
    t->run(*this);
    delete t;
  }
}

void shard::handle(shard_msg& m) {
  if (m.batch == nullptr) return;
  const auto t0 = std::chrono::steady_clock::now();
  apply(*m.batch);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  std::size_t b = 0;
  while (b < kApplyBuckets.size() && static_cast<double>(ns) > kApplyBuckets[b] * 1e9) ++b;
  bump(apply_buckets_[b]);
  bump(apply_nanos_, static_cast<std::uint64_t>(ns));
  m.batch->on_applied();
}

shard::counters shard::read_counters() const noexcept {
  counters c;
  c.counted = counted_.load(std::memory_order_relaxed);
  c.late = late_.load(std::memory_order_relaxed);
  c.duplicate_ids = duplicate_ids_.load(std::memory_order_relaxed);
  c.apply_nanos = apply_nanos_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < c.apply_buckets.size(); ++i) {
    c.apply_buckets[i] = apply_buckets_[i].load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < kRejectReasonCount; ++i) {
    c.rejected[i] = rejected_[i].load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < kSimStateCount; ++i) {
    c.by_state[i] = by_state_[i].load(std::memory_order_relaxed);
  }
  return c;
}

// ---------------------------------------------------------------- products and periods

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
  unix_seconds h = now - (std::max(opts_.dedup_window, opts_.late_grace) + opts_.future_skew).count();
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
      bool chargeable = (s.flags & sim_slot::kFlagChargeable) != 0;
      if (chargeable || s.usage() != 0 || s.sms != 0) {
        cp.lines.push_back({s.key, s.up, s.down, s.sms, chargeable});
      }
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
      s.flags = on ? (s.flags | sim_slot::kFlagChargeable)
                   : (s.flags & ~sim_slot::kFlagChargeable);
      recompute_next(s, p);
      account(s, +1);
    });
    for (std::uint16_t i : due) {
      shard_product& p = products_[i];
      closed_period& cp = closing[i];
      // Earlier lives of SIMs released and imported again in the period: one line a SIM.
      for (auto& [key, l] : p.retired) cp.lines.push_back(l);
      p.retired.clear();
      std::sort(cp.lines.begin(), cp.lines.end(),
                [](const closed_line& a, const closed_line& b) { return a.sim < b.sim; });
      std::size_t out = 0;
      for (std::size_t k = 0; k < cp.lines.size(); ++k) {
        if (out != 0 && cp.lines[out - 1].sim == cp.lines[k].sim) {
          closed_line& m = cp.lines[out - 1];
          sat_inc(m.bytes_up, cp.lines[k].bytes_up);
          sat_inc(m.bytes_down, cp.lines[k].bytes_down);
          sat_inc(m.sms, cp.lines[k].sms);
          m.chargeable = m.chargeable || cp.lines[k].chargeable;
        } else {
          cp.lines[out++] = cp.lines[k];
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
      return p.period_start == kNoPeriod || static_cast<unix_seconds>(day) * kSecondsPerDay >= p.period_start;
    });
  }
}

// ---------------------------------------------------------------- the record path

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
[[gnu::always_inline]] inline void shard::count_in_period(sim_slot& s, shard_product& p, const usage_record& r,
                                   unix_seconds t, unix_seconds now) {
  const auto state = static_cast<sim_state>(s.state);
  touch(s);
  p.changed = true;
  const std::uint64_t bytes = sat_add(r.up, r.down);
  if (state != sim_state::factory_test) {
    add_to_buckets(s, p, t, bytes);
    fleet_usage& u = p.totals;
    u.unused_charged_sims -= state == sim_state::active && s.usage() == 0 && bytes != 0;
    sat_inc(u.bytes_up, r.up);
    sat_inc(u.bytes_down, r.down);
    sat_inc<std::uint64_t>(u.sms, r.sms);
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
    if (r.id_hash != 0) dedup_.prefetch(dedup_set::fingerprint(r.sim, r.id_hash));
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
    if (r.id_hash != 0 && !remember_id(dedup_set::fingerprint(r.sim, r.id_hash), r.event_time)) {
      bump(duplicate_ids_);
      continue;
    }
    count_in_period(*s, p, r, r.event_time, now);
    ++counted;
  }
  bump(counted_, counted);
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
  for (unsigned d = 0; d < s.open_day; ++d) sum = sat_add(sum, days_.get(s.key, first + static_cast<std::int32_t>(d)));
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
  if (r.id_hash != 0 && !remember_id(dedup_set::fingerprint(r.sim, r.id_hash), r.event_time)) {
    bump(duplicate_ids_);
    return false;
  }
  if (p.closed.empty()) {
    // Still in the first period: a record dated before it, within late_grace, counts in it, on
    // its first day.
    count_in_period(s, p, r, p.period_start, now);
    return true;
  }
  closed_period& cp = p.closed.back();
  if (durable_) closed_changed_.push_back({s.product, cp.start, r.sim});
  auto it = std::lower_bound(cp.lines.begin(), cp.lines.end(), r.sim,
                             [](const closed_line& l, std::uint64_t k) { return l.sim < k; });
  if (it == cp.lines.end() || it->sim != r.sim) {
    it = cp.lines.insert(it, closed_line{r.sim, 0, 0, 0, false});
  }
  sat_inc(it->bytes_up, r.up);
  sat_inc(it->bytes_down, r.down);
  sat_inc(it->sms, r.sms);
  sat_inc(cp.total_bytes, r.up + r.down);
  bump(late_);
  event e;
  e.time = now;
  e.sim = s.key;
  e.product = s.product;
  e.type = event_type::late_adjustment;
  e.reason = event_reason::late_record;
  e.usage_bytes = sat_add(it->bytes_up, it->bytes_down);
  e.limit_bytes = limit_bytes(s);
  e.period_start = cp.start;
  publish(e);
  return true;
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
    if (!(s.alerts_fired & (1u << i))) next = std::min(next, threshold_bytes(lim, p.info.thresholds[i]));
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

void shard::add_day(std::uint64_t sim, std::uint16_t product, std::int32_t day, std::uint64_t bytes) {
  days_.add(sim, day, bytes);
  if (durable_) dirty_days_.push_back({sim, product, day});
}

void shard::account(const sim_slot& s, int sign) noexcept {
  fleet_usage& t = products_[s.product].totals;
  auto add = [sign](auto& field, std::uint64_t v) {
    if (sign > 0) field += v;
    else field -= v;
  };
  // (bytes saturate per SIM; the totals are sums of at most a fleet of them)
  const auto st = static_cast<sim_state>(s.state);
  add(t.sims_by_state[s.state], 1);
  if (st != sim_state::factory_test) {
    add(t.bytes_up, s.up);
    add(t.bytes_down, s.down);
    add(t.sms, s.sms);
  }
  if ((s.flags & (sim_slot::kFlagChargeable | sim_slot::kFlagRetiredChargeable)) == sim_slot::kFlagChargeable) {
    add(t.chargeable_sims, 1);
  }
  if (st == sim_state::active && s.usage() == 0) add(t.unused_charged_sims, 1);
}

void shard::set_state(sim_slot& s, sim_state to, unix_seconds now, bool account_totals) {
  touch_all(s);
  if (account_totals) account(s, -1);
  auto from = static_cast<std::size_t>(s.state);
  by_state_[from].store(by_state_[from].load(std::memory_order_relaxed) - 1,
                        std::memory_order_relaxed);
  bump(by_state_[static_cast<std::size_t>(to)]);
  s.state = static_cast<std::uint8_t>(to);
  s.state_since = u32_time(now);
  s.updated_at = u32_time(now);
  if (to == sim_state::active || to == sim_state::paused) s.flags |= sim_slot::kFlagChargeable;
  if (account_totals) account(s, +1);
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

void shard::end_factory_test(sim_slot& s, shard_product& p, event_reason why, unix_seconds when) {
  touch_all(s);
  emit(s, event_type::factory_test_ended, why, when);
  // Test usage is free up to the data threshold (uplink first, then downlink); bytes past it,
  // from the record that crossed it, are the SIM's first chargeable usage.
  std::uint64_t free_bytes = opts_.factory_test_bytes;
  const std::uint64_t up_free = std::min(s.up, free_bytes);
  free_bytes -= up_free;
  const std::uint64_t down_free = std::min(s.down, free_bytes);
  const std::uint64_t up = s.up - up_free, down = s.down - down_free;
  s.up = s.down = 0;
  s.sms = 0;
  s.open_day = 0;
  s.alerts_fired = 0;
  s.reason = static_cast<std::uint8_t>(pause_reason::none);
  set_state(s, sim_state::active, when);
  if (s.first_activated == 0) s.first_activated = u32_time(when);
  s.last_activated = u32_time(when);
  on_activation(p, when);
  if (up + down != 0) {
    account(s, -1);
    add_to_buckets(s, p, when, up + down);
    s.up = up;
    s.down = down;
    account(s, +1);
  }
  recompute_next(s, p);
}

// ---------------------------------------------------------------- control

bool shard::retire(sim_slot& s, std::uint16_t new_product) {
  shard_product& old = products_[s.product];
  // The released SIM's bytes and chargeable count stay in its product's totals (now those of
  // its retired line); only its count as a released SIM goes.
  old.totals.sims_by_state[static_cast<std::size_t>(sim_state::released)]--;
  auto released = static_cast<std::size_t>(sim_state::released);
  by_state_[released].store(by_state_[released].load(std::memory_order_relaxed) - 1,
                            std::memory_order_relaxed);
  const bool chargeable = (s.flags & (sim_slot::kFlagChargeable | sim_slot::kFlagRetiredChargeable)) != 0;
  if (chargeable || s.usage() != 0 || s.sms != 0) {
    closed_line& l = old.retired[s.key];
    l.sim = s.key;
    sat_inc(l.bytes_up, s.up);
    sat_inc(l.bytes_down, s.down);
    sat_inc(l.sms, s.sms);
    l.chargeable = l.chargeable || chargeable;
    if (durable_) retired_changed_.push_back({s.product, s.key});
  }
  // The old life's days are not the new one's.
  if (old.period_start != kNoPeriod) {
    const std::int32_t first = day_index(old.period_start);
    for (unsigned d = 0; d < s.open_day; ++d) {
      const std::int32_t day = first + static_cast<std::int32_t>(d);
      if (days_.get(s.key, day) == 0) continue;
      days_.clear(s.key, day);
      if (durable_) dirty_days_.push_back({s.key, s.product, day});
    }
  }
  if (new_product != s.product) return false;
  auto it = old.retired.find(s.key);
  return it != old.retired.end() && it->second.chargeable;
}

import_outcome shard::import_sim(std::uint64_t key, std::uint16_t product_index, sim_state initial,
                                 std::uint8_t country, bool only_new, unix_seconds now) {
  SIMCAP_ASSERT_OWNER();
  if (only_new) {
    if (const sim_slot* known = table_.find(key)) {
      return known->product == product_index ? import_outcome::already_present
                                             : import_outcome::other_product;
    }
  }
  auto [s, created] = table_.insert(key);
  bool retired_chargeable = false;
  if (!created) {
    if (s->state != static_cast<std::uint8_t>(sim_state::released)) {
      return s->product == product_index ? import_outcome::already_present
                                         : import_outcome::other_product;
    }
    // A released SIM may be imported again (into this or another product): a new life starts
    // at zero, and what the old one used stays in its product's period for good.
    retired_chargeable = retire(*s, product_index);
    *s = sim_slot{};
    s->key = key;
  }
  shard_product& p = product(product_index);
  touch_all(*s);
  if (retired_chargeable) s->flags |= sim_slot::kFlagRetiredChargeable;
  s->country = country;
  s->product = product_index;
  s->mb_limit = p.info.default_mb_limit;
  s->state = static_cast<std::uint8_t>(initial);
  s->state_since = u32_time(now);
  s->updated_at = u32_time(now);
  bump(by_state_[static_cast<std::size_t>(initial)]);
  if (initial == sim_state::active) {
    s->first_activated = s->last_activated = u32_time(now);
    s->flags |= sim_slot::kFlagChargeable;
    on_activation(p, now);
    emit(*s, event_type::activated, event_reason::import, now);
  } else if (initial == sim_state::factory_test) {
    factory_deadlines_.push({now + opts_.factory_test_period.count(), key});
    refresh_next_due();
  }
  recompute_next(*s, p);
  account(*s, +1);
  return import_outcome::imported;
}

control_result<sim_view> shard::update(std::uint64_t key, std::optional<std::uint16_t> scope,
                                       const sim_update& u, unix_seconds now) {
  SIMCAP_ASSERT_OWNER();
  sim_slot* s = table_.find(key);
  if (s == nullptr || (scope && s->product != *scope)) {
    return std::unexpected(control_error{control_errc::not_found, "no such SIM", {}, {}});
  }
  shard_product& p = product(s->product);
  auto state = static_cast<sim_state>(s->state);
  touch_all(*s);  // a refused request writes the unchanged SIM again: harmless
  if (state == sim_state::released) {
    if (!u.action) {
      return std::unexpected(control_error{control_errc::invalid_transition,
                                           "cannot change the data limit of a SIM that is released", state, {}});
    }
    return std::unexpected(transition_error(state, *u.action));
  }
  // Check the action before changing anything, so a refused request changes nothing.
  if (u.action) {
    sim_action a = *u.action;
    bool ok = false;
    switch (a) {
      case sim_action::activate:
      case sim_action::reactivate:
        ok = state == sim_state::issued || state == sim_state::active ||
             state == sim_state::paused || state == sim_state::deactivated;
        break;
      case sim_action::deactivate:
        ok = state == sim_state::active || state == sim_state::paused ||
             state == sim_state::deactivated;
        break;
      case sim_action::release: ok = true; break;
      case sim_action::start_factory_test:
        ok = state == sim_state::issued || state == sim_state::factory_test;
        break;
    }
    if (!ok) return std::unexpected(transition_error(state, a));
    if (state == sim_state::paused && (a == sim_action::activate || a == sim_action::reactivate)) {
      std::uint64_t lim = u.mb_limit ? static_cast<std::uint64_t>(*u.mb_limit) * opts_.mb_bytes
                                     : limit_bytes(*s);
      if (s->usage() >= lim) {
        control_error e{control_errc::limit_reached,
                        "usage is at or over the data limit: raise mb_limit to unpause", state,
                        allowed_actions(state)};
        return std::unexpected(std::move(e));
      }
    }
  }
  if (u.mb_limit) {
    if (*u.mb_limit == 0) {
      return std::unexpected(control_error{control_errc::bad_request, "mb_limit must be at least 1", {}, {}});
    }
    s->mb_limit = *u.mb_limit;
    s->flags |= sim_slot::kFlagLimitOverride;
    s->updated_at = u32_time(now);
    const std::uint64_t lim = limit_bytes(*s);
    for (std::size_t i = 0; i < p.info.thresholds.size(); ++i) {
      if (s->usage() < threshold_bytes(lim, p.info.thresholds[i])) {
        s->alerts_fired &= static_cast<std::uint8_t>(~(1u << i));
      }
    }
    if (state == sim_state::paused && s->usage() < lim) {
      set_state(*s, sim_state::active, now);
      s->reason = static_cast<std::uint8_t>(pause_reason::none);
      emit(*s, event_type::unpaused, event_reason::limit_changed, now);
    }
    recompute_next(*s, p);
    if (counts_usage(static_cast<sim_state>(s->state)) && s->usage() >= s->next_action) {
      enforce(*s, p, now);
    }
    state = static_cast<sim_state>(s->state);
  }
  if (u.action) {
    switch (*u.action) {
      case sim_action::activate:
      case sim_action::reactivate:
        if (state == sim_state::active) break;
        if (state == sim_state::paused) {
          set_state(*s, sim_state::active, now);
          s->reason = static_cast<std::uint8_t>(pause_reason::none);
          emit(*s, event_type::unpaused, event_reason::user, now);
        } else {
          set_state(*s, sim_state::active, now);
          if (s->first_activated == 0) s->first_activated = u32_time(now);
          s->last_activated = u32_time(now);
          on_activation(p, now);
          emit(*s, event_type::activated, event_reason::user, now);
          if (s->usage() >= limit_bytes(*s)) {
            set_state(*s, sim_state::paused, now);
            s->reason = static_cast<std::uint8_t>(pause_reason::data_limit);
            emit(*s, event_type::paused, event_reason::data_limit, now);
          }
        }
        break;
      case sim_action::deactivate:
        if (state == sim_state::deactivated) break;
        set_state(*s, sim_state::deactivated, now);
        s->reason = static_cast<std::uint8_t>(pause_reason::none);
        emit(*s, event_type::deactivated, event_reason::user, now);
        break;
      case sim_action::release:
        set_state(*s, sim_state::released, now);
        s->reason = static_cast<std::uint8_t>(pause_reason::none);
        emit(*s, event_type::released, event_reason::user, now);
        break;
      case sim_action::start_factory_test:
        if (state == sim_state::factory_test) break;
        set_state(*s, sim_state::factory_test, now);
        s->up = s->down = 0;
        s->sms = 0;
        factory_deadlines_.push({now + opts_.factory_test_period.count(), key});
        refresh_next_due();
        break;
    }
    recompute_next(*s, p);
  }
  return make_view(*s);
}

// ---------------------------------------------------------------- taking a change back

shard::undo_point shard::undo_point_of(std::uint64_t key) const {
  undo_point u;
  u.key = key;
  if (const sim_slot* s = table_.find(key)) {
    u.existed = true;
    u.before = *s;
    if (s->product < products_.size()) {
      const auto& retired = products_[s->product].retired;
      if (auto it = retired.find(key); it != retired.end()) u.retired = it->second;
    }
  }
  return u;
}

void shard::restore(const undo_point& u) {
  SIMCAP_ASSERT_OWNER();
  auto count_state = [&](std::uint8_t state, int sign) {
    auto& c = by_state_[state];
    c.store(c.load(std::memory_order_relaxed) + static_cast<std::size_t>(sign), std::memory_order_relaxed);
  };
  if (sim_slot* s = table_.find(u.key)) {
    account(*s, -1);
    count_state(s->state, -1);
  }
  if (!u.existed) {
    table_.erase(u.key);
    if (durable_) erased_.push_back(u.key);
    return;
  }
  // A re-import moved the old life to a retired line: take that back too (its bytes and its
  // chargeable count return with the slot). The new life's cleared days stay cleared.
  shard_product& old = products_[u.before.product];
  auto it = old.retired.find(u.key);
  const closed_line was = u.retired.value_or(closed_line{u.key, 0, 0, 0, false});
  const bool retired_since = it != old.retired.end() &&
                             (!u.retired || it->second.bytes_up != was.bytes_up ||
                              it->second.bytes_down != was.bytes_down || it->second.sms != was.sms ||
                              it->second.chargeable != was.chargeable);
  if (retired_since) {
    old.totals.bytes_up -= it->second.bytes_up - was.bytes_up;
    old.totals.bytes_down -= it->second.bytes_down - was.bytes_down;
    old.totals.sms -= it->second.sms - was.sms;
    old.totals.chargeable_sims -= it->second.chargeable && !was.chargeable;
    if (u.retired) {
      it->second = *u.retired;
    } else {
      old.retired.erase(it);
    }
    if (durable_) retired_changed_.push_back({u.before.product, u.key});
  }
  auto [s, created] = table_.insert(u.key);
  *s = u.before;
  s->flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
  touch_all(*s);
  account(*s, +1);
  count_state(s->state, +1);
}

std::vector<event> shard::pending_events_since(std::size_t from) const {
  if (from >= pending_events_.size()) return {};
  return std::vector<event>(pending_events_.begin() + static_cast<std::ptrdiff_t>(from), pending_events_.end());
}

void shard::drop_events(std::vector<event>& taken_back) {
  std::erase_if(taken_back, [&](const event& e) {
    auto it = std::find_if(pending_events_.begin(), pending_events_.end(),
                           [&](const event& p) { return same_event(p, e); });
    if (it == pending_events_.end()) return false;
    pending_events_.erase(it);
    return true;
  });
}

// ---------------------------------------------------------------- queries

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

fleet_usage shard::usage_by_scan(std::uint16_t index) const {
  SIMCAP_ASSERT_OWNER();
  fleet_usage u;
  if (index < products_.size() && products_[index].period_start != kNoPeriod) {
    u.period_start = products_[index].period_start;
    u.period_end = products_[index].period_end;
    u.by_hour = products_[index].hourly;
  }
  // A SIM is chargeable once, whether in its current life or in an earlier one (retired).
  std::vector<std::uint64_t> chargeable;
  table_.for_each([&](const sim_slot& s) {
    if (s.product != index) return;
    auto st = static_cast<sim_state>(s.state);
    u.sims_by_state[static_cast<std::size_t>(st)]++;
    if (st == sim_state::factory_test) return;  // test usage is free
    u.bytes_up += s.up;
    u.bytes_down += s.down;
    u.sms += s.sms;
    if (s.flags & sim_slot::kFlagChargeable) chargeable.push_back(s.key);
    if (st == sim_state::active && s.usage() == 0) u.unused_charged_sims++;
  });
  if (index < products_.size()) {
    for (const auto& [key, l] : products_[index].retired) {
      u.bytes_up += l.bytes_up;
      u.bytes_down += l.bytes_down;
      u.sms += l.sms;
      if (l.chargeable) chargeable.push_back(key);
    }
  }
  std::sort(chargeable.begin(), chargeable.end());
  u.chargeable_sims = static_cast<std::size_t>(std::unique(chargeable.begin(), chargeable.end()) - chargeable.begin());
  return u;
}

std::optional<std::vector<day_bytes>> shard::days_of(std::uint64_t key, std::optional<std::uint16_t> scope,
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
    std::uint64_t bytes = rel < s->open_day ? days_.get(key, first + rel) : rel == s->open_day ? open_bytes : 0;
    if (static_cast<sim_state>(s->state) == sim_state::factory_test) bytes = 0;  // test usage is free
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

}  // namespace simcap::detail

// ---------------------------------------------------------------- durability

namespace simcap::detail {

namespace {
char* put_varint(char* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
bool get_varint(std::string_view s, std::size_t& at, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; at < s.size() && shift < 64; shift += 7) {
    auto b = static_cast<unsigned char>(s[at++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// A SIM in a blob: 0, key, then up, down, sms, open_day as varints (a record changed its
// usage, nothing else: most entries of a delta, about 17 bytes); 1 and the whole slot; or 2 and
// the key of a SIM removed (an import taken back).
constexpr std::size_t kMaxEntry = 1 + sizeof(sim_slot);
// Marks a slot handed to blob_writer::add as a removal (not a state any SIM has).
constexpr std::uint8_t kErased = 0xff;

// Fills blobs of about kBlobBytes through a pointer (the cut runs between record batches: it
// has to be quick).
class blob_writer {
 public:
  explicit blob_writer(std::function<void(std::string&&)> emit) : emit_(std::move(emit)) {}
  ~blob_writer() { flush(); }
  void add(const sim_slot& s, bool all) {
    if (buf_.empty()) {
      buf_.resize_and_overwrite(kBlobBytes + kMaxEntry, [](char*, std::size_t n) { return n; });  // no zero fill
      p_ = buf_.data();
    }
    if (s.key != 0 && s.state == kErased) {
      *p_++ = 2;
      std::memcpy(p_, &s.key, sizeof s.key);
      p_ += sizeof s.key;
    } else if (all) {
      *p_++ = 1;
      std::memcpy(p_, &s, sizeof s);
      p_[offsetof(sim_slot, flags)] = static_cast<char>(s.flags & ~sim_slot::kFlagDirty);
      p_ += sizeof s;
    } else {
      *p_++ = 0;
      std::memcpy(p_, &s.key, sizeof s.key);
      p_ += sizeof s.key;
      p_ = put_varint(p_, s.up);
      p_ = put_varint(p_, s.down);
      p_ = put_varint(p_, s.sms);
      p_ = put_varint(p_, s.open_day);
    }
    if (static_cast<std::size_t>(p_ - buf_.data()) >= kBlobBytes) flush();
  }
  void flush() {
    if (buf_.empty()) return;
    buf_.resize(static_cast<std::size_t>(p_ - buf_.data()));
    if (!buf_.empty()) emit_(std::move(buf_));
    buf_ = std::string();
  }

 private:
  std::function<void(std::string&&)> emit_;
  std::string buf_;
  char* p_ = nullptr;
};

// Calls f(slot, all) for each entry; a short or unknown entry ends the blob.
template <class F>
void decode_slots(std::string_view blob, F&& f) {
  std::size_t at = 0;
  while (at < blob.size()) {
    const char kind = blob[at++];
    sim_slot s{};
    if (kind == 1) {
      if (at + sizeof s > blob.size()) return;
      std::memcpy(static_cast<void*>(&s), blob.data() + at, sizeof s);
      at += sizeof s;
      f(s, true);
      continue;
    }
    if ((kind != 0 && kind != 2) || at + sizeof s.key > blob.size()) return;
    std::memcpy(&s.key, blob.data() + at, sizeof s.key);
    at += sizeof s.key;
    if (kind == 2) {
      s.state = kErased;
      f(s, true);
      continue;
    }
    std::uint64_t sms = 0, day = 0;
    if (!get_varint(blob, at, s.up) || !get_varint(blob, at, s.down) || !get_varint(blob, at, sms) ||
        !get_varint(blob, at, day)) {
      return;
    }
    s.sms = static_cast<std::uint32_t>(sms);
    s.open_day = static_cast<std::uint8_t>(day);
    f(s, false);
  }
}

// A SIM's line of a closed period, or a retired line ('L' and 'R' values).
std::string line_value(const closed_line& l) {
  writer w;
  w.put(l.bytes_up).put(l.bytes_down).put(l.sms).put(static_cast<std::uint8_t>(l.chargeable));
  return std::move(w.str());
}
closed_line line_of(std::uint64_t sim, std::string_view v) {
  reader r(v);
  closed_line l;
  l.sim = sim;
  l.bytes_up = r.get<std::uint64_t>();
  l.bytes_down = r.get<std::uint64_t>();
  l.sms = r.get<decltype(l.sms)>();
  l.chargeable = r.get<std::uint8_t>() != 0;
  return l;
}

key_builder shard_key(char kind, unsigned shard) {
  key_builder k(kind);
  k.be(static_cast<std::uint16_t>(shard));
  return k;
}
rocksdb::Slice slice(const std::string& s) { return rocksdb::Slice(s); }
}  // namespace

void shard::cut(rocksdb::WriteBatch& wb, shard_cut& out, std::uint64_t checkpoint) {
  SIMCAP_ASSERT_OWNER();
  const auto t0 = std::chrono::steady_clock::now();
  // The dirty SIMs, as delta blobs of at most about kBlobBytes each (values that size come
  // from the heap and reuse its pages; bigger ones would be mapped and faulted in each time).
  std::uint32_t piece = 0;
  blob_writer delta([&](std::string&& blob) {
    delta_bytes_ += blob.size();
    out.blobs.push_back({shard_key('Z', index_).be(checkpoint).be(piece++).str(), std::move(blob)});
  });
  auto take = [&](sim_slot& s) {
    delta.add(s, (s.flags & sim_slot::kFlagDirtyAll) != 0);
    s.flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
    ++out.sims;
  };
  if (dirty_.size() > table_.capacity() / 16) {
    // Most of the table: one pass in memory order beats a lookup per key.
    for (std::size_t i = 0; i < table_.capacity(); ++i) {
      sim_slot& s = table_.at(i);
      if (s.key != 0 && (s.flags & sim_slot::kFlagDirty)) take(s);
      if ((i & 0xfff) == 0xfff) run_reads();  // queries wait for a slice, not the whole cut
    }
  } else {
    for (std::size_t i = 0; i < dirty_.size(); ++i) {
      sim_slot* s = table_.find(dirty_[i]);
      if (s != nullptr && (s->flags & sim_slot::kFlagDirty)) take(*s);  // else listed twice
      if ((i & 0x7ff) == 0x7ff) run_reads();
    }
  }
  dirty_.clear();
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
  // written a slice per checkpoint so that no cut stops the shard for long.
  const std::uint64_t table_bytes = table_.size() * sizeof(sim_slot);
  if (!build_.active && table_.size() != 0 && (base_gen_ == 0 || delta_bytes_ >= table_bytes)) {
    build_ = base_build{true, checkpoint, 0, table_.capacity(), 0};
    delta_bytes_ = 0;
  }
  if (build_.active && build_.capacity != table_.capacity()) {
    build_ = base_build{true, checkpoint, 0, table_.capacity(), 0};  // the table grew: start over
  }
  if (build_.active) {
    const std::size_t per_cut = std::max<std::size_t>(64 * 1024, build_.capacity / 8);
    const std::size_t end = std::min(build_.capacity, build_.next_slot + per_cut);
    {
      blob_writer chunk([&](std::string&& blob) {
        out.blobs.push_back({shard_key('B', index_).be(build_.gen).be(build_.chunk++).str(), std::move(blob)});
      });
      for (std::size_t i = build_.next_slot; i < end; ++i) {
        const sim_slot& s = table_.at(i);
        if (s.key != 0) chunk.add(s, true);
        if ((i & 0xfff) == 0xfff) run_reads();
      }
    }
    build_.next_slot = end;
    if (end == build_.capacity) {
      // Complete: it and the deltas after its first checkpoint are the SIMs' state (every slice
      // was cut at or after that checkpoint, so it holds whatever the deltas up to it hold);
      // older bases and deltas go.
      writer g;
      g.put(build_.gen).put(static_cast<std::uint64_t>(build_.capacity));
      wb.Put(slice(shard_key('G', index_).str()), slice(g.str()));
      wb.DeleteRange(slice(shard_key('B', index_).be(std::uint64_t{0}).str()),
                     slice(shard_key('B', index_).be(build_.gen).str()));
      wb.DeleteRange(slice(shard_key('Z', index_).be(std::uint64_t{0}).str()),
                     slice(shard_key('Z', index_).be(build_.gen + 1).str()));
      base_gen_ = build_.gen;
      build_.active = false;
    }
  }

  for (std::uint16_t product : days_dropped_) {
    // A closed period: its per-day usage and retired lines go (the lines are in 'L' now).
    for (char kind : {'Y', 'R'}) {
      auto from = shard_key(kind, index_).be(product).str();
      auto to = shard_key(kind, index_).be(static_cast<std::uint16_t>(product + 1)).str();
      wb.DeleteRange(slice(from), slice(to));
    }
  }
  days_dropped_.clear();
  for (auto [product, sim] : retired_changed_) {
    const auto& retired = products_[product].retired;
    auto it = retired.find(sim);
    auto key = shard_key('R', index_).be(product).be(sim).str();
    if (it == retired.end()) {
      wb.Delete(slice(key));  // taken back, or the period closed since (then in 'L')
    } else {
      wb.Put(slice(key), line_value(it->second));
    }
  }
  retired_changed_.clear();
  for (const day_ref& d : dirty_days_) {
    auto key = shard_key('Y', index_).be(d.product).be(d.sim).be(static_cast<std::uint32_t>(d.day)).str();
    std::uint64_t bytes = days_.get(d.sim, d.day);
    if (bytes == 0) {
      wb.Delete(slice(key));
    } else {
      wb.Put(slice(key), rocksdb::Slice(reinterpret_cast<const char*>(&bytes), sizeof bytes));
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
    wb.Put(slice(shard_key('H', index_).be(static_cast<std::uint16_t>(i)).str()), slice(w.str()));
  }

  auto header = [&](std::uint16_t product, const closed_period& cp) {
    writer w;
    w.put(cp.end).put(cp.total_bytes).put(static_cast<std::uint64_t>(cp.chargeable_sims));
    wb.Put(slice(shard_key('C', index_).be(product).be(static_cast<std::uint64_t>(cp.start)).str()),
           slice(w.str()));
  };
  auto line = [&](std::uint16_t product, unix_seconds start, const closed_line& l) {
    wb.Put(slice(shard_key('L', index_).be(product).be(static_cast<std::uint64_t>(start)).be(l.sim).str()),
           line_value(l));
  };
  for (const closed_ref& c : closed_changed_) {
    if (c.product >= products_.size()) continue;
    auto& closed = products_[c.product].closed;
    auto cp = std::find_if(closed.begin(), closed.end(), [&](const closed_period& x) { return x.start == c.start; });
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
    wb.DeleteRange(slice(shard_key('L', index_).be(c.product).be(start).str()),
                   slice(shard_key('L', index_).be(c.product).be(start + 1).str()));
    wb.Delete(slice(shard_key('C', index_).be(c.product).be(start).str()));
  }
  closed_dropped_.clear();

  if (!new_ids_.empty()) {
    unix_seconds newest = std::numeric_limits<unix_seconds>::min();
    writer w;
    for (const auto& [fp, t] : new_ids_) {
      w.put(fp).put(t);
      newest = std::max(newest, t);
    }
    wb.Put(slice(shard_key('D', index_).be(static_cast<std::uint64_t>(newest)).be(checkpoint).str()),
           slice(w.str()));
    new_ids_.clear();
  }
  if (ids_purged_before_ > 0) {
    // Blobs whose newest id is older than the purge horizon hold only expired ids.
    wb.DeleteRange(slice(shard_key('D', index_).be(std::uint64_t{0}).str()),
                   slice(shard_key('D', index_).be(static_cast<std::uint64_t>(ids_purged_before_)).str()));
    ids_purged_before_ = 0;
  }

  for (std::uint32_t f = 0; f < kMaxFeeds; ++f) {
    const std::uint64_t seq = feed_seq(f);
    if (seq == 0) continue;
    out.watermarks.push_back({f, seq});
    if (seq == feed_seq_written_[f]) continue;
    std::string name = host_.feed_name(f);
    if (name.empty()) continue;
    wb.Put(slice(shard_key('W', index_).text(name).str()),
           rocksdb::Slice(reinterpret_cast<const char*>(&seq), sizeof seq));
    feed_seq_written_[f] = seq;
  }
  out.events = std::move(pending_events_);
  pending_events_.clear();
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void shard::hand_over(const std::vector<shard*>& to) {
  const auto n = static_cast<unsigned>(to.size());
  auto dest = [&](std::uint64_t key) -> shard& { return *to[engine::shard_for(key, n)]; };
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
        auto it = std::find_if(q.closed.begin(), q.closed.end(), [&](const closed_period& c) { return c.start == cp.start; });
        if (it == q.closed.end()) {
          it = q.closed.insert(std::upper_bound(q.closed.begin(), q.closed.end(), cp.start,
                                                [](unix_seconds s, const closed_period& c) { return s < c.start; }),
                               closed_period{cp.start, cp.end, 0, 0, {}});
        }
      }
    }
    for (const closed_period& cp : p.closed) {
      for (const closed_line& l : cp.lines) {
        shard& d = dest(l.sim);
        auto& closed = d.products_[i].closed;
        auto it = std::find_if(closed.begin(), closed.end(), [&](const closed_period& c) { return c.start == cp.start; });
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
  for (shard* d : to) {
    for (std::size_t i = 0; i < d->products_.size(); ++i) {
      for (closed_period& cp : d->products_[i].closed) {
        std::sort(cp.lines.begin(), cp.lines.end(), [](const closed_line& a, const closed_line& b) { return a.sim < b.sim; });
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
    const shard_product& p = products_[s.product];
    if (p.period_start == kNoPeriod) return;
    const std::int32_t first = day_index(p.period_start);
    for (unsigned day = 0; day < s.open_day; ++day) {
      const std::uint64_t bytes = days_.get(s.key, first + static_cast<std::int32_t>(day));
      if (bytes == 0) continue;
      d.add_day(s.key, s.product, first + static_cast<std::int32_t>(day), bytes);
    }
  });
  dedup_.for_each([&](std::uint64_t fp, unix_seconds t) {
    for (shard* d : to) d->remember_id(fp, t);
  });
}

std::vector<std::pair<std::string, std::uint64_t>> shard::recover(const store& st) {
  SIMCAP_ASSERT_OWNER();
  const std::size_t prefix = 3;  // kind + shard
  st.scan(shard_key('H', index_).str(), [&](std::string_view k, std::string_view v) {
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
  if (st.get(shard_key('G', index_).str(), g)) {
    reader r(g);
    base_gen_ = r.get<std::uint64_t>();
    table_.reserve_capacity(static_cast<std::size_t>(r.get<std::uint64_t>()));
  }
  auto account_state = [&](const sim_slot& s, int sign) {
    auto& c = by_state_[s.state];
    c.store(sign > 0 ? c.load(std::memory_order_relaxed) + 1 : c.load(std::memory_order_relaxed) - 1,
            std::memory_order_relaxed);
  };
  auto load = [&](std::string_view blob) {
    decode_slots(blob, [&](const sim_slot& stored, bool all) {
      if (!all) {
        // Usage only: the SIM was loaded before (a base or an earlier full entry).
        if (sim_slot* s = table_.find(stored.key)) {
          s->up = stored.up;
          s->down = stored.down;
          s->sms = stored.sms;
          s->open_day = stored.open_day;
        }
        return;
      }
      if (stored.state == kErased) {
        if (sim_slot* s = table_.find(stored.key)) {
          account_state(*s, -1);
          table_.erase(stored.key);
        }
        return;
      }
      auto [s, created] = table_.insert(stored.key);
      if (!created) account_state(*s, -1);
      *s = stored;
      s->flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
      account_state(*s, +1);
    });
  };
  if (base_gen_ != 0) {
    st.scan(shard_key('B', index_).be(base_gen_).str(), [&](std::string_view, std::string_view v) {
      load(v);
      return true;
    });
  }
  st.scan(shard_key('Z', index_).str(), [&](std::string_view k, std::string_view v) {
    if (read_be<std::uint64_t>(k, prefix) > base_gen_) load(v);
    return true;
  });
  table_.for_each([&](const sim_slot& s) {
    product(s.product);
    if (s.state == static_cast<std::uint8_t>(sim_state::factory_test)) {
      factory_deadlines_.push({static_cast<unix_seconds>(s.state_since) + opts_.factory_test_period.count(), s.key});
    }
  });
  for (shard_product& p : products_) p.totals = fleet_usage{};
  table_.for_each([&](const sim_slot& s) { account(s, +1); });
  st.scan(shard_key('R', index_).str(), [&](std::string_view k, std::string_view v) {
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
  st.scan(shard_key('Y', index_).str(), [&](std::string_view k, std::string_view v) {
    reader r(v);
    days_.add(read_be<std::uint64_t>(k, prefix + 2), static_cast<std::int32_t>(read_be<std::uint32_t>(k, prefix + 10)),
              r.get<std::uint64_t>());
    return true;
  });
  st.scan(shard_key('C', index_).str(), [&](std::string_view k, std::string_view v) {
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
  st.scan(shard_key('L', index_).str(), [&](std::string_view k, std::string_view v) {
    shard_product& p = product(read_be<std::uint16_t>(k, prefix));
    const auto start = static_cast<unix_seconds>(read_be<std::uint64_t>(k, prefix + 2));
    auto cp = std::find_if(p.closed.begin(), p.closed.end(), [&](const closed_period& x) { return x.start == start; });
    if (cp == p.closed.end()) return true;
    cp->lines.push_back(line_of(read_be<std::uint64_t>(k, prefix + 10), v));  // keys sort by SIM
    return true;
  });
  const unix_seconds horizon = id_horizon(clock_.now());
  st.scan(shard_key('D', index_).str(), [&](std::string_view, std::string_view v) {
    reader r(v);
    while (r.left() >= 16) {
      auto fp = r.get<std::uint64_t>();
      auto t = r.get<unix_seconds>();
      if (t >= horizon) dedup_.insert(fp, t);
    }
    return true;
  });
  std::vector<std::pair<std::string, std::uint64_t>> seqs;
  st.scan(shard_key('W', index_).str(), [&](std::string_view k, std::string_view v) {
    reader r(v);
    seqs.push_back({std::string(k.substr(prefix)), r.get<std::uint64_t>()});
    return true;
  });
  refresh_next_due();
  return seqs;
}

}  // namespace simcap::detail
