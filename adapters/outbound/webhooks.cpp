#include "outbound/webhooks.hpp"

#include <openssl/rand.h>

#include <boost/json.hpp>
#include <random>
#include <stdexcept>

namespace simcap::outbound {

namespace json = boost::json;

std::string webhook_json(const webhook& h) {
  json::object headers;
  for (const auto& [k, v] : h.headers) headers[k] = v;
  return json::serialize(json::object{{"id", h.id},
                                      {"event", h.event},
                                      {"url", h.url},
                                      {"requestType", h.request_type},
                                      {"product", h.product},
                                      {"headers", std::move(headers)},
                                      {"rejectUnauthorized", h.reject_unauthorized},
                                      {"noDefaults", h.no_defaults},
                                      {"created_at", h.created_at}});
}

std::optional<webhook> webhook_from_json(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return std::nullopt;
  const auto text_of = [o](const char* key) -> std::optional<std::string> {
    const json::value* x = o->if_contains(key);
    if (x == nullptr || !x->is_string()) return std::nullopt;
    return std::string(x->as_string());
  };
  webhook h;
  auto id = text_of("id"), event = text_of("event"), url = text_of("url");
  if (!id || !event || !url) return std::nullopt;
  h.id = *id;
  h.event = *event;
  h.url = *url;
  h.request_type = text_of("requestType").value_or("POST");
  h.product = text_of("product").value_or("");
  if (const json::value* hd = o->if_contains("headers"); hd != nullptr && hd->is_object()) {
    for (const auto& [k, val] : hd->as_object()) {
      if (val.is_string()) h.headers.emplace_back(std::string(k), std::string(val.as_string()));
    }
  }
  if (const json::value* r = o->if_contains("rejectUnauthorized"); r != nullptr && r->is_bool())
    h.reject_unauthorized = r->as_bool();
  if (const json::value* n = o->if_contains("noDefaults"); n != nullptr && n->is_bool())
    h.no_defaults = n->as_bool();
  if (const json::value* t = o->if_contains("created_at"); t != nullptr && t->is_int64())
    h.created_at = t->as_int64();
  return h;
}

sink_config webhook_sink(const webhook& h) {
  sink_config c;
  c.name = "hook-" + h.id;
  c.kind = sink_config::kind_t::webhook;
  c.url = h.url;
  for (int i = 0; i < static_cast<int>(event_type::kCount); ++i) {
    const auto t = static_cast<event_type>(i);
    if (to_string(t).starts_with(h.event)) c.types.push_back(t);
  }
  if (c.types.empty()) {
    std::string names;
    for (int i = 0; i < static_cast<int>(event_type::kCount); ++i)
      names += std::string(names.empty() ? "" : ", ") +
               std::string(to_string(static_cast<event_type>(i)));
    throw std::invalid_argument("event \"" + h.event + "\" is the start of no event type (" +
                                names + ")");
  }
  if (!h.product.empty()) c.products = {h.product};
  c.headers = h.headers;
  c.verify_tls = h.reject_unauthorized;
  return c;
}

std::string new_webhook_id() {
  unsigned char bytes[12];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

}  // namespace simcap::outbound
