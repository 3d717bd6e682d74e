// Particle-compatible webhooks (API.md): create, list and delete webhook sinks at run time. A
// product token sees and makes only its product's hooks; an admin's account-wide hook gets every
// product's events.
#include <openssl/evp.h>

#include <boost/json.hpp>
#include <cctype>

#include "http/answers.hpp"
#include "http/routes.hpp"
#include "outbound/outbound.hpp"

namespace simcap::web {

namespace {

// Particle hook fields simcap does not take: the body is always the event JSON.
constexpr std::string_view kTemplateKeys[] = {
    "query", "json", "form", "body", "responseTemplate", "responseTopic", "errorResponseTopic"};

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool header_name_ok(std::string_view n) {
  if (n.empty() || n.size() > 128) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

bool header_value_ok(std::string_view v) {
  if (v.size() > 4096) return false;
  for (char c : v) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// The product of the route (product form), or the token's (a product token), or "" (an
// admin's account-wide hooks).
std::string scope_of(const route_call& c) {
  if (c.seg().size() >= 3 && c.seg()[1] == "products") return c.seg()[2];
  return c.who.admin ? std::string() : c.who.product;
}

bool visible(const route_call& c, const outbound::webhook& h) {
  const bool product_form = c.seg().size() >= 3 && c.seg()[1] == "products";
  if (product_form) return h.product == c.seg()[2];
  return c.who.admin || h.product == c.who.product;
}

std::variant<outbound::webhook, http_response> read_hook(const route_call& c) {
  const auto bad = [](std::string_view why) { return error_answer(400, "invalid_request", why); };
  boost::system::error_code ec;
  const json::value body = json::parse(c.req.body, ec);
  const json::object* o = ec ? nullptr : body.if_object();
  if (o == nullptr) return bad("expected a JSON object");
  const auto given = [o](std::string_view key) {
    const json::value* v = o->if_contains(key);
    return v != nullptr && !v->is_null() ? v : nullptr;
  };
  outbound::webhook h;
  const json::value* event = given("event");
  if (event == nullptr || !event->is_string() || event->as_string().size() > 64)
    return bad("event must be a string of up to 64 characters (\"\" for every event)");
  h.event = std::string(event->as_string());
  const json::value* url = given("url");
  if (url == nullptr || !url->is_string() ||
      !(url->as_string().starts_with("http://") || url->as_string().starts_with("https://")) ||
      url->as_string().size() > 2048)
    return bad("url must be an http:// or https:// URL");
  h.url = std::string(url->as_string());
  if (const json::value* rt = given("requestType")) {
    if (!rt->is_string() || !iequals(rt->as_string(), "POST"))
      return bad("requestType must be POST (the event JSON is posted)");
  }
  if (const json::value* d = given("deviceId");
      d != nullptr && !(d->is_string() && d->as_string().empty()))
    return bad("deviceId is not supported: a hook is for a product or for every product");
  for (std::string_view key : kTemplateKeys) {
    if (given(key))
      return bad(std::string(key) +
                 " is not supported: the body is the event JSON (GET /v1/events)");
  }
  if (const json::value* hd = given("headers")) {
    if (!hd->is_object() || hd->as_object().size() > 32)
      return bad("headers must be an object of up to 32 string values");
    for (const auto& [k, v] : hd->as_object()) {
      if (!v.is_string() || !header_name_ok(k) || !header_value_ok(v.as_string()))
        return bad("headers must map header names to printable string values");
      for (std::string_view own : {"host", "content-length", "transfer-encoding", "content-type",
                                   "idempotency-key", "connection"}) {
        if (iequals(k, own)) return bad("headers may not set " + std::string(k));
      }
      h.headers.emplace_back(std::string(k), std::string(v.as_string()));
    }
  }
  if (const json::value* a = given("auth")) {
    const json::object* ao = a->if_object();
    const auto field = [ao](std::string_view k1, std::string_view k2) -> const json::string* {
      for (std::string_view k : {k1, k2}) {
        if (const json::value* v = ao->if_contains(k); v != nullptr && v->is_string())
          return &v->as_string();
      }
      return nullptr;
    };
    if (ao == nullptr) return bad("auth must be {\"user\",\"pass\"} or {\"bearer\"}");
    std::string value;
    if (const json::string* bearer = field("bearer", "token")) {
      value = "Bearer " + std::string(*bearer);
    } else if (const json::string* user = field("user", "username")) {
      const json::string* pass = field("pass", "password");
      value = "Basic " + base64(std::string(*user) + ":" + (pass ? std::string(*pass) : ""));
    } else {
      return bad("auth must be {\"user\",\"pass\"} or {\"bearer\"}");
    }
    if (!header_value_ok(value)) return bad("auth must be printable");
    for (const auto& [k, v] : h.headers) {
      if (iequals(k, "authorization")) return bad("auth and an Authorization header: one of them");
    }
    h.headers.emplace_back("Authorization", std::move(value));
  }
  if (const json::value* r = given("rejectUnauthorized")) {
    if (!r->is_bool()) return bad("rejectUnauthorized must be true or false");
    h.reject_unauthorized = r->as_bool();
  }
  if (const json::value* n = given("noDefaults")) {
    if (!n->is_bool()) return bad("noDefaults must be true or false");
    h.no_defaults = n->as_bool();
  }
  h.product = scope_of(c);
  return h;
}

outbound::service* running(route_call& c) {
  outbound::service* s = c.api.outbound();
  return s != nullptr && s->running() ? s : nullptr;
}

// A hook is made or deleted only when it can be made durable.
std::optional<http_response> refuse_change(route_call& c) {
  if (running(c) == nullptr)
    return error_answer(503, "unavailable", "outbound delivery is not running");
  if (auto why = c.eng.store_error())
    return error_answer(503, "unavailable", "the store cannot write, nothing was changed: " + *why);
  return std::nullopt;
}

http_response hooks(route_call& c) {
  outbound::service* s = running(c);
  if (c.req.method == "GET") {
    json::array arr;
    if (s != nullptr) {
      for (const auto& h : s->hooks()) {
        if (!visible(c, h)) continue;
        arr.push_back(json::object{
            {"id", h.id},
            {"event", h.event},
            {"url", h.url},
            {"requestType", h.request_type},
            {"created_at", format_rfc3339(h.created_at)},
            {"product", h.product.empty() ? json::value(nullptr) : json::value(h.product)}});
      }
    }
    return json_answer(200, arr);
  }
  if (auto r = refuse_change(c)) return *r;
  auto read = read_hook(c);
  if (auto* err = std::get_if<http_response>(&read)) return *err;
  auto made = s->create_hook(std::get<outbound::webhook>(std::move(read)));
  if (!made) return error_answer(400, "invalid_request", made.error());
  return json_answer(200, json::object{{"ok", true},
                                       {"id", made->id},
                                       {"event", made->event},
                                       {"url", made->url},
                                       {"created_at", format_rfc3339(made->created_at)}});
}

http_response hook(route_call& c) {
  outbound::service* s = running(c);
  const std::string& id = c.seg().back();
  if (auto r = refuse_change(c)) return *r;
  if (s != nullptr) {
    for (const auto& h : s->hooks()) {
      if (h.id == id && visible(c, h) && s->delete_hook(id))
        return json_answer(200, json::object{{"ok", true}});
    }
  }
  return error_answer(404, "not_found", "no such webhook");
}

}  // namespace

std::vector<route> webhook_routes() {
  return {
      {{"v1", "webhooks"}, "GET POST", "GET, POST", false, {}, hooks},
      {{"v1", "webhooks", ":id"}, "DELETE", "DELETE", false, {}, hook},
      {{"v1", "products", ":p", "webhooks"},
       "GET POST",
       "GET, POST",
       false,
       "no such product",
       hooks},
      {{"v1", "products", ":p", "webhooks", ":id"},
       "DELETE",
       "DELETE",
       false,
       "no such product",
       hook},
  };
}

}  // namespace simcap::web
