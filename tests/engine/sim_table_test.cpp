#include "state/sim_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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

// The slots marked since the last take_dirty, each taken once, whatever moved them meanwhile:
// erases (slots of a long run shift back over the hole) and growth (every slot moves).
TEST(SimTable, MarkedSlotsAreTakenOnceAfterErasesAndGrowth) {
  sim_table t(64);
  std::vector<std::uint64_t> keys;
  for (std::uint64_t k = 1; t.size() * 100 < t.capacity() * 84; ++k) {
    keys.push_back(k * 104729);
    t.insert(keys.back());
  }
  auto mark = [&](std::uint64_t key) {
    sim_slot* s = t.find(key);
    ASSERT_NE(s, nullptr);
    if (!(s->flags & sim_slot::kFlagDirty)) t.mark_dirty(*s);
    s->flags |= sim_slot::kFlagDirtyUsage;
  };
  auto taken = [&] {
    std::vector<std::uint64_t> out;
    t.take_dirty(
        [&](sim_slot& s) {
          out.push_back(s.key);
          s.flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
        },
        [] {});
    std::sort(out.begin(), out.end());
    return out;
  };
  // Every other key marked, then every third key erased: marked slots move into the holes.
  std::vector<std::uint64_t> want;
  for (std::size_t i = 0; i < keys.size(); i += 2) mark(keys[i]);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i % 3 == 0) {
      t.erase(keys[i]);
    } else if (i % 2 == 0) {
      want.push_back(keys[i]);
    }
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(taken(), want);
  EXPECT_TRUE(taken().empty());  // the marks went with the first take

  // Marked, then the table grows: the marks follow the slots to their new places.
  want.clear();
  for (std::size_t i = 1; i < keys.size(); i += 3) {
    mark(keys[i]);
    want.push_back(keys[i]);
  }
  const std::size_t cap = t.capacity();
  for (std::uint64_t k = 1; t.capacity() == cap; ++k) t.insert(k * 7919 + 1);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(taken(), want);
  // A slot whose flag was cleared after its mark is not taken.
  mark(keys[1]);
  t.find(keys[1])->flags = 0;
  EXPECT_TRUE(taken().empty());
}

}  // namespace
}  // namespace simcap::detail
