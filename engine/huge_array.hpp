#pragma once
// A fixed-size, zero-initialised array of trivially copyable T in anonymous memory, backed by
// transparent huge pages when large: the shard tables are accessed at random, so fewer TLB
// misses and fewer page faults (one per 2 MiB instead of one per 4 KiB) matter.
#include <sys/mman.h>

#include <cstddef>
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
    void* mem = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::bad_alloc();
    if (bytes_ >= (2u << 20)) madvise(mem, bytes_, MADV_HUGEPAGE);
    data_ = static_cast<T*>(mem);  // anonymous memory reads as zero
  }
  ~huge_array() {
    if (data_ != nullptr) munmap(data_, bytes_);
  }
  huge_array(huge_array&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), n_(std::exchange(o.n_, 0)), bytes_(std::exchange(o.bytes_, 0)) {}
  huge_array& operator=(huge_array&& o) noexcept {
    if (this != &o) {
      huge_array tmp(std::move(*this));
      data_ = std::exchange(o.data_, nullptr);
      n_ = std::exchange(o.n_, 0);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }

  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  std::size_t size() const noexcept { return n_; }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  T* data_ = nullptr;
  std::size_t n_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace simcap::detail
