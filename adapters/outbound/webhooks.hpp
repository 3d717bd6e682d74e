#pragma once
// Run-time webhooks: how one is kept in the store (JSON, side state "hook/<id>") and the sink it
// becomes.
#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"
#include "outbound/outbound.hpp"

namespace simcap::outbound {

std::string webhook_json(const webhook& h);
std::optional<webhook> webhook_from_json(std::string_view text);
// The webhook sink of a hook: "hook-<id>", the event types its `event` prefix names, its
// product, headers and TLS check. Throws std::invalid_argument when the prefix names no type.
sink_config webhook_sink(const webhook& h);
// 24 random hex digits.
std::string new_webhook_id();

}  // namespace simcap::outbound
