#include "state/sim_table.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace simcap::detail {
namespace {

TEST(SimTable, InsertFindAndGrowKeepsSlots) {
  sim_table t;
  for (std::uint64_t k = 1; k <= 100000; ++k) {
    auto [s, created] = t.insert(k * 7919);
    ASSERT_TRUE(created);
    s->up = k;
  }
  EXPECT_EQ(t.size(), 100000u);
  for (std::uint64_t k = 1; k <= 100000; ++k) {
    sim_slot* s = t.find(k * 7919);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->up, k);
  }
  EXPECT_EQ(t.find(3), nullptr);
  EXPECT_FALSE(t.insert(7919).second);
  EXPECT_LE(t.size() * 100, t.capacity() * 85);
}

// Erasing from a nearly full table (long runs, wrapping at the end) keeps every other key
// findable with its slot's contents.
TEST(SimTable, EraseKeepsTheOthersFindable) {
  sim_table t;
  std::vector<std::uint64_t> keys;
  for (std::uint64_t k = 1; t.size() * 100 < t.capacity() * 84; ++k) {
    keys.push_back(k * 104729);
    t.insert(keys.back()).first->up = keys.back();
  }
  std::vector<bool> erased(keys.size(), false);
  for (std::size_t i = 0; i < keys.size(); i += 3) {
    t.erase(keys[i]);
    erased[i] = true;
  }
  t.erase(12345);  // absent: nothing happens
  std::size_t left = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    sim_slot* s = t.find(keys[i]);
    if (erased[i]) {
      EXPECT_EQ(s, nullptr);
    } else {
      ASSERT_NE(s, nullptr) << i;
      EXPECT_EQ(s->up, keys[i]);
      ++left;
    }
  }
  EXPECT_EQ(t.size(), left);
}

TEST(SimTable, ReserveAvoidsGrowth) {
  sim_table t(1000);
  std::size_t cap = t.capacity();
  for (std::uint64_t k = 1; k <= 1000; ++k) t.insert(k);
  EXPECT_EQ(t.capacity(), cap);
}

}  // namespace
}  // namespace simcap::detail
