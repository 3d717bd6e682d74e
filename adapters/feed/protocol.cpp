#include "feed/protocol.hpp"

#include <boost/json.hpp>

#include "simcap/json_text.hpp"

namespace simcap::feed_protocol {

std::expected<hello, std::string> parse_hello(std::string_view line) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  const boost::json::object* h = nullptr;
  if (!ec && v.is_object()) {
    if (auto* x = v.as_object().if_contains("hello")) h = x->if_object();
  }
  const boost::json::string* name = nullptr;
  const boost::json::string* token = nullptr;
  if (h != nullptr) {
    if (auto* f = h->if_contains("feed")) name = f->if_string();
    if (auto* t = h->if_contains("token")) token = t->if_string();
  }
  if (name == nullptr || token == nullptr) {
    return std::unexpected(
        std::string("expected {\"hello\":{\"feed\":\"NAME\",\"token\":\"SECRET\"}}"));
  }
  return hello{std::string(*name), std::string(*token)};
}

std::string welcome_line(std::string_view feed, std::uint64_t resume_after) {
  std::string out = "{\"welcome\":{\"feed\":";
  append_json_string(out, feed);
  out += ",\"resume_after\":" + std::to_string(resume_after) + "}}\n";
  return out;
}

void append_ack(std::string& out, std::uint64_t seq) {
  out += "{\"ack\":" + std::to_string(seq) + "}\n";
}

void append_reject(std::string& out, const reject& r) {
  out += "{\"reject\":{\"seq\":";
  out += r.seq ? std::to_string(*r.seq) : std::string("null");
  out += ",\"reason\":\"";
  out += to_string(r.reason);
  out += "\",\"detail\":";
  append_json_string(out, r.detail);
  out += "}}\n";
}

}  // namespace simcap::feed_protocol
