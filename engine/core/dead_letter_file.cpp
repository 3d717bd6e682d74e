#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "simcap/dead_letter.hpp"
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

dead_letter_file::dead_letter_file(const std::string& path) {
  f_ = std::fopen(path.c_str(), "ae");
  if (f_ == nullptr) {
    throw std::runtime_error("cannot open dead-letter log " + path + ": " + std::strerror(errno));
  }
}

dead_letter_file::~dead_letter_file() {
  if (f_ != nullptr) std::fclose(f_);
}

void dead_letter_file::write(const dead_letter& d) {
  std::string line = to_json(d);
  line.push_back('\n');
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), f_);
  std::fflush(f_);
  ++written_;
}

std::uint64_t dead_letter_file::written() const {
  std::lock_guard lock(mu_);
  return written_;
}

}  // namespace simcap
