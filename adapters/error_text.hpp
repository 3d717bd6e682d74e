#pragma once
// The error bodies simcap writes, one helper for each protocol, both escaping their text:
// the HTTP port's {"ok":false,"error":...,"error_description":...} and the feed protocol's
// {"error":{"code":...,"message":...}} line.
#include <string>
#include <string_view>

#include "simcap/json_text.hpp"

namespace simcap {

inline std::string http_error_body(std::string_view code, std::string_view description) {
  std::string out = "{\"ok\":false,\"error\":";
  append_json_string(out, code);
  out += ",\"error_description\":";
  append_json_string(out, description);
  out += '}';
  return out;
}

inline std::string feed_error_line(std::string_view code, std::string_view message) {
  std::string out = "{\"error\":{\"code\":";
  append_json_string(out, code);
  out += ",\"message\":";
  append_json_string(out, message);
  out += "}}\n";
  return out;
}

}  // namespace simcap
