#pragma once
// An engine with two shards on a manual clock, plus helpers to feed records and wait for them.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "simcap/engine.hpp"

namespace simcap::testing {

inline std::string test_iccid_text(std::uint64_t n) {
  char body[32];
  std::snprintf(body, sizeof body, "8988%015llu", static_cast<unsigned long long>(n));
  return make_iccid(body);
}
inline iccid test_iccid(std::uint64_t n) { return *iccid::parse(test_iccid_text(n)); }

// How many events of a type the log holds.
inline std::size_t count_of(const event_log& log, event_type t) {
  event_filter f;
  f.type = t;
  return log.read(0, std::numeric_limits<std::size_t>::max(), f).size();
}

// Holds every shard thread of e (each inside an empty record batch) until `release` is set, so
// that what is submitted meanwhile queues up.
class shard_stall {
 public:
  shard_stall(engine& e, std::shared_future<void> release) : producer_(e), left_(e.shard_count()) {
    for (unsigned s = 0; s < e.shard_count(); ++s) {
      batches_.push_back(std::make_unique<held>(release, left_));
      producer_.submit(s, *batches_.back());
    }
  }
  // (release must have been set: the shards are let go before the batches go)
  ~shard_stall() { left_.wait(); }

 private:
  struct held final : record_batch {
    held(std::shared_future<void> f, std::latch& l) : release(std::move(f)), left(l) {}
    void on_applied() noexcept override {
      release.wait();
      left.count_down();
    }
    std::shared_future<void> release;
    std::latch& left;
  };
  engine::producer producer_;
  std::latch left_;
  std::vector<std::unique_ptr<held>> batches_;
};

class memory_dead_letters final : public dead_letter_sink {
 public:
  struct entry {
    std::string feed;
    std::optional<std::uint64_t> seq;
    reject_reason reason;
    std::string raw;
  };
  void write(const dead_letter& d) override {
    std::lock_guard lock(mu_);
    entries_.push_back({std::string(d.feed), d.seq, d.reason, std::string(d.raw)});
  }
  std::vector<entry> entries() const {
    std::lock_guard lock(mu_);
    return entries_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<entry> entries_;
};

class test_batch final : public record_batch {
 public:
  void on_reject(const usage_record& r, reject_reason why, std::string_view) noexcept override {
    std::lock_guard lock(mu_);
    rejects_.push_back({r.seq, why});
  }
  void on_applied() noexcept override { done_.store(true, std::memory_order_release); }
  bool done() const { return done_.load(std::memory_order_acquire); }
  std::vector<std::pair<std::uint64_t, reject_reason>> rejects() const {
    std::lock_guard lock(mu_);
    return rejects_;
  }
  std::vector<usage_record> storage;

 private:
  mutable std::mutex mu_;
  std::atomic<bool> done_{false};
  std::vector<std::pair<std::uint64_t, reject_reason>> rejects_;
};

// 2025-01-15T10:00:00Z
inline constexpr unix_seconds kStart = 1736935200;

class engine_fixture : public ::testing::Test {
 protected:
  explicit engine_fixture(engine_options o = {}) : clock_(kStart) {
    o.shards = 2;
    eng_ = std::make_unique<engine>(std::move(o), clock_, dead_letters_);
    eng_->start();
    feed_ = eng_->register_feed("test-feed");
  }
  ~engine_fixture() override {
    if (eng_) eng_->stop();
  }

  void make_product(const std::string& id, std::optional<std::uint32_t> mb = std::nullopt) {
    product_settings s;
    s.id = id;
    s.default_mb_limit = mb;
    ASSERT_TRUE(eng_->put_product(s).has_value());
  }
  void import(const std::string& product, std::vector<std::uint64_t> ns,
              sim_state initial = sim_state::active) {
    std::vector<iccid> ids;
    for (auto n : ns) ids.push_back(test_iccid(n));
    auto r = eng_->import_sims(product, ids, initial);
    ASSERT_TRUE(r.has_value());
  }

  static usage_record rec(std::uint64_t sim_n, std::uint64_t bytes, unix_seconds t,
                          std::uint64_t id_hash = 0, std::uint64_t seq = 0) {
    usage_record r;
    r.sim = test_iccid(sim_n).key();
    r.event_time = t;
    r.up = bytes / 2;
    r.down = bytes - bytes / 2;
    r.id_hash = id_hash;
    r.seq = seq;
    return r;
  }

  // Submits records (split by shard) and waits until every shard applied them. Returns the
  // rejects the shards reported.
  std::vector<std::pair<std::uint64_t, reject_reason>> feed(const std::vector<usage_record>& rs) {
    engine::producer prod(*eng_);
    std::vector<std::unique_ptr<test_batch>> batches(eng_->shard_count());
    for (auto& b : batches) {
      b = std::make_unique<test_batch>();
      b->feed = feed_;
    }
    for (const auto& r : rs)
      batches[engine::shard_for(r.sim, eng_->shard_count())]->storage.push_back(r);
    for (unsigned s = 0; s < batches.size(); ++s) {
      batches[s]->records = batches[s]->storage;
      prod.submit(s, *batches[s]);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::vector<std::pair<std::uint64_t, reject_reason>> rejects;
    for (auto& b : batches) {
      while (!b->done()) {
        if (std::chrono::steady_clock::now() > deadline) {
          ADD_FAILURE() << "batch not applied within 10 s";
          return rejects;
        }
        std::this_thread::yield();
      }
      auto r = b->rejects();
      rejects.insert(rejects.end(), r.begin(), r.end());
    }
    return rejects;
  }

  sim_view sim(std::uint64_t n) {
    auto v = eng_->get_sim(test_iccid(n));
    EXPECT_TRUE(v.has_value());
    return v.value_or(sim_view{});
  }
  std::vector<event> events_of(std::uint64_t n) {
    event_filter f;
    f.sim = test_iccid(n).key();
    return eng_->events().read(0, 10000, f);
  }
  std::vector<event_type> types_of(std::uint64_t n) {
    std::vector<event_type> out;
    for (const auto& e : events_of(n)) out.push_back(e.type);
    return out;
  }
  control_result<sim_view> act(std::uint64_t n, sim_action a) {
    sim_update u;
    u.action = a;
    return eng_->update_sim(test_iccid(n), u);
  }
  control_result<sim_view> set_limit(std::uint64_t n, std::uint32_t mb) {
    sim_update u;
    u.mb_limit = mb;
    return eng_->update_sim(test_iccid(n), u);
  }

  manual_clock clock_;
  memory_dead_letters dead_letters_;
  std::unique_ptr<engine> eng_;
  std::uint32_t feed_ = 0;
};

}  // namespace simcap::testing
