// Product routes: a product's settings, its fleet's usage, its closed periods.
#include <boost/json.hpp>

#include "http/answers.hpp"
#include "http/routes.hpp"
#include "outbound/outbound.hpp"

namespace simcap::web {

namespace {

std::pair<std::size_t, std::size_t> network_counts(const http_api& api, const engine& eng,
                                                   const std::string& product) {
  const outbound::service* out = api.outbound();
  if (out == nullptr) return {};
  const auto products = eng.products();
  for (std::size_t i = 0; i < products.size(); ++i) {
    if (products[i].id == product) return out->network_counts(static_cast<std::uint16_t>(i));
  }
  return {};
}

http_response fleet_usage_of(route_call& c) {
  auto u = c.eng.product_usage(c.seg()[2]);
  if (!u) return control_error_answer(u.error());
  return fleet_answer(*u, c.eng.time_source().now(), c.mb(),
                      network_counts(c.api, c.eng, c.seg()[2]));
}

// Every shard adds its part of the fleet's figures; the last one answers.
bool fleet_usage_read(route_call& c, std::function<void(http_response)>& done) {
  engine& eng = c.eng;
  eng.product_usage_async(c.seg()[2], [&eng,
                                       done = std::move(done)](control_result<fleet_usage> u) {
    if (!u) {
      done(control_error_answer(u.error()));
      return;
    }
    done(fleet_answer(*u, eng.time_source().now(), static_cast<double>(eng.options().mb_bytes)));
  });
  return true;
}

http_response periods(route_call& c) {
  const auto& s = c.seg();
  std::optional<unix_seconds> start;
  if (s.size() == 5) {
    start = parse_rfc3339(s[4]);
    if (!start) {
      auto day = parse_rfc3339(s[4] + "T00:00:00Z");  // a date alone: that day's start
      if (!day)
        return error_answer(400, "invalid_request",
                            "period start must be an RFC 3339 time or a date");
      start = day;
    }
  }
  auto found = c.eng.closed_periods(s[2], start.has_value());
  if (!found) return control_error_answer(found.error());
  const double mb = c.mb();
  auto summary = [mb](const closed_period& cp) {
    return json::object{{"start", format_rfc3339(cp.start)},
                        {"end", format_rfc3339(cp.end)},
                        {"total_bytes", cp.total_bytes},
                        {"total_mbs_used", static_cast<double>(cp.total_bytes) / mb},
                        {"chargeable_sims", cp.chargeable_sims}};
  };
  if (!start) {
    json::array arr;
    for (const auto& cp : *found) arr.push_back(summary(cp));
    return json_answer(200, json::object{{"periods", std::move(arr)}});
  }
  for (const auto& cp : *found) {
    if (cp.start != *start) continue;
    json::object o = summary(cp);
    json::array lines;
    for (const auto& l : cp.lines) {
      lines.push_back(json::object{{"iccid", iccid::from_key(l.sim).str()},
                                   {"bytes_up", l.bytes_up},
                                   {"bytes_down", l.bytes_down},
                                   {"usage_bytes", l.bytes_up + l.bytes_down},
                                   {"sms", l.sms},
                                   {"chargeable", l.chargeable}});
    }
    o["sims"] = std::move(lines);
    return json_answer(200, o);
  }
  return error_answer(404, "not_found", "no closed period starts at " + format_rfc3339(*start));
}

http_response product(route_call& c) {
  const std::string& id = c.seg()[2];
  if (c.req.method == "GET") {
    auto p = c.eng.get_product(id);
    if (!p) return error_answer(404, "not_found", "no such product");
    return json_answer(200, product_json(*p));
  }
  boost::system::error_code ec;
  json::value body =
      json::parse(c.req.body.empty() ? std::string_view("{}") : std::string_view(c.req.body), ec);
  const json::object* o = ec ? nullptr : body.if_object();
  if (o == nullptr) return error_answer(400, "invalid_request", "expected a JSON object");
  if (!c.who.admin && !c.eng.get_product(id))
    return error_answer(403, "forbidden", "only an admin creates products");
  if (o->contains("pool_mb") || o->contains("pool_action")) {
    return error_answer(400, "invalid_request",
                        "pools (pool_mb, pool_action) are not supported yet");
  }
  product_settings ps;
  ps.id = id;
  if (auto* v = o->if_contains("default_mb_limit")) {
    auto mb = mb_limit_of(*v);
    if (!mb)
      return error_answer(400, "invalid_request",
                          "default_mb_limit must be an integer from 1 to 100000000");
    ps.default_mb_limit = mb;
  }
  if (auto* v = o->if_contains("alert_thresholds")) {
    const json::array* a = v->if_array();
    if (a == nullptr)
      return error_answer(400, "invalid_request", "alert_thresholds must be an array of numbers");
    std::vector<double> th;
    for (const auto& x : *a) {
      if (!x.is_number())
        return error_answer(400, "invalid_request", "alert_thresholds must be an array of numbers");
      th.push_back(x.to_number<double>());
    }
    ps.alert_thresholds = std::move(th);
  }
  if (auto* v = o->if_contains("country")) {
    if (!v->is_string()) return error_answer(400, "invalid_request", "country must be a string");
    ps.country = std::string(v->as_string());
  }
  if (auto* v = o->if_contains("alert_emails")) {
    const json::array* a = v->if_array();
    std::vector<std::string> emails;
    for (std::size_t i = 0; a != nullptr && i < a->size(); ++i) {
      if (!(*a)[i].is_string()) {
        a = nullptr;
      } else {
        emails.emplace_back((*a)[i].as_string());
      }
    }
    if (a == nullptr)
      return error_answer(400, "invalid_request", "alert_emails must be an array of strings");
    if (auto why = check_alert_emails(emails))
      return error_answer(400, "invalid_request", "alert_emails " + *why);
    ps.alert_emails = std::move(emails);
  }
  auto r = c.eng.put_product(ps);
  if (!r) return control_error_answer(r.error());
  return json_answer(200, product_json(*r));
}

}  // namespace

std::vector<route> product_routes() {
  return {
      {{"v1", "products", ":p"}, "GET PUT", "GET, PUT", false, "no such product", product},
      {{"v1", "products", ":p", "sims", "data_usage"},
       "GET",
       "GET",
       false,
       "no such product",
       fleet_usage_of,
       fleet_usage_read},
      {{"v1", "products", ":p", "periods"}, "GET", "GET", false, "no such product", periods},
      {{"v1", "products", ":p", "periods", ":start"},
       "GET",
       "GET",
       false,
       "no such product",
       periods},
  };
}

}  // namespace simcap::web
