#pragma once
// Limits, thresholds and the times a SIM slot keeps: how each is computed, once.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "simcap/time.hpp"

namespace simcap::detail {

// The usage at which an alert threshold (per mille of the limit) fires: rounded up, so that
// 90 % of 5 MB fires at 4,500,000 bytes and not a byte before.
inline std::uint64_t threshold_bytes(std::uint64_t limit, std::uint16_t permille) noexcept {
  auto v = (static_cast<unsigned __int128>(limit) * permille + 999) / 1000;
  return v > std::numeric_limits<std::uint64_t>::max() ? std::numeric_limits<std::uint64_t>::max()
                                                       : static_cast<std::uint64_t>(v);
}

// A time as a slot keeps it (seconds since 1970 in 32 bits, clamped).
inline std::uint32_t u32_time(unix_seconds t) noexcept {
  return t <= 0 ? 0u : static_cast<std::uint32_t>(std::min<unix_seconds>(t, 0xffffffffLL));
}

}  // namespace simcap::detail
