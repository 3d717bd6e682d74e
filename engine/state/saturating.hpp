#pragma once
// Saturating additions for usage counters: a counter that would pass its type's maximum stays
// at the maximum (records are bounded by max_record_bytes, so only a flood can get there).
#include <cstdint>
#include <limits>

namespace simcap::detail {

template <class T>
constexpr T sat_add(T a, T b) noexcept {
  T r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<T>::max() : r;
}

template <class T>
constexpr void sat_inc(T& into, T by) noexcept {
  into = sat_add(into, by);
}

}  // namespace simcap::detail
