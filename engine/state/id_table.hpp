#pragma once
// The in-memory part of the record-id window: (fingerprint, 32-bit mark) pairs in 12-byte slots
// (the window marks an entry with its insertion epoch; the store's chunks use the same slots
// with an event time),
// open addressing with linear probing over any capacity (not only powers of two), deletion in
// bulk by putting runs back (no tombstones, so a table that loses its old entries stays as fast
// as a new one). Owned by one shard thread.
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "state/hash.hpp"
#include "state/huge_array.hpp"

namespace simcap::detail {

// The fingerprint of a record id: the SIM (its table key) and the id's 64-bit hash, mixed. Two
// different (SIM, id) pairs share one with probability 2^-63.
inline std::uint64_t id_fingerprint(std::uint64_t sim, std::uint64_t id_hash) noexcept {
  return mix64(sim * 0x9E3779B97F4A7C15ULL ^ id_hash) | 1;
}

class id_table {
 public:
  struct [[gnu::packed]] slot {
    std::uint64_t fp = 0;  // 0: empty (fingerprints have their low bit set)
    std::uint32_t t = 0;   // the mark: an epoch in the table, an event time in the store
  };
  static_assert(sizeof(slot) == 12);

  explicit id_table(std::size_t capacity = 1024) : slots_(std::max<std::size_t>(capacity, 16)) {}

  // Inserts; false when the fingerprint is already there (a repeat). The caller keeps the load
  // below 1 (grow()).
  bool insert(std::uint64_t fp, std::uint32_t t) {
    for (std::size_t i = home(fp);; i = next(i)) {
      if (slots_[i].fp == fp) return false;
      if (slots_[i].fp == 0) {
        slots_[i].fp = fp;
        slots_[i].t = t;
        ++size_;
        return true;
      }
    }
  }
  bool contains(std::uint64_t fp) const noexcept {
    for (std::size_t i = home(fp);; i = next(i)) {
      if (slots_[i].fp == fp) return true;
      if (slots_[i].fp == 0) return false;
    }
  }
  void prefetch(std::uint64_t fp) const noexcept { prefetch_for_write(&slots_[home(fp)]); }

  // Removes every entry with mark < before, passing each to out(fp, mark). One pass, run by run
  // (a run: full slots between two empty ones): a run holding old entries is taken out and its
  // other entries put back in their order, each at the first free slot from its home. None lands
  // past where it was (what came before it in the run is back at or before its old place), so a
  // run only shrinks and the slots from an entry's home to it stay full: lookups find it. Each
  // slot is moved at most twice, where deleting one entry at a time (a backward shift each)
  // moved the rest of its run every time: slow at the load the window moves entries at.
  template <class Out>
  void extract_older(std::uint32_t before, Out&& out) {
    const std::size_t cap = slots_.size();
    if (size_ == 0) return;
    // Start just after an empty slot, so that no run wraps past the start.
    std::size_t start = 0;
    while (slots_[start].fp != 0) ++start;
    std::size_t i = next(start);
    for (std::size_t seen = 0; seen < cap;) {
      if (slots_[i].fp == 0) {
        i = next(i);
        ++seen;
        continue;
      }
      const std::size_t first = i;
      std::size_t len = 0;
      bool old = false;
      for (; slots_[i].fp != 0; i = next(i), ++len) old |= slots_[i].t < before;
      seen += len;
      if (!old) continue;
      run_.clear();
      for (std::size_t k = 0, j = first; k < len; ++k, j = next(j)) {
        run_.push_back(slots_[j]);
        slots_[j] = slot{};
      }
      for (const slot& s : run_) {
        if (s.t < before) {
          out(s.fp, s.t);
          --size_;
          continue;
        }
        std::size_t j = home(s.fp);
        while (slots_[j].fp != 0) j = next(j);
        slots_[j] = s;
      }
    }
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].fp != 0) f(slots_[i].fp, slots_[i].t);
    }
  }
  // Moves every entry into a table of `capacity` slots (at least size() + 1).
  void rehash(std::size_t capacity) {
    huge_array<slot> old = std::exchange(slots_, huge_array<slot>(std::max(capacity, size_ + 1)));
    size_ = 0;
    for (std::size_t i = 0; i < old.size(); ++i) {
      if (old[i].fp != 0) insert(old[i].fp, old[i].t);
    }
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return slots_.size(); }
  std::size_t memory_bytes() const noexcept { return slots_.bytes(); }

 private:
  // Fingerprints are uniform already: the high half of fp * capacity spreads them over any
  // capacity without a division.
  std::size_t home(std::uint64_t fp) const noexcept {
    return static_cast<std::size_t>(reduce(fp, slots_.size()));
  }
  std::size_t next(std::size_t i) const noexcept { return i + 1 == slots_.size() ? 0 : i + 1; }
  huge_array<slot> slots_;
  std::size_t size_ = 0;
  std::vector<slot> run_;  // extract_older's: a run being put back
};

}  // namespace simcap::detail
