#pragma once
// Remembers (SIM, record id) fingerprints with their event time, so that a repeated record id
// is not counted twice. Owned by one shard thread. Entries older than the retention are dropped
// by purge(), which rebuilds the table (cost in proportion to its size, run rarely).
#include <cstdint>
#include <vector>

#include "hash.hpp"
#include "simcap/time.hpp"

namespace simcap::detail {

class dedup_set {
 public:
  dedup_set() { slots_.resize(1024); }

  // Inserts the fingerprint; false when it was already present (a duplicate).
  bool insert(std::uint64_t fp, unix_seconds t) {
    if ((size_ + 1) * 10 > slots_.size() * 7) grow(slots_.size() * 2);
    return put(fp, t);
  }
  void prefetch(std::uint64_t fp) const noexcept {
    __builtin_prefetch(&slots_[mix64(fp) & (slots_.size() - 1)], 1, 3);
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
    std::vector<entry> old;
    old.swap(slots_);
    std::size_t cap = 1024;
    std::size_t keep = 0;
    for (const entry& e : old) keep += (e.fp != 0 && e.time >= oldest);
    while (keep * 10 > cap * 5) cap *= 2;
    slots_.assign(cap, entry{});
    size_ = 0;
    for (const entry& e : old) {
      if (e.fp != 0 && e.time >= oldest) put(e.fp, e.time);
    }
  }
  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept { return slots_.size() * sizeof(entry); }

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
  void grow(std::size_t cap) {
    std::vector<entry> old;
    old.swap(slots_);
    slots_.assign(cap, entry{});
    size_ = 0;
    for (const entry& e : old) {
      if (e.fp != 0) put(e.fp, e.time);
    }
  }
  std::vector<entry> slots_;
  std::size_t size_ = 0;
};

}  // namespace simcap::detail
