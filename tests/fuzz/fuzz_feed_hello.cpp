// libFuzzer: the feed protocol's hello line, and the lines simcap writes back from what it
// read (a reject's detail echoes bytes of the peer's line).
#include <cstdint>
#include <string>
#include <string_view>

#include "feed/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto h = simcap::feed_protocol::parse_hello(line);
  if (h) {
    const std::string w = simcap::feed_protocol::welcome_line(h->feed, 0);
    if (w.empty() || w.back() != '\n') __builtin_trap();
  }
  std::string out;
  simcap::feed_protocol::reject r{std::nullopt, simcap::reject_reason::malformed_json,
                                  std::string(line)};
  simcap::feed_protocol::append_reject(out, r);
  if (out.empty() || out.back() != '\n' || out.find('\n') != out.size() - 1) __builtin_trap();
  return 0;
}
