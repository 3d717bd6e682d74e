// Durability: the cost of a checkpoint by the number of SIMs that changed, and recovery time by
// fleet size. The store lives under $TMPDIR (a real file system: fsync is part of the cost).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "bench_util.hpp"
#include "simcap/clock.hpp"
#include "simcap/dead_letter.hpp"
#include "simcap/engine.hpp"

namespace simcap::bench {
namespace {

namespace fs = std::filesystem;
constexpr unix_seconds kNow = 1736935200;  // 2025-01-15T10:00:00Z

struct null_dead_letters final : dead_letter_sink {
  void write(const dead_letter&) override {}
};

struct batch final : record_batch {
  std::vector<usage_record> recs;
  std::atomic<bool> done{false};
  void on_applied() noexcept override { done.store(true, std::memory_order_release); }
};

class fleet {
 public:
  fleet(std::size_t sims, const fs::path& dir) : dir_(dir), clock_(kNow) {
    // As simcapd does: keep freed memory rather than fault fresh pages in for each big value.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    fs::remove_all(dir_);
    eng_ = open();
    product_settings p;
    p.id = "fleet";
    p.default_mb_limit = 100'000;
    (void)eng_->put_product(p);
    std::vector<iccid> ids;
    ids.reserve(sims);
    for (std::size_t i = 0; i < sims; ++i) ids.push_back(*iccid::parse(sim_iccid(i)));
    keys_.reserve(sims);
    for (const auto& id : ids) keys_.push_back(id.key());
    (void)eng_->import_sims("fleet", ids);
  }
  ~fleet() {
    eng_.reset();
    fs::remove_all(dir_);
  }
  std::unique_ptr<engine> open() {
    engine_options o;
    o.shards = 2;
    o.store_dir = dir_.string();
    o.checkpoint_interval = std::chrono::hours(1);
    auto e = std::make_unique<engine>(o, clock_, dead_letters_);
    e->start();
    return e;
  }
  // One record for each of n SIMs (from `first`, wrapping), applied before it returns.
  void touch(std::size_t first, std::size_t n) {
    engine::producer prod(*eng_);
    std::vector<batch> parts(eng_->shard_count());
    for (std::size_t i = 0; i < n; ++i) {
      usage_record r;
      r.sim = keys_[(first + i) % keys_.size()];
      r.event_time = kNow;
      r.up = 100;
      r.down = 1000 + i % 5000;
      parts[engine::shard_for(r.sim, eng_->shard_count())].recs.push_back(r);
    }
    for (unsigned s = 0; s < parts.size(); ++s) {
      parts[s].records = parts[s].recs;
      prod.submit(s, parts[s]);
    }
    for (auto& b : parts) {
      while (!b.done.load(std::memory_order_acquire)) std::this_thread::yield();
    }
  }
  engine& eng() { return *eng_; }
  void close() { eng_.reset(); }
  void reopen() { eng_ = open(); }
  std::uint64_t disk_bytes() const {
    std::uint64_t total = 0;
    for (const auto& e : fs::directory_iterator(dir_))
      total += e.is_regular_file() ? e.file_size() : 0;
    return total;
  }

 private:
  fs::path dir_;
  manual_clock clock_;
  null_dead_letters dead_letters_;
  std::unique_ptr<engine> eng_;
  std::vector<std::uint64_t> keys_;
};

fs::path bench_dir(const char* name) { return fs::temp_directory_path() / name; }

// A checkpoint of state.range(0) changed SIMs out of 1M.
void BM_checkpoint(benchmark::State& state) {
  const auto dirty = static_cast<std::size_t>(state.range(0));
  fleet f(1'000'000, bench_dir("simcap-bench-checkpoint"));
  // The import, and a complete base (written at least 1 MiB a checkpoint per shard).
  for (int i = 0; i < 80; ++i) f.eng().checkpoint();
  std::size_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    f.touch(next, dirty);
    next += dirty;
    state.ResumeTiming();
    f.eng().checkpoint();
  }
  state.counters["sims/s"] =
      benchmark::Counter(static_cast<double>(dirty) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.counters["last_sims"] = static_cast<double>(f.eng().stats().last_checkpoint_sims);
  state.counters["shard_stop_ms"] = f.eng().stats().last_cut_seconds * 1000;
}
BENCHMARK(BM_checkpoint)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Start-up (recovery) of a fleet whose every SIM has usage, after a clean stop: a busy fleet's
// store, every SIM changed between checkpoints (state.range(1) of them), so that a base is
// complete and deltas follow it; with one checkpoint, the SIMs are in deltas alone (a store
// whose first base is still being written).
void BM_recover(benchmark::State& state) {
  const auto sims = static_cast<std::size_t>(state.range(0));
  fleet f(sims, bench_dir("simcap-bench-recover"));
  for (std::int64_t i = 0; i < state.range(1); ++i) {
    f.touch(0, sims);
    f.eng().checkpoint();
  }
  f.close();
  for (auto _ : state) {
    f.reopen();  // timed: open the store, load it, start the shards
    state.PauseTiming();
    f.close();
    state.ResumeTiming();
  }
  state.counters["store_bytes_per_sim"] =
      static_cast<double>(f.disk_bytes()) / static_cast<double>(sims);
}
BENCHMARK(BM_recover)
    ->Args({1'000'000, 12})
    ->Args({10'000'000, 12})
    ->Args({1'000'000, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

}  // namespace
}  // namespace simcap::bench
