#include <algorithm>
#include <cassert>

#include "shard/shard.hpp"
#include "state/lifecycle.hpp"
#include "state/limits.hpp"
#include "state/saturating.hpp"

// SIM control in a shard: import, a user's change (state and limit), the factory test's end,
// and taking back a change whose checkpoint failed. Which changes are allowed: lifecycle.hpp.
namespace simcap::detail {

namespace {
control_error transition_error(sim_state current, sim_action a) {
  std::string msg = "cannot ";
  msg += to_string(a);
  msg += " a SIM that is ";
  msg += to_string(current);
  return control_error{control_errc::invalid_transition, std::move(msg), current,
                       allowed_actions(current)};
}
}  // namespace

void shard::set_state(sim_slot& s, sim_state to, unix_seconds now, bool account_totals) {
  assert(may_move(static_cast<sim_state>(s.state), to) && "a move the life cycle does not have");
  touch_all(s);
  if (account_totals) account(s, -1);
  auto from = static_cast<std::size_t>(s.state);
  by_state_[from].store(by_state_[from].load(std::memory_order_relaxed) - 1,
                        std::memory_order_relaxed);
  bump(by_state_[static_cast<std::size_t>(to)]);
  s.state = static_cast<std::uint8_t>(to);
  s.state_since = u32_time(now);
  s.updated_at = u32_time(now);
  if ((to == sim_state::active || to == sim_state::paused) &&
      !(s.flags & sim_slot::kFlagChargeable)) {
    s.flags |= sim_slot::kFlagChargeable;
    note_chargeable(s, products_[s.product], now);
  }
  if (account_totals) account(s, +1);
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
    if (networks_ != nullptr && s.usage() > limit_bytes(s)) {
      const country_code home = codes_[s.country];
      add_away(s.key, s.product, home, home, 0, s.usage() - limit_bytes(s));
    }
  }
  recompute_next(s, p);
}

// ---------------------------------------------------------------- control

bool shard::retire(sim_slot& s, std::uint16_t new_product, bool transferred) {
  shard_product& old = products_[s.product];
  // The released SIM's bytes and chargeable count stay in its product's totals (now those of
  // its retired line); only its count as a released SIM goes.
  old.totals.sims_by_state[static_cast<std::size_t>(sim_state::released)]--;
  auto released = static_cast<std::size_t>(sim_state::released);
  by_state_[released].store(by_state_[released].load(std::memory_order_relaxed) - 1,
                            std::memory_order_relaxed);
  const bool chargeable =
      (s.flags & (sim_slot::kFlagChargeable | sim_slot::kFlagRetiredChargeable)) != 0;
  if (chargeable || s.usage() != 0 || s.sms != 0) {
    closed_line& l = old.retired[s.key];
    l.sim = s.key;
    closed_line life = line_of_slot(s);
    life.chargeable = chargeable;
    life.transferred_out = transferred;
    merge_line(l, life);
    if (durable_) retired_changed_.push_back({s.product, s.key});
  }
  if (auto it = rating_.find(s.key); it != rating_.end()) {
    rating_changed(s.product, s.key, it->second);
    rating_.erase(it);
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
                                 std::uint8_t country, import_how how, unix_seconds now) {
  SIMCAP_ASSERT_OWNER();
  assert(import_state(initial));
  if (how.only_new) {
    if (const sim_slot* known = table_.find(key)) {
      return known->product == product_index ? import_outcome::already_present
                                             : import_outcome::other_product;
    }
  }
  auto [s, created] = table_.insert(key);
  bool retired_chargeable = false, transferred = false;
  std::uint32_t own_limit = 0;
  if (!created) {
    const bool released = s->state == static_cast<std::uint8_t>(sim_state::released);
    if (!released && !(how.transfer && s->product != product_index)) {
      return s->product == product_index ? import_outcome::already_present
                                         : import_outcome::other_product;
    }
    if (!released) {
      // A transfer: the SIM leaves its product as if released there (its usage so far stays in
      // that product's period, on a line marked transferred_out), named as the move it is.
      transferred = true;
      if (how.keep_limit && (s->flags & sim_slot::kFlagLimitOverride)) own_limit = s->mb_limit;
      set_state(*s, sim_state::released, now);
      emit(*s, event_type::transferred_out, event_reason::transfer, now);
    }
    // A released SIM may be imported again (into this or another product): a new life starts
    // at zero, and what the old one used stays in its product's period for good.
    retired_chargeable = retire(*s, product_index, transferred);
    *s = sim_slot{};
    s->key = key;
  }
  shard_product& p = product(product_index);
  touch_all(*s);
  if (retired_chargeable) s->flags |= sim_slot::kFlagRetiredChargeable;
  s->country = country;
  codes_[country] = host_.country_at(country);
  s->product = product_index;
  s->mb_limit = p.info.default_mb_limit;
  if (own_limit != 0) {
    s->mb_limit = own_limit;
    s->flags |= sim_slot::kFlagLimitOverride;
  }
  s->state = static_cast<std::uint8_t>(initial);
  s->state_since = u32_time(now);
  s->updated_at = u32_time(now);
  bump(by_state_[static_cast<std::size_t>(initial)]);
  if (transferred) emit(*s, event_type::transferred_in, event_reason::transfer, now);
  if (initial == sim_state::active) {
    s->first_activated = s->last_activated = u32_time(now);
    s->flags |= sim_slot::kFlagChargeable;
    on_activation(p, now);
    note_chargeable(*s, p, now);
    if (!transferred) emit(*s, event_type::activated, event_reason::import, now);
    hold_for_pool(*s, p, now);
  } else if (initial == sim_state::factory_test) {
    factory_deadlines_.push({now + opts_.factory_test_period.count(), key});
    refresh_next_due();
  }
  recompute_next(*s, p);
  account(*s, +1);
  return transferred ? import_outcome::transferred : import_outcome::imported;
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
                                           "cannot change the data limit of a SIM that is released",
                                           state,
                                           {}});
    }
    return std::unexpected(transition_error(state, *u.action));
  }
  // Check the action before changing anything, so a refused request changes nothing. The limit
  // goes first: the action applies to the state the new limit leaves (a paused SIM whose limit
  // is raised above its usage is active, an active one whose limit falls to its usage paused).
  // (mb_limit is in range: engine::update_sim checks it.)
  const std::uint64_t new_limit =
      u.mb_limit ? static_cast<std::uint64_t>(*u.mb_limit) * opts_.mb_bytes : limit_bytes(*s);
  sim_state after_limit = state;
  if (state == sim_state::active && s->usage() >= new_limit) after_limit = sim_state::paused;
  // (a SIM paused for its product's pool stays paused whatever its own limit)
  const bool pool_held = s->reason == static_cast<std::uint8_t>(pause_reason::pool_exhausted);
  if (state == sim_state::paused && s->usage() < new_limit && !pool_held)
    after_limit = sim_state::active;
  const action_rule rule = u.action ? rule_of(after_limit, *u.action) : action_rule{};
  if (u.action) {
    if (rule.result == action_result::refused)
      return std::unexpected(transition_error(state, *u.action));
    if (rule.to == sim_state::active && p.info.pool_pause && p.info.pool_bytes != 0 &&
        host_.pool_exhausted(s->product, p.period_start)) {
      return std::unexpected(control_error{control_errc::limit_reached,
                                           "the product's pool is used up: raise its pool_mb",
                                           state, allowed_actions(state)});
    }
    if (after_limit == sim_state::paused && rule.to == sim_state::active) {
      control_error e{control_errc::limit_reached,
                      "usage is at or over the data limit: raise mb_limit to unpause", state,
                      allowed_actions(state)};
      return std::unexpected(std::move(e));
    }
  }
  if (u.mb_limit) {
    s->mb_limit = *u.mb_limit;
    s->flags |= sim_slot::kFlagLimitOverride;
    s->updated_at = u32_time(now);
    const std::uint64_t lim = limit_bytes(*s);
    for (std::size_t i = 0; i < p.info.thresholds.size(); ++i) {
      if (s->usage() < threshold_bytes(lim, p.info.thresholds[i])) {
        s->alerts_fired &= static_cast<std::uint8_t>(~(1u << i));
      }
    }
    if (state == sim_state::paused && s->usage() < lim && !pool_held) {
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
  if (u.action && rule.result == action_result::change) {
    switch (rule.to) {
      case sim_state::active:
        if (state == sim_state::paused) {
          set_state(*s, sim_state::active, now);
          s->reason = static_cast<std::uint8_t>(pause_reason::none);
          emit(*s, event_type::unpaused, event_reason::user, now);
          break;
        }
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
        break;
      case sim_state::deactivated:
        set_state(*s, sim_state::deactivated, now);
        s->reason = static_cast<std::uint8_t>(pause_reason::none);
        emit(*s, event_type::deactivated, event_reason::user, now);
        break;
      case sim_state::released:
        set_state(*s, sim_state::released, now);
        s->reason = static_cast<std::uint8_t>(pause_reason::none);
        emit(*s, event_type::released, event_reason::user, now);
        break;
      case sim_state::factory_test:
        set_state(*s, sim_state::factory_test, now);
        s->up = s->down = 0;
        s->sms = 0;
        factory_deadlines_.push({now + opts_.factory_test_period.count(), key});
        refresh_next_due();
        break;
      case sim_state::paused:  // (only the engine pauses)
      case sim_state::issued:  // (never re-entered)
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
    if (auto it = rating_.find(key); it != rating_.end()) u.rating = it->second;
  }
  return u;
}

void shard::restore(const undo_point& u) {
  SIMCAP_ASSERT_OWNER();
  auto count_state = [&](std::uint8_t state, int sign) {
    auto& c = by_state_[state];
    c.store(c.load(std::memory_order_relaxed) + static_cast<std::size_t>(sign),
            std::memory_order_relaxed);
  };
  if (sim_slot* s = table_.find(u.key)) {
    account(*s, -1);
    count_state(s->state, -1);
  }
  // The rating entry as it was (the cut writes or deletes it under either product).
  if (durable_) {
    if (const sim_slot* now = table_.find(u.key)) rating_changed_.push_back({now->product, u.key});
    if (u.existed) rating_changed_.push_back({u.before.product, u.key});
  }
  if (u.existed && u.rating) {
    rating_[u.key] = *u.rating;
  } else {
    rating_.erase(u.key);
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
  closed_line none;
  none.sim = u.key;
  const closed_line was = u.retired.value_or(none);
  const bool retired_since = it != old.retired.end() &&
                             (!u.retired || it->second.bytes_up != was.bytes_up ||
                              it->second.bytes_down != was.bytes_down ||
                              it->second.sms != was.sms || it->second.chargeable != was.chargeable);
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
  return std::vector<event>(pending_events_.begin() + static_cast<std::ptrdiff_t>(from),
                            pending_events_.end());
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

}  // namespace simcap::detail
