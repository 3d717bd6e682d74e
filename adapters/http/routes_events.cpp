// The event log: GET /v1/events (filters, paging by id, long-poll with ?wait=).
#include <boost/json.hpp>
#include <variant>

#include "http/answers.hpp"
#include "http/routes.hpp"

namespace simcap::web {

namespace {

http_response events(route_call& c) {
  std::uint64_t after = 0, limit = 100, wait = 0;
  if (auto v = c.t.param("after")) {
    auto n = to_uint(*v);
    if (!n) return error_answer(400, "invalid_request", "after must be an event id");
    after = *n;
  }
  if (auto v = c.t.param("limit")) {
    auto n = to_uint(*v);
    if (!n || *n == 0 || *n > 10000)
      return error_answer(400, "invalid_request", "limit must be 1 to 10000");
    limit = *n;
  }
  if (auto v = c.t.param("wait")) {
    auto n = to_uint(*v);
    if (!n || *n > 300)
      return error_answer(400, "invalid_request", "wait must be 0 to 300 seconds");
    wait = *n;
  }
  event_filter f;
  const std::optional<std::string> asked = c.t.param("product");
  if (!c.who.admin && asked && *asked != c.who.product)
    return error_answer(404, "not_found", "no such product");
  const std::optional<std::string> product =
      c.who.admin ? asked : std::optional<std::string>(c.who.product);
  if (product) {
    auto products = c.eng.products();
    auto it = std::find_if(products.begin(), products.end(),
                           [&](const product_view& p) { return p.id == *product; });
    if (it == products.end()) return json_answer(200, json::object{{"events", json::array{}}});
    f.product = static_cast<std::uint16_t>(it - products.begin());
  }
  if (auto v = c.t.param("iccid")) {
    auto id = iccid::parse(*v);
    if (!id) return error_answer(400, "invalid_iccid", describe(id.error()));
    f.sim = id->key();
  }
  if (auto v = c.t.param("type")) {
    auto type = event_type_from_name(*v);
    if (!type) return error_answer(400, "invalid_request", "unknown event type " + *v);
    f.type = type;
  }
  auto evs = c.eng.events().read(after, limit, f);
  json::array arr;
  for (const auto& e : evs) arr.push_back(event_object(e, c.eng));
  http_response r = json_answer(200, json::object{{"events", std::move(arr)}});
  if (evs.empty()) r.long_poll = std::chrono::seconds(wait);
  return r;
}

}  // namespace

std::vector<route> event_routes() {
  return {
      {{"v1", "events"}, "GET", "GET", false, {}, events},
  };
}

}  // namespace simcap::web
