// SIM routes: one SIM (read, change, release), its usage by day, lists and imports.
#include <boost/json.hpp>
#include <variant>

#include "http/answers.hpp"
#include "http/routes.hpp"

namespace simcap::web {

namespace {

bool in_product(const route_call& c) { return c.seg().size() >= 3 && c.seg()[1] == "products"; }
// The product a SIM route is scoped to: the path's, else the token's (empty for an admin).
std::string scope_of(const route_call& c) { return in_product(c) ? c.seg()[2] : c.who.scope(); }

std::variant<iccid, http_response> iccid_of(const std::string& text) {
  auto id = iccid::parse(text);
  if (!id) return error_answer(400, "invalid_iccid", describe(id.error()));
  return *id;
}

http_response one_sim(route_call& c) {
  auto parsed = iccid_of(c.seg().back());
  if (auto* err = std::get_if<http_response>(&parsed)) return *err;
  const iccid id = std::get<iccid>(parsed);
  const std::string scope = scope_of(c);
  const std::string& m = c.req.method;
  if (m == "GET" || m == "HEAD") {
    auto v = c.eng.get_sim(id, scope);
    if (m == "HEAD") {
      http_response r;
      r.status = v ? 204 : 404;
      return r;
    }
    if (!v) return control_error_answer(v.error());
    return json_answer(200, sim_answer(c.api, *v));
  }
  if (m == "PUT") {
    boost::system::error_code ec;
    json::value body = json::parse(c.req.body, ec);
    const json::object* o = ec ? nullptr : body.if_object();
    if (o == nullptr) return error_answer(400, "invalid_request", "expected a JSON object");
    sim_update u;
    if (auto* a = o->if_contains("action")) {
      const json::string* name = a->if_string();
      if (name == nullptr) return error_answer(400, "invalid_request", "action must be a string");
      if (*name == "activate")
        u.action = sim_action::activate;
      else if (*name == "reactivate")
        u.action = sim_action::reactivate;
      else if (*name == "deactivate")
        u.action = sim_action::deactivate;
      else if (*name == "start_factory_test")
        u.action = sim_action::start_factory_test;
      else
        return error_answer(400, "invalid_request",
                            "action must be activate, deactivate or reactivate");
    }
    if (auto* l = o->if_contains("mb_limit")) {
      auto mb = mb_limit_of(*l);
      if (!mb)
        return error_answer(400, "invalid_request",
                            "mb_limit must be an integer from 1 to 100000000");
      u.mb_limit = mb;
    }
    if (!u.action && !u.mb_limit)
      return error_answer(400, "invalid_request", "expected action and/or mb_limit");
    auto v = c.eng.update_sim(id, u, scope);
    if (!v) return control_error_answer(v.error());
    json::object out = sim_answer(c.api, *v);
    out["ok"] = true;
    return json_answer(200, out);
  }
  // DELETE: release.
  sim_update u;
  u.action = sim_action::release;
  auto v = c.eng.update_sim(id, u, scope);
  if (!v) return control_error_answer(v.error());
  http_response r;
  r.status = 204;
  return r;
}

// GET of one SIM from its shard, without a worker thread.
bool one_sim_read(route_call& c, std::function<void(http_response)>& done) {
  auto id = iccid::parse(c.seg().back());
  if (!id) return false;
  if (c.eng.rating() != nullptr) return false;  // rating reads every shard: a worker answers
  c.eng.get_sim_async(
      *id, scope_of(c), [&api = c.api, done = std::move(done)](control_result<sim_view> v) {
        done(v ? json_answer(200, sim_answer(api, *v)) : control_error_answer(v.error()));
      });
  return true;
}

http_response sim_usage(route_call& c) {
  auto parsed = iccid_of(c.seg()[c.seg().size() - 2]);
  if (auto* err = std::get_if<http_response>(&parsed)) return *err;
  auto u = c.eng.sim_usage_by_day(std::get<iccid>(parsed), scope_of(c));
  if (!u) return control_error_answer(u.error());
  const sim_view& v = u->first;
  json::object o{{"iccid", v.id.str()},
                 {"usage_by_day", by_day_json(u->second, c.mb())},
                 {"period_start", time_or_null(v.period_start)},
                 {"period_end", time_or_null(v.period_end)},
                 {"bytes_up", v.bytes_up},
                 {"bytes_down", v.bytes_down},
                 {"usage_bytes", v.usage_bytes()},
                 {"limit_bytes", v.limit_bytes},
                 {"mb_limit", v.mb_limit},
                 {"status", particle_status(v.state)}};
  // The SIM object's rating and network fields too (API.md "Rating").
  json::object full = sim_answer(c.api, v);
  for (const char* key : {"zone", "by_zone", "estimated_cost", "network_state"}) {
    if (auto* x = full.if_contains(key)) o[key] = *x;
  }
  return json_answer(200, o);
}

http_response import_sims(route_call& c, const std::string& product) {
  auto body = read_import(c.req);
  if (auto* err = std::get_if<http_response>(&body)) return *err;
  auto& ib = std::get<import_body>(body);
  import_options how;
  how.initial = ib.state.value_or(sim_state::active);
  how.country = ib.country;
  if (ib.transfer && !c.who.admin) {
    return error_answer(403, "forbidden", "only an admin transfers SIMs between products");
  }
  how.transfer = ib.transfer;
  how.keep_limit = ib.keep_limit;
  auto r = c.eng.import_sims(product, ib.ids, how);
  if (!r) return control_error_answer(r.error());
  json::array invalid;
  for (const auto& e : ib.invalid) {
    invalid.push_back(
        json::object{{"line", e.line}, {"value", printable(e.value)}, {"reason", e.reason}});
  }
  for (const auto& refused : r->refused) {
    // Another product's SIM is as if absent for a product token: a neutral reason.
    invalid.push_back(
        json::object{{"line", refused.index + 1},
                     {"value", refused.id.str()},
                     {"reason", c.who.admin ? refused.reason : std::string("not_available")}});
  }
  json::object o{{"ok", true},
                 {"imported", r->imported},
                 {"already_present", r->already_present},
                 {"transferred", r->transferred},
                 {"invalid", std::move(invalid)}};
  return json_answer(200, o);
}

http_response sim_list(route_call& c) {
  std::optional<std::string> product;
  if (in_product(c)) {
    if (!c.eng.get_product(c.seg()[2])) return error_answer(404, "not_found", "no such product");
    product = c.seg()[2];
  } else if (!c.who.admin) {
    product = c.who.product;
  }
  if (c.req.method == "POST") return import_sims(c, *product);
  std::uint64_t page = 1, per_page = 25;
  if (auto p = c.t.param("page")) {
    auto v = to_uint(*p);
    if (!v || *v == 0 || *v > 1'000'000'000)
      return error_answer(400, "invalid_request", "page must be 1 to 1000000000");
    page = *v;
  }
  auto pp = c.t.param("per_page");
  if (!pp) pp = c.t.param("perPage");
  if (pp) {
    auto v = to_uint(*pp);
    if (!v || *v == 0 || *v > 1000)
      return error_answer(400, "invalid_request", "per_page must be 1 to 1000");
    per_page = *v;
  }
  sim_filter f;
  f.product = product;
  if (auto st = c.t.param("status")) {
    auto state = state_from_name(*st);
    if (!state) return error_answer(400, "invalid_request", "unknown status " + *st);
    f.state = state;
  }
  if (auto u = c.t.param("unused")) {
    if (*u != "true" && *u != "false")
      return error_answer(400, "invalid_request", "unused must be true or false");
    f.unused = *u == "true";
    if (f.unused && !product) {
      return error_answer(400, "invalid_request",
                          "unused=true lists a product's SIMs: /v1/products/:p/sims?unused=true");
    }
  }
  json::array sims;
  std::size_t total = 0;
  if (auto one = c.t.param("iccid")) {
    auto parsed = iccid_of(*one);
    if (auto* err = std::get_if<http_response>(&parsed)) return *err;
    auto v = c.eng.get_sim(std::get<iccid>(parsed), product.value_or(""));
    if (v && (!f.state || v->state == *f.state) && (f.state || v->state != sim_state::released)) {
      total = 1;
      if (page == 1) sims.push_back(sim_answer(c.api, *v));
    }
  } else {
    // (page is at most 10^9 and per_page 1000: the offset cannot wrap)
    sim_page pg = c.eng.list_sims(f, (page - 1) * per_page, per_page);
    total = pg.total;
    for (const auto& v : pg.sims) sims.push_back(sim_answer(c.api, v));
  }
  json::object o{{"sims", std::move(sims)},
                 {"meta", json::object{{"total_pages", (total + per_page - 1) / per_page},
                                       {"total", total},
                                       {"page", page},
                                       {"per_page", per_page}}}};
  return json_answer(200, o);
}

}  // namespace

std::vector<route> sim_routes() {
  constexpr std::string_view one_methods = "GET HEAD PUT DELETE",
                             one_allow = "GET, HEAD, PUT, DELETE";
  return {
      {{"v1", "sims", ":iccid"},
       one_methods,
       one_allow,
       false,
       "no such SIM",
       one_sim,
       one_sim_read},
      {{"v1", "products", ":p", "sims", ":iccid"},
       one_methods,
       one_allow,
       false,
       "no such SIM",
       one_sim,
       one_sim_read},
      {{"v1", "sims", ":iccid", "data_usage"}, "GET", "GET", false, "no such SIM", sim_usage},
      {{"v1", "products", ":p", "sims", ":iccid", "data_usage"},
       "GET",
       "GET",
       false,
       "no such SIM",
       sim_usage},
      {{"v1", "sims"}, "GET", "GET", false, "no such product", sim_list},
      {{"v1", "products", ":p", "sims"},
       "GET POST",
       "GET, POST",
       false,
       "no such product",
       sim_list},
  };
}

}  // namespace simcap::web
