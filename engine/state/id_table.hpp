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

  // An extraction of the entries with mark < before, in steps between which the table is in
  // use (inserts, lookups): extract_step() goes on from where the last step stopped.
  struct extraction {
    std::uint32_t before = 0;
    std::size_t at = 0;    // the next slot to look at
    std::size_t left = 0;  // slots of the pass not looked at yet
  };
  extraction begin_extract(std::uint32_t before) const noexcept {
    extraction x{before, 0, size_ == 0 ? 0 : slots_.size()};
    // Start just after an empty slot, so that the first run is a whole one.
    while (x.left != 0 && slots_[x.at].fp != 0) ++x.at;
    if (x.left != 0) x.at = next(x.at);
    return x;
  }
  // Looks at about `slots` more slots (to the end of the run it is in), passing each entry with
  // mark < x.before to out(fp, mark) and taking it out; true when the pass is over. Run by run
  // (a run: full slots between two empty ones): a run holding old entries is taken out and its
  // other entries put back in their order, each at the first free slot from its home. None lands
  // past where it was (what came before it in the run is back at or before its old place), so a
  // run only shrinks and the slots from an entry's home to it stay full: lookups find it. Each
  // slot is moved at most twice, where deleting one entry at a time (a backward shift each)
  // moved the rest of its run every time: slow at the load the window moves entries at.
  // Between steps, inserts may fill the empty slot a step stopped at: the next step then starts
  // inside a run. That is safe: the slots before it stay full, so an entry put back still lands
  // at or after it, and at or before where it was. The entries inserted meanwhile have newer
  // marks and are only put back.
  template <class Out>
  bool extract_step(extraction& x, std::size_t slots, Out&& out) {
    while (x.left != 0 && slots != 0) {
      std::size_t i = x.at;
      if (slots_[i].fp == 0) {
        x.at = next(i);
        --x.left;
        --slots;
        continue;
      }
      const std::size_t first = i;
      std::size_t len = 0;
      bool old = false;
      for (; slots_[i].fp != 0; i = next(i), ++len) old |= slots_[i].t < x.before;
      x.at = i;
      x.left -= std::min(len, x.left);
      slots -= std::min(len, slots);
      if (!old) continue;
      run_.clear();
      for (std::size_t k = 0, j = first; k < len; ++k, j = next(j)) {
        run_.push_back(slots_[j]);
        slots_[j] = slot{};
      }
      for (const slot& s : run_) {
        if (s.t < x.before) {
          out(s.fp, s.t);
          --size_;
          continue;
        }
        std::size_t j = home(s.fp);
        while (slots_[j].fp != 0) j = next(j);
        slots_[j] = s;
      }
    }
    return x.left == 0;
  }
  // Removes every entry with mark < before, passing each to out(fp, mark): one whole pass.
  template <class Out>
  void extract_older(std::uint32_t before, Out&& out) {
    extraction x = begin_extract(before);
    extract_step(x, slots_.size(), out);
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].fp != 0) f(slots_[i].fp, slots_[i].t);
    }
  }
  // Moves every entry into a table of `capacity` slots (at least size() + 1).
  void rehash(std::size_t capacity) { rehash(huge_array<slot>(std::max(capacity, size_ + 1))); }
  // The same into `fresh`, zeroed memory of more than size() slots (made ready elsewhere).
  void rehash(huge_array<slot> fresh) {
    huge_array<slot> old = std::exchange(slots_, std::move(fresh));
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
