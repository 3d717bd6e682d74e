#include "http/http_api.hpp"

#include <spdlog/spdlog.h>

#include <sstream>

#include "http/answers.hpp"
#include "http/request.hpp"
#include "http/routes.hpp"

namespace simcap {

// ------------------------------------------------------------------ the table

namespace web {

const std::vector<route>& route_table() {
  static const std::vector<route> table = [] {
    std::vector<route> all;
    for (auto part : {admin_routes(), sim_routes(), product_routes(), event_routes(), sink_routes(),
                      webhook_routes()}) {
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  }();
  return table;
}

std::string route_name(const route& r) {
  std::string name;
  for (std::string_view seg : r.pattern) {
    name += '/';
    name += seg;
  }
  return name;
}

const route* match_route(const std::vector<std::string>& segs) {
  // The most literal match wins: /v1/products/:p/sims/data_usage before .../sims/:iccid.
  const route* best = nullptr;
  int best_literals = -1;
  for (const route& r : route_table()) {
    if (r.pattern.size() != segs.size()) continue;
    int literals = 0;
    bool match = true;
    for (std::size_t i = 0; i < segs.size() && match; ++i) {
      if (r.pattern[i].starts_with(':')) continue;
      match = r.pattern[i] == segs[i];
      ++literals;
    }
    if (match && literals > best_literals) {
      best = &r;
      best_literals = literals;
    }
  }
  return best;
}

int product_segment(const route& r) {
  for (std::size_t i = 0; i < r.pattern.size(); ++i) {
    if (r.pattern[i] == ":p") return static_cast<int>(i);
  }
  return -1;
}

namespace {
bool takes(const route& r, std::string_view method) {
  if (r.methods == "*") return true;
  std::string_view list = r.methods;
  while (!list.empty()) {
    const auto sp = list.find(' ');
    if (list.substr(0, sp) == method) return true;
    list = sp == std::string_view::npos ? std::string_view() : list.substr(sp + 1);
  }
  return false;
}
}  // namespace

}  // namespace web

// ------------------------------------------------------------------ http_api

http_api::http_api(engine& e, std::vector<token_config> tokens, feed_registry* feeds,
                   bool simulated_clock)
    : eng_(e), tokens_(std::move(tokens)), feeds_(feeds), simulated_clock_(simulated_clock) {}

std::string http_api::route_of(const http_request& req) {
  auto t = web::parse_target(req.target);
  const web::route* r = t ? web::match_route(t->segs) : nullptr;
  return r != nullptr ? web::route_name(*r) : std::string("unmatched");
}

void http_api::count(const std::string& route, unsigned status) {
  std::lock_guard lock(counts_mu_);
  counts_[{route, status}]++;
}

std::string http_api::http_metrics() const {
  std::ostringstream os;
  os << "# HELP simcap_http_requests_total HTTP requests by route and status code.\n"
     << "# TYPE simcap_http_requests_total counter\n";
  {
    std::lock_guard lock(counts_mu_);
    for (const auto& [key, n] : counts_) {
      os << "simcap_http_requests_total{route=\"" << key.first << "\",code=\"" << key.second
         << "\"} " << n << "\n";
    }
  }
  os << "# HELP simcap_http_long_polls Long-polls (GET /v1/events?wait=) waiting for an event "
        "now.\n"
     << "# TYPE simcap_http_long_polls gauge\nsimcap_http_long_polls " << long_polls_.load()
     << "\n";
  return os.str();
}

http_response http_api::handle(const http_request& req) {
  using namespace web;
  auto t = parse_target(req.target);
  if (!t) return error_answer(400, "invalid_request", "malformed request target");
  const route* r = match_route(t->segs);
  auto method_not_allowed = [&] {
    return error_answer(405, "method_not_allowed", "allowed: " + std::string(r->allow));
  };
  if (r != nullptr && r->open) {
    if (!takes(*r, req.method)) return method_not_allowed();
    static const caller nobody;
    route_call c{*this, eng_, req, *t, nobody};
    return r->handle(c);
  }
  std::optional<caller> who = find_caller(tokens_, req, *t);
  if (!who) return error_answer(401, "invalid_token", "missing or unknown access token");
  if (r == nullptr) return error_answer(404, "not_found", "no such route");
  if (const int p = product_segment(*r);
      p >= 0 && !who->may_see(t->segs[static_cast<std::size_t>(p)])) {
    return error_answer(404, "not_found", r->not_found);
  }
  if (!takes(*r, req.method)) return method_not_allowed();
  route_call c{*this, eng_, req, *t, *who};
  try {
    return r->handle(c);
  } catch (const std::exception& e) {
    // A read of the store that cannot be done now (the store closed by a failed reopen, an I/O
    // error): the client may ask again.
    spdlog::warn("http: {} {}: {}", req.method, route_of(req), e.what());
    return error_answer(503, "unavailable", std::string("cannot answer now: ") + e.what());
  }
}

bool http_api::handle_async(const http_request& req, std::function<void(http_response)> done) {
  using namespace web;
  if (req.method != "GET") return false;
  auto t = parse_target(req.target);
  if (!t) return false;
  const route* r = match_route(t->segs);
  if (r == nullptr || r->read == nullptr || r->open) return false;
  std::optional<caller> who = find_caller(tokens_, req, *t);
  if (!who) return false;
  if (const int p = product_segment(*r);
      p >= 0 && !who->may_see(t->segs[static_cast<std::size_t>(p)]))
    return false;
  route_call c{*this, eng_, req, *t, *who};
  return r->read(c, done);
}

}  // namespace simcap
