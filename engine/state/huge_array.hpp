#pragma once
// A fixed-size, zero-initialised array of trivially copyable T in anonymous memory, backed by
// transparent huge pages when large: the shard tables are accessed at random, so fewer TLB
// misses and fewer page faults (one per 2 MiB instead of one per 4 KiB) matter.
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace simcap::detail {

template <class T>
class huge_array {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  huge_array() = default;
  explicit huge_array(std::size_t n) : n_(n), bytes_(n * sizeof(T)) {
    if (bytes_ == 0) return;
    constexpr std::size_t kHuge = 2u << 20;
    if (bytes_ < kHuge) {
      void* mem = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED) throw std::bad_alloc();
      data_ = static_cast<T*>(mem);  // anonymous memory reads as zero
      map_ = mem;
      map_bytes_ = bytes_;
      return;
    }
    // Map 2 MiB more and start on a 2 MiB boundary, so that every 2 MiB of the array can be a
    // huge page from its first touch (not only after khugepaged collapses it, seconds later).
    map_bytes_ = bytes_ + kHuge;
    map_ = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map_ == MAP_FAILED) throw std::bad_alloc();
    auto addr = reinterpret_cast<std::uintptr_t>(map_);
    auto aligned = (addr + kHuge - 1) & ~(kHuge - 1);
    madvise(reinterpret_cast<void*>(aligned), bytes_, MADV_HUGEPAGE);
    data_ = reinterpret_cast<T*>(aligned);
  }
  ~huge_array() {
    if (map_ != nullptr) munmap(map_, map_bytes_);
  }
  huge_array(huge_array&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        n_(std::exchange(o.n_, 0)),
        bytes_(std::exchange(o.bytes_, 0)),
        map_(std::exchange(o.map_, nullptr)),
        map_bytes_(std::exchange(o.map_bytes_, 0)) {}
  huge_array& operator=(huge_array&& o) noexcept {
    if (this != &o) {
      huge_array tmp(std::move(*this));
      data_ = std::exchange(o.data_, nullptr);
      n_ = std::exchange(o.n_, 0);
      bytes_ = std::exchange(o.bytes_, 0);
      map_ = std::exchange(o.map_, nullptr);
      map_bytes_ = std::exchange(o.map_bytes_, 0);
    }
    return *this;
  }

  // Faults every page in (writing zeroes): done on another thread, the thread that then uses
  // the array does not wait for fresh memory, which can take a second for 100 MB on a VM. Page
  // by page, not madvise(MADV_POPULATE_WRITE): that holds the process's mmap lock for the whole
  // range, and every other thread's mmap, munmap (and the page faults queued behind them) waits.
  void populate() noexcept {
    auto* bytes = reinterpret_cast<volatile unsigned char*>(data_);
    for (std::size_t at = 0; at < bytes_; at += 4096) bytes[at] = 0;
  }

  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  std::size_t size() const noexcept { return n_; }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  T* data_ = nullptr;
  std::size_t n_ = 0;
  std::size_t bytes_ = 0;
  void* map_ = nullptr;  // the whole mapping (data_ may start inside it)
  std::size_t map_bytes_ = 0;
};

}  // namespace simcap::detail
