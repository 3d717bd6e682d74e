#pragma once
// Test support: a product's figures computed the slow way, by scanning every SIM of a shard,
// to check the totals the shard keeps as SIMs change (shard::usage_of).
#include <algorithm>
#include <vector>

#include "shard/shard.hpp"

namespace simcap::detail {

inline fleet_usage usage_by_scan(const shard& sh, std::uint16_t product) {
  fleet_usage u = sh.usage_of(product);  // for the period fields
  u.bytes_up = u.bytes_down = u.sms = 0;
  u.sims_by_state = {};
  u.unused_charged_sims = 0;
  // A SIM is chargeable once, whether in its current life or in an earlier one (retired).
  std::vector<std::uint64_t> chargeable;
  sh.table().for_each([&](const sim_slot& s) {
    if (s.product != product) return;
    auto st = static_cast<sim_state>(s.state);
    u.sims_by_state[static_cast<std::size_t>(st)]++;
    if (st == sim_state::factory_test) return;  // test usage is free
    u.bytes_up += s.up;
    u.bytes_down += s.down;
    u.sms += s.sms;
    if (s.flags & sim_slot::kFlagChargeable) chargeable.push_back(s.key);
    if (st == sim_state::active && s.usage() == 0) u.unused_charged_sims++;
  });
  for (const auto& [key, l] : sh.retired_of(product)) {
    u.bytes_up += l.bytes_up;
    u.bytes_down += l.bytes_down;
    u.sms += l.sms;
    if (l.chargeable) chargeable.push_back(key);
  }
  std::sort(chargeable.begin(), chargeable.end());
  u.chargeable_sims = static_cast<std::size_t>(std::unique(chargeable.begin(), chargeable.end()) -
                                               chargeable.begin());
  return u;
}

}  // namespace simcap::detail
