#pragma once
// The SIM life cycle (SPEC.md §2), as one table: what each user action does in each state, and
// the moves the engine makes by itself. Import, update, enforcement, the rollover and the
// factory test all ask it; shard::set_state checks every move against it.
#include <array>
#include <cstdint>
#include <vector>

#include "simcap/sim.hpp"

namespace simcap::detail {

// What a user's action does to a SIM in a state.
enum class action_result : std::uint8_t {
  refused,    // 409 invalid_transition, with the allowed actions
  no_change,  // already there: accepted, nothing happens
  change,     // moves to `to`
};

struct action_rule {
  action_result result = action_result::refused;
  sim_state to = sim_state::released;
};

// The rule for action a in state s (SPEC §2's table). activate and reactivate of a paused SIM
// also need its usage below the limit (checked by the caller: 409 limit_reached); activating a
// deactivated SIM at or over its limit goes on to paused.
action_rule rule_of(sim_state s, sim_action a) noexcept;
// The actions that change a SIM in state s (no_change ones are accepted but not offered).
std::vector<sim_action> allowed_actions(sim_state s);
// Whether the life cycle has a move from -> to (by a user's action or the engine's).
bool may_move(sim_state from, sim_state to) noexcept;
// The states an import may start a SIM in.
bool import_state(sim_state s) noexcept;

}  // namespace simcap::detail
