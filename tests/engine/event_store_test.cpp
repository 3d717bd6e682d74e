// The event log in the store on its own: retention deletes whole values of events and of index
// postings below a cut, never one that holds an event at or above it, so every index still
// finds exactly the events kept.
#include "durability/event_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "durability/keys.hpp"

namespace simcap::testing {
namespace {

namespace fs = std::filesystem;

class EventStore : public ::testing::Test {
 protected:
  EventStore()
      : dir_(fs::temp_directory_path() / ("simcap-event-store-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    st_ = std::make_unique<detail::store>(dir_);
  }
  ~EventStore() override {
    st_.reset();
    fs::remove_all(dir_);
  }

  // Checkpoints of `per` events each, ids from 1, SIMs drawn from `sims` keys (so each of the
  // 4,096 SIM buckets holds several SIMs whose ids interleave), products and types cycling.
  void write_checkpoints(unsigned n, std::size_t per, std::uint64_t sims) {
    std::mt19937_64 rng(7);
    for (unsigned c = 0; c < n; ++c) {
      std::vector<event> evs;
      for (std::size_t i = 0; i < per; ++i) {
        event e;
        e.id = all_.size() + 1;
        e.time = static_cast<unix_seconds>(e.id);
        e.sim = 1000 + rng() % sims;
        e.product = static_cast<std::uint16_t>(e.id % 3);
        e.type = static_cast<event_type>(e.id % 5);
        evs.push_back(e);
        all_.push_back(e);
      }
      detail::write_batch wb;
      detail::put_events(wb, evs);
      st_->write(wb);
    }
    reopen();
  }
  // Opened again, the writes are in table files (a read of an unflushed memtable sorts it).
  void reopen() {
    st_.reset();
    st_ = std::make_unique<detail::store>(dir_);
  }

  // Every filter reads exactly the events from `from` on.
  void expect_kept_from(std::uint64_t from) {
    std::vector<event_filter> filters(1);
    for (std::uint64_t sim = 1000; sim < 4000; sim += 7) filters.emplace_back().sim = sim;
    filters.emplace_back().product = 1;
    filters.emplace_back().type = event_type::paused;
    auto& pt = filters.emplace_back();
    pt.product = 2;
    pt.type = event_type::alert;
    const std::uint64_t end = all_.back().id + 1;
    for (std::size_t fi = 0; fi < filters.size(); ++fi) {
      std::vector<std::uint64_t> want, got;
      for (const event& e : all_) {
        if (e.id >= from && filters[fi].matches(e)) want.push_back(e.id);
      }
      std::vector<event> out;
      detail::read_stored_events(*st_, 1, end, 1'000'000, filters[fi], out);
      for (const event& e : out) got.push_back(e.id);
      EXPECT_EQ(got, want) << "filter " << fi;
    }
  }

  // Keys of index postings whose every id is below `below`.
  std::size_t postings_below(std::uint64_t below) {
    std::size_t n = 0;
    st_->scan(detail::key_of(detail::key_kind::event_index).str(),
              [&](std::string_view k, std::string_view v) {
                if (k.size() < 10 || k[1] == 'w') return true;
                std::uint64_t high = 0;
                const std::size_t step = k[1] == 's' ? 16 : 8;
                for (std::size_t at = step - 8; at + 8 <= v.size(); at += step) {
                  std::uint64_t id = 0;
                  std::memcpy(&id, v.data() + at, 8);
                  high = std::max(high, id);
                }
                if (high < below) ++n;
                return true;
              });
    return n;
  }

  fs::path dir_;
  std::unique_ptr<detail::store> st_;
  std::vector<event> all_;
};

TEST_F(EventStore, APurgeKeepsTheValueHoldingTheCutAndEveryIndexFindsTheRest) {
  write_checkpoints(5, 40'000, 3000);
  // Near the end of a checkpoint: most SIMs of a bucket have no event after it, so a bucket's
  // last pair (its highest SIM) is mostly not its highest id.
  const std::uint64_t below = 2 * 40'000 + 39'500;
  ASSERT_GT(postings_below(below), 4000u);
  detail::write_batch wb;
  const auto p = detail::purge_events_below(*st_, wb, below, std::size_t{1} << 30);
  st_->write(wb);
  reopen();
  EXPECT_TRUE(p.complete);
  // Values of 256 events from each checkpoint's first id: the one holding the cut stays.
  EXPECT_EQ(p.oldest, 2 * 40'000 + 39'424 + 1);
  EXPECT_EQ(detail::oldest_stored_event(*st_), p.oldest);
  EXPECT_EQ(postings_below(p.oldest), 0u);
  expect_kept_from(p.oldest);
}

TEST_F(EventStore, APurgeOfManyPostingsGoesOnWhereItStopped) {
  write_checkpoints(3, 40'000, 3000);
  const std::uint64_t below = 40'000 + 20'000;
  std::uint64_t oldest = 0;
  int rounds = 0;
  for (bool complete = false; !complete; ++rounds) {
    ASSERT_LT(rounds, 100);
    detail::write_batch wb;
    const auto p = detail::purge_events_below(*st_, wb, below, 1000);
    st_->write(wb);
    reopen();
    oldest = p.oldest;
    complete = p.complete;
    // Whatever is left of the postings, the events kept are found by every index.
    expect_kept_from(oldest);
  }
  EXPECT_GT(rounds, 2);
  EXPECT_EQ(oldest, 40'000 + (20'000 - 1) / 256 * 256 + 1);  // values of 256 from 40,001
  EXPECT_EQ(postings_below(oldest), 0u);
}

TEST_F(EventStore, FirstValueDatedFindsTheFirstValueWithAnEventAtOrAfterTheTime) {
  write_checkpoints(2, 1000, 50);  // event i is dated i
  EXPECT_EQ(detail::first_value_dated(*st_, 1, 1, 1 << 20).id, 1u);
  EXPECT_EQ(detail::first_value_dated(*st_, 1, 600, 1 << 20).id, 513u);    // 513..768 holds 600
  EXPECT_EQ(detail::first_value_dated(*st_, 1, 1001, 1 << 20).id, 1001u);  // second checkpoint
  EXPECT_EQ(detail::first_value_dated(*st_, 1, 5000, 1 << 20).id, 2001u);  // every event older
  const auto stopped = detail::first_value_dated(*st_, 1, 5000, 300);
  EXPECT_FALSE(stopped.complete);
  EXPECT_LT(stopped.id, 2001u);
}

}  // namespace
}  // namespace simcap::testing
