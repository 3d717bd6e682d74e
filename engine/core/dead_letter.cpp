#include "simcap/dead_letter.hpp"

#include <algorithm>
#include <string>

#include "simcap/json_text.hpp"

namespace simcap {

std::string to_json(const dead_letter& d) {
  std::string out;
  out.reserve(96 + std::min(d.raw.size(), kMaxLineBytes));
  out += "{\"time\":";
  append_json_string(out, format_rfc3339(d.time));
  out += ",\"feed\":";
  append_json_string(out, d.feed);
  out += ",\"seq\":";
  out += d.seq ? std::to_string(*d.seq) : std::string("null");
  out += ",\"reason\":";
  append_json_string(out, to_string(d.reason));
  out += ",\"detail\":";
  append_json_string(out, d.detail);
  out += ",\"raw\":";
  append_json_string(out, d.raw.substr(0, kMaxLineBytes));
  out += '}';
  return out;
}

}  // namespace simcap
