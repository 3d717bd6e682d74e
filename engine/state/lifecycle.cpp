#include "state/lifecycle.hpp"

#include <utility>

namespace simcap::detail {

namespace {

constexpr std::size_t kActions = 5;
using S = sim_state;
constexpr action_rule refused{};
constexpr action_rule stays{action_result::no_change, S::released};
constexpr action_rule to(S s) { return {action_result::change, s}; }

// [state][action]: activate, reactivate, deactivate, release, start_factory_test.
constexpr std::array<std::array<action_rule, kActions>, kSimStateCount> kRules{{
    /* issued       */ {to(S::active), refused, refused, to(S::released), to(S::factory_test)},
    /* factory_test */ {refused, refused, refused, to(S::released), stays},
    /* active       */ {stays, stays, to(S::deactivated), to(S::released), refused},
    /* paused       */ {to(S::active), to(S::active), to(S::deactivated), to(S::released), refused},
    /* deactivated  */ {to(S::active), to(S::active), stays, to(S::released), refused},
    /* released     */ {refused, refused, refused, refused, refused},
}};

// The engine's own moves: the limit reached (also right after an activation at the limit), the
// limit raised or the anniversary, the factory test over.
constexpr std::array<std::pair<S, S>, 3> kEngineMoves{{
    {S::active, S::paused},
    {S::paused, S::active},
    {S::factory_test, S::active},
}};

}  // namespace

action_rule rule_of(sim_state s, sim_action a) noexcept {
  const auto i = static_cast<std::size_t>(s), k = static_cast<std::size_t>(a);
  return i < kRules.size() && k < kActions ? kRules[i][k] : refused;
}

std::vector<sim_action> allowed_actions(sim_state s) {
  std::vector<sim_action> out;
  for (std::size_t k = 0; k < kActions; ++k) {
    const auto a = static_cast<sim_action>(k);
    if (rule_of(s, a).result == action_result::change) out.push_back(a);
  }
  return out;
}

bool may_move(sim_state from, sim_state to_state) noexcept {
  for (std::size_t k = 0; k < kActions; ++k) {
    const action_rule r = rule_of(from, static_cast<sim_action>(k));
    if (r.result == action_result::change && r.to == to_state) return true;
  }
  for (auto [f, t] : kEngineMoves) {
    if (f == from && t == to_state) return true;
  }
  return false;
}

bool import_state(sim_state s) noexcept {
  return s == S::active || s == S::issued || s == S::factory_test;
}

}  // namespace simcap::detail
