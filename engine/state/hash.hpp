#pragma once
// Hash mixing and range reduction shared by the shard router and the shard's tables.
#include <cstdint>

namespace simcap::detail {

// murmur3's 64-bit finaliser.
constexpr std::uint64_t mix64(std::uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// Maps a well-mixed 64-bit value onto [0, n) without a division (Lemire's fastrange).
constexpr std::uint64_t reduce(std::uint64_t h, std::uint64_t n) noexcept {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(h) * n) >> 64);
}

// Asks for the cache line at p, to be written soon. GCC 12 at -O3 was seen to delete plain
// __builtin_prefetch calls in the shard's apply loop (its dead-code pass), which cost that loop
// half its speed; an asm statement it must keep.
inline void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

}  // namespace simcap::detail
