// Checkpoints and recovery: state written by one engine is what the next one on the same store
// starts with; a torn or corrupt last checkpoint is skipped whole.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <optional>
#include <random>

#include "durability/codec.hpp"
#include "durability/keys.hpp"
#include "engine_fixture.hpp"
#include "state/id_table.hpp"

namespace simcap::testing {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir() {
  static std::atomic<int> n{0};
  fs::path d = fs::temp_directory_path() /
               ("simcap-durable-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  fs::remove_all(d);
  return d;
}

engine_options durable_options(const fs::path& dir) {
  engine_options o;
  o.store_dir = dir.string();
  o.checkpoint_interval = std::chrono::hours(1);  // the tests checkpoint by hand
  o.default_mb_limit = 1;
  o.events_in_memory = 64;  // older events are read from the store
  return o;
}

class Durability : public engine_fixture {
 protected:
  Durability() : Durability(fresh_dir()) {}
  explicit Durability(fs::path dir) : engine_fixture(durable_options(dir)), dir_(std::move(dir)) {}
  ~Durability() override {
    if (eng_) eng_->stop();
    eng_.reset();
    fs::remove_all(dir_);
  }

  // Stops the engine (a final checkpoint) and starts a new one on the same store.
  void restart() {
    eng_->stop();
    eng_.reset();
    open();
  }
  void open() {
    engine_options o = durable_options(dir_);
    o.shards = 2;
    if (dedup_memory_ != 0) o.dedup_memory = dedup_memory_;
    if (events_retention_) o.events_retention = *events_retention_;
    if (events_max_) o.events_max = *events_max_;
    eng_ = std::make_unique<engine>(std::move(o), clock_, dead_letters_);
    eng_->start();
    feed_ = eng_->register_feed("test-feed");
  }

  // Records as a feed session sends them: every shard gets its part, with the chunk's last seq.
  void feed_seq(const std::vector<usage_record>& rs) {
    engine::producer prod(*eng_);
    std::vector<std::unique_ptr<test_batch>> batches(eng_->shard_count());
    std::uint64_t upto = 0;
    for (const auto& r : rs) upto = std::max(upto, r.seq);
    for (auto& b : batches) {
      b = std::make_unique<test_batch>();
      b->feed = feed_;
      b->upto_seq = upto;
    }
    for (const auto& r : rs)
      batches[engine::shard_for(r.sim, eng_->shard_count())]->storage.push_back(r);
    for (unsigned s = 0; s < batches.size(); ++s) {
      batches[s]->records = batches[s]->storage;
      prod.submit(s, *batches[s]);
    }
    for (auto& b : batches) {
      while (!b->done()) std::this_thread::yield();
    }
  }

  std::uint64_t usage(std::uint64_t n) { return eng_->get_sim(test_iccid(n))->usage_bytes(); }
  sim_state state(std::uint64_t n) { return eng_->get_sim(test_iccid(n))->state; }

  // Opens the store with RocksDB itself (the engine stopped), both column families, and hands it
  // to f with their handles (default, ids).
  void with_raw_store(
      const std::function<void(rocksdb::DB&, std::vector<rocksdb::ColumnFamilyHandle*>&)>& f) {
    using namespace rocksdb;
    std::vector<ColumnFamilyDescriptor> families{{kDefaultColumnFamilyName, {}}, {"ids", {}}};
    std::vector<ColumnFamilyHandle*> handles;
    DB* raw = nullptr;
    ASSERT_TRUE(DB::Open(DBOptions(), dir_.string(), families, &handles, &raw).ok());
    std::unique_ptr<DB> db(raw);
    f(*db, handles);
    for (ColumnFamilyHandle* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }

  // The newest WAL file of the store.
  fs::path newest_wal() const {
    fs::path best;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".log" && (best.empty() || e.path().filename() > best.filename()))
        best = e.path();
    }
    return best;
  }

  // Checkpoint A: SIMs 1 and 2 at 100 bytes, seq 2. Checkpoint B: both at 150, seq 4.
  void two_checkpoints_then_stop() {
    make_product("acme");
    import("acme", {1, 2});
    feed_seq({rec(1, 100, kStart, 0, 1), rec(2, 100, kStart, 0, 2)});
    eng_->checkpoint();
    feed_seq({rec(1, 50, kStart, 0, 3), rec(2, 50, kStart, 0, 4)});
    eng_->checkpoint();
    eng_->stop();
    eng_.reset();
  }

  // Every read of the event log (six filters, seven positions, two limits) answers exactly the
  // events of `kept` (ascending ids) that it asks for.
  void expect_reads(const std::vector<event>& kept) {
    ASSERT_GT(kept.size(), 64u);
    const std::uint16_t acme = kept.front().product;
    std::vector<event_filter> filters(6);
    filters[1].product = acme;
    filters[2].sim = test_iccid(4).key();
    filters[3].type = event_type::paused;
    filters[4].product = acme;
    filters[4].type = event_type::alert;
    filters[5].sim = test_iccid(10).key();
    filters[5].type = event_type::paused;
    const std::uint64_t last = kept.back().id;
    for (std::size_t fi = 0; fi < filters.size(); ++fi) {
      for (std::uint64_t after :
           {std::uint64_t{0}, std::uint64_t{1}, last / 3, last - 64, last - 63, last - 10, last}) {
        for (std::size_t limit : {std::size_t{5}, std::size_t{100'000}}) {
          std::vector<std::uint64_t> want;
          for (const event& e : kept) {
            if (e.id > after && filters[fi].matches(e) && want.size() < limit) want.push_back(e.id);
          }
          std::vector<std::uint64_t> got;
          for (const event& e : eng_->events().read(after, limit, filters[fi])) {
            EXPECT_TRUE(filters[fi].matches(e));
            got.push_back(e.id);
          }
          EXPECT_EQ(got, want) << "filter " << fi << " after " << after << " limit " << limit;
        }
      }
    }
  }

  fs::path dir_;
  std::uint64_t dedup_memory_ = 0;  // 0: the default
  std::optional<std::chrono::seconds> events_retention_;
  std::optional<std::uint64_t> events_max_;
};

TEST_F(Durability, CheckpointRoundTripKeepsSimsEventsWatermarksAndIds) {
  make_product("acme");
  import("acme", {1, 2, 3});
  feed_seq(
      {rec(1, 400'000, kStart, 11, 1), rec(2, 1'100'000, kStart, 12, 2), rec(3, 5, kStart, 0, 3)});
  ASSERT_TRUE(set_limit(3, 7).has_value());
  ASSERT_EQ(state(2), sim_state::paused);
  eng_->checkpoint();
  EXPECT_EQ(eng_->durable_seq(feed_), 3u);
  auto events_before = eng_->events().read(0, 100);
  ASSERT_FALSE(events_before.empty());

  restart();
  EXPECT_EQ(usage(1), 400'000u);
  EXPECT_EQ(usage(2), 1'100'000u);
  EXPECT_EQ(state(2), sim_state::paused);
  EXPECT_EQ(eng_->get_sim(test_iccid(3))->mb_limit, 7u);
  EXPECT_EQ(eng_->resume_after(feed_), 3u);
  EXPECT_EQ(eng_->durable_seq(feed_), 3u);
  auto events_after = eng_->events().read(0, 100);
  ASSERT_EQ(events_after.size(), events_before.size());
  for (std::size_t i = 0; i < events_after.size(); ++i) {
    EXPECT_EQ(events_after[i].id, events_before[i].id);
    EXPECT_EQ(events_after[i].type, events_before[i].type);
    EXPECT_EQ(events_after[i].sim, events_before[i].sim);
  }
  auto fleet = eng_->product_usage("acme");
  EXPECT_EQ(fleet->usage_bytes(), 1'500'005u);
  EXPECT_EQ(fleet->sims_by_state[static_cast<int>(sim_state::paused)], 1u);

  // The feed resends: seqs already applied are duplicates, and so is a known record id.
  feed_seq({rec(1, 400'000, kStart, 11, 1), rec(2, 1'100'000, kStart, 12, 2)});
  EXPECT_EQ(usage(1), 400'000u);
  feed_seq({rec(1, 400'000, kStart, 11, 4), rec(1, 1, kStart, 0, 5)});
  EXPECT_EQ(usage(1), 400'001u);
  // New events continue after the recovered ids, with no duplicate pause.
  feed_seq({rec(1, 700'000, kStart, 0, 6)});
  eng_->checkpoint();
  auto evs = eng_->events().read(events_before.back().id, 100);
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.front().id, events_before.back().id + 1);
  EXPECT_EQ(simcap::testing::count_of(eng_->events(), event_type::paused),
            2u);  // SIMs 2 and 1, once each
}

TEST_F(Durability, ClosedPeriodsDaysAndRolloverOfMissedPeriodsRecover) {
  make_product("acme", 5);
  import("acme", {1, 2});
  feed_seq(
      {rec(1, 1000, kStart, 0, 1), rec(1, 2000, kStart + 86400, 0, 2), rec(2, 3000, kStart, 0, 3)});
  auto p = eng_->get_product("acme");
  ASSERT_TRUE(eng_->advance_clock(p->period_end + 3600));
  feed_seq({rec(1, 500, p->period_end - 10, 0, 4)});  // late: adjusts the closed period
  auto closed_before = eng_->closed_periods("acme", true);
  ASSERT_EQ(closed_before->size(), 1u);
  eng_->checkpoint();
  auto days_before = eng_->sim_usage_by_day(test_iccid(1));

  restart();
  auto closed_after = eng_->closed_periods("acme", true);
  ASSERT_EQ(closed_after->size(), 1u);
  EXPECT_EQ(closed_after->front().total_bytes, 6500u);
  ASSERT_EQ(closed_after->front().lines.size(), closed_before->front().lines.size());
  for (std::size_t i = 0; i < closed_after->front().lines.size(); ++i) {
    EXPECT_EQ(closed_after->front().lines[i].sim, closed_before->front().lines[i].sim);
    EXPECT_EQ(
        closed_after->front().lines[i].bytes_up + closed_after->front().lines[i].bytes_down,
        closed_before->front().lines[i].bytes_up + closed_before->front().lines[i].bytes_down);
  }
  EXPECT_EQ(eng_->sim_usage_by_day(test_iccid(1))->second.size(), days_before->second.size());

  // Two periods end while the engine is down: both roll over at start-up, with their events.
  const unix_seconds p2_end = eng_->get_product("acme")->period_end;
  eng_->stop();
  eng_.reset();
  clock_.advance_to(p2_end + 32 * 86400);  // past the end of the period after it too
  open();
  eng_->tick();
  eng_->checkpoint();
  EXPECT_EQ(eng_->closed_periods("acme", false)->size(), 3u);
  EXPECT_EQ(simcap::testing::count_of(eng_->events(), event_type::period_closed), 3u);
}

TEST_F(Durability, TornOrCorruptLastCheckpointIsSkippedWhole) {
  two_checkpoints_then_stop();
  fs::path wal = newest_wal();
  ASSERT_FALSE(wal.empty());
  const auto size = fs::file_size(wal);

  // Torn: the last write stopped part way.
  fs::resize_file(wal, size - 7);
  open();
  EXPECT_EQ(usage(1), 100u);
  EXPECT_EQ(usage(2), 100u);  // both SIMs at A: never half of B
  EXPECT_EQ(eng_->resume_after(feed_), 2u);
  eng_->stop();
  eng_.reset();
}

TEST_F(Durability, CorruptByteInLastCheckpointIsDetected) {
  two_checkpoints_then_stop();
  fs::path wal = newest_wal();
  const auto size = fs::file_size(wal);
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 40));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(size - 40));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  open();
  EXPECT_EQ(usage(1), 100u);
  EXPECT_EQ(usage(2), 100u);
  EXPECT_EQ(eng_->resume_after(feed_), 2u);
}

// An id is remembered for as long as a record with its event time can still be counted, also
// across a restart (the reproduction: period start + 5 d, a record dated start + 1 d).
TEST_F(Durability, RecordIdIsRememberedWhileItsRecordCouldCountAcrossARestart) {
  make_product("acme", 100);
  import("acme", {1});
  const unix_seconds start = eng_->get_product("acme")->period_start;
  ASSERT_TRUE(eng_->advance_clock(start + 5 * 86400));
  feed_seq({rec(1, 1000, start + 86400, 42, 1)});
  feed_seq({rec(1, 1000, start + 86400, 42, 2)});
  EXPECT_EQ(usage(1), 1000u);
  ASSERT_TRUE(eng_->advance_clock(start + 5 * 86400 + 2 * 3600));
  feed_seq({rec(1, 1000, start + 86400, 42, 3)});
  EXPECT_EQ(usage(1), 1000u);
  restart();
  feed_seq({rec(1, 1000, start + 86400, 42, 4)});
  EXPECT_EQ(usage(1), 1000u);
}

// A window of record ids far bigger than dedup_memory: the older ids move to the store, and
// every resent record is still dropped, exactly once, before and after a restart; records
// with new ids, late or not, count once.
TEST_F(Durability, RecordIdsSpilledToTheStoreStayExactAcrossARestart) {
  dedup_memory_ = 256 << 10;  // 128 KiB a shard: about 8,000 ids in RAM each
  restart();
  make_product("acme", 100'000);
  std::vector<std::uint64_t> sims;
  for (std::uint64_t n = 1; n <= 200; ++n) sims.push_back(n);
  import("acme", sims);
  const unix_seconds start = eng_->get_product("acme")->period_start;
  ASSERT_TRUE(eng_->advance_clock(start + 86400));
  constexpr std::uint64_t kRecords = 60'000;
  // Ids unique per SIM (the same id on two SIMs is two records); times rising over 10 hours.
  auto record = [&](std::uint64_t i, std::uint64_t seq) {
    return rec(1 + i % 200, 1 + i % 7, start + static_cast<unix_seconds>(i * 36 / 60), 0x5000 + i,
               seq);
  };
  std::uint64_t seq = 0, expected = 0;
  auto send = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t i = from; i < to; i += 2000) {
      std::vector<usage_record> rs;
      for (std::uint64_t j = i; j < std::min(to, i + 2000); ++j) rs.push_back(record(j, ++seq));
      feed_seq(rs);
      eng_->checkpoint();
    }
  };
  auto total = [&] { return eng_->product_usage("acme")->usage_bytes(); };
  send(0, kRecords);
  for (std::uint64_t i = 0; i < kRecords; ++i) expected += 1 + i % 7;
  ASSERT_EQ(total(), expected);
  eng_->checkpoint();
  // Moves of ids long in checkpoints go as table files, made on a thread of their own: a
  // checkpoint finds one added once it is.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (eng_->stats().ids_files == 0 && std::chrono::steady_clock::now() < until)
    eng_->checkpoint();
  const engine_stats moved = eng_->stats();
  EXPECT_GT(moved.ids_moves, 0u);
  EXPECT_GT(moved.ids_files, 0u) << "moves of ids long in checkpoints go as table files";
  EXPECT_EQ(moved.ids_file_errors, 0u);
  EXPECT_GT(moved.ids_in_store, kRecords / 2) << "most ids live in the store";
  EXPECT_EQ(moved.ids_in_memory + moved.ids_in_store, kRecords);
  EXPECT_LT(moved.ids_memory_bytes, (256u << 10) + 2 * moved.ids_in_store);

  // Resent (new seqs, as by a carrier resending a file): every one a duplicate.
  const std::uint64_t dups = eng_->stats().duplicate_ids;
  send(0, kRecords);
  EXPECT_EQ(total(), expected);
  EXPECT_EQ(eng_->stats().duplicate_ids - dups, kRecords);
  EXPECT_GT(eng_->stats().ids_store_reads, 0u);

  restart();
  EXPECT_EQ(total(), expected);
  const std::uint64_t dups2 = eng_->stats().duplicate_ids;
  send(0, kRecords);
  EXPECT_EQ(total(), expected) << "after the restart too";
  EXPECT_EQ(eng_->stats().duplicate_ids - dups2, kRecords);
  // New ids: dated early (late records, below the RAM part) and now; each counts once.
  std::vector<usage_record> fresh;
  for (std::uint64_t i = 0; i < 500; ++i) {
    fresh.push_back(rec(1 + i % 200, 10, start + 60, 0x900000 + i, ++seq));
    fresh.push_back(rec(1 + i % 200, 10, start + 86000, 0xA00000 + i, ++seq));
  }
  feed_seq(fresh);
  eng_->checkpoint();
  for (auto& r : fresh) r.seq = ++seq;
  feed_seq(fresh);
  EXPECT_EQ(total(), expected + 1000 * 10);
  restart();
  for (auto& r : fresh) r.seq = ++seq;
  feed_seq(fresh);
  EXPECT_EQ(total(), expected + 1000 * 10);
}

// A store of the version before the id window: its record ids are 'D' values of (fingerprint,
// event time) pairs, and it has no record-id family. It opens, and those ids are still refused,
// after the next restart too (they are in the window's log by then).
TEST_F(Durability, RecordIdsOfAStoreFromBeforeTheIdWindowAreStillRefused) {
  restart();  // two shards, as below
  make_product("acme", 100);
  import("acme", {1, 2, 3});
  const unix_seconds start = eng_->get_product("acme")->period_start;
  ASSERT_TRUE(eng_->advance_clock(start + 86400));
  feed_seq({rec(1, 1000, start + 3600, 0, 1)});
  eng_->stop();
  eng_.reset();
  const unix_seconds when = start + 7200;
  // The store as that version left it.
  with_raw_store([&](rocksdb::DB& db, std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
    using namespace rocksdb;
    ASSERT_TRUE(db.DropColumnFamily(handles[1]).ok());
    WriteBatch wb;
    for (std::uint64_t n = 1; n <= 3; ++n) {
      const std::uint64_t sim = test_iccid(n).key();
      detail::writer v;
      v.put(detail::id_fingerprint(sim, 0x7000 + n)).put(when);
      const auto key = detail::shard_key(detail::key_kind::ids, engine::shard_for(sim, 2))
                           .be(static_cast<std::uint64_t>(when))
                           .be(std::uint64_t{n})
                           .str();
      ASSERT_TRUE(wb.Put(key, v.str()).ok());
    }
    WriteOptions w;
    w.sync = true;
    ASSERT_TRUE(db.Write(w, &wb).ok());
  });
  open();
  ASSERT_EQ(usage(1), 1000u);
  auto resend = [&](std::uint64_t seq) {
    feed_seq({rec(1, 500, when, 0x7001, seq), rec(2, 500, when, 0x7002, seq + 1),
              rec(3, 500, when, 0x7003, seq + 2)});
  };
  std::uint64_t dups = eng_->stats().duplicate_ids;
  resend(2);
  EXPECT_EQ(eng_->stats().duplicate_ids - dups, 3u);
  EXPECT_EQ(usage(1), 1000u);
  EXPECT_EQ(usage(2), 0u);
  feed_seq({rec(2, 500, when, 0x8002, 5)});
  EXPECT_EQ(usage(2), 500u) << "a new id counts";
  restart();
  dups = eng_->stats().duplicate_ids;
  resend(6);
  EXPECT_EQ(eng_->stats().duplicate_ids - dups, 3u);
  EXPECT_EQ(usage(3), 0u);
}

TEST_F(Durability, OldLifeOfAReimportedSimSurvivesARestart) {
  make_product("acme", 100);
  import("acme", {1, 2});
  feed_seq({rec(1, 3000, kStart, 0, 1)});
  ASSERT_TRUE(act(1, sim_action::release));
  import("acme", {1});
  feed_seq({rec(1, 5, kStart, 0, 2)});
  restart();
  auto fleet = eng_->product_usage("acme");
  EXPECT_EQ(fleet->usage_bytes(), 3005u);
  EXPECT_EQ(fleet->chargeable_sims, 2u);
  EXPECT_EQ(usage(1), 5u);
  ASSERT_TRUE(eng_->advance_clock(eng_->get_product("acme")->period_end + 60));
  auto closed = eng_->closed_periods("acme", true);
  ASSERT_EQ(closed->size(), 1u);
  EXPECT_EQ(closed->front().total_bytes, 3005u);
  EXPECT_EQ(closed->front().chargeable_sims, 2u);
  restart();  // the retired line is in the closed period now, once
  EXPECT_EQ(eng_->closed_periods("acme", true)->front().total_bytes, 3005u);
}

// A store whose first base is far from complete (400,000 SIMs: a base slice writes about 16,000
// of a shard's 235,000 slots a checkpoint, and there are nine) holds its SIMs in deltas alone,
// in the memory order of the table that wrote them. They come back exact: usage changed in later
// deltas, SIMs deactivated, released, or released and imported again.
TEST_F(Durability, SimsHeldInDeltasAloneComeBackExact) {
  constexpr std::uint64_t kSims = 400'000;
  make_product("acme", 1000);
  std::vector<std::uint64_t> ns(kSims);
  std::iota(ns.begin(), ns.end(), 1);
  import("acme", ns);
  std::vector<usage_record> rs;
  std::uint64_t seq = 0;
  for (std::uint64_t n = 1; n <= kSims; ++n) rs.push_back(rec(n, n % 5000 + 1, kStart, 0, ++seq));
  feed_seq(rs);
  eng_->checkpoint();
  rs.clear();
  for (std::uint64_t n = 3; n <= kSims; n += 3) rs.push_back(rec(n, 70'000, kStart, 0, ++seq));
  feed_seq(rs);
  eng_->checkpoint();
  for (std::uint64_t n = 5; n <= kSims; n += 200'000) ASSERT_TRUE(act(n, sim_action::deactivate));
  for (std::uint64_t n = 7; n <= kSims; n += 200'000) ASSERT_TRUE(act(n, sim_action::release));
  import("acme", {7});
  eng_->stop();
  eng_.reset();
  // No base is complete: the store has no shard's base generation.
  with_raw_store([](rocksdb::DB& db, auto&) {
    for (unsigned shard = 0; shard < 2; ++shard) {
      std::string v;
      EXPECT_TRUE(db.Get(rocksdb::ReadOptions(),
                         detail::shard_key(detail::key_kind::base_gen, shard).str(), &v)
                      .IsNotFound());
    }
  });
  open();
  sim_filter all;
  all.include_released = true;
  const sim_page page = eng_->list_sims(all, 0, 2 * kSims);
  ASSERT_EQ(page.sims.size(), kSims);
  std::array<std::size_t, kSimStateCount> by_state{};
  for (std::uint64_t n = 1; n <= kSims; ++n) {
    const sim_view& v = page.sims[n - 1];  // by ICCID
    ASSERT_EQ(v.id, test_iccid(n));
    const bool released = n % 200'000 == 7;
    const bool back = n == 7;
    std::uint64_t want = n % 5000 + 1 + (n % 3 == 0 ? 70'000 : 0);
    if (back) want = 0;  // a new life
    ASSERT_EQ(v.usage_bytes(), want) << n;
    const sim_state state = back               ? sim_state::active
                            : released         ? sim_state::released
                            : n % 200'000 == 5 ? sim_state::deactivated
                                               : sim_state::active;
    ASSERT_EQ(v.state, state) << n;
    ++by_state[static_cast<std::size_t>(state)];
  }
  EXPECT_EQ(eng_->stats().sims_by_state, by_state);
}

// The meta key names the store's format. A store without it (written before formats were
// named) opens; one of a later format is refused at start, with what to do, rather than read
// wrong (an earlier simcapd cannot tell: it would start with SIMs missing).
TEST_F(Durability, AStoreOfALaterFormatIsRefusedAtStart) {
  two_checkpoints_then_stop();
  auto rewrite_format = [&](std::optional<std::uint32_t> format) {
    with_raw_store([&](rocksdb::DB& db, auto&) {
      const std::string key = detail::key_of(detail::key_kind::meta).str();
      std::string v;
      ASSERT_TRUE(db.Get(rocksdb::ReadOptions(), key, &v).ok());
      ASSERT_EQ(v.size(), 8u + 4u + 8u + 4u);
      std::uint32_t stored = 0;
      std::memcpy(&stored, v.data() + 20, sizeof stored);
      EXPECT_EQ(stored, detail::kStoreFormat);
      v.resize(20);
      if (format) v.append(reinterpret_cast<const char*>(&*format), sizeof *format);
      rocksdb::WriteOptions w;
      w.sync = true;
      ASSERT_TRUE(db.Put(w, key, v).ok());
    });
  };
  rewrite_format(std::nullopt);
  open();
  EXPECT_EQ(usage(1), 150u);
  eng_->checkpoint();  // the meta key names the format again
  eng_->stop();
  eng_.reset();
  rewrite_format(detail::kStoreFormat + 1);
  try {
    open();
    ADD_FAILURE() << "a store of a later format was opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("written by a later simcapd"), std::string::npos)
        << e.what();
  }
}

// simcapd --clock simulated: the simulated time goes on from where it was, not from the real
// time of the restart.
TEST_F(Durability, SimulatedClockResumesWhereItWas) {
  make_product("acme");
  import("acme", {1});
  const unix_seconds later = kStart + 40 * 86400;
  ASSERT_TRUE(eng_->advance_clock(later));
  eng_->stop();
  eng_.reset();
  manual_clock restarted(kStart);  // as simcapd makes it: the real time at start
  engine_options o = durable_options(dir_);
  o.shards = 2;
  o.resume_clock = true;
  eng_ = std::make_unique<engine>(std::move(o), restarted, dead_letters_);
  eng_->start();
  EXPECT_EQ(restarted.now(), later);
  EXPECT_EQ(eng_->get_product("acme")->period_start, sim(1).period_start);
  EXPECT_GT(eng_->get_product("acme")->period_start, kStart);
  eng_->stop();
  eng_.reset();
}

// A changed setting of an existing product is in the checkpoint that answers the change.
TEST_F(Durability, ChangedProductSettingsSurviveARestart) {
  make_product("acme", 5);
  import("acme", {1});
  product_settings p;
  p.id = "acme";
  p.default_mb_limit = 9;
  p.country = "DE";
  p.alert_emails = std::vector<std::string>{"ops@example.com", "noc@example.org"};
  ASSERT_TRUE(eng_->put_product(p));
  restart();
  auto v = eng_->get_product("acme");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->default_mb_limit, 9u);
  EXPECT_EQ(v->country, "DE");
  EXPECT_EQ(v->alert_emails, (std::vector<std::string>{"ops@example.com", "noc@example.org"}));
}

// A store written with 2 shards opens with 3 (and back with 2): every SIM, its usage and days,
// closed periods, retired lines, record ids and watermarks come along.
TEST_F(Durability, StoreIsReshardedAtStart) {
  make_product("acme", 100);
  import("acme", {1, 2, 3, 4, 5, 6, 7, 8});
  const unix_seconds start = eng_->get_product("acme")->period_start;
  std::vector<usage_record> rs;
  for (std::uint64_t n = 1; n <= 8; ++n) rs.push_back(rec(n, 100 * n, start + 3600, 1000 + n, n));
  feed_seq(rs);
  ASSERT_TRUE(eng_->advance_clock(eng_->get_product("acme")->period_end + 3600));
  feed_seq({rec(1, 7, start + 7200, 0, 9),
            rec(2, 5, eng_->get_product("acme")->period_start + 86400 + 60, 0, 10)});
  ASSERT_TRUE(eng_->advance_clock(eng_->get_product("acme")->period_start + 2 * 86400 + 60));
  feed_seq({rec(2, 11, eng_->get_product("acme")->period_start + 2 * 86400, 77, 11)});
  ASSERT_TRUE(act(3, sim_action::release));
  import("acme", {3});
  auto closed_before = eng_->closed_periods("acme", true);
  auto fleet_before = eng_->product_usage("acme");
  auto days_before = eng_->sim_usage_by_day(test_iccid(2))->second;
  eng_->stop();
  eng_.reset();
  std::uint64_t resume = 11;
  for (unsigned count : {3u, 2u}) {
    engine_options o = durable_options(dir_);
    o.shards = count;
    eng_ = std::make_unique<engine>(std::move(o), clock_, dead_letters_);
    eng_->start();
    feed_ = eng_->register_feed("test-feed");
    EXPECT_EQ(eng_->shard_count(), count);
    for (std::uint64_t n = 1; n <= 8; ++n) EXPECT_TRUE(eng_->get_sim(test_iccid(n))) << n;
    EXPECT_EQ(usage(2), 16u);
    EXPECT_EQ(eng_->resume_after(feed_), resume);
    auto fleet = eng_->product_usage("acme");
    EXPECT_EQ(fleet->usage_bytes(), fleet_before->usage_bytes());
    EXPECT_EQ(fleet->chargeable_sims, fleet_before->chargeable_sims);
    auto closed = eng_->closed_periods("acme", true);
    ASSERT_EQ(closed->size(), 1u);
    EXPECT_EQ(closed->front().total_bytes, closed_before->front().total_bytes);
    EXPECT_EQ(closed->front().chargeable_sims, closed_before->front().chargeable_sims);
    EXPECT_EQ(closed->front().lines.size(), closed_before->front().lines.size());
    auto days = eng_->sim_usage_by_day(test_iccid(2))->second;
    ASSERT_EQ(days.size(), days_before.size());
    for (std::size_t d = 0; d < days.size(); ++d)
      EXPECT_EQ(days[d].bytes, days_before[d].bytes) << d;
    // A known record id is still a duplicate; resent seqs are too.
    feed_seq({rec(2, 11, eng_->get_product("acme")->period_start + 2 * 86400, 77, 12)});
    feed_seq({rec(4, 999, eng_->get_product("acme")->period_start + 2 * 86400, 0, 11)});
    EXPECT_EQ(usage(2), 16u);
    EXPECT_EQ(usage(4), 0u);
    resume = 12;
    eng_->stop();
    eng_.reset();
  }
  open();
}

// Shards that stopped at different seqs of a feed (a crash) cannot be re-sharded: start says so.
TEST_F(Durability, ReshardingRefusesAStoreThatDidNotStopCleanly) {
  make_product("acme", 100);
  import("acme", {1});
  feed_seq({rec(1, 10, kStart, 0, 1)});
  {
    engine::producer prod(*eng_);
    test_batch only_one;
    only_one.feed = feed_;
    only_one.upto_seq = 20;  // shard 0 alone moves on, as when a crash cut a chunk short
    only_one.records = only_one.storage;
    prod.submit(0, only_one);
    while (!only_one.done()) std::this_thread::yield();
  }
  eng_->stop();
  eng_.reset();
  engine_options o = durable_options(dir_);
  o.shards = 3;
  auto e = std::make_unique<engine>(std::move(o), clock_, dead_letters_);
  try {
    e->start();
    ADD_FAILURE() << "started";
  } catch (const std::runtime_error& err) {
    EXPECT_NE(std::string(err.what()).find("not stopped cleanly"), std::string::npos) << err.what();
  }
  e.reset();
  open();  // with 2 shards it still opens
  EXPECT_EQ(usage(1), 10u);
}

}  // namespace
}  // namespace simcap::testing

namespace simcap::testing {
namespace {

TEST_F(Durability, SideStateIsWrittenWithTheCheckpointAndReadBack) {
  eng_->put_side_state("sink/carrier", "position 41");
  eng_->put_side_state("sink/hooks", "a");
  eng_->put_side_state("other", "x");
  eng_->checkpoint();
  eng_->put_side_state("sink/hooks", "");  // removed
  eng_->put_side_state("sink/carrier", "position 42");
  eng_->checkpoint();
  restart();
  using kv = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(eng_->side_state("sink/"), (kv{{"sink/carrier", "position 42"}}));
  EXPECT_EQ(eng_->side_state(""), (kv{{"other", "x"}, {"sink/carrier", "position 42"}}));
}

// The log keeps its newest events in memory; every read, filtered or not, from any position,
// gives what an unbounded log would, before and after a restart.
TEST_F(Durability, EventLogReadsOlderEventsFromTheStoreLikeFromMemory) {
  std::mutex mu;
  std::vector<event> seen;  // every event, as the listener saw it appended
  const auto listen = [&] {
    return eng_->events().add_listener([&](const event& e) {
      std::lock_guard lock(mu);
      seen.push_back(e);
    });
  };
  auto l = listen();
  make_product("acme");
  make_product("beta");
  std::vector<std::uint64_t> a, b;
  for (std::uint64_t n = 1; n <= 300; ++n) a.push_back(n);
  for (std::uint64_t n = 301; n <= 450; ++n) b.push_back(n);
  // Several checkpoints: each writes its own index values.
  import("acme", a);
  eng_->checkpoint();
  import("beta", b);
  eng_->checkpoint();
  std::vector<usage_record> over;
  for (std::uint64_t n = 1; n <= 450; n += 3) over.push_back(rec(n, 1'100'000, kStart));
  feed(over);  // an alert and a pause each
  eng_->checkpoint();
  for (std::uint64_t n = 2; n <= 450; n += 7) {
    ASSERT_TRUE(act(n, sim_action::deactivate));
    if (n % 5 == 0) eng_->checkpoint();
  }
  eng_->checkpoint();

  const auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    // A copy: the listener runs under the log's lock, so the log is not asked while mu is held.
    const std::vector<event> all = [&] {
      std::lock_guard lock(mu);
      return seen;
    }();
    ASSERT_GT(all.size(), 700u);
    EXPECT_LE(eng_->events().in_memory(), 64u);
    EXPECT_EQ(eng_->events().last_id(), all.back().id);
    expect_reads(all);
  };
  check("live");
  eng_->events().remove_listener(l);
  restart();
  check("after a restart");
  l = listen();
  ASSERT_TRUE(act(5, sim_action::deactivate));
  eng_->checkpoint();
  check("new events after the restart");
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen.back().type, event_type::deactivated);
  }
  eng_->events().remove_listener(l);
}

// Retention by age: every event dated before events_retention ago leaves the store (events,
// index postings) and the log, however it is read; the rest is read as before, also after a
// restart.
TEST_F(Durability, EventRetentionByAgeDeletesTheOldEventsAndKeepsTheRestReadable) {
  events_retention_ = std::chrono::seconds(30 * 86400);
  restart();
  std::vector<event> seen;  // read once the listener is gone (the log's lock orders the appends)
  const auto l = eng_->events().add_listener([&](const event& e) { seen.push_back(e); });
  make_product("acme");
  make_product("beta");
  std::vector<std::uint64_t> a, b;
  for (std::uint64_t n = 1; n <= 300; ++n) a.push_back(n);
  for (std::uint64_t n = 301; n <= 450; ++n) b.push_back(n);
  // Day 0: acme's SIMs, an alert and a pause for a third of them.
  import("acme", a);
  std::vector<usage_record> over;
  for (std::uint64_t n = 1; n <= 300; n += 3) over.push_back(rec(n, 1'100'000, kStart));
  feed(over);
  eng_->checkpoint();
  // Day 20: beta's SIMs, alerts, pauses and deactivations over several checkpoints.
  ASSERT_TRUE(eng_->advance_clock(kStart + 20 * 86400));
  eng_->checkpoint();
  import("beta", b);
  over.clear();
  for (std::uint64_t n = 301; n <= 450; n += 3) over.push_back(rec(n, 1'100'000, clock_.now()));
  feed(over);
  eng_->checkpoint();
  for (std::uint64_t n = 302; n <= 450; n += 7) {
    ASSERT_TRUE(act(n, sim_action::deactivate));
    if (n % 5 == 0) eng_->checkpoint();
  }
  eng_->checkpoint();
  const std::uint64_t before = eng_->stats().events_stored;
  // Day 35 (acme's anniversary passed: its SIMs are unpaused): day 0 is past the 30 days.
  const unix_seconds cutoff = kStart + 5 * 86400;
  ASSERT_TRUE(eng_->advance_clock(kStart + 35 * 86400));
  eng_->checkpoint();
  eng_->events().remove_listener(l);
  std::vector<event> kept;
  std::size_t old = 0;
  for (const event& e : seen) {
    if (e.time >= cutoff) {
      kept.push_back(e);
    } else {
      ++old;
    }
  }
  ASSERT_GT(old, 300u);
  ASSERT_GT(kept.size(), 300u);
  ASSERT_LT(kept.back().id - kept.front().id + 1, before);
  const auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(eng_->events().first_retained(), kept.front().id);
    EXPECT_EQ(eng_->stats().events_stored, kept.back().id - kept.front().id + 1);
    EXPECT_EQ(eng_->events().read(0, 1).front().id, kept.front().id);
    expect_reads(kept);
  };
  check("live");
  EXPECT_EQ(eng_->stats().events_purged, old);
  restart();
  check("after a restart");
}

// Retention by count: the store keeps the newest events_max events (and at most a sixteenth
// more, plus the rest of the value of events that holds the oldest); index values that straddle
// the cut keep the newer events findable by every filter.
TEST_F(Durability, EventRetentionByCountKeepsTheNewestEventsReadableByEveryFilter) {
  events_retention_ = std::chrono::seconds(0);
  events_max_ = 200;
  restart();
  std::vector<event> seen;  // read once the listener is gone (the log's lock orders the appends)
  const auto l = eng_->events().add_listener([&](const event& e) { seen.push_back(e); });
  make_product("acme");
  make_product("beta");
  std::uint64_t purged_rounds = 0;
  for (std::uint64_t round = 0; round < 8; ++round) {
    // Both products' SIMs in one checkpoint, so that index values straddle the cut.
    std::vector<std::uint64_t> a, b;
    for (std::uint64_t n = 1; n <= 30; ++n) {
      a.push_back(round * 60 + n);
      b.push_back(round * 60 + 30 + n);
    }
    import("acme", a);
    import("beta", b);
    std::vector<usage_record> over;
    for (std::uint64_t n = 1; n <= 60; n += 2)
      over.push_back(rec(round * 60 + n, 1'100'000, kStart));
    // SIMs 4 and 10 (of the filters) have events in every round.
    over.push_back(rec(4, 300'000, kStart));
    over.push_back(rec(10, 300'000, kStart));
    feed(over);
    eng_->checkpoint();
    if (round % 2 == 1) {
      ASSERT_TRUE(act(4, round % 4 == 1 ? sim_action::deactivate : sim_action::reactivate));
      ASSERT_TRUE(act(10, round % 4 == 1 ? sim_action::deactivate : sim_action::reactivate));
    }
    const std::uint64_t stored = eng_->stats().events_stored;
    const std::uint64_t total = eng_->events().last_id();
    EXPECT_GE(stored, std::min<std::uint64_t>(total, 200)) << "round " << round;
    EXPECT_LE(stored, 200u + 200 / 16 + 150) << "round " << round;
    if (eng_->events().first_retained() > 1) ++purged_rounds;
  }
  eng_->events().remove_listener(l);
  EXPECT_GE(purged_rounds, 4u);
  const std::uint64_t first = eng_->events().first_retained();
  std::vector<event> kept;
  for (const event& e : seen) {
    if (e.id >= first) kept.push_back(e);
  }
  ASSERT_GE(kept.size(), 200u);
  expect_reads(kept);
  EXPECT_EQ(eng_->stats().events_purged, first - 1);
  restart();
  EXPECT_EQ(eng_->events().first_retained(), first);
  expect_reads(kept);
}

}  // namespace
}  // namespace simcap::testing
