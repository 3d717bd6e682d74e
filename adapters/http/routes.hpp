#pragma once
// The route table of the HTTP port. Each route names its path pattern, the methods it takes,
// who may call it and its handler; routing, the route names in metrics and the fast path of
// reads the shards answer on their own (http_api::handle_async) all come from it.
//
// How a request is dispatched (http_api.cpp), in this order:
//   400 a target that does not parse
//   open routes (health, readiness, metrics): the method (405), then the handler
//   401 no or an unknown token
//   404 no route matches
//   404 a `:p` segment names a product the caller does not see (the route's not_found text)
//   405 a method the route does not take
//   then the handler, which checks the rest (bodies, parameters, admin-only).
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_api.hpp"
#include "http/request.hpp"

namespace simcap::web {

struct route_call {
  http_api& api;
  engine& eng;
  const http_request& req;
  const target& t;
  const caller& who;  // nobody (not admin, no product) on open routes
  const std::vector<std::string>& seg() const noexcept { return t.segs; }
  double mb() const noexcept { return static_cast<double>(eng.options().mb_bytes); }
};

using route_handler = http_response (*)(route_call&);
// A GET the shards answer on their own: calls done once (in this thread or a shard's) and
// returns true, or returns false having called nothing (handle() answers then).
using route_read = bool (*)(route_call&, std::function<void(http_response)>& done);

struct route {
  std::vector<std::string_view> pattern;  // ":x" matches any segment; ":p" is a product
  std::string_view methods;               // the methods it takes, space-separated
  std::string_view allow;                 // what a 405 lists
  bool open = false;                      // no token needed
  std::string_view not_found;             // the 404 text when :p is not the caller's
  route_handler handle = nullptr;
  route_read read = nullptr;
};

// The routes of each room (routes_*.cpp), and all of them.
std::vector<route> sim_routes();
std::vector<route> product_routes();
std::vector<route> event_routes();
std::vector<route> admin_routes();
std::vector<route> sink_routes();
std::vector<route> webhook_routes();
const std::vector<route>& route_table();

// "/v1/products/:p/sims/:iccid": the route's name in metrics.
std::string route_name(const route& r);
// The route whose pattern the segments match, or nullptr.
const route* match_route(const std::vector<std::string>& segs);
// The index of the :p segment in the route's pattern, or -1.
int product_segment(const route& r);

}  // namespace simcap::web
