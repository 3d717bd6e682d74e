#pragma once
// What a shard knows of a product: the catalog's copy for the record path, handed to every shard
// when it changes (versions only grow, a shard keeps the newest it was given).
#include <cstdint>
#include <string>
#include <vector>

#include "simcap/time.hpp"

namespace simcap::detail {

struct product_info {
  std::uint16_t index = 0;
  std::uint64_t version = 0;
  std::string id;
  std::uint32_t default_mb_limit = 0;
  std::vector<std::uint16_t> thresholds;  // permille, ascending, at most 8
  std::uint64_t pool_bytes = 0;           // 0: no pool
  bool pool_pause = false;                // pool_action = pause
  unsigned anniversary_day = 0;           // 0: no SIM activated yet
  unix_seconds first_period_start = 0;
};

}  // namespace simcap::detail
