#pragma once
// A blocked Bloom filter over 64-bit fingerprints: each key sets 7 bits in one 64-byte block,
// so a probe is one cache line. About 12 bits a key at the capacity it is built for: under 1 %
// false positives (a false positive costs a store read, never a wrong answer).
#include <algorithm>
#include <cstdint>

#include "state/hash.hpp"
#include "state/huge_array.hpp"

namespace simcap::detail {

class id_filter {
 public:
  id_filter() = default;
  explicit id_filter(std::uint64_t capacity)
      : blocks_(std::max<std::uint64_t>(1, (capacity * 12 + 511) / 512)) {}

  void add(std::uint64_t fp) noexcept {
    block& b = blocks_[reduce(fp, blocks_.size())];
    std::uint64_t h = mix64(fp ^ 0x5bd1e9955bd1e995ULL);
    for (int i = 0; i < 7; ++i, h >>= 9) b.w[(h >> 6) & 7] |= std::uint64_t{1} << (h & 63);
  }
  bool may_contain(std::uint64_t fp) const noexcept {
    const block& b = blocks_[reduce(fp, blocks_.size())];
    std::uint64_t h = mix64(fp ^ 0x5bd1e9955bd1e995ULL);
    for (int i = 0; i < 7; ++i, h >>= 9) {
      if (!(b.w[(h >> 6) & 7] & (std::uint64_t{1} << (h & 63)))) return false;
    }
    return true;
  }
  void prefetch(std::uint64_t fp) const noexcept {
    prefetch_for_write(&blocks_[reduce(fp, blocks_.size())]);  // (an asm prefetch GCC keeps)
  }
  std::size_t memory_bytes() const noexcept { return blocks_.bytes(); }

 private:
  struct alignas(64) block {
    std::uint64_t w[8] = {};
  };
  huge_array<block> blocks_;  // in huge pages: probed at random
};

}  // namespace simcap::detail
