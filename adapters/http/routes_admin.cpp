// Operations routes: health, readiness and metrics (no token), the caller, the feeds, and the
// simulated clock.
#include <boost/json.hpp>

#include "http/answers.hpp"
#include "http/metrics.hpp"
#include "http/routes.hpp"

namespace simcap::web {

namespace {

http_response healthz(route_call&) { return json_answer(200, json::object{{"ok", true}}); }

http_response readyz(route_call& c) {
  if (!c.api.ready())
    return error_answer(503, "not_ready", "state is being recovered or ports are not open");
  if (auto why = c.eng.store_error())
    return error_answer(503, "not_ready", "the store failed: " + *why);
  return json_answer(200, json::object{{"ok", true}});
}

http_response metrics(route_call& c) {
  http_response r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = prometheus_text(c.eng, c.api.feeds(), c.api);
  return r;
}

http_response user(route_call& c) {
  json::object o;
  o["username"] = c.who.admin ? "admin" : "product:" + c.who.product;
  o["scope"] = c.who.admin ? "admin" : "product";
  if (!c.who.admin) o["product"] = c.who.product;
  return json_answer(200, o);
}

http_response feeds(route_call& c) {
  if (!c.who.admin) return error_answer(403, "forbidden", "feeds are visible to admin tokens only");
  json::array arr;
  if (const feed_registry* reg = c.api.feeds()) {
    for (const auto* f : reg->all()) {
      json::object rej;
      for (std::size_t i = 0; i < kRejectReasonCount; ++i) {
        rej[to_string(static_cast<reject_reason>(i))] = f->rejected[i].load();
      }
      arr.push_back(json::object{{"name", f->name},
                                 {"watermark", f->watermark.load()},
                                 {"records", f->records.load()},
                                 {"duplicates", f->duplicates.load()},
                                 {"rejected", std::move(rej)},
                                 {"last_seen", time_or_null(f->last_seen.load())},
                                 {"connected", f->sessions.load() > 0}});
    }
  }
  return json_answer(200, json::object{{"feeds", std::move(arr)}});
}

// Takes any method: without a simulated clock the route does not exist (404 before 405).
http_response clock(route_call& c) {
  if (!c.api.simulated_clock())
    return error_answer(404, "not_found", "no such route (the clock is real)");
  if (c.req.method != "POST") return error_answer(405, "method_not_allowed", "allowed: POST");
  if (!c.who.admin) return error_answer(403, "forbidden", "moving the clock needs an admin token");
  boost::system::error_code ec;
  json::value body = json::parse(c.req.body, ec);
  const json::object* o = ec ? nullptr : body.if_object();
  const json::value* now = o ? o->if_contains("now") : nullptr;
  std::optional<unix_seconds> t_new;
  if (now != nullptr && now->is_string()) t_new = parse_rfc3339(now->as_string());
  if (!t_new) return error_answer(400, "invalid_request", "expected {\"now\":\"RFC 3339 time\"}");
  if (*t_new < c.eng.time_source().now())
    return error_answer(400, "invalid_request", "the clock only moves forward");
  c.eng.advance_clock(*t_new);
  return json_answer(
      200, json::object{{"ok", true}, {"now", format_rfc3339(c.eng.time_source().now())}});
}

}  // namespace

std::vector<route> admin_routes() {
  return {
      {{"healthz"}, "GET HEAD", "GET", true, {}, healthz},
      {{"readyz"}, "GET HEAD", "GET", true, {}, readyz},
      {{"metrics"}, "GET HEAD", "GET", true, {}, metrics},
      {{"v1", "user"}, "GET", "GET", false, {}, user},
      {{"v1", "feeds"}, "GET", "GET", false, {}, feeds},
      {{"v1", "admin", "clock"}, "*", "POST", false, {}, clock},
  };
}

}  // namespace simcap::web
