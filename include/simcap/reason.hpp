#pragma once
// Reason codes for records that are not counted (SPEC §7). The names are part of the contract:
// they appear in feed reject messages, dead-letter entries and metrics.
#include <array>
#include <cstdint>
#include <string_view>

namespace simcap {

enum class reject_reason : std::uint8_t {
  malformed_json,
  missing_field,
  bad_iccid,
  bad_value,
  unknown_iccid,
  too_late,
  future_time,
  line_too_long,
  not_counted_state,
  kCount
};

inline constexpr std::size_t kRejectReasonCount = static_cast<std::size_t>(reject_reason::kCount);

constexpr std::string_view to_string(reject_reason r) noexcept {
  constexpr std::array<std::string_view, kRejectReasonCount> names{
      "malformed_json", "missing_field", "bad_iccid",     "bad_value",        "unknown_iccid",
      "too_late",       "future_time",   "line_too_long", "not_counted_state"};
  auto i = static_cast<std::size_t>(r);
  return i < names.size() ? names[i] : std::string_view{"unknown"};
}

}  // namespace simcap
