#pragma once
// Events (SPEC §8): every state change and enforcement action, with a monotonically increasing
// id assigned by the event log.
#include <cstdint>
#include <string>
#include <string_view>

#include "simcap/time.hpp"

namespace simcap {

enum class event_type : std::uint8_t {
  activated,
  deactivated,
  released,
  paused,
  unpaused,
  alert,
  factory_test_ended,
  period_closed,
  late_adjustment,
  pool_alert,       // a product's pool reached a threshold (sim 0)
  pool_exhausted,   // a product's pool is used up (sim 0)
  transferred_out,  // a SIM left its product for another (the old product's event)
  transferred_in,   // ... and joined the new one
  unused_charged,   // daily: the product's SIMs active, chargeable and unused (sim 0; usage_bytes
                    // carries the count, answered as `count`)
  kCount
};

constexpr std::string_view to_string(event_type t) noexcept {
  switch (t) {
    case event_type::activated:
      return "activated";
    case event_type::deactivated:
      return "deactivated";
    case event_type::released:
      return "released";
    case event_type::paused:
      return "paused";
    case event_type::unpaused:
      return "unpaused";
    case event_type::alert:
      return "alert";
    case event_type::factory_test_ended:
      return "factory_test_ended";
    case event_type::period_closed:
      return "period_closed";
    case event_type::late_adjustment:
      return "late_adjustment";
    case event_type::pool_alert:
      return "pool_alert";
    case event_type::pool_exhausted:
      return "pool_exhausted";
    case event_type::transferred_out:
      return "transferred_out";
    case event_type::transferred_in:
      return "transferred_in";
    case event_type::unused_charged:
      return "unused_charged";
    case event_type::kCount:
      break;
  }
  return "unknown";
}

enum class event_reason : std::uint8_t {
  none,
  data_limit,      // usage reached the limit
  pool_exhausted,  // the product's pool is used up
  user,            // a control request
  import,          // imported into a product
  anniversary,     // billing anniversary
  limit_changed,   // the SIM's limit was changed
  threshold,       // alert threshold reached (event::threshold_permille says which)
  data_threshold,  // factory test ended by its data threshold
  sms_threshold,   // factory test ended by its SMS threshold
  test_period,     // factory test ended by its test period
  late_record,     // a late record adjusted a closed period
  pool_changed,    // the product's pool was raised above its usage (or lowered to it)
  transfer,        // an import moved the SIM between products
  unused,          // active for unused_after with no usage in the period
};

constexpr std::string_view to_string(event_reason r) noexcept {
  switch (r) {
    case event_reason::none:
      return "";
    case event_reason::data_limit:
      return "data_limit";
    case event_reason::pool_exhausted:
      return "pool_exhausted";
    case event_reason::user:
      return "user";
    case event_reason::import:
      return "import";
    case event_reason::anniversary:
      return "anniversary";
    case event_reason::limit_changed:
      return "limit_changed";
    case event_reason::threshold:
      return "threshold";
    case event_reason::data_threshold:
      return "data_threshold";
    case event_reason::sms_threshold:
      return "sms_threshold";
    case event_reason::test_period:
      return "test_period";
    case event_reason::pool_changed:
      return "pool_changed";
    case event_reason::transfer:
      return "transfer";
    case event_reason::unused:
      return "unused";
    case event_reason::late_record:
      return "late_record";
  }
  return "";
}

struct event {
  std::uint64_t id = 0;  // assigned by event_log::append
  unix_seconds time = 0;
  std::uint64_t sim = 0;  // iccid key; 0 for product-level events (period_closed)
  std::uint16_t product = 0;
  event_type type = event_type::activated;
  event_reason reason = event_reason::none;
  std::uint16_t threshold_permille = 0;  // alert: which threshold, e.g. 900 for 0.9
  std::uint64_t usage_bytes = 0;
  std::uint64_t limit_bytes = 0;
  unix_seconds period_start = 0;  // period_closed / late_adjustment: which period
};

// The same event, whatever its id (pending events have none yet).
constexpr bool same_event(const event& a, const event& b) noexcept {
  return a.time == b.time && a.sim == b.sim && a.product == b.product && a.type == b.type &&
         a.reason == b.reason && a.threshold_permille == b.threshold_permille &&
         a.usage_bytes == b.usage_bytes && a.limit_bytes == b.limit_bytes &&
         a.period_start == b.period_start;
}

// The reason as it is shown to users: "threshold_0.9" for alerts, else to_string(reason).
std::string reason_text(const event& e);

}  // namespace simcap
