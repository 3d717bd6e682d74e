// The record-id window: the RAM table (collisions forced with tiny tables, bulk deletion) and the
// window's move of old ids to the store, looked up exactly afterwards.
#include "durability/id_window.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "durability/codec.hpp"
#include "durability/keys.hpp"

namespace simcap::detail {
namespace {

namespace fs = std::filesystem;

// A fingerprint whose home slot in a table of `cap` slots is `home` (its top bits choose it).
std::uint64_t at_home(std::size_t home, std::size_t cap, std::uint64_t n) {
  const std::uint64_t base =
      static_cast<std::uint64_t>(((static_cast<unsigned __int128>(home) << 64) + cap - 1) / cap);
  return (base + 2 * n) | 1;
}

TEST(IdTable, EntriesSharingAHomeSlotAreAllFoundAndRepeatsRefused) {
  id_table t(16);
  ASSERT_EQ(t.capacity(), 16u);
  // Twelve entries all wanting slot 14: the run wraps past the end of the table.
  std::vector<std::uint64_t> fps;
  for (std::uint64_t n = 0; n < 12; ++n) fps.push_back(at_home(14, 16, n));
  for (std::uint64_t fp : fps) ASSERT_TRUE(t.insert(fp, 100));
  EXPECT_EQ(t.size(), 12u);
  for (std::uint64_t fp : fps) {
    EXPECT_TRUE(t.contains(fp));
    EXPECT_FALSE(t.insert(fp, 200)) << "a repeat is refused";
  }
  EXPECT_FALSE(t.contains(at_home(14, 16, 99)));
  EXPECT_FALSE(t.contains(at_home(3, 16, 0)));
}

TEST(IdTable, ExtractingOldEntriesKeepsEveryOtherOneFindable) {
  id_table t(16);
  // Alternate old and new entries in one cluster that wraps: taking the old ones out shifts
  // the new ones back, across the end of the table.
  std::vector<std::uint64_t> old_fps, new_fps;
  for (std::uint64_t n = 0; n < 12; ++n) {
    const std::uint64_t fp = at_home(13 + n % 3, 16, n);
    ASSERT_TRUE(t.insert(fp, n % 2 == 0 ? 10 : 20));
    (n % 2 == 0 ? old_fps : new_fps).push_back(fp);
  }
  std::set<std::uint64_t> out;
  t.extract_older(15, [&](std::uint64_t fp, std::uint32_t time) {
    EXPECT_EQ(time, 10u);
    out.insert(fp);
  });
  EXPECT_EQ(out, std::set<std::uint64_t>(old_fps.begin(), old_fps.end()));
  EXPECT_EQ(t.size(), new_fps.size());
  for (std::uint64_t fp : new_fps) EXPECT_TRUE(t.contains(fp));
  for (std::uint64_t fp : old_fps) EXPECT_FALSE(t.contains(fp));
}

TEST(IdTable, MatchesASetUnderRandomInsertsAndExtracts) {
  std::mt19937_64 rng(7);
  id_table t(61);  // not a power of two
  std::map<std::uint64_t, std::uint32_t> ref;
  for (int round = 0; round < 2000; ++round) {
    // A narrow key range: many collisions of home slots, and repeats.
    const std::uint64_t fp = ((rng() % 200) << 56) | (rng() % 4) << 1 | 1;
    const auto time = static_cast<std::uint32_t>(round);
    const bool fresh = ref.emplace(fp, time).second;
    EXPECT_EQ(t.insert(fp, time), fresh);
    if (t.size() > 45) {
      const auto before = static_cast<std::uint32_t>(round - 20);
      t.extract_older(before, [&](std::uint64_t f, std::uint32_t) { EXPECT_EQ(ref.erase(f), 1u); });
      for (auto it = ref.begin(); it != ref.end();) {
        EXPECT_GE(it->second, before);
        it = it->second < before ? ref.erase(it) : std::next(it);
      }
    }
    ASSERT_EQ(t.size(), ref.size());
  }
  for (const auto& [fp, time] : ref) EXPECT_TRUE(t.contains(fp));
}

// At the load the window moves entries at (85 %), with long runs: taking out the older half
// leaves exactly the newer half, each still found.
TEST(IdTable, ExtractingHalfOfAFullTableLeavesTheOtherHalfFindable) {
  std::mt19937_64 rng(11);
  id_table t(10007);
  std::set<std::uint64_t> old_fps, new_fps;
  while (t.size() < 8500) {
    const std::uint64_t fp = rng() | 1;
    const bool is_old = rng() % 2 == 0;
    if (old_fps.count(fp) + new_fps.count(fp) != 0) continue;
    ASSERT_TRUE(t.insert(fp, is_old ? 1 : 2));
    (is_old ? old_fps : new_fps).insert(fp);
  }
  std::set<std::uint64_t> out;
  t.extract_older(2, [&](std::uint64_t fp, std::uint32_t mark) {
    EXPECT_EQ(mark, 1u);
    EXPECT_TRUE(out.insert(fp).second) << "an entry came out twice";
  });
  EXPECT_EQ(out, old_fps);
  EXPECT_EQ(t.size(), new_fps.size());
  for (std::uint64_t fp : new_fps) EXPECT_TRUE(t.contains(fp));
  for (std::uint64_t fp : old_fps) EXPECT_FALSE(t.contains(fp));
  for (std::uint64_t fp : new_fps) EXPECT_FALSE(t.insert(fp, 3)) << "a repeat is refused";
}

// An extraction in steps of a few slots, with inserts (some into the runs it is taking apart,
// some refused repeats) and lookups between the steps: every old entry comes out once, every
// other one is found at every point, and the pass ends.
TEST(IdTable, ExtractingInStepsWhileInsertingKeepsEveryEntryFindable) {
  for (std::size_t step : {1, 3, 16}) {
    std::mt19937_64 rng(step);
    id_table t(997);
    std::set<std::uint64_t> old_fps, kept;
    // Homes crowded into a quarter of the table: long runs that wrap past its end.
    auto crowded = [&] { return at_home(800 + rng() % 250 % 997, 997, rng() % 1'000'000); };
    while (t.size() < 780) {
      const std::uint64_t fp = crowded();
      if (!t.insert(fp, 1)) continue;
      old_fps.insert(fp);
    }
    std::set<std::uint64_t> out;
    id_table::extraction x = t.begin_extract(2);
    int steps = 0;
    for (bool done = false; !done; ++steps) {
      done = t.extract_step(x, step, [&](std::uint64_t fp, std::uint32_t mark) {
        EXPECT_EQ(mark, 1u);
        EXPECT_TRUE(out.insert(fp).second) << "an entry came out twice";
      });
      for (int k = 0; k < 3 && t.size() < 900; ++k) {
        const std::uint64_t fp = crowded();
        if (old_fps.count(fp) == 0 && t.insert(fp, 5)) kept.insert(fp);
      }
      // What has not come out yet is still in the table; what came out is not.
      if (steps % 8 == 0) {
        for (std::uint64_t fp : kept) ASSERT_TRUE(t.contains(fp)) << "step " << steps;
        for (std::uint64_t fp : old_fps) ASSERT_NE(t.contains(fp), out.count(fp) == 1);
      }
      ASSERT_LT(steps, 100'000) << "the pass never ends";
    }
    EXPECT_EQ(out, old_fps) << "step " << step;
    EXPECT_EQ(t.size(), kept.size());
    EXPECT_GT(kept.size(), 30u);
    for (std::uint64_t fp : kept) EXPECT_FALSE(t.insert(fp, 6)) << "a repeat is refused";
    for (std::uint64_t fp : old_fps) EXPECT_FALSE(t.contains(fp));
  }
}

class IdWindowStore : public ::testing::Test {
 protected:
  IdWindowStore() : dir_(fs::temp_directory_path() / ("simcap-ids-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    st_ = std::make_unique<store>(dir_);
  }
  ~IdWindowStore() override {
    st_.reset();
    fs::remove_all(dir_);
  }
  // A checkpoint: cut and write, the previous one known durable.
  void checkpoint(id_window& w) {
    write_batch wb;
    ++n_;
    w.cut(wb, n_, n_ - 1);
    st_->write(wb);
  }
  static std::uint64_t fp(std::uint64_t n) { return id_fingerprint(n % 97, n * 0x9E37 + 5); }
  // Cuts until every finished move is in the store, read from there only: the cut that logs its
  // last ids, the one that makes its file once that one is written, the one that finds the file
  // added, and one more.
  void write_moves(id_window& w) {
    checkpoint(w);
    checkpoint(w);
    w.settle();
    checkpoint(w);
    checkpoint(w);
  }
  static unix_seconds slow_time(std::uint64_t i) {
    return static_cast<unix_seconds>(1'000'000 + i / 1024);
  }
  // Keys and bytes of one kind of shard 0's keys, in the record-id family or the default one.
  std::pair<std::uint64_t, std::uint64_t> count(key_kind kind, bool ids_family) {
    std::uint64_t n = 0, bytes = 0;
    auto f = [&](std::string_view, std::string_view v) {
      ++n;
      bytes += v.size();
      return true;
    };
    if (ids_family) {
      st_->scan_ids(shard_key(kind, 0).str(), f);
    } else {
      st_->scan(shard_key(kind, 0).str(), f);
    }
    return std::pair{n, bytes};
  }
  // Whether a window of that budget recovered from the store has ids 0..n-1 (dated time_of(i)).
  testing::AssertionResult all_found(std::size_t budget, std::uint64_t n,
                                     unix_seconds (*time_of)(std::uint64_t)) {
    id_window again(budget);
    again.attach(st_.get(), 0);
    again.add_moves_as_files(false);  // it writes nothing
    again.recover(*st_, 0);
    for (std::uint64_t i = 0; i < n; ++i) {
      if (again.insert(fp(i), time_of(i))) return testing::AssertionFailure() << "id " << i;
    }
    return testing::AssertionSuccess();
  }

  fs::path dir_;
  std::unique_ptr<store> st_;
  std::uint64_t n_ = 0;
};

TEST_F(IdWindowStore, OldIdsMoveToTheStoreAndAreStillFoundThere) {
  id_window w(64 << 10);  // 4096 slots of table
  w.attach(st_.get(), 0);
  const std::uint64_t kIds = 40'000;
  for (std::uint64_t i = 0; i < kIds; ++i) {
    ASSERT_TRUE(w.insert(fp(i), static_cast<unix_seconds>(1'000'000 + i / 8)));
    if (i % 2000 == 1999) checkpoint(w);
  }
  write_moves(w);  // every moved part known durable: read from the store only
  const id_window_stats s = w.stats();
  EXPECT_GT(s.moves, 5u);
  EXPECT_GT(s.in_store, kIds / 2);
  EXPECT_EQ(s.in_memory + s.in_store, kIds);
  // The budget holds, but for the filters of the store part (12 bits an id).
  EXPECT_LT(s.memory_bytes, (std::uint64_t{64} << 10) + 2 * s.in_store);
  // Every id is a repeat, in RAM or in the store; new ids of any time are not.
  for (std::uint64_t i = 0; i < kIds; ++i)
    ASSERT_FALSE(w.insert(fp(i), static_cast<unix_seconds>(1'000'000 + i / 8))) << i;
  EXPECT_GT(w.stats().store_lookups, 0u);
  for (std::uint64_t i = kIds; i < kIds + 500; ++i) {
    ASSERT_TRUE(w.insert(fp(i), 1'000'000)) << "a late new id";
    ASSERT_FALSE(w.insert(fp(i), 1'000'000)) << "and its repeat";
  }
  // A fresh window on the same store has them all: the moved ones and the logged table.
  checkpoint(w);
  id_window again(64 << 10);
  again.attach(st_.get(), 0);
  again.recover(*st_, 0);
  for (std::uint64_t i = 0; i < kIds + 500; ++i) {
    const auto t = static_cast<unix_seconds>(i < kIds ? 1'000'000 + i / 8 : 1'000'000);
    ASSERT_FALSE(again.insert(fp(i), t)) << i;
  }
  EXPECT_TRUE(again.insert(fp(kIds + 501), 1'000'000));
}

// A group as written before groups held fingerprints only: 12-byte entries (the fingerprint
// and an event time), no flag in its bits. Its ids are still found, before and after the moves
// that follow (into groups of 8-byte entries) and another restart.
TEST_F(IdWindowStore, AGroupOfTwelveByteEntriesWrittenBeforeIsStillRead) {
  constexpr std::uint64_t kOld = 3000;
  constexpr std::uint32_t kWhen = 2'000'000;
  {
    write_batch wb;
    std::string chunk;
    for (std::uint64_t i = 0; i < kOld; ++i) {
      const id_table::slot e{fp(i), kWhen};
      chunk.append(reinterpret_cast<const char*>(&e), sizeof e);
    }
    wb.put_id(*st_,
              shard_key(key_kind::id_group, 0)
                  .be(std::uint64_t{1})
                  .be(std::uint32_t{0})
                  .be(std::uint64_t{1})
                  .str(),
              chunk);
    writer key;  // next group 2; one group: no 1, its times, 0 bits, count, capacity, 1 part
    key.put(std::uint64_t{2}).put(std::uint32_t{1});
    key.put(std::uint64_t{1}).put(kWhen).put(kWhen).put(std::uint32_t{0});
    key.put(kOld).put(kOld).put(std::uint64_t{1});
    wb.put(shard_key(key_kind::id_tier, 0).str(), key.str());
    st_->write(wb);
  }
  auto stored_bytes = [&](std::string prefix) {
    std::uint64_t n = 0;
    st_->scan_ids(prefix, [&](std::string_view, std::string_view v) {
      n += v.size();
      return true;
    });
    return n;
  };
  id_window w(64 << 10);
  w.attach(st_.get(), 0);
  w.recover(*st_, 0);
  EXPECT_EQ(w.stats().in_store, kOld);
  for (std::uint64_t i = 0; i < kOld; ++i) ASSERT_FALSE(w.insert(fp(i), kWhen)) << i;
  constexpr std::uint64_t kNew = 20'000;
  auto when = [&](std::uint64_t i) { return static_cast<unix_seconds>(kWhen + 1 + i / 8); };
  for (std::uint64_t i = kOld; i < kOld + kNew; ++i) {
    ASSERT_TRUE(w.insert(fp(i), when(i)));
    if (i % 2000 == 1999) checkpoint(w);
  }
  write_moves(w);
  const id_window_stats s = w.stats();
  ASSERT_GT(s.moves, 0u);
  const std::uint64_t old_bytes =
      stored_bytes(shard_key(key_kind::id_group, 0).be(std::uint64_t{1}).str());
  EXPECT_EQ(old_bytes, kOld * 12);
  EXPECT_EQ(stored_bytes(shard_key(key_kind::id_group, 0).str()) - old_bytes,
            (s.in_store - kOld) * 8)
      << "moved ids take 8 bytes each";
  id_window again(64 << 10);
  again.attach(st_.get(), 0);
  again.recover(*st_, 0);
  for (std::uint64_t i = 0; i < kOld + kNew; ++i)
    ASSERT_FALSE(again.insert(fp(i), i < kOld ? kWhen : when(i))) << i;
  EXPECT_TRUE(again.insert(fp(kOld + kNew + 1), kWhen));
}

TEST_F(IdWindowStore, IdsAllOfOneSecondStillFitTheBudget) {
  id_window w(64 << 10);
  w.attach(st_.get(), 0);
  for (std::uint64_t i = 0; i < 30'000; ++i) {
    ASSERT_TRUE(w.insert(fp(i), 5'000'000));
    if (i % 1000 == 999) checkpoint(w);
  }
  write_moves(w);
  EXPECT_LT(w.stats().memory_bytes, (std::uint64_t{64} << 10) + 2 * w.stats().in_store);
  for (std::uint64_t i = 0; i < 30'000; ++i) ASSERT_FALSE(w.insert(fp(i), 5'000'000)) << i;
  // The filters keep new ids off the store: few reads for 30,000 new ones.
  const std::uint64_t reads = w.stats().store_lookups;
  for (std::uint64_t i = 30'000; i < 60'000; ++i) ASSERT_TRUE(w.insert(fp(i), 5'000'000));
  EXPECT_LT(w.stats().store_lookups - reads, 30'000u / 20);
}

TEST_F(IdWindowStore, PurgedGroupsLeaveTheStore) {
  id_window w(64 << 10);
  w.attach(st_.get(), 0);
  for (std::uint64_t i = 0; i < 20'000; ++i) {
    ASSERT_TRUE(w.insert(fp(i), static_cast<unix_seconds>(1'000 + i)));
    if (i % 1000 == 999) checkpoint(w);
  }
  checkpoint(w);
  w.purge(30'000);
  checkpoint(w);
  const id_window_stats s = w.stats();
  EXPECT_EQ(s.in_memory + s.in_store, 0u);
  std::size_t keys = 0;
  auto count = [&](std::string_view, std::string_view) {
    ++keys;
    return true;
  };
  st_->scan_ids(shard_key(key_kind::id_group, 0).str(), count);
  EXPECT_EQ(keys, 0u) << "no moved id is left";
  st_->scan(shard_key(key_kind::id_log, 0).str(), count);
  EXPECT_EQ(keys, 0u) << "no logged id is left";
}

TEST_F(IdWindowStore, ItsKeyIsReadBackAndADamagedOneRefused) {
  id_window w(64 << 10);
  w.attach(st_.get(), 0);
  for (std::uint64_t i = 0; i < 20'000; ++i) ASSERT_TRUE(w.insert(fp(i), 7'000 + i / 100));
  checkpoint(w);
  std::string v;
  ASSERT_TRUE(st_->get(shard_key(key_kind::id_tier, 0).str(), v));
  const auto key = id_window::decode_key(v);
  ASSERT_TRUE(key);
  ASSERT_FALSE(key->groups.empty());
  std::uint64_t moved = 0;
  for (const auto& g : key->groups) {
    EXPECT_LT(g.no, key->next_group);
    EXPECT_LE(g.min_t, g.max_t);
    moved += g.count;
  }
  EXPECT_EQ(moved, w.stats().in_store);
  EXPECT_FALSE(id_window::decode_key(v.substr(0, v.size() - 1))) << "truncated";
  std::string big = v;
  big[12 + 28] = '\x7f';  // the first group's capacity: far beyond any table
  big[12 + 35] = '\x7f';
  EXPECT_FALSE(id_window::decode_key(big));
  // Recovery refuses the damaged key rather than guess.
  write_batch wb;
  wb.put(shard_key(key_kind::id_tier, 0).str(), v.substr(0, v.size() - 1));
  st_->write(wb);
  id_window again(64 << 10);
  again.attach(st_.get(), 0);
  EXPECT_THROW(again.recover(*st_, 0), std::runtime_error);
}

}  // namespace
}  // namespace simcap::detail

namespace simcap::detail {
namespace {

// A move of old ids to the store goes on over the inserts that follow it. Meanwhile, an id on
// its way is still a repeat, a checkpoint cut in the middle loses none of them, and a window
// recovered from that checkpoint has them all.
TEST_F(IdWindowStore, IdsOnTheirWayToTheStoreAreRepeatsAndSurviveARestart) {
  id_window w(1 << 20);  // 65,536 slots of table: moves start at 52,428 ids
  w.attach(st_.get(), 0);
  std::uint64_t next = 0;
  auto time_of = [](std::uint64_t i) { return static_cast<unix_seconds>(1'000'000 + i / 64); };
  while (w.stats().moves == 0 && w.stats().in_store == 0) {
    ASSERT_TRUE(w.insert(fp(next), time_of(next)));
    ++next;
  }
  // A move has begun: some ids are out of the table and not yet in a finished move.
  ASSERT_EQ(w.stats().moves, 0u);
  const std::uint64_t first_batch = next;
  checkpoint(w);  // cut while the move goes on
  int in_progress_checks = 0;
  while (w.stats().moves == 0) {
    // An old id, taken out or not yet, is a repeat; so is one just inserted.
    const std::uint64_t old = (next * 7919) % first_batch;
    ASSERT_FALSE(w.insert(fp(old), time_of(old))) << old;
    ASSERT_TRUE(w.insert(fp(next), time_of(next)));
    ASSERT_FALSE(w.insert(fp(next), time_of(next)));
    ++next;
    ++in_progress_checks;
    if (next % 1000 == 0) checkpoint(w);
  }
  EXPECT_GT(in_progress_checks, 1000) << "the move spreads over inserts";
  const id_window_stats s = w.stats();
  EXPECT_EQ(s.in_memory + s.in_store, next);
  checkpoint(w);
  id_window again(1 << 20);
  again.attach(st_.get(), 0);
  again.recover(*st_, 0);
  for (std::uint64_t i = 0; i < next; ++i) ASSERT_FALSE(again.insert(fp(i), time_of(i))) << i;
  EXPECT_TRUE(again.insert(fp(next), time_of(next)));
}

// A move bigger than what a cut writes of it (at least 1 MiB, or twice what the cut logs) is
// written over several cuts. Until its last piece is written, the log values of its ids stay,
// so a restart at any cut in between still has every id.
// A move whose file cannot be added (or with files off) is written with the checkpoints.
TEST_F(IdWindowStore, AMoveIsWrittenOverSeveralCutsAndARestartBetweenLosesNoId) {
  id_window w(16 << 20);  // 1M slots of table: a move takes about 250,000 ids, 2 MB
  w.attach(st_.get(), 0);
  w.add_moves_as_files(false);
  auto time_of = slow_time;
  auto all_there = [&](std::uint64_t n) { return all_found(16 << 20, n, slow_time); };
  std::uint64_t next = 0;
  while (w.stats().moves == 0) {
    ASSERT_TRUE(w.insert(fp(next), time_of(next)));
    if (++next % 100'000 == 0) checkpoint(w);
  }
  const auto logs_before = count(key_kind::id_log, false);
  checkpoint(w);  // logs what came since, writes 1 MiB of the move
  const auto first = count(key_kind::id_group, true);
  EXPECT_GE(first.second, std::uint64_t{1} << 20);
  EXPECT_LT(first.second, w.stats().in_store * 8) << "the move is not written in full yet";
  EXPECT_EQ(count(key_kind::id_log, false).first, logs_before.first + 1) << "no log value goes";
  EXPECT_TRUE(all_there(next));
  int cuts = 1;
  for (; count(key_kind::id_group, true).second < w.stats().in_store * 8; ++cuts) {
    ASSERT_LT(cuts, 10);
    checkpoint(w);
    EXPECT_TRUE(all_there(next));
  }
  EXPECT_GE(cuts, 2);
  EXPECT_LT(count(key_kind::id_log, false).first, logs_before.first)
      << "once written in full, the log values of the moved ids go";
  EXPECT_TRUE(all_there(next));
}

// A move of ids all in checkpoints known written is added to the store as a table file as it
// ends: its ids are in the store before any cut counts them and no cut writes them. A restart
// between the file and that cut (its keys in the store, the window's key not counting them)
// loses no id and refuses no new one, and that window moves and restarts again. A move of ids
// some of which no checkpoint has yet goes with the cuts, the first of which logs them (and whose
// keys, unflushed, overlap the next file's: they are flushed before it is added).
TEST_F(IdWindowStore, AMoveIsAddedAsAFileOutsideTheCheckpointsAndARestartBeforeItsCutLosesNoId) {
  id_window w(16 << 20);
  w.attach(st_.get(), 0);
  std::uint64_t next = 0;
  for (; w.stats().moves == 0; ++next) ASSERT_TRUE(w.insert(fp(next), slow_time(next)));
  write_moves(w);
  EXPECT_EQ(w.stats().files, 0u) << "none of its ids was in a checkpoint";
  EXPECT_EQ(count(key_kind::id_group, true).second, w.stats().in_store * 8) << "written by cuts";
  const auto bytes = count(key_kind::id_group, true).second;
  const std::uint64_t in_store = w.stats().in_store;
  for (std::uint64_t i = 0; w.stats().moves == 1; ++i) {
    ASSERT_TRUE(w.insert(fp(next), slow_time(next))) << next;
    ++next;
    if (i % 50'000 == 49'999) checkpoint(w);
  }
  w.settle();
  const std::uint64_t moved = w.stats().in_store - in_store;
  ASSERT_GT(moved, 100'000u);
  EXPECT_EQ(count(key_kind::id_group, true).second - bytes, moved * 8) << "in the store, no cut";
  checkpoint(w);  // what came since the last one: a restart finds those too
  const std::uint64_t logged = next;
  EXPECT_TRUE(all_found(16 << 20, logged, slow_time));
  {
    // A restart where that cut was the last: it moves on (ids, a move of its own, its cuts).
    id_window again(16 << 20);
    again.attach(st_.get(), 0);
    again.recover(*st_, 0);
    std::uint64_t more = next;
    while (again.stats().moves == 0) {
      ASSERT_TRUE(again.insert(fp(more), slow_time(more))) << more;
      if (++more % 100'000 == 0) checkpoint(again);
    }
    write_moves(again);
    EXPECT_TRUE(all_found(16 << 20, more, slow_time));
    for (std::uint64_t i = more; i < more + 1000; ++i)
      ASSERT_TRUE(again.insert(fp(i), slow_time(next))) << "a new id of an old time";
  }
  // The first window goes on: its next cut counts the file and writes no moved id.
  write_batch wb;
  w.cut(wb, n_ + 1, n_);
  ++n_;
  EXPECT_LT(wb.data_size(), std::size_t{1} << 20);
  st_->write(wb);
  EXPECT_EQ(w.stats().files, 1u);
  EXPECT_TRUE(all_found(16 << 20, logged, slow_time));
}

// A move whose file cannot be made (here: where the store makes its files is taken by a file) is
// written with the checkpoints instead.
TEST_F(IdWindowStore, AMoveWhoseFileCannotBeMadeIsWrittenWithTheCheckpoints) {
  { std::ofstream(dir_ / "ingest") << "not a directory"; }
  id_window w(16 << 20);
  w.attach(st_.get(), 0);
  std::uint64_t next = 0;
  while (w.stats().moves == 0) {
    ASSERT_TRUE(w.insert(fp(next), slow_time(next)));
    if (++next % 50'000 == 0) checkpoint(w);
  }
  write_moves(w);
  for (int i = 0; i < 4; ++i) checkpoint(w);
  EXPECT_EQ(w.stats().files, 0u);
  EXPECT_EQ(w.stats().file_errors, 1u);
  EXPECT_EQ(count(key_kind::id_group, true).second, w.stats().in_store * 8);
  EXPECT_TRUE(all_found(16 << 20, next, slow_time));
}

// Logged ids loaded at a restart into a table too small for them move at once. Each is dated
// its log value's newest time, but the group it moves to covers its own, older time, where a
// late repeat of it looks.
TEST_F(IdWindowStore, LoggedIdsMovedAtARestartAreFoundAtTheirOwnTimes) {
  id_window w(64 << 20);  // no move here: every id is logged
  w.attach(st_.get(), 0);
  constexpr std::uint64_t kIds = 40'000;
  auto when = [](std::uint64_t i) { return static_cast<unix_seconds>(1'000'000 + i / 8); };
  for (std::uint64_t i = 0; i < kIds; ++i) {
    ASSERT_TRUE(w.insert(fp(i), when(i)));
    if (i % 2000 == 1999) checkpoint(w);
  }
  checkpoint(w);
  ASSERT_EQ(w.stats().moves, 0u);
  id_window small(64 << 10);
  small.attach(st_.get(), 0);
  small.recover(*st_, 0);
  EXPECT_GT(small.stats().moves, 2u);
  for (std::uint64_t i = 0; i < kIds; ++i) ASSERT_FALSE(small.insert(fp(i), when(i))) << i;
}

}  // namespace
}  // namespace simcap::detail
