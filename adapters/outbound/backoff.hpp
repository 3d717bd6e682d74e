#pragma once
// When a sink tries an event again (SPEC §12): exponential back-off from retry_min, doubling
// each attempt up to retry_max, with jitter (a delay drawn between retry_min and the attempt's
// ceiling, so that many SIMs failing together do not come back together). A receiver's
// Retry-After is honoured, up to retry_max.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <string_view>

namespace simcap::outbound {

// The ceiling of attempt n (0 for the first retry): min * 2^n, at most max.
inline std::chrono::milliseconds backoff_ceiling(unsigned attempt, std::chrono::milliseconds min,
                                                 std::chrono::milliseconds max) {
  auto c = min;
  for (unsigned i = 0; i < attempt && c < max; ++i) c *= 2;
  return std::min(c, max);
}

// The delay of attempt n for a jitter draw u in [0, 1).
inline std::chrono::milliseconds backoff_delay(unsigned attempt, std::chrono::milliseconds min,
                                               std::chrono::milliseconds max, double u) {
  const auto ceiling = backoff_ceiling(attempt, min, max);
  const auto span = static_cast<double>((ceiling - min).count());
  return min + std::chrono::milliseconds(static_cast<std::int64_t>(span * std::clamp(u, 0.0, 1.0)));
}

// Retry-After as delay-seconds ("120"); nullopt for anything else (an HTTP date is taken as no
// hint: the back-off applies).
inline std::optional<std::chrono::milliseconds> retry_after(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  unsigned long s = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || s > 86400UL * 365)
    return std::nullopt;
  return std::chrono::seconds(s);
}

// What an answer means for the event: delivered (2xx), tried again (408, 429, 5xx, no answer),
// or parked (every other status: a permanent failure; 3xx too, redirects are not followed).
enum class outcome { delivered, retry, park };
inline outcome outcome_of(unsigned status) {
  if (status >= 200 && status < 300) return outcome::delivered;
  if (status == 0 || status == 408 || status == 429 || status >= 500) return outcome::retry;
  return outcome::park;
}

}  // namespace simcap::outbound
