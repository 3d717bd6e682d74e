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
                      network_counts(c.api, c.eng, c.seg()[2]), c.eng.rating());
}

// Every shard adds its part of the fleet's figures; the last one answers.
bool fleet_usage_read(route_call& c, std::function<void(http_response)>& done) {
  engine& eng = c.eng;
  eng.product_usage_async(
      c.seg()[2], [&eng, done = std::move(done)](control_result<fleet_usage> u) {
        if (!u) {
          done(control_error_answer(u.error()));
          return;
        }
        done(fleet_answer(*u, eng.time_source().now(), static_cast<double>(eng.options().mb_bytes),
                          {}, eng.rating()));
      });
  return true;
}

// The invoice of a period (SPEC §11, API.md "Rating"): JSON with paged lines, or CSV.
http_response invoice_answer(route_call& c, unix_seconds start) {
  auto inv = c.eng.invoice_of(c.seg()[2], start);
  if (!inv) {
    if (inv.error().code == control_errc::not_found) {
      return error_answer(404, "not_found", "no period starts at " + format_rfc3339(start));
    }
    return control_error_answer(inv.error());
  }
  const rater& rates = *c.eng.rating();
  const std::string& currency = rates.table().currency;
  auto format = c.t.param("format");
  const bool csv = format ? *format == "csv" : c.req.accept.find("text/csv") != std::string::npos;
  if (format && *format != "csv" && *format != "json") {
    return error_answer(400, "invalid_request", "format must be json or csv");
  }
  auto country_of = [](const closed_line& l) { return unpack_country(l.country); };
  if (csv) {
    std::string out =
        "iccid,country,zone,days_charged,base,bytes_within,bytes_over,"
        "bytes_roaming,data_charge,total\n";
    for (const invoice_line& l : inv->lines) {
      std::uint64_t within = 0, over = 0;
      for (const zone_charge& z : l.charges.zones) {
        within += z.bytes_within;
        over += z.bytes_over;
      }
      out.append(iccid::from_key(l.line.sim).str()).push_back(',');
      out.append(country_of(l.line)).push_back(',');
      out.append(rates.zone_name(l.charges.home_zone)).push_back(',');
      out.append(std::to_string(l.charges.days_charged)).push_back(',');
      out.append(money_text6(l.charges.base)).push_back(',');
      out.append(std::to_string(within)).push_back(',');
      out.append(std::to_string(over)).push_back(',');
      out.append(std::to_string(l.charges.bytes_roaming)).push_back(',');
      out.append(money_text6(l.charges.data)).push_back(',');
      out.append(money_text6(l.charges.total)).push_back('\n');
    }
    http_response r;
    r.body = std::move(out);
    r.content_type = "text/csv; charset=utf-8";
    return r;
  }
  std::size_t page = 1, per_page = 1000;
  if (auto p = c.t.param("page")) {
    auto n = to_uint(*p);
    if (!n || *n == 0) return error_answer(400, "invalid_request", "page must be 1 or more");
    page = static_cast<std::size_t>(*n);
  }
  if (auto p = c.t.param("per_page")) {
    auto n = to_uint(*p);
    if (!n || *n == 0 || *n > 10000)
      return error_answer(400, "invalid_request", "per_page must be from 1 to 10000");
    per_page = static_cast<std::size_t>(*n);
  }
  auto money = [&](micros m) { return money_json(m, currency); };
  json::object summary{{"chargeable_sims", inv->chargeable_sims},
                       {"total_bytes", inv->total_bytes},
                       {"base", money(inv->base)},
                       {"data_within_limits", money(inv->data_within)},
                       {"data_over_limits", money(inv->data_over)},
                       {"roaming", money(inv->roaming)},
                       {"pool", money(inv->pool)},
                       {"pool_overage", money(inv->pool_overage)},
                       {"pool_overshoot_bytes", inv->pool_overshoot_bytes},
                       {"discount", money_text6(inv->discount_ppm)},
                       {"total", money(inv->total)}};
  json::array sims;
  const std::size_t from = std::min(inv->lines.size(), (page - 1) * per_page);
  const std::size_t to = std::min(inv->lines.size(), from + per_page);
  for (std::size_t i = from; i < to; ++i) {
    const invoice_line& l = inv->lines[i];
    json::array zones;
    for (const zone_charge& z : l.charges.zones) {
      zones.push_back(json::object{{"zone", rates.zone_name(z.zone)},
                                   {"bytes_within", z.bytes_within},
                                   {"bytes_over", z.bytes_over},
                                   {"charge_within", money(z.charge_within)},
                                   {"charge_over", money(z.charge_over)}});
    }
    sims.push_back(json::object{{"iccid", iccid::from_key(l.line.sim).str()},
                                {"country", country_of(l.line)},
                                {"zone", rates.zone_name(l.charges.home_zone)},
                                {"chargeable", l.line.chargeable},
                                {"days_charged", l.charges.days_charged},
                                {"base", money(l.charges.base)},
                                {"zones", std::move(zones)},
                                {"total", money(l.charges.total)},
                                {"transferred_out", l.line.transferred_out},
                                {"bytes_up", l.line.bytes_up},
                                {"bytes_down", l.line.bytes_down},
                                {"usage_bytes", l.line.usage_bytes()},
                                {"sms", l.line.sms}});
  }
  json::object o{{"product", inv->product},
                 {"start", format_rfc3339(inv->start)},
                 {"end", format_rfc3339(inv->end)},
                 {"open", inv->open},
                 {"currency", currency},
                 {"summary", std::move(summary)},
                 {"total_sims", inv->lines.size()},
                 {"page", page},
                 {"per_page", per_page},
                 {"sims", std::move(sims)}};
  return json_answer(200, o);
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
  if (start && c.eng.rating() != nullptr) return invoice_answer(c, *start);
  auto found = c.eng.closed_periods(s[2], start.has_value());
  if (!found) return control_error_answer(found.error());
  const double mb = c.mb();
  const rater* rates = c.eng.rating();
  auto summary = [mb, rates](const closed_period& cp) {
    json::object o{{"start", format_rfc3339(cp.start)},
                   {"end", format_rfc3339(cp.end)},
                   {"total_bytes", cp.total_bytes},
                   {"total_mbs_used", static_cast<double>(cp.total_bytes) / mb},
                   {"chargeable_sims", cp.chargeable_sims}};
    if (rates != nullptr && cp.cost) {
      o["estimated_cost"] = money_json(*cp.cost, rates->table().currency);
    }
    return o;
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
  product_settings ps;
  ps.id = id;
  if (auto* v = o->if_contains("pool_mb")) {
    if (!v->is_int64() || v->as_int64() < 0 || v->as_int64() > 1'000'000'000)
      return error_answer(400, "invalid_request", "pool_mb must be an integer from 0 to 10^9");
    ps.pool_mb = static_cast<std::uint64_t>(v->as_int64());
  }
  if (auto* v = o->if_contains("pool_action")) {
    auto a = v->is_string() ? pool_action_of(v->as_string()) : std::nullopt;
    if (!a) return error_answer(400, "invalid_request", "pool_action must be overage or pause");
    ps.pool_action = a;
  }
  if (auto* v = o->if_contains("pool_price")) {
    auto m = v->is_string() ? parse_money(v->as_string()) : std::nullopt;
    if (!m) {
      return error_answer(400, "invalid_request",
                          "pool_price must be decimal text with at most 6 decimals, e.g. \"9.90\"");
    }
    ps.pool_price = m;
  }
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
