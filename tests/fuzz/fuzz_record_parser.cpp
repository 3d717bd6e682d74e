// libFuzzer: the feed's record parser over any bytes, as a session hands it a chunk (complete
// lines, padding after them). Every line ends as one record or one reject, within the text.
#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "feed/record_parser.hpp"

namespace {

class checking_sink final : public simcap::parse_sink {
 public:
  explicit checking_sink(std::size_t size) : size_(size) {}
  void record(const simcap::usage_record&) override { ++records; }
  void reject(const simcap::parse_reject& r) override {
    ++rejects;
    if (std::size_t{r.line_offset} + r.line_length > size_) std::abort();
  }
  std::size_t records = 0, rejects = 0;

 private:
  std::size_t size_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static simcap::record_parser parser;  // kept between inputs, as a session's thread keeps it
  if (size > (1u << 20)) return 0;
  // The first byte picks the options; the rest is the chunk, cut after its last newline.
  const bool require_seq = size > 0 && (data[0] & 1) != 0;
  simcap::parse_options o;
  o.require_seq = require_seq;
  o.max_record_bytes = size > 0 && (data[0] & 2) != 0 ? 1000 : 1ULL << 40;
  parser.set_options(o);
  const std::uint8_t* text = size > 0 ? data + 1 : data;
  std::size_t len = size > 0 ? size - 1 : 0;
  std::vector<char> buf(len + simdjson::SIMDJSON_PADDING, ' ');
  if (len != 0) std::memcpy(buf.data(), text, len);
  checking_sink sink(len);
  parser.parse(buf.data(), 0, len, 1'763'800'000, sink);
  return 0;
}
