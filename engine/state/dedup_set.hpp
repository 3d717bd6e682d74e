#pragma once
// Remembers (SIM, record id) fingerprints with their event time, so that a repeated record id
// is not counted twice. Owned by one shard thread. Entries older than the retention are dropped
// by purge(), which rebuilds the table (cost in proportion to its size, run rarely).
#include <cstdint>
#include <limits>
#include <utility>

#include "simcap/time.hpp"
#include "state/hash.hpp"
#include "state/huge_array.hpp"

namespace simcap::detail {

class dedup_set {
 public:
  dedup_set() : slots_(1024) {}

  // Inserts the fingerprint; false when it was already present (a duplicate).
  bool insert(std::uint64_t fp, unix_seconds t) {
    if ((size_ + 1) * 10 > slots_.size() * 7) grow(slots_.size() * 2);
    return put(fp, t);
  }
  void prefetch(std::uint64_t fp) const noexcept {
    prefetch_for_write(&slots_[mix64(fp) & (slots_.size() - 1)]);
  }
  bool contains(std::uint64_t fp) const noexcept {
    std::size_t mask = slots_.size() - 1, i = mix64(fp) & mask;
    for (;; i = (i + 1) & mask) {
      if (slots_[i].fp == fp) return true;
      if (slots_[i].fp == 0) return false;
    }
  }
  // Drops entries with event time before `oldest`.
  void purge(unix_seconds oldest) {
    std::size_t keep = 0;
    for (std::size_t i = 0; i < slots_.size(); ++i)
      keep += (slots_[i].fp != 0 && slots_[i].time >= oldest);
    std::size_t cap = 1024;
    while (keep * 10 > cap * 5) cap *= 2;
    rehash(cap, oldest);
  }
  // Calls f(fingerprint, time) for every entry.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].fp != 0) f(slots_[i].fp, slots_[i].time);
    }
  }
  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept { return slots_.bytes(); }

  static std::uint64_t fingerprint(std::uint64_t sim, std::uint64_t id_hash) noexcept {
    return mix64(sim * 0x9E3779B97F4A7C15ULL ^ id_hash) | 1;
  }

 private:
  struct entry {
    std::uint64_t fp = 0;
    unix_seconds time = 0;
  };
  bool put(std::uint64_t fp, unix_seconds t) {
    std::size_t mask = slots_.size() - 1, i = mix64(fp) & mask;
    for (;; i = (i + 1) & mask) {
      if (slots_[i].fp == fp) return false;
      if (slots_[i].fp == 0) {
        slots_[i] = {fp, t};
        ++size_;
        return true;
      }
    }
  }
  void grow(std::size_t cap) { rehash(cap, std::numeric_limits<unix_seconds>::min()); }
  void rehash(std::size_t cap, unix_seconds oldest) {
    huge_array<entry> old = std::exchange(slots_, huge_array<entry>(cap));
    size_ = 0;
    for (std::size_t i = 0; i < old.size(); ++i) {
      if (old[i].fp != 0 && old[i].time >= oldest) put(old[i].fp, old[i].time);
    }
  }
  huge_array<entry> slots_;
  std::size_t size_ = 0;
};

}  // namespace simcap::detail
