#include "http/request.hpp"

#include <strings.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url.hpp>

#include "http/answers.hpp"
#include "secret.hpp"

namespace simcap::web {

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
    out.emplace_back(decode(pair.substr(0, eq)),
                     eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1)));
  }
  return out;
}

namespace {
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
    if (header_param(head, "name=") == "file")
      return std::string(body.substr(data_start, data_end - data_start));
    pos = data_end;
  }
  return std::nullopt;
}

void add_listed(import_body& out, std::size_t line, std::string_view value) {
  auto id = iccid::parse(value);
  if (id) {
    out.ids.push_back(*id);
  } else {
    out.invalid.push_back(
        {line, std::string(value.substr(0, 64)), std::string(describe(id.error()))});
  }
}

}  // namespace

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
      if (!state)
        return error_answer(400, "invalid_request", "state must be active, issued or factory_test");
      out.state = state;
    }
    if (auto* c = o->if_contains("country")) {
      if (!c->is_string()) return error_answer(400, "invalid_request", "country must be a string");
      out.country = std::string(c->as_string());
    }
    for (auto [key, flag] :
         {std::pair{"transfer", &out.transfer}, {"keep_limit", &out.keep_limit}}) {
      if (auto* v = o->if_contains(key)) {
        if (!v->is_bool()) {
          return error_answer(400, "invalid_request", std::string(key) + " must be true or false");
        }
        *flag = v->as_bool();
      }
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
        if (!out.state)
          return error_answer(400, "invalid_request",
                              "state must be active, issued or factory_test");
      }
    }
    return out;
  }
  std::string text;
  if (lower_ct == "multipart/form-data") {
    auto file = multipart_file(req.body, req.content_type);
    if (!file)
      return error_answer(400, "invalid_request", "multipart form without a \"file\" field");
    text = std::move(*file);
  } else {
    text = req.body;  // a .txt file sent as the body
  }
  iccid_list list = parse_iccid_list(text);
  out.ids = std::move(list.ids);
  out.invalid = std::move(list.invalid);
  return out;
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

}  // namespace simcap::web
