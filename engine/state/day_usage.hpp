#pragma once
// Bytes per SIM per UTC day of the current period, for usage_by_day. Owned by one shard
// thread. Open addressing on (SIM, day); purge() drops the days of closed periods.
#include <cstdint>
#include <utility>

#include "state/hash.hpp"
#include "state/huge_array.hpp"

namespace simcap::detail {

class day_usage {
 public:
  day_usage() : slots_(1024) {}

  static std::uint64_t home_hash(std::uint64_t sim, std::int32_t day) noexcept {
    return mix64(sim ^ (static_cast<std::uint64_t>(static_cast<std::uint32_t>(day)) *
                        0x9E3779B97F4A7C15ULL));
  }
  void add(std::uint64_t sim, std::int32_t day, std::uint64_t bytes) {
    if ((size_ + 1) * 10 > slots_.size() * 7)
      rebuild(slots_.size() * 2, [](std::uint64_t, std::int32_t) { return true; });
    std::size_t mask = slots_.size() - 1, i = home_hash(sim, day) & mask;
    for (;; i = (i + 1) & mask) {
      entry& e = slots_[i];
      if (e.sim == sim && e.day == day) {
        e.bytes = e.bytes + bytes < e.bytes ? ~std::uint64_t{0} : e.bytes + bytes;  // saturates
        return;
      }
      if (e.sim == 0) {
        e = {sim, day, 0, bytes};
        ++size_;
        return;
      }
    }
  }
  // Sets a day's bytes to zero (a SIM starting a new life); no entry is created.
  void clear(std::uint64_t sim, std::int32_t day) noexcept {
    std::size_t mask = slots_.size() - 1, i = home_hash(sim, day) & mask;
    for (;; i = (i + 1) & mask) {
      entry& e = slots_[i];
      if (e.sim == sim && e.day == day) {
        e.bytes = 0;
        return;
      }
      if (e.sim == 0) return;
    }
  }
  std::uint64_t get(std::uint64_t sim, std::int32_t day) const noexcept {
    std::size_t mask = slots_.size() - 1, i = home_hash(sim, day) & mask;
    for (;; i = (i + 1) & mask) {
      const entry& e = slots_[i];
      if (e.sim == sim && e.day == day) return e.bytes;
      if (e.sim == 0) return 0;
    }
  }
  // Keeps the entries for which keep(sim, day) is true.
  template <class Keep>
  void purge(Keep&& keep) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < slots_.size(); ++i)
      kept += slots_[i].sim != 0 && keep(slots_[i].sim, slots_[i].day);
    std::size_t cap = 1024;
    while (kept * 10 > cap * 5) cap *= 2;
    rebuild(cap, keep);
  }
  std::size_t size() const noexcept { return size_; }

 private:
  struct entry {
    std::uint64_t sim = 0;  // 0: empty
    std::int32_t day = 0;   // days since 1970-01-01
    std::uint32_t pad = 0;
    std::uint64_t bytes = 0;
  };
  template <class Keep>
  void rebuild(std::size_t cap, Keep&& keep) {
    huge_array<entry> old = std::exchange(slots_, huge_array<entry>(cap));
    size_ = 0;
    std::size_t mask = cap - 1;
    for (std::size_t k = 0; k < old.size(); ++k) {
      const entry& e = old[k];
      if (e.sim == 0 || !keep(e.sim, e.day)) continue;
      std::size_t i = home_hash(e.sim, e.day) & mask;
      while (slots_[i].sim != 0) i = (i + 1) & mask;
      slots_[i] = e;
      ++size_;
    }
  }
  huge_array<entry> slots_;
  std::size_t size_ = 0;
};

}  // namespace simcap::detail
