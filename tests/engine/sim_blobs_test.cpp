#include "durability/sim_blobs.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace simcap::detail {
namespace {

struct entry {
  sim_slot s;
  bool all;
};

std::vector<std::string> write(const std::vector<entry>& in) {
  std::vector<std::string> blobs;
  blob_writer w([&](std::string&& b) { blobs.push_back(std::move(b)); });
  for (const entry& e : in) w.add(e.s, e.all);
  w.flush();
  return blobs;
}

std::vector<entry> read(const std::vector<std::string>& blobs) {
  std::vector<entry> out;
  for (const std::string& b : blobs) {
    decode_slots(b, [&](const sim_slot& s, bool all) { out.push_back({s, all}); });
  }
  return out;
}

sim_slot full_slot(std::mt19937_64& rng, std::uint64_t key) {
  sim_slot s{};
  s.key = key;
  s.up = rng() >> (rng() % 64);
  s.down = rng() >> (rng() % 64);
  s.next_action = rng();
  s.mb_limit = static_cast<std::uint32_t>(rng());
  s.sms = static_cast<std::uint32_t>(rng() >> 40);
  s.first_activated = static_cast<std::uint32_t>(rng());
  s.last_activated = static_cast<std::uint32_t>(rng());
  s.state_since = std::numeric_limits<std::uint32_t>::max();
  s.updated_at = 1'700'000'000;
  s.product = static_cast<std::uint16_t>(rng());
  s.state = static_cast<std::uint8_t>(rng() % 4);
  s.reason = 3;
  s.alerts_fired = 5;
  s.flags = sim_slot::kFlagChargeable | sim_slot::kFlagLimitOverride;
  s.open_day = 30;
  s.country = 200;
  return s;
}

// Whole slots, usage and removals, keys near and far apart (the far ones take the escape), read
// back as written, across blobs.
TEST(SimBlobs, WhatIsWrittenReadsBackTheSame) {
  std::mt19937_64 rng(7);
  std::vector<entry> in;
  const std::uint64_t keys[] = {
      8901260000000000001ULL, 8901260000000000002ULL, 1, 0x7fffffffffffffffULL,
      0xffffffffffffffffULL,  8901260000000000003ULL, 2};
  for (int round = 0; round < 3000; ++round) {
    for (std::uint64_t key : keys) {
      const std::uint64_t k = key + static_cast<std::uint64_t>(round) * 16;
      switch (rng() % 3) {
        case 0:
          in.push_back({full_slot(rng, k), true});
          break;
        case 1: {
          sim_slot s{};
          s.key = k;
          s.up = rng() >> (rng() % 64);
          s.down = std::numeric_limits<std::uint64_t>::max();
          s.sms = static_cast<std::uint32_t>(rng());
          s.open_day = static_cast<std::uint8_t>(rng());
          in.push_back({s, false});
          break;
        }
        default: {
          sim_slot s{};
          s.key = k;
          s.state = kErased;
          in.push_back({s, true});
        }
      }
    }
  }
  const auto blobs = write(in);
  ASSERT_GT(blobs.size(), 1u);
  for (const std::string& b : blobs) EXPECT_LE(b.size(), kBlobBytes + kMaxEntry);
  const auto out = read(blobs);
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const sim_slot& a = in[i].s;
    const sim_slot& b = out[i].s;
    ASSERT_EQ(out[i].all, in[i].all) << i;
    ASSERT_EQ(b.key, a.key) << i;
    if (!in[i].all) {
      EXPECT_EQ(b.up, a.up);
      EXPECT_EQ(b.down, a.down);
      EXPECT_EQ(b.sms, a.sms);
      EXPECT_EQ(b.open_day, a.open_day);
    } else if (a.state == kErased) {
      EXPECT_EQ(b.state, kErased);
    } else {
      EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0) << i;
    }
  }
}

// The dirty flags are the checkpoint's business, not the store's.
TEST(SimBlobs, AWholeSlotIsStoredWithoutItsDirtyFlags) {
  std::mt19937_64 rng(1);
  sim_slot s = full_slot(rng, 8901260000000000001ULL);
  s.flags |= sim_slot::kFlagDirty;
  const auto out = read(write({{s, true}}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].s.flags, sim_slot::kFlagChargeable | sim_slot::kFlagLimitOverride);
}

// A fleet's ICCIDs come in ranges: a busy SIM's usage entry (megabytes up and down, no SMS)
// takes about 12 bytes, a whole slot under 40 (they took 18 and 65 before).
TEST(SimBlobs, AFleetsEntriesAreSmall) {
  std::mt19937_64 rng(3);
  std::vector<entry> usage, whole;
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t key = 890126000000000000ULL + rng() % 100000;
    sim_slot s{};
    s.key = key;
    s.up = 1'000'000 + rng() % 3'000'000;
    s.down = 1'000'000 + rng() % 3'000'000;
    s.open_day = static_cast<std::uint8_t>(rng() % 31);
    usage.push_back({s, false});
    s.next_action = 5'000'000;
    s.mb_limit = 5;
    s.first_activated = 1'770'000'000;
    s.last_activated = s.state_since = 1'779'000'000;
    s.updated_at = 1'780'000'000;
    s.product = 1;
    s.state = 1;
    whole.push_back({s, true});
  }
  auto bytes = [](const std::vector<std::string>& blobs) {
    std::size_t n = 0;
    for (const std::string& b : blobs) n += b.size();
    return n;
  };
  EXPECT_LE(bytes(write(usage)), usage.size() * 13);
  EXPECT_LE(bytes(write(whole)), whole.size() * 39);
}

// Blobs written before the format marker: a kind byte, the key, then varints (usage), the slot as
// it was in memory (whole) or nothing (a removal).
TEST(SimBlobs, BlobsOfTheFormerLayoutAreRead) {
  std::mt19937_64 rng(5);
  const sim_slot whole = full_slot(rng, 8901260000000000007ULL);
  std::string blob;
  blob += '\1';
  blob.append(reinterpret_cast<const char*>(&whole), sizeof whole);
  const std::uint64_t key = 8901260000000000008ULL;
  blob += '\0';
  blob.append(reinterpret_cast<const char*>(&key), sizeof key);
  char buf[40];
  char* p = buf;
  p = put_varint(p, 3'000'000);
  p = put_varint(p, 12);
  p = put_varint(p, 2);
  p = put_varint(p, 9);
  blob.append(buf, p);
  const std::uint64_t gone = 8901260000000000009ULL;
  blob += '\2';
  blob.append(reinterpret_cast<const char*>(&gone), sizeof gone);

  const auto out = read({blob});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].all);
  EXPECT_EQ(std::memcmp(&out[0].s, &whole, sizeof whole), 0);
  EXPECT_FALSE(out[1].all);
  EXPECT_EQ(out[1].s.key, key);
  EXPECT_EQ(out[1].s.up, 3'000'000u);
  EXPECT_EQ(out[1].s.down, 12u);
  EXPECT_EQ(out[1].s.sms, 2u);
  EXPECT_EQ(out[1].s.open_day, 9);
  EXPECT_TRUE(out[2].all);
  EXPECT_EQ(out[2].s.key, gone);
  EXPECT_EQ(out[2].s.state, kErased);
}

// A whole slot whose time lies further from updated_at than any two 32-bit times can (here
// 2^63 - 1 s, as the fuzzer found: it overflowed the sum) ends the blob; the entry before stays.
TEST(SimBlobs, ATimeDifferenceNoSlotCanHaveEndsTheBlob) {
  std::mt19937_64 rng(11);
  auto blobs = write({{full_slot(rng, 8901260000000000001ULL), true}});
  ASSERT_EQ(blobs.size(), 1u);
  std::string& b = blobs[0];
  b += static_cast<char>(1 << 2 | 1);  // the next key (XOR 1), a whole slot
  char buf[80];
  char* p = buf;
  for (std::uint64_t v : {1, 2, 3, 4, 5, 1'700'000'000}) p = put_varint(p, v);  // ... updated_at
  p = put_varint(p, ~std::uint64_t{1});  // first_activated: 2^63 - 1 s away
  p = put_varint(p, 0);
  p = put_varint(p, 0);
  p = put_varint(p, 1);
  b.append(buf, p);
  b.append(6, '\0');
  const auto out = read(blobs);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].s.key, 8901260000000000001ULL);
}

// A cut-off blob yields the entries before the cut and stops: no entry is made up.
TEST(SimBlobs, ATruncatedBlobEndsAtItsLastWholeEntry) {
  std::mt19937_64 rng(9);
  std::vector<entry> in;
  for (int i = 0; i < 50; ++i) in.push_back({full_slot(rng, 8901260000000000001ULL + i), true});
  const auto blobs = write(in);
  ASSERT_EQ(blobs.size(), 1u);
  for (std::size_t len = 0; len < blobs[0].size(); ++len) {
    const auto out = read({blobs[0].substr(0, len)});
    ASSERT_LT(out.size(), in.size()) << len;
    for (std::size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(std::memcmp(&out[i].s, &in[i].s, sizeof(sim_slot)), 0) << len;
    }
  }
}

}  // namespace
}  // namespace simcap::detail
