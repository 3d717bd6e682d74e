#include <gtest/gtest.h>

#include <vector>

#include "engine_fixture.hpp"

namespace simcap::testing {
namespace {

TEST(ShardRouting, IsPureAndInRange) {
  for (unsigned n : {1u, 2u, 3u, 7u, 16u}) {
    for (std::uint64_t i = 0; i < 1000; ++i) {
      std::uint64_t key = test_iccid(i).key();
      unsigned s = engine::shard_for(key, n);
      EXPECT_LT(s, n);
      EXPECT_EQ(s, engine::shard_for(key, n));
    }
  }
}

TEST(ShardRouting, SpreadsSequentialIccidsEvenly) {
  constexpr unsigned kShards = 4;
  std::vector<int> count(kShards);
  for (std::uint64_t i = 0; i < 40000; ++i)
    count[engine::shard_for(test_iccid(i).key(), kShards)]++;
  for (int c : count) {
    EXPECT_GT(c, 9500);
    EXPECT_LT(c, 10500);
  }
}

TEST(ShardRouting, OneShardTakesEverything) {
  for (std::uint64_t i = 0; i < 100; ++i) EXPECT_EQ(engine::shard_for(test_iccid(i).key(), 1), 0u);
}

}  // namespace
}  // namespace simcap::testing
