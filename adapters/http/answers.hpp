#pragma once
// The JSON the HTTP port answers with (API.md): SIMs, products, fleet usage, errors.
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "http/http_api.hpp"
#include "simcap/engine.hpp"

namespace simcap::web {

namespace json = boost::json;

// An answer with v as its body; numbers with a fraction in plain decimal ("0.9", not "9E-1").
http_response json_answer(unsigned status, const json::value& v);
// {"ok":false,"error":code,"error_description":description, ...extra}.
http_response error_answer(unsigned status, std::string_view code, std::string_view description,
                           json::object extra = {});
// An engine refusal as its HTTP answer (404, 400, 409 with state and allowed actions, 503).
http_response control_error_answer(const control_error& e);
json::value time_or_null(unix_seconds t);
// Money as answers show it: {"currency","micros","amount"} (amount: rounded to cents).
json::object money_json(micros m, std::string_view currency);
// rates: with a rate table, the SIM's zone, by_zone and estimated_cost (v.charges).
json::object sim_json(const sim_view& v, const rater* rates = nullptr);
// The SIM as answered: sim_json and its network_state (from the carrier sink, if any).
json::object sim_answer(const http_api& api, const sim_view& v);
json::object product_json(const product_view& p);
// An event as GET /v1/events and the sinks send it.
json::object event_object(const event& e, const engine& eng);
json::array by_day_json(const std::vector<day_bytes>& days, double mb);
// GET /v1/products/:p/sims/data_usage: Particle's fleet fields, then simcap's.
// With the network counts of the carrier sink (zero without one).
http_response fleet_answer(const fleet_usage& u, unix_seconds now, double mb,
                           std::pair<std::size_t, std::size_t> network_pending_failed = {},
                           const rater* rates = nullptr);
// A value echoed back in an answer: printable ASCII, anything else as '?'.
std::string printable(std::string_view v, std::size_t max = 64);

// Names in requests.
std::optional<sim_state> state_from_name(std::string_view s);
std::optional<event_type> event_type_from_name(std::string_view s);
std::optional<std::uint64_t> to_uint(std::string_view s);
// A data limit in MB from JSON: an integer from 1 to kMaxMbLimit, also written as 5.0.
std::optional<std::uint32_t> mb_limit_of(const json::value& v);

}  // namespace simcap::web
