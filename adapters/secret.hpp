#pragma once
// Compares a presented secret with a configured one in time that depends only on the
// configured secret's length, so response times do not reveal how much of a guess was right.
#include <string_view>

namespace simcap {

inline bool same_secret(std::string_view configured, std::string_view presented) noexcept {
  unsigned char diff = configured.size() == presented.size() ? 0 : 1;
  for (std::size_t i = 0; i < configured.size(); ++i) {
    diff |= static_cast<unsigned char>(configured[i] ^ (i < presented.size() ? presented[i] : 0));
  }
  return diff == 0;
}

}  // namespace simcap
