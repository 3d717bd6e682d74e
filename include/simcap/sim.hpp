#pragma once
// SIM life-cycle vocabulary (SPEC §2) and the read-only view of one SIM that queries return.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "simcap/iccid.hpp"
#include "simcap/rating.hpp"
#include "simcap/time.hpp"

namespace simcap {

enum class sim_state : std::uint8_t { issued, factory_test, active, paused, deactivated, released };
inline constexpr int kSimStateCount = 6;

constexpr std::string_view to_string(sim_state s) noexcept {
  switch (s) {
    case sim_state::issued:
      return "issued";
    case sim_state::factory_test:
      return "factory_test";
    case sim_state::active:
      return "active";
    case sim_state::paused:
      return "paused";
    case sim_state::deactivated:
      return "deactivated";
    case sim_state::released:
      return "released";
  }
  return "unknown";
}

// Particle Cloud API status names (API.md, SIM object).
constexpr std::string_view particle_status(sim_state s) noexcept {
  switch (s) {
    case sim_state::issued:
      return "never_before_activated";
    case sim_state::factory_test:
      return "factory_test";
    case sim_state::active:
      return "active";
    case sim_state::paused:
      return "inactive_data_limit_reached";
    case sim_state::deactivated:
      return "inactive_user_deactivated";
    case sim_state::released:
      return "released";
  }
  return "unknown";
}

// Whether records for a SIM in this state are counted (SPEC §2).
constexpr bool counts_usage(sim_state s) noexcept {
  return s != sim_state::issued && s != sim_state::released;
}

enum class pause_reason : std::uint8_t { none, data_limit, pool_exhausted };

constexpr std::string_view to_string(pause_reason r) noexcept {
  switch (r) {
    case pause_reason::none:
      return "";
    case pause_reason::data_limit:
      return "data_limit";
    case pause_reason::pool_exhausted:
      return "pool_exhausted";
  }
  return "";
}

enum class sim_action : std::uint8_t {
  activate,            // issued/paused/deactivated -> active (Particle's "activate")
  reactivate,          // same transition, Particle's name for it on a deactivated SIM
  deactivate,          // active/paused -> deactivated
  release,             // any but released -> released
  start_factory_test,  // issued -> factory_test
};

constexpr std::string_view to_string(sim_action a) noexcept {
  switch (a) {
    case sim_action::activate:
      return "activate";
    case sim_action::reactivate:
      return "reactivate";
    case sim_action::deactivate:
      return "deactivate";
    case sim_action::release:
      return "release";
    case sim_action::start_factory_test:
      return "start_factory_test";
  }
  return "unknown";
}

// Snapshot of one SIM, taken on its shard's thread.
struct sim_view {
  iccid id;
  std::string product;
  sim_state state = sim_state::issued;
  pause_reason reason = pause_reason::none;
  std::uint32_t mb_limit = 0;
  bool limit_override = false;
  std::uint64_t limit_bytes = 0;
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  std::uint64_t sms = 0;
  unix_seconds first_activated = 0;  // 0: never
  unix_seconds last_activated = 0;
  unix_seconds updated_at = 0;
  unix_seconds period_start = 0;  // 0: the product has no period yet
  unix_seconds period_end = 0;
  std::uint8_t country_index = 0;  // the engine's country list (0: the product's country)
  std::string country;             // home country (ISO 3166-1 alpha-2), filled by the engine
  // Rating (with a rate table): the day of the period it first became chargeable in (0: the
  // first), whether it is chargeable, and its bytes by visited country (closed_line::away).
  std::uint8_t charge_day = 0;
  bool chargeable = false;
  std::vector<country_bytes> away;
  std::optional<sim_charges> charges;           // engine::rate_sim
  std::uint64_t usage_bytes() const noexcept {  // saturates, as the counters do
    return bytes_up + bytes_down < bytes_up ? ~std::uint64_t{0} : bytes_up + bytes_down;
  }
};

}  // namespace simcap
