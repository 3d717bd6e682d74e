#include "http/answers.hpp"

#include <charconv>
#include <cmath>

#include "outbound/outbound.hpp"

namespace simcap::web {

// Like json::serialize, but numbers with a fraction come out in plain decimal ("0.9", "799.1")
// rather than Boost.JSON's exponent form ("9E-1"): the same JSON, friendlier to read.
namespace {
void write_json(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, val] : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string_view(k));
        out += ':';
        write_json(out, val);
      }
      out += '}';
      return;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json(out, e);
      }
      out += ']';
      return;
    }
    case json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, r.ptr);
      return;
    }
    default:
      out += json::serialize(v);
  }
}

}  // namespace

http_response json_answer(unsigned status, const json::value& v) {
  http_response r;
  r.status = status;
  write_json(r.body, v);
  return r;
}

http_response error_answer(unsigned status, std::string_view code, std::string_view description,
                           json::object extra) {
  json::object o;
  o["ok"] = false;
  o["error"] = code;
  o["error_description"] = description;
  for (auto& [k, v] : extra) o[k] = v;
  return json_answer(status, o);
}

json::value time_or_null(unix_seconds t) {
  if (t <= 0) return nullptr;
  return json::value(format_rfc3339(t));
}

http_response control_error_answer(const control_error& e) {
  switch (e.code) {
    case control_errc::not_found:
      return error_answer(404, "not_found", e.message);
    case control_errc::unknown_product:
      return error_answer(404, "not_found", e.message);
    case control_errc::bad_request:
      return error_answer(400, "invalid_request", e.message);
    case control_errc::unavailable:
      return error_answer(503, "unavailable", e.message);
    case control_errc::invalid_transition:
    case control_errc::limit_reached: {
      json::object extra;
      if (e.current) {
        extra["state"] = to_string(*e.current);
        extra["status"] = particle_status(*e.current);
      }
      json::array allowed;
      for (sim_action a : e.allowed) allowed.emplace_back(std::string(to_string(a)));
      extra["allowed_actions"] = std::move(allowed);
      return error_answer(
          409, e.code == control_errc::limit_reached ? "limit_reached" : "invalid_transition",
          e.message, std::move(extra));
    }
  }
  return error_answer(500, "internal", e.message);
}

// A data limit in MB from JSON: an integer from 1 to kMaxMbLimit, also written as 5.0.
std::optional<std::uint32_t> mb_limit_of(const json::value& v) {
  double d = 0;
  if (v.is_int64())
    d = static_cast<double>(v.as_int64());
  else if (v.is_uint64())
    d = static_cast<double>(v.as_uint64());
  else if (v.is_double())
    d = v.as_double();
  else
    return std::nullopt;
  if (!(d >= 0 && d <= kMaxMbLimit) || std::floor(d) != d ||
      check_mb_limit(static_cast<std::uint64_t>(d))) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(d);
}

json::object money_json(micros m, std::string_view currency) {
  return json::object{{"currency", currency}, {"micros", m}, {"amount", money_amount(m)}};
}

json::object sim_json(const sim_view& v, const rater* rates) {
  json::object o;
  o["_id"] = v.id.str();
  o["iccid"] = v.id.str();
  o["status"] = particle_status(v.state);
  o["mb_limit"] = v.mb_limit;
  o["product_id"] = v.product;
  o["base_country_code"] = v.country;
  o["first_activated_on"] = time_or_null(v.first_activated);
  o["last_activated_on"] = time_or_null(v.last_activated);
  o["updated_at"] = time_or_null(v.updated_at);
  o["state"] = to_string(v.state);
  if (v.reason != pause_reason::none) o["pause_reason"] = to_string(v.reason);
  o["limit_bytes"] = v.limit_bytes;
  o["usage_bytes"] = v.usage_bytes();
  o["bytes_up"] = v.bytes_up;
  o["bytes_down"] = v.bytes_down;
  o["period_start"] = time_or_null(v.period_start);
  o["period_end"] = time_or_null(v.period_end);
  if (rates != nullptr && v.charges) {
    const sim_charges& c = *v.charges;
    o["zone"] = rates->zone_name(c.home_zone);
    json::array zones;
    for (const zone_charge& z : c.zones) {
      zones.push_back(json::object{{"zone", rates->zone_name(z.zone)},
                                   {"bytes_within", z.bytes_within},
                                   {"bytes_over", z.bytes_over}});
    }
    o["by_zone"] = std::move(zones);
    o["estimated_cost"] = money_json(c.total, rates->table().currency);
  }
  return o;
}

json::object sim_answer(const http_api& api, const sim_view& v) {
  json::object o = sim_json(v, api.rating());
  outbound::service::network_state n;
  if (const outbound::service* out = api.outbound()) n = out->network_of(v.id.key());
  json::object ns;
  switch (n.state) {
    case outbound::service::network_state::kind::in_sync:
      ns["state"] = "in_sync";
      break;
    case outbound::service::network_state::kind::pending:
      ns["state"] = "pending";
      ns["event_id"] = n.event_id;
      ns["since"] = format_rfc3339(n.since);
      break;
    case outbound::service::network_state::kind::failed:
      ns["state"] = "failed";
      ns["event_id"] = n.event_id;
      break;
  }
  o["network_state"] = std::move(ns);
  return o;
}

json::object product_json(const product_view& p) {
  json::object o;
  o["id"] = p.id;
  o["default_mb_limit"] = p.default_mb_limit;
  json::array th;
  for (double t : p.alert_thresholds) th.emplace_back(t);
  o["alert_thresholds"] = std::move(th);
  o["country"] = p.country;
  json::array emails;
  for (const std::string& a : p.alert_emails) emails.emplace_back(a);
  o["alert_emails"] = std::move(emails);
  o["pool_mb"] = p.pool_mb;
  o["pool_action"] = to_string(p.pool_action);
  o["pool_price"] = money_text6(p.pool_price);
  o["anniversary_day"] =
      p.anniversary_day == 0 ? json::value(nullptr) : json::value(p.anniversary_day);
  o["first_period_start"] = time_or_null(p.first_period_start);
  o["period_start"] = time_or_null(p.period_start);
  o["period_end"] = time_or_null(p.period_end);
  return o;
}

std::optional<sim_state> state_from_name(std::string_view s) {
  for (int i = 0; i < kSimStateCount; ++i) {
    auto st = static_cast<sim_state>(i);
    if (s == to_string(st) || s == particle_status(st)) return st;
  }
  return std::nullopt;
}

std::optional<event_type> event_type_from_name(std::string_view s) {
  for (int i = 0; i < static_cast<int>(event_type::kCount); ++i) {
    if (s == to_string(static_cast<event_type>(i))) return static_cast<event_type>(i);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> to_uint(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// A value echoed back in an answer: printable ASCII, anything else as '?', so that the answer
// stays valid JSON text whatever the request held.
std::string printable(std::string_view v, std::size_t max) {
  std::string out(v.substr(0, max));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

json::object event_object(const event& e, const engine& eng) {
  json::object o;
  o["id"] = e.id;
  o["time"] = format_rfc3339(e.time);
  o["iccid"] = e.sim != 0 ? json::value(iccid::from_key(e.sim).str()) : json::value(nullptr);
  o["product"] = eng.product_name(e.product);
  o["type"] = to_string(e.type);
  o["reason"] = reason_text(e);
  o["usage_bytes"] = e.usage_bytes;
  o["limit_bytes"] = e.limit_bytes;
  if (e.period_start != 0) o["period_start"] = format_rfc3339(e.period_start);
  if (e.type == event_type::unused_charged) o["count"] = e.usage_bytes;
  return o;
}

json::array by_day_json(const std::vector<day_bytes>& days, double mb) {
  json::array arr;
  double cumulative = 0;
  for (const auto& d : days) {
    double used = static_cast<double>(d.bytes) / mb;
    cumulative += used;
    arr.push_back(json::object{
        {"date", format_date(d.day)}, {"mbs_used", used}, {"mbs_used_cumulative", cumulative}});
  }
  return arr;
}

http_response fleet_answer(const fleet_usage& u, unix_seconds now, double mb,
                           std::pair<std::size_t, std::size_t> network, const rater* rates) {
  std::vector<day_bytes> days;
  json::array hours;
  for (std::size_t h = 0; h < u.by_hour.size(); ++h) {
    unix_seconds t = u.period_start + static_cast<unix_seconds>(h) * 3600;
    if (t > now) break;
    if (days.empty() || t - days.back().day >= kSecondsPerDay) days.push_back({t, 0});
    days.back().bytes += u.by_hour[h];
    hours.push_back(json::object{{"hour", format_rfc3339(t)}, {"bytes", u.by_hour[h]}});
  }
  const auto& by_state = u.sims_by_state;
  std::size_t active = by_state[static_cast<int>(sim_state::active)];
  std::size_t paused = by_state[static_cast<int>(sim_state::paused)];
  json::object o{{"total_mbs_used", static_cast<double>(u.usage_bytes()) / mb},
                 {"total_active_sim_cards", active + paused},
                 {"usage_by_day", by_day_json(days, mb)},
                 {"period_start", time_or_null(u.period_start)},
                 {"period_end", time_or_null(u.period_end)},
                 {"bytes_up", u.bytes_up},
                 {"bytes_down", u.bytes_down},
                 {"usage_bytes", u.usage_bytes()},
                 {"paused_sim_cards", paused},
                 {"unused_charged_sim_cards", u.unused_charged_sims},
                 {"chargeable_sim_cards", u.chargeable_sims},
                 {"usage_by_hour", std::move(hours)},
                 {"network_pending_sim_cards", network.first},
                 {"network_failed_sim_cards", network.second}};
  if (u.pool_mb != 0) {
    o["pool"] = json::object{{"mb", u.pool_mb},
                             {"used_bytes", u.usage_bytes()},
                             {"action", to_string(u.pool_mode)},
                             {"exhausted", u.pool_exhausted}};
  }
  if (rates != nullptr && u.estimated_cost) {
    o["estimated_cost"] = money_json(*u.estimated_cost, rates->table().currency);
    o["discount"] = money_text6(u.discount_ppm);
  }
  return json_answer(200, o);
}

}  // namespace simcap::web
