// libFuzzer: the config loader over any TOML text: a config or a list of problems, never a
// crash.
#include <cstdint>
#include <string_view>

#include "config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (64u << 10)) return 0;
  auto cfg = simcap::parse_config(std::string_view(reinterpret_cast<const char*>(data), size),
                                  "/nonexistent-simcap-fuzz");
  if (!cfg && cfg.error().empty()) __builtin_trap();  // a refusal always says why
  return 0;
}
