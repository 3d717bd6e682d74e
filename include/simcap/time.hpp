#pragma once
// Civil-time helpers in UTC: day arithmetic for the billing calendar, RFC 3339 parsing and
// formatting, and durations written as "48h", "5m", "200ms", "30d".
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace simcap {

// Unix seconds, UTC.
using unix_seconds = std::int64_t;
inline constexpr std::int64_t kSecondsPerDay = 86400;

struct civil_date {
  int year;
  unsigned month;  // 1-12
  unsigned day;    // 1-31
  friend constexpr bool operator==(const civil_date&, const civil_date&) = default;
};

// Days since 1970-01-01 for a civil date and back (proleptic Gregorian).
std::int64_t days_from_civil(civil_date d) noexcept;
civil_date civil_from_days(std::int64_t days) noexcept;
unsigned days_in_month(int year, unsigned month) noexcept;

inline civil_date civil_of(unix_seconds t) noexcept {
  std::int64_t d = t / kSecondsPerDay;
  if (t % kSecondsPerDay < 0) --d;
  return civil_from_days(d);
}
inline unix_seconds day_start(unix_seconds t) noexcept {
  std::int64_t d = t / kSecondsPerDay;
  if (t % kSecondsPerDay < 0) --d;
  return d * kSecondsPerDay;
}

// RFC 3339 date-time ("2025-11-22T08:00:00Z", "...T08:00:00.25+02:00"); fractions are dropped.
std::optional<unix_seconds> parse_rfc3339(std::string_view s) noexcept;
// "YYYY-MM-DDTHH:MM:SSZ"
std::string format_rfc3339(unix_seconds t);
// "YYYY-MM-DD"
std::string format_date(unix_seconds t);

// Durations are at most 100 years: every sum of a duration and a Unix time stays in range.
inline constexpr std::int64_t kMaxDurationMs = 100LL * 366 * 86'400'000;

// "250ms", "5s", "5m", "48h", "30d" (a bare number is seconds); nullopt when malformed or over
// kMaxDurationMs.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) noexcept;

}  // namespace simcap
