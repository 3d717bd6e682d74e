// Outbound sinks (admin only): their state, their dead letters and the redrive.
#include <boost/json.hpp>

#include "http/answers.hpp"
#include "http/routes.hpp"
#include "outbound/outbound.hpp"

namespace simcap::web {

namespace {

std::optional<http_response> refuse(route_call& c) {
  if (!c.who.admin) return error_answer(403, "forbidden", "sinks are visible to admin tokens only");
  return std::nullopt;
}

outbound::sink* sink_of(route_call& c) {
  outbound::service* s = c.api.outbound();
  return s != nullptr ? s->find(c.seg()[2]) : nullptr;
}

http_response sinks(route_call& c) {
  if (auto r = refuse(c)) return *r;
  json::array arr;
  if (outbound::service* s = c.api.outbound()) {
    for (const auto& st : s->stats()) {
      arr.push_back(json::object{{"name", st.name},
                                 {"kind", st.kind},
                                 {"delivered", st.delivered},
                                 {"retried", st.retried},
                                 {"parked", st.parked},
                                 {"backlog", st.backlog},
                                 {"expired", st.expired},
                                 {"oldest_undelivered_age_s", st.oldest_undelivered_age_s},
                                 {"last_error", st.last_error}});
    }
  }
  return json_answer(200, json::object{{"sinks", std::move(arr)}});
}

http_response dead_letters(route_call& c) {
  if (auto r = refuse(c)) return *r;
  outbound::sink* s = sink_of(c);
  if (s == nullptr) return error_answer(404, "not_found", "no such sink");
  json::array arr;
  for (const auto& p : s->dead_letters()) {
    arr.push_back(json::object{{"event", event_object(p.ev, c.eng)},
                               {"status", p.status},
                               {"answer", p.answer},
                               {"parked_at", format_rfc3339(p.parked_at)}});
  }
  return json_answer(200, json::object{{"dead_letters", std::move(arr)}});
}

http_response redrive(route_call& c) {
  if (auto r = refuse(c)) return *r;
  outbound::sink* s = sink_of(c);
  if (s == nullptr) return error_answer(404, "not_found", "no such sink");
  return json_answer(200, json::object{{"ok", true}, {"requeued", s->redrive()}});
}

}  // namespace

std::vector<route> sink_routes() {
  return {
      {{"v1", "sinks"}, "GET", "GET", false, {}, sinks},
      {{"v1", "sinks", ":name", "dead_letters"}, "GET", "GET", false, {}, dead_letters},
      {{"v1", "sinks", ":name", "dead_letters", "redrive"}, "POST", "POST", false, {}, redrive},
  };
}

}  // namespace simcap::web
