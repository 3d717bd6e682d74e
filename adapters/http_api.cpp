#include "http_api.hpp"

#include <algorithm>
#include <charconv>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <cmath>
#include <sstream>

#include "secret.hpp"
#include "simcap/iccid_list.hpp"

namespace simcap {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// ------------------------------------------------------------------ answers

// Like json::serialize, but numbers with a fraction come out in plain decimal ("0.9", "799.1")
// rather than Boost.JSON's exponent form ("9E-1"): the same JSON, friendlier to read.
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
    default: out += json::serialize(v);
  }
}

http_response json_answer(unsigned status, const json::value& v) {
  http_response r;
  r.status = status;
  write_json(r.body, v);
  return r;
}

http_response error_answer(unsigned status, std::string_view code, std::string_view description,
                           json::object extra = {}) {
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

std::string action_name(sim_action a) { return std::string(to_string(a)); }

http_response control_error_answer(const control_error& e) {
  switch (e.code) {
    case control_errc::not_found: return error_answer(404, "not_found", e.message);
    case control_errc::unknown_product: return error_answer(404, "not_found", e.message);
    case control_errc::bad_request: return error_answer(400, "invalid_request", e.message);
    case control_errc::unavailable: return error_answer(503, "unavailable", e.message);
    case control_errc::invalid_transition:
    case control_errc::limit_reached: {
      json::object extra;
      if (e.current) {
        extra["state"] = to_string(*e.current);
        extra["status"] = particle_status(*e.current);
      }
      json::array allowed;
      for (sim_action a : e.allowed) allowed.emplace_back(action_name(a));
      extra["allowed_actions"] = std::move(allowed);
      return error_answer(409, e.code == control_errc::limit_reached ? "limit_reached" : "invalid_transition",
                          e.message, std::move(extra));
    }
  }
  return error_answer(500, "internal", e.message);
}

// A data limit in MB from JSON: an integer from 1 to kMaxMbLimit, also written as 5.0.
std::optional<std::uint32_t> mb_limit_of(const json::value& v) {
  double d = 0;
  if (v.is_int64()) d = static_cast<double>(v.as_int64());
  else if (v.is_uint64()) d = static_cast<double>(v.as_uint64());
  else if (v.is_double()) d = v.as_double();
  else return std::nullopt;
  if (!(d >= 1 && d <= kMaxMbLimit) || std::floor(d) != d) return std::nullopt;
  return static_cast<std::uint32_t>(d);
}

json::object sim_json(const sim_view& v) {
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
  o["anniversary_day"] = p.anniversary_day == 0 ? json::value(nullptr) : json::value(p.anniversary_day);
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

// ------------------------------------------------------------------ request parts

struct target {
  std::vector<std::string> segs;
  std::multimap<std::string, std::string> params;
  std::optional<std::string> param(const std::string& k) const {
    auto it = params.find(k);
    if (it == params.end()) return std::nullopt;
    return it->second;
  }
};

std::optional<target> parse_target(std::string_view t) {
  auto u = boost::urls::parse_origin_form(t);
  if (!u) return std::nullopt;
  target out;
  for (auto seg : u->segments()) {
    if (!seg.empty()) out.segs.push_back(std::string(seg));
  }
  for (auto p : u->params()) out.params.emplace(std::string(p.key), std::string(p.value));
  return out;
}

struct caller {
  bool admin = false;
  std::string product;  // when not admin
  bool may_see(std::string_view p) const { return admin || product == p; }
  std::string scope() const { return admin ? std::string() : product; }
};

// The ICCIDs of an import body: JSON {"sims":[...]}, a form with sims[], a .txt file as the
// plain body, or a multipart form whose field "file" is that file. Line numbers are 1-based
// positions in the list (JSON, form) or lines of the file.
struct import_body {
  std::vector<iccid> ids;
  std::vector<iccid_list_error> invalid;
  std::optional<sim_state> state;
  std::optional<std::string> country;
};

// A value echoed back in an answer: printable ASCII, anything else as '?', so that the answer
// stays valid JSON text whatever the request held.
std::string printable(std::string_view v, std::size_t max = 64) {
  std::string out(v.substr(0, max));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

// application/x-www-form-urlencoded as browsers and curl -d send it: '+' is a space, %XX a byte,
// and characters a strict URL query would refuse ("sims[]=...") are taken as they are.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body) {
  auto decode = [](std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      if (in[i] == '+') {
        out += ' ';
      } else if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
        out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
        i += 2;
      } else {
        out += in[i];
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  while (!body.empty()) {
    auto amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
    while (!pair.empty() && (pair.back() == '\r' || pair.back() == '\n')) pair.remove_suffix(1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    out.emplace_back(decode(pair.substr(0, eq)), eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1)));
  }
  return out;
}

std::string_view header_param(std::string_view header, std::string_view name) {
  auto p = header.find(name);
  if (p == std::string_view::npos) return {};
  auto v = header.substr(p + name.size());
  if (!v.empty() && v.front() == '"') {
    v.remove_prefix(1);
    return v.substr(0, v.find('"'));
  }
  return v.substr(0, v.find_first_of("; \t"));
}

std::optional<std::string> multipart_file(std::string_view body, std::string_view content_type) {
  std::string_view boundary = header_param(content_type, "boundary=");
  if (boundary.empty()) return std::nullopt;
  std::string delim = "--" + std::string(boundary);
  std::size_t pos = 0;
  while ((pos = body.find(delim, pos)) != std::string_view::npos) {
    pos += delim.size();
    auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) return std::nullopt;
    std::string_view head = body.substr(pos, head_end - pos);
    auto data_start = head_end + 4;
    auto data_end = body.find("\r\n" + delim, data_start);
    if (data_end == std::string_view::npos) return std::nullopt;
    if (header_param(head, "name=") == "file") return std::string(body.substr(data_start, data_end - data_start));
    pos = data_end;
  }
  return std::nullopt;
}

void add_listed(import_body& out, std::size_t line, std::string_view value) {
  auto id = iccid::parse(value);
  if (id) {
    out.ids.push_back(*id);
  } else {
    out.invalid.push_back({line, std::string(value.substr(0, 64)), std::string(describe(id.error()))});
  }
}

std::variant<import_body, http_response> read_import(const http_request& req) {
  import_body out;
  std::string_view ct = req.content_type;
  auto lower_ct = std::string(ct.substr(0, ct.find(';')));
  std::transform(lower_ct.begin(), lower_ct.end(), lower_ct.begin(), ::tolower);
  // curl -d sends a JSON body as a form: a body that starts with '{' is JSON.
  const auto first = req.body.find_first_not_of(" \t\r\n");
  const bool json_body = first != std::string::npos && req.body[first] == '{' &&
                         (lower_ct == "application/x-www-form-urlencoded" || lower_ct.empty());
  if (lower_ct == "application/json" || json_body) {
    boost::system::error_code ec;
    json::value v = json::parse(req.body, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::array* sims = nullptr;
    if (o != nullptr) {
      if (auto* s = o->if_contains("sims")) sims = s->if_array();
    }
    if (sims == nullptr) {
      return error_answer(400, "invalid_request", "expected {\"sims\":[\"ICCID\", ...]}");
    }
    std::size_t line = 0;
    for (const auto& s : *sims) {
      ++line;
      if (const auto* str = s.if_string()) {
        add_listed(out, line, *str);
      } else {
        out.invalid.push_back({line, json::serialize(s).substr(0, 64), "ICCID must be a string"});
      }
    }
    if (auto* st = o->if_contains("state")) {
      auto name = st->if_string();
      auto state = name ? state_from_name(*name) : std::nullopt;
      if (!state) return error_answer(400, "invalid_request", "state must be active, issued or factory_test");
      out.state = state;
    }
    if (auto* c = o->if_contains("country")) {
      if (!c->is_string()) return error_answer(400, "invalid_request", "country must be a string");
      out.country = std::string(c->as_string());
    }
    return out;
  }
  if (lower_ct == "application/x-www-form-urlencoded") {
    std::size_t line = 0;
    for (auto& [key, value] : parse_form(req.body)) {
      if (key == "sims[]" || key == "sims") add_listed(out, ++line, value);
      if (key == "country") out.country = value;
      if (key == "state") {
        out.state = state_from_name(value);
        if (!out.state) return error_answer(400, "invalid_request", "state must be active, issued or factory_test");
      }
    }
    return out;
  }
  std::string text;
  if (lower_ct == "multipart/form-data") {
    auto file = multipart_file(req.body, req.content_type);
    if (!file) return error_answer(400, "invalid_request", "multipart form without a \"file\" field");
    text = std::move(*file);
  } else {
    text = req.body;  // a .txt file sent as the body
  }
  iccid_list list = parse_iccid_list(text);
  out.ids = std::move(list.ids);
  out.invalid = std::move(list.invalid);
  return out;
}

// The token's owner: Authorization: Bearer, else ?access_token=.
json::array by_day_json(const std::vector<day_bytes>& days, double mb) {
  json::array arr;
  double cumulative = 0;
  for (const auto& d : days) {
    double used = static_cast<double>(d.bytes) / mb;
    cumulative += used;
    arr.push_back(json::object{{"date", format_date(d.day)}, {"mbs_used", used}, {"mbs_used_cumulative", cumulative}});
  }
  return arr;
}

// GET /v1/products/:p/sims/data_usage: Particle's fleet fields, then simcap's.
http_response fleet_answer(const fleet_usage& u, unix_seconds now, double mb) {
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
                 {"usage_by_hour", std::move(hours)}};
  return json_answer(200, o);
}

std::optional<caller> find_caller(const std::vector<token_config>& tokens, const http_request& req,
                                  const target& t) {
  std::string token;
  if (req.authorization.size() > 7 && strncasecmp(req.authorization.c_str(), "Bearer ", 7) == 0) {
    token = req.authorization.substr(7);
  } else if (auto q = t.param("access_token")) {
    token = *q;
  }
  std::optional<caller> who;
  for (const auto& tc : tokens) {
    if (!token.empty() && same_secret(tc.token, token)) who = caller{tc.admin, tc.product};
  }
  return who;
}

}  // namespace

// ------------------------------------------------------------------ http_api

http_api::http_api(engine& e, std::vector<token_config> tokens, feed_registry* feeds, bool simulated_clock)
    : eng_(e), tokens_(std::move(tokens)), feeds_(feeds), simulated_clock_(simulated_clock) {}

std::string http_api::route_of(const http_request& req) {
  auto t = parse_target(req.target);
  if (!t) return "unmatched";
  const auto& s = t->segs;
  struct pattern {
    std::vector<std::string_view> segs;  // ":x" matches any segment
    std::string_view name;
  };
  static const std::vector<pattern> kRoutes = {
      {{"healthz"}, "/healthz"},
      {{"readyz"}, "/readyz"},
      {{"metrics"}, "/metrics"},
      {{"v1", "user"}, "/v1/user"},
      {{"v1", "sims"}, "/v1/sims"},
      {{"v1", "sims", ":iccid"}, "/v1/sims/:iccid"},
      {{"v1", "products", ":p"}, "/v1/products/:p"},
      {{"v1", "products", ":p", "sims"}, "/v1/products/:p/sims"},
      {{"v1", "products", ":p", "sims", "data_usage"}, "/v1/products/:p/sims/data_usage"},
      {{"v1", "products", ":p", "sims", ":iccid"}, "/v1/products/:p/sims/:iccid"},
      {{"v1", "products", ":p", "sims", ":iccid", "data_usage"}, "/v1/products/:p/sims/:iccid/data_usage"},
      {{"v1", "sims", ":iccid", "data_usage"}, "/v1/sims/:iccid/data_usage"},
      {{"v1", "products", ":p", "periods"}, "/v1/products/:p/periods"},
      {{"v1", "products", ":p", "periods", ":start"}, "/v1/products/:p/periods/:start"},
      {{"v1", "events"}, "/v1/events"},
      {{"v1", "feeds"}, "/v1/feeds"},
      {{"v1", "admin", "clock"}, "/v1/admin/clock"},
  };
  for (const pattern& p : kRoutes) {
    if (p.segs.size() != s.size()) continue;
    bool match = true;
    for (std::size_t i = 0; i < s.size() && match; ++i) match = p.segs[i][0] == ':' || p.segs[i] == s[i];
    if (match) return std::string(p.name);
  }
  return "unmatched";
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
      os << "simcap_http_requests_total{route=\"" << key.first << "\",code=\"" << key.second << "\"} " << n
         << "\n";
    }
  }
  os << "# HELP simcap_http_long_polls Long-polls (GET /v1/events?wait=) waiting for an event now.\n"
     << "# TYPE simcap_http_long_polls gauge\nsimcap_http_long_polls " << long_polls_.load() << "\n";
  return os.str();
}

bool http_api::handle_async(const http_request& req, std::function<void(http_response)> done) {
  if (req.method != "GET") return false;
  auto t = parse_target(req.target);
  if (!t) return false;
  const auto& s = t->segs;
  const bool product_route = s.size() >= 3 && s[0] == "v1" && s[1] == "products";
  std::optional<caller> who = find_caller(tokens_, req, *t);
  if (!who) return false;

  // Fleet usage: every shard adds its part, the last one answers.
  if (product_route && s.size() == 5 && s[3] == "sims" && s[4] == "data_usage") {
    if (!who->may_see(s[2])) return false;
    eng_.product_usage_async(s[2], [this, done = std::move(done)](control_result<fleet_usage> u) {
      if (!u) {
        done(control_error_answer(u.error()));
        return;
      }
      done(fleet_answer(*u, eng_.time_source().now(), static_cast<double>(eng_.options().mb_bytes)));
    });
    return true;
  }

  // One SIM: its shard answers.
  const bool plain = s.size() == 3 && s[0] == "v1" && s[1] == "sims";
  const bool in_product = product_route && s.size() == 5 && s[3] == "sims";
  if (!plain && !in_product) return false;
  auto id = iccid::parse(s.back());
  if (!id) return false;
  if (in_product && !who->may_see(s[2])) return false;
  std::string scope = in_product ? s[2] : who->scope();
  eng_.get_sim_async(*id, scope, [this, done = std::move(done)](control_result<sim_view> v) {
    if (!v) {
      done(control_error_answer(v.error()));
      return;
    }
    done(json_answer(200, sim_json(*v)));
  });
  return true;
}

http_response http_api::handle(const http_request& req) {
  auto t = parse_target(req.target);
  if (!t) return error_answer(400, "invalid_request", "malformed request target");
  const auto& s = t->segs;
  const std::string& m = req.method;
  auto method_not_allowed = [&](std::string_view allowed) {
    return error_answer(405, "method_not_allowed", "allowed: " + std::string(allowed));
  };

  // ---- unauthenticated
  if (s.size() == 1 && (s[0] == "healthz" || s[0] == "readyz" || s[0] == "metrics")) {
    if (m != "GET" && m != "HEAD") return method_not_allowed("GET");
    if (s[0] == "healthz") return json_answer(200, json::object{{"ok", true}});
    if (s[0] == "readyz") {
      if (!ready_.load()) return error_answer(503, "not_ready", "state is being recovered or ports are not open");
      if (auto why = eng_.store_error()) return error_answer(503, "not_ready", "the store failed: " + *why);
      return json_answer(200, json::object{{"ok", true}});
    }
    http_response r;
    r.content_type = "text/plain; version=0.0.4";
    std::ostringstream os;
    engine_stats st = eng_.stats();
    std::uint64_t duplicates = st.duplicate_ids;
    std::array<std::uint64_t, kRejectReasonCount> rejected{};
    if (feeds_ != nullptr) {
      for (const auto* f : feeds_->all()) {
        duplicates += f->duplicates.load();
        for (std::size_t i = 0; i < kRejectReasonCount; ++i) rejected[i] += f->rejected[i].load();
      }
    }
    os << "# HELP simcap_records_total Usage records by outcome.\n# TYPE simcap_records_total counter\n"
       << "simcap_records_total{outcome=\"counted\"} " << st.records_counted << "\n"
       << "simcap_records_total{outcome=\"late\"} " << st.late_records << "\n"
       << "simcap_records_total{outcome=\"duplicate\"} " << duplicates << "\n";
    os << "# HELP simcap_records_rejected_total Records not counted, by reason.\n"
       << "# TYPE simcap_records_rejected_total counter\n";
    for (std::size_t i = 0; i < kRejectReasonCount; ++i) {
      os << "simcap_records_rejected_total{reason=\"" << to_string(static_cast<reject_reason>(i)) << "\"} "
         << rejected[i] << "\n";
    }
    os << "# HELP simcap_queue_depth Messages waiting in a shard's queue.\n# TYPE simcap_queue_depth gauge\n";
    for (std::size_t i = 0; i < st.queue_depth.size(); ++i) {
      os << "simcap_queue_depth{shard=\"" << i << "\"} " << st.queue_depth[i] << "\n";
    }
    os << "# HELP simcap_batch_apply_seconds Time a shard takes to apply one batch of records.\n"
       << "# TYPE simcap_batch_apply_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < st.apply_bucket_counts.size(); ++i) {
      cumulative += st.apply_bucket_counts[i];
      os << "simcap_batch_apply_seconds_bucket{le=\"";
      if (i < st.apply_bucket_bounds.size()) {
        char b[32];
        auto r = std::to_chars(b, b + sizeof b, st.apply_bucket_bounds[i]);
        os.write(b, r.ptr - b);
      } else {
        os << "+Inf";
      }
      os << "\"} " << cumulative << "\n";
    }
    os << "simcap_batch_apply_seconds_sum " << st.apply_seconds << "\n"
       << "simcap_batch_apply_seconds_count " << cumulative << "\n";
    os << "# HELP simcap_sims SIMs by state.\n# TYPE simcap_sims gauge\n";
    for (int i = 0; i < kSimStateCount; ++i) {
      os << "simcap_sims{state=\"" << to_string(static_cast<sim_state>(i)) << "\"} " << st.sims_by_state[i] << "\n";
    }
    if (feeds_ != nullptr) {
      os << "# HELP simcap_feed_watermark Highest seq of a feed with everything up to it handled.\n"
         << "# TYPE simcap_feed_watermark gauge\n";
      for (const auto* f : feeds_->all()) {
        os << "simcap_feed_watermark{feed=\"" << f->name << "\"} " << f->watermark.load() << "\n";
      }
    }
    os << "# HELP simcap_events_last_id Id of the newest event.\n# TYPE simcap_events_last_id gauge\n"
       << "simcap_events_last_id " << eng_.events().last_id() << "\n";
    if (eng_.durable()) {
      const unix_seconds now = eng_.time_source().now();
      os << "# HELP simcap_checkpoints_total Checkpoints written.\n# TYPE simcap_checkpoints_total counter\n"
         << "simcap_checkpoints_total " << st.checkpoints << "\n"
         << "# HELP simcap_checkpoint_duration_seconds How long the last checkpoint took.\n"
         << "# TYPE simcap_checkpoint_duration_seconds gauge\n"
         << "simcap_checkpoint_duration_seconds " << st.last_checkpoint_seconds << "\n"
         << "# HELP simcap_checkpoint_age_seconds Time since the last checkpoint was written.\n"
         << "# TYPE simcap_checkpoint_age_seconds gauge\n"
         << "simcap_checkpoint_age_seconds " << (st.checkpoints == 0 ? 0 : now - st.last_checkpoint_time) << "\n"
         << "# HELP simcap_checkpoint_sims SIMs written by the last checkpoint.\n"
         << "# TYPE simcap_checkpoint_sims gauge\n"
         << "simcap_checkpoint_sims " << st.last_checkpoint_sims << "\n"
         << "# HELP simcap_checkpoint_cut_seconds The longest a shard stopped for the last checkpoint.\n"
         << "# TYPE simcap_checkpoint_cut_seconds gauge\n"
         << "simcap_checkpoint_cut_seconds " << st.last_cut_seconds << "\n"
         << "# HELP simcap_store_bytes Size of the store's files under data_dir.\n# TYPE simcap_store_bytes gauge\n"
         << "simcap_store_bytes " << st.store_bytes << "\n";
      if (feeds_ != nullptr) {
        os << "# HELP simcap_feed_durable_seq Highest seq of the feed in a durable checkpoint (acked).\n"
           << "# TYPE simcap_feed_durable_seq gauge\n";
        for (const auto* f : feeds_->all()) {
          os << "simcap_feed_durable_seq{feed=\"" << f->name << "\"} " << eng_.durable_seq(f->engine_id) << "\n";
        }
      }
    }
    os << http_metrics();
    r.body = os.str();
    return r;
  }

  // ---- authentication
  std::optional<caller> who = find_caller(tokens_, req, *t);
  if (!who) return error_answer(401, "invalid_token", "missing or unknown access token");

  auto parse_iccid_seg = [&](const std::string& text) -> std::variant<iccid, http_response> {
    auto id = iccid::parse(text);
    if (!id) return error_answer(400, "invalid_iccid", describe(id.error()));
    return *id;
  };

  // ---- /v1/user
  if (s.size() == 2 && s[0] == "v1" && s[1] == "user") {
    if (m != "GET") return method_not_allowed("GET");
    json::object o;
    o["username"] = who->admin ? "admin" : "product:" + who->product;
    o["scope"] = who->admin ? "admin" : "product";
    if (!who->admin) o["product"] = who->product;
    return json_answer(200, o);
  }

  const bool product_route = s.size() >= 3 && s[0] == "v1" && s[1] == "products";
  const double mb = static_cast<double>(eng_.options().mb_bytes);
  // ---- fleet usage: /v1/products/:p/sims/data_usage
  if (product_route && s.size() == 5 && s[3] == "sims" && s[4] == "data_usage") {
    if (m != "GET") return method_not_allowed("GET");
    if (!who->may_see(s[2])) return error_answer(404, "not_found", "no such product");
    auto u = eng_.product_usage(s[2]);
    if (!u) return control_error_answer(u.error());
    return fleet_answer(*u, eng_.time_source().now(), mb);
  }

  // ---- one SIM's usage: /v1/sims/:iccid/data_usage, /v1/products/:p/sims/:iccid/data_usage
  if ((s.size() == 4 && s[0] == "v1" && s[1] == "sims" && s[3] == "data_usage") ||
      (product_route && s.size() == 6 && s[3] == "sims" && s[5] == "data_usage")) {
    if (m != "GET") return method_not_allowed("GET");
    std::string scope = who->scope();
    if (product_route) {
      if (!who->may_see(s[2])) return error_answer(404, "not_found", "no such SIM");
      scope = s[2];
    }
    auto parsed = parse_iccid_seg(s[s.size() - 2]);
    if (auto* err = std::get_if<http_response>(&parsed)) return *err;
    auto u = eng_.sim_usage_by_day(std::get<iccid>(parsed), scope);
    if (!u) return control_error_answer(u.error());
    const sim_view& v = u->first;
    json::object o{{"iccid", v.id.str()},
                   {"usage_by_day", by_day_json(u->second, mb)},
                   {"period_start", time_or_null(v.period_start)},
                   {"period_end", time_or_null(v.period_end)},
                   {"bytes_up", v.bytes_up},
                   {"bytes_down", v.bytes_down},
                   {"usage_bytes", v.usage_bytes()},
                   {"limit_bytes", v.limit_bytes},
                   {"mb_limit", v.mb_limit},
                   {"status", particle_status(v.state)}};
    return json_answer(200, o);
  }

  // ---- one SIM: /v1/sims/:iccid and /v1/products/:p/sims/:iccid
  if ((s.size() == 3 && s[0] == "v1" && s[1] == "sims") || (product_route && s.size() == 5 && s[3] == "sims")) {
    std::string scope = who->scope();
    if (product_route) {
      if (!who->may_see(s[2])) return error_answer(404, "not_found", "no such SIM");
      scope = s[2];
    }
    auto parsed = parse_iccid_seg(s.back());
    if (auto* err = std::get_if<http_response>(&parsed)) return *err;
    const iccid id = std::get<iccid>(parsed);
    if (m == "GET" || m == "HEAD") {
      auto v = eng_.get_sim(id, scope);
      if (m == "HEAD") {
        http_response r;
        r.status = v ? 204 : 404;
        return r;
      }
      if (!v) return control_error_answer(v.error());
      return json_answer(200, sim_json(*v));
    }
    if (m == "PUT") {
      boost::system::error_code ec;
      json::value body = json::parse(req.body, ec);
      const json::object* o = ec ? nullptr : body.if_object();
      if (o == nullptr) return error_answer(400, "invalid_request", "expected a JSON object");
      sim_update u;
      if (auto* a = o->if_contains("action")) {
        const json::string* name = a->if_string();
        if (name == nullptr) return error_answer(400, "invalid_request", "action must be a string");
        if (*name == "activate") u.action = sim_action::activate;
        else if (*name == "reactivate") u.action = sim_action::reactivate;
        else if (*name == "deactivate") u.action = sim_action::deactivate;
        else if (*name == "start_factory_test") u.action = sim_action::start_factory_test;
        else return error_answer(400, "invalid_request", "action must be activate, deactivate or reactivate");
      }
      if (auto* l = o->if_contains("mb_limit")) {
        auto mb = mb_limit_of(*l);
        if (!mb) return error_answer(400, "invalid_request", "mb_limit must be an integer from 1 to 100000000");
        u.mb_limit = mb;
      }
      if (!u.action && !u.mb_limit) return error_answer(400, "invalid_request", "expected action and/or mb_limit");
      auto v = eng_.update_sim(id, u, scope);
      if (!v) return control_error_answer(v.error());
      json::object out = sim_json(*v);
      out["ok"] = true;
      return json_answer(200, out);
    }
    if (m == "DELETE") {
      sim_update u;
      u.action = sim_action::release;
      auto v = eng_.update_sim(id, u, scope);
      if (!v) return control_error_answer(v.error());
      http_response r;
      r.status = 204;
      return r;
    }
    return method_not_allowed("GET, HEAD, PUT, DELETE");
  }

  // ---- SIM lists and import
  if ((s.size() == 2 && s[0] == "v1" && s[1] == "sims") || (product_route && s.size() == 4 && s[3] == "sims")) {
    std::optional<std::string> product;
    if (product_route) {
      if (!who->may_see(s[2]) || !eng_.get_product(s[2])) return error_answer(404, "not_found", "no such product");
      product = s[2];
    } else if (!who->admin) {
      product = who->product;
    }
    if (m == "POST" && product_route) {
      auto body = read_import(req);
      if (auto* err = std::get_if<http_response>(&body)) return *err;
      auto& ib = std::get<import_body>(body);
      import_options how;
      how.initial = ib.state.value_or(sim_state::active);
      how.country = ib.country;
      auto r = eng_.import_sims(*product, ib.ids, how);
      if (!r) return control_error_answer(r.error());
      json::array invalid;
      for (const auto& e : ib.invalid) {
        invalid.push_back(json::object{{"line", e.line}, {"value", printable(e.value)}, {"reason", e.reason}});
      }
      for (const auto& refused : r->refused) {
        // Another product's SIM is as if absent for a product token: a neutral reason.
        invalid.push_back(json::object{{"line", refused.index + 1}, {"value", refused.id.str()},
                                       {"reason", who->admin ? refused.reason : std::string("not_available")}});
      }
      json::object o{{"ok", true}, {"imported", r->imported}, {"already_present", r->already_present},
                     {"invalid", std::move(invalid)}};
      return json_answer(200, o);
    }
    if (m != "GET") return method_not_allowed(product_route ? "GET, POST" : "GET");
    std::uint64_t page = 1, per_page = 25;
    if (auto p = t->param("page")) {
      auto v = to_uint(*p);
      if (!v || *v == 0 || *v > 1'000'000'000) {
        return error_answer(400, "invalid_request", "page must be 1 to 1000000000");
      }
      page = *v;
    }
    auto pp = t->param("per_page");
    if (!pp) pp = t->param("perPage");
    if (pp) {
      auto v = to_uint(*pp);
      if (!v || *v == 0 || *v > 1000) return error_answer(400, "invalid_request", "per_page must be 1 to 1000");
      per_page = *v;
    }
    sim_filter f;
    f.product = product;
    if (auto st = t->param("status")) {
      auto state = state_from_name(*st);
      if (!state) return error_answer(400, "invalid_request", "unknown status " + *st);
      f.state = state;
    }
    json::array sims;
    std::size_t total = 0;
    if (auto one = t->param("iccid")) {
      auto parsed = parse_iccid_seg(*one);
      if (auto* err = std::get_if<http_response>(&parsed)) return *err;
      auto v = eng_.get_sim(std::get<iccid>(parsed), product.value_or(""));
      if (v && (!f.state || v->state == *f.state) && (f.state || v->state != sim_state::released)) {
        total = 1;
        if (page == 1) sims.push_back(sim_json(*v));
      }
    } else {
      // (page is at most 10^9 and per_page 1000: the offset cannot wrap)
      sim_page pg = eng_.list_sims(f, (page - 1) * per_page, per_page);
      total = pg.total;
      for (const auto& v : pg.sims) sims.push_back(sim_json(v));
    }
    json::object o{{"sims", std::move(sims)},
                   {"meta", json::object{{"total_pages", (total + per_page - 1) / per_page}, {"total", total},
                                         {"page", page}, {"per_page", per_page}}}};
    return json_answer(200, o);
  }

  // ---- closed periods: /v1/products/:p/periods and /v1/products/:p/periods/:start
  if (product_route && (s.size() == 4 || s.size() == 5) && s[3] == "periods") {
    if (m != "GET") return method_not_allowed("GET");
    if (!who->may_see(s[2])) return error_answer(404, "not_found", "no such product");
    std::optional<unix_seconds> start;
    if (s.size() == 5) {
      start = parse_rfc3339(s[4]);
      if (!start) {
        auto day = parse_rfc3339(s[4] + "T00:00:00Z");  // a date alone: that day's start
        if (!day) return error_answer(400, "invalid_request", "period start must be an RFC 3339 time or a date");
        start = day;
      }
    }
    auto periods = eng_.closed_periods(s[2], start.has_value());
    if (!periods) return control_error_answer(periods.error());
    auto summary = [mb](const closed_period& cp) {
      return json::object{{"start", format_rfc3339(cp.start)},
                          {"end", format_rfc3339(cp.end)},
                          {"total_bytes", cp.total_bytes},
                          {"total_mbs_used", static_cast<double>(cp.total_bytes) / mb},
                          {"chargeable_sims", cp.chargeable_sims}};
    };
    if (!start) {
      json::array arr;
      for (const auto& cp : *periods) arr.push_back(summary(cp));
      return json_answer(200, json::object{{"periods", std::move(arr)}});
    }
    for (const auto& cp : *periods) {
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

  // ---- products
  if (product_route && s.size() == 3) {
    if (!who->may_see(s[2])) return error_answer(404, "not_found", "no such product");
    if (m == "GET") {
      auto p = eng_.get_product(s[2]);
      if (!p) return error_answer(404, "not_found", "no such product");
      return json_answer(200, product_json(*p));
    }
    if (m == "PUT") {
      boost::system::error_code ec;
      json::value body = json::parse(req.body.empty() ? std::string_view("{}") : std::string_view(req.body), ec);
      const json::object* o = ec ? nullptr : body.if_object();
      if (o == nullptr) return error_answer(400, "invalid_request", "expected a JSON object");
      if (!who->admin && !eng_.get_product(s[2])) return error_answer(403, "forbidden", "only an admin creates products");
      if (o->contains("pool_mb") || o->contains("pool_action")) {
        return error_answer(400, "invalid_request", "pools (pool_mb, pool_action) are not supported yet");
      }
      product_settings ps;
      ps.id = s[2];
      if (auto* v = o->if_contains("default_mb_limit")) {
        auto mb = mb_limit_of(*v);
        if (!mb) return error_answer(400, "invalid_request", "default_mb_limit must be an integer from 1 to 100000000");
        ps.default_mb_limit = mb;
      }
      if (auto* v = o->if_contains("alert_thresholds")) {
        const json::array* a = v->if_array();
        if (a == nullptr) return error_answer(400, "invalid_request", "alert_thresholds must be an array of numbers");
        std::vector<double> th;
        for (const auto& x : *a) {
          if (!x.is_number()) return error_answer(400, "invalid_request", "alert_thresholds must be an array of numbers");
          th.push_back(x.to_number<double>());
        }
        ps.alert_thresholds = std::move(th);
      }
      if (auto* v = o->if_contains("country")) {
        if (!v->is_string()) return error_answer(400, "invalid_request", "country must be a string");
        ps.country = std::string(v->as_string());
      }
      auto r = eng_.put_product(ps);
      if (!r) return control_error_answer(r.error());
      return json_answer(200, product_json(*r));
    }
    return method_not_allowed("GET, PUT");
  }

  // ---- events
  if (s.size() == 2 && s[0] == "v1" && s[1] == "events") {
    if (m != "GET") return method_not_allowed("GET");
    std::uint64_t after = 0, limit = 100, wait = 0;
    if (auto v = t->param("after")) {
      auto n = to_uint(*v);
      if (!n) return error_answer(400, "invalid_request", "after must be an event id");
      after = *n;
    }
    if (auto v = t->param("limit")) {
      auto n = to_uint(*v);
      if (!n || *n == 0 || *n > 10000) return error_answer(400, "invalid_request", "limit must be 1 to 10000");
      limit = *n;
    }
    if (auto v = t->param("wait")) {
      auto n = to_uint(*v);
      if (!n || *n > 300) return error_answer(400, "invalid_request", "wait must be 0 to 300 seconds");
      wait = *n;
    }
    event_filter f;
    std::optional<std::string> product = who->admin ? t->param("product") : std::optional<std::string>(who->product);
    if (!who->admin && t->param("product") && *t->param("product") != who->product) {
      return error_answer(404, "not_found", "no such product");
    }
    if (product) {
      auto products = eng_.products();
      auto it = std::find_if(products.begin(), products.end(), [&](const product_view& p) { return p.id == *product; });
      if (it == products.end()) {
        return json_answer(200, json::object{{"events", json::array{}}});
      }
      f.product = static_cast<std::uint16_t>(it - products.begin());
    }
    if (auto v = t->param("iccid")) {
      auto parsed = parse_iccid_seg(*v);
      if (auto* err = std::get_if<http_response>(&parsed)) return *err;
      f.sim = std::get<iccid>(parsed).key();
    }
    if (auto v = t->param("type")) {
      auto type = event_type_from_name(*v);
      if (!type) return error_answer(400, "invalid_request", "unknown event type " + *v);
      f.type = type;
    }
    auto evs = eng_.events().read(after, limit, f);
    json::array arr;
    for (const auto& e : evs) {
      json::object o;
      o["id"] = e.id;
      o["time"] = format_rfc3339(e.time);
      o["iccid"] = e.sim != 0 ? json::value(iccid::from_key(e.sim).str()) : json::value(nullptr);
      o["product"] = eng_.product_name(e.product);
      o["type"] = to_string(e.type);
      o["reason"] = reason_text(e);
      o["usage_bytes"] = e.usage_bytes;
      o["limit_bytes"] = e.limit_bytes;
      if (e.period_start != 0) o["period_start"] = format_rfc3339(e.period_start);
      arr.push_back(std::move(o));
    }
    http_response r = json_answer(200, json::object{{"events", std::move(arr)}});
    if (evs.empty()) r.long_poll = std::chrono::seconds(wait);
    return r;
  }

  // ---- feeds
  if (s.size() == 2 && s[0] == "v1" && s[1] == "feeds") {
    if (m != "GET") return method_not_allowed("GET");
    if (!who->admin) return error_answer(403, "forbidden", "feeds are visible to admin tokens only");
    json::array arr;
    if (feeds_ != nullptr) {
      for (const auto* f : feeds_->all()) {
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

  // ---- simulated clock
  if (s.size() == 3 && s[0] == "v1" && s[1] == "admin" && s[2] == "clock") {
    if (!simulated_clock_) return error_answer(404, "not_found", "no such route (the clock is real)");
    if (m != "POST") return method_not_allowed("POST");
    if (!who->admin) return error_answer(403, "forbidden", "moving the clock needs an admin token");
    boost::system::error_code ec;
    json::value body = json::parse(req.body, ec);
    const json::object* o = ec ? nullptr : body.if_object();
    const json::value* now = o ? o->if_contains("now") : nullptr;
    std::optional<unix_seconds> t_new;
    if (now != nullptr && now->is_string()) t_new = parse_rfc3339(now->as_string());
    if (!t_new) return error_answer(400, "invalid_request", "expected {\"now\":\"RFC 3339 time\"}");
    if (*t_new < eng_.time_source().now()) {
      return error_answer(400, "invalid_request", "the clock only moves forward");
    }
    eng_.advance_clock(*t_new);
    return json_answer(200, json::object{{"ok", true}, {"now", format_rfc3339(eng_.time_source().now())}});
  }

  return error_answer(404, "not_found", "no such route");
}

}  // namespace simcap
