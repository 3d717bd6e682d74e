#pragma once
// Shared helpers for the micro-benchmarks: synthetic records shaped like the SPEC example.
#include <cstdint>
#include <string>

#include "simcap/iccid.hpp"

namespace simcap::bench {

inline std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

inline std::string sim_iccid(std::uint64_t i) {
  std::string digits = std::to_string(i);
  return make_iccid("8901000" + std::string(12 - digits.size(), '0') + digits);
}

// A usage record line shaped like the SPEC example. shape 0: every field including "id"
// (~136 bytes); 1: without "id" (~120 bytes); 2: without "mccmnc" and "id" (~102 bytes).
inline std::string record_line(std::uint64_t seq, std::uint64_t sims, std::int64_t t,
                               int shape = 1) {
  std::uint64_t r = splitmix(seq);
  std::string s = "{\"seq\":" + std::to_string(seq) + ",\"iccid\":\"" + sim_iccid(r % sims) +
                  "\",\"start\":" + std::to_string(t - 300) + ",\"end\":" + std::to_string(t) +
                  ",\"up\":" + std::to_string(r % 2000) +
                  ",\"down\":" + std::to_string((r >> 20) % 60000);
  if (shape <= 1) s += ",\"mccmnc\":\"310410\"";
  if (shape == 0)
    s += ",\"id\":\"pgw1-" + std::to_string(r % 10000) + "-" + std::to_string(seq) + "\"";
  return s + "}\n";
}

}  // namespace simcap::bench
