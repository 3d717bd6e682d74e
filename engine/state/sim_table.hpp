#pragma once
// Open-addressing table of per-SIM accumulators, owned by one shard thread. One 64-byte slot
// (a cache line) per SIM, linear probing, capacity any size (fastrange), grows by 1.5x above
// 85 % load. A released SIM keeps its slot; erase() (an import undone) shifts the run after the
// slot back, so there are no tombstones. A bit per slot marks the slots changed since the last
// checkpoint (mark_dirty / take_dirty), so that a checkpoint reads those slots only, in memory
// order.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "state/hash.hpp"
#include "state/huge_array.hpp"

namespace simcap::detail {

struct alignas(64) sim_slot {
  std::uint64_t key;              // iccid key; 0 = empty slot
  std::uint64_t up;               // period bytes uplink
  std::uint64_t down;             // period bytes downlink
  std::uint64_t next_action;      // period usage at which the next alert/pause/test end is due
  std::uint32_t mb_limit;         // data limit in MB (mb_bytes each)
  std::uint32_t sms;              // period SMS count
  std::uint32_t first_activated;  // Unix seconds; 0 = never
  std::uint32_t last_activated;
  std::uint32_t state_since;  // when the SIM entered its current state
  std::uint32_t updated_at;
  std::uint16_t product;
  std::uint8_t state;         // sim_state
  std::uint8_t reason;        // pause_reason
  std::uint8_t alerts_fired;  // bit i: threshold i has fired this period
  std::uint8_t flags;         // kFlag*
  // Day of the current period (0 = its first) the SIM last counted bytes in. That day's bytes
  // are usage() minus the SIM's earlier days in the shard's day_usage; only days before it are
  // stored there.
  std::uint8_t open_day;
  // The SIM's home country: an index of the engine's country list (0: its product's country).
  // Stores written before it had a zero here (the high byte of a 16-bit open_day).
  std::uint8_t country;

  static constexpr std::uint8_t kFlagLimitOverride = 1;  // mb_limit set on the SIM itself
  static constexpr std::uint8_t kFlagChargeable = 2;     // active or paused during this period
  // Changed since the last checkpoint: only usage (up, down, sms, open_day), or anything.
  static constexpr std::uint8_t kFlagDirtyUsage = 4;
  static constexpr std::uint8_t kFlagDirtyAll = 8;
  static constexpr std::uint8_t kFlagDirty = kFlagDirtyUsage | kFlagDirtyAll;
  // An earlier life of this SIM in the same product and period was chargeable: the product's
  // chargeable count has it already (see shard_product::retired).
  static constexpr std::uint8_t kFlagRetiredChargeable = 16;

  std::uint64_t usage() const noexcept {
    return up + down < up ? ~std::uint64_t{0} : up + down;
  }  // saturates
};
static_assert(sizeof(sim_slot) == 64);

class sim_table {
 public:
  explicit sim_table(std::size_t expected = 0) { rebuild(capacity_for(expected)); }
  sim_table(const sim_table&) = delete;
  sim_table& operator=(const sim_table&) = delete;

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return slots_.size(); }
  std::size_t memory_bytes() const noexcept {
    return slots_.bytes() + dirty_.capacity() * sizeof(std::uint64_t);
  }

  // Marks s (a slot of this table) for take_dirty. The caller sets a kFlagDirty bit in it too:
  // a slot is taken only while it has one (a mark outlives a flag cleared since, harmlessly;
  // never the other way round: erase and growth move the marks of dirty slots with them).
  void mark_dirty(const sim_slot& s) noexcept {
    const auto i = static_cast<std::size_t>(&s - &slots_[0]);
    dirty_[i >> 6] |= std::uint64_t{1} << (i & 63);
  }
  // Calls take(slot) for each marked slot that still has a kFlagDirty bit, in slot order, and
  // between() after every 4,096 slots looked at; clears the marks (take clears the flags).
  template <class F, class G>
  void take_dirty(F&& take, G&& between) {
    // The slots of two words (128 slots) ahead are fetched while these are taken: the misses
    // overlap instead of queueing (sparse marks defeat the hardware's own prefetch).
    constexpr std::size_t kAhead = 2;
    auto fetch = [&](std::size_t w) {
      for (std::uint64_t bits = dirty_[w]; bits != 0; bits &= bits - 1)
        prefetch_for_write(&slots_[w * 64 + static_cast<std::size_t>(std::countr_zero(bits))]);
    };
    for (std::size_t w = 0; w < std::min(kAhead, dirty_.size()); ++w) fetch(w);
    for (std::size_t w = 0; w < dirty_.size(); ++w) {
      if (w + kAhead < dirty_.size()) fetch(w + kAhead);
      std::uint64_t bits = std::exchange(dirty_[w], 0);
      while (bits != 0) {
        sim_slot& s = slots_[w * 64 + static_cast<std::size_t>(std::countr_zero(bits))];
        bits &= bits - 1;
        if (s.key != 0 && (s.flags & sim_slot::kFlagDirty)) take(s);
      }
      if ((w & 63) == 63) between();
    }
  }

  // Slot i of capacity() (key 0: empty). Slots keep their place until the table grows.
  sim_slot& at(std::size_t i) noexcept { return slots_[i]; }
  const sim_slot& at(std::size_t i) const noexcept { return slots_[i]; }

  void prefetch(std::uint64_t key) const noexcept { prefetch_for_write(&slots_[home(key)]); }

  sim_slot* find(std::uint64_t key) noexcept {
    std::size_t i = home(key);
    for (;;) {
      sim_slot& s = slots_[i];
      if (s.key == key) return &s;
      if (s.key == 0) return nullptr;
      if (++i == cap_) i = 0;
    }
  }
  const sim_slot* find(std::uint64_t key) const noexcept {
    return const_cast<sim_table*>(this)->find(key);
  }

  // Returns the slot for key, creating a zeroed one when absent (second: created).
  std::pair<sim_slot*, bool> insert(std::uint64_t key) {
    if ((size_ + 1) * 100 > cap_ * kMaxLoadPercent) rebuild(cap_ + cap_ / 2 + 64);
    std::size_t i = home(key);
    for (;;) {
      sim_slot& s = slots_[i];
      if (s.key == key) return {&s, false};
      if (s.key == 0) {
        s.key = key;
        ++size_;
        return {&s, true};
      }
      if (++i == cap_) i = 0;
    }
  }

  // Removes key's slot, if any (backward-shift deletion: later slots of the run move up, so
  // slots after it may change place).
  void erase(std::uint64_t key) noexcept {
    sim_slot* s = find(key);
    if (s == nullptr) return;
    std::size_t hole = static_cast<std::size_t>(s - &slots_[0]);
    for (std::size_t i = hole;;) {
      if (++i == cap_) i = 0;
      if (slots_[i].key == 0) break;
      const std::size_t h = home(slots_[i].key);
      // The slot at i may fill the hole when its home is not in (hole, i] (cyclically).
      const bool stays = hole <= i ? (hole < h && h <= i) : (hole < h || h <= i);
      if (stays) continue;
      slots_[hole] = slots_[i];
      if (slots_[hole].flags & sim_slot::kFlagDirty) mark_dirty(slots_[hole]);
      hole = i;
    }
    slots_[hole] = sim_slot{};
    --size_;
  }

  // At least this capacity. Loading slots saved in slot order into a table of the capacity they
  // were saved from puts each at (or next to) its home; into a smaller one, runs pile up.
  void reserve_capacity(std::size_t cap) {
    if (cap > cap_) rebuild(cap);
  }
  void reserve(std::size_t n) {
    std::size_t want = capacity_for(n);
    if (want > cap_) rebuild(want);
  }

  template <class F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < cap_; ++i) {
      if (slots_[i].key != 0) f(slots_[i]);
    }
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < cap_; ++i) {
      if (slots_[i].key != 0) f(static_cast<const sim_slot&>(slots_[i]));
    }
  }

 private:
  static constexpr std::size_t kMaxLoadPercent = 85;

  static std::size_t capacity_for(std::size_t n) noexcept {
    return std::max<std::size_t>(64, n * 100 / kMaxLoadPercent + 1);
  }
  std::size_t home(std::uint64_t key) const noexcept {
    return static_cast<std::size_t>(reduce(key * 0x9E3779B97F4A7C15ULL, cap_));
  }

  void rebuild(std::size_t cap) {
    huge_array<sim_slot> old = std::exchange(slots_, huge_array<sim_slot>(cap));
    cap_ = cap;
    size_ = 0;
    dirty_.assign(cap / 64 + 1, 0);
    for (std::size_t i = 0; i < old.size(); ++i) {
      if (old[i].key == 0) continue;
      std::size_t j = home(old[i].key);
      while (slots_[j].key != 0) {
        if (++j == cap_) j = 0;
      }
      slots_[j] = old[i];
      if (slots_[j].flags & sim_slot::kFlagDirty) mark_dirty(slots_[j]);
      ++size_;
    }
  }

  huge_array<sim_slot> slots_;
  std::vector<std::uint64_t> dirty_;  // a bit per slot: changed since the last take_dirty
  std::size_t cap_ = 0;
  std::size_t size_ = 0;
};

}  // namespace simcap::detail
