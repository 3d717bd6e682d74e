// The record-id window of one shard with its set grown to 1M and 100M entries: all in RAM
// (budget 0: no limit, as without a store), or within a dedup_memory budget with the older ids
// in a RocksDB store (checkpoints written between batches, outside the timing).
//   mode 0: new ids of the live stream (dated now)
//   mode 1: repeats of recent ids (a feed resending after a reconnect)
//   mode 2: new ids of late records, dated as the oldest (a filter probe in each group)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>

#include "bench_util.hpp"
#include "durability/id_window.hpp"

namespace {

using namespace simcap;
using namespace simcap::detail;

constexpr unix_seconds kT0 = 1763800000;
constexpr std::uint64_t kIdsPerSecond = 2000;  // of event time, while filling

std::uint64_t fp_of(std::uint64_t i) { return id_fingerprint(i % 1'000'000, bench::splitmix(i)); }

struct window {
  window(std::uint64_t entries, std::uint64_t budget_mb)
      : w(budget_mb == 0 ? ~std::size_t{0} / 2 : budget_mb << 20) {
    if (budget_mb != 0) {
      dir = std::filesystem::temp_directory_path() /
            ("simcap-id-bench-" + std::to_string(::getpid()) + "-" + std::to_string(entries));
      std::filesystem::remove_all(dir);
      st = std::make_unique<store>(dir);
      w.attach(st.get(), 0);
    }
    while (next < entries) {
      w.insert(fp_of(next), now());
      if (++next % 1'000'000 == 0) checkpoint();
    }
    checkpoint();
    checkpoint();
  }
  ~window() {
    w.settle();  // no move's file being added when the store closes
    st.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  unix_seconds now() const { return kT0 + static_cast<unix_seconds>(next / kIdsPerSecond); }
  void checkpoint() {
    if (!st) return;
    write_batch wb;
    ++ckpt;
    w.cut(wb, ckpt, ckpt - 1);
    st->write(wb);
  }
  id_window w;
  std::filesystem::path dir;
  std::unique_ptr<store> st;
  std::uint64_t next = 0, ckpt = 0, late = 1ULL << 40;
};

// The windows are built once and shared by the modes. They go at exit, before RocksDB's own
// statics (created with the first store) do: an atexit handler registered after those.
std::map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<window>>* windows = nullptr;

window& window_of(std::uint64_t entries, std::uint64_t budget_mb) {
  if (windows == nullptr)
    windows = new std::map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<window>>;
  auto& w = (*windows)[{entries, budget_mb}];
  if (!w) {
    w = std::make_unique<window>(entries, budget_mb);
    if (budget_mb == 0) return *w;
    static const bool registered = [] {
      return std::atexit([] {
               delete windows;
               windows = nullptr;
             }) == 0;
    }();
    (void)registered;
  }
  return *w;
}

void BM_id_window(benchmark::State& state) {
  const auto entries = static_cast<std::uint64_t>(state.range(0));
  const auto budget = static_cast<std::uint64_t>(state.range(1));
  const auto mode = state.range(2);
  window& x = window_of(entries, budget);
  constexpr std::uint64_t kBatch = 4096;
  std::uint64_t batches = 0, refused = 0;
  for (auto _ : state) {
    const unix_seconds t = x.now();
    for (std::uint64_t i = 0; i < kBatch; ++i) {
      bool fresh;
      if (mode == 0) {
        fresh = x.w.insert(fp_of(x.next), t);
        ++x.next;
      } else if (mode == 1) {
        const std::uint64_t back =
            bench::splitmix(x.next + i) % std::min<std::uint64_t>(x.next, 1'000'000);
        fresh = x.w.insert(fp_of(x.next - 1 - back),
                           x.now() - static_cast<unix_seconds>(back / kIdsPerSecond));
      } else {
        fresh = x.w.insert(fp_of(++x.late), kT0);
      }
      refused += !fresh;
    }
    if (++batches % 64 == 0 && x.st) {
      state.PauseTiming();
      x.checkpoint();
      state.ResumeTiming();
    }
  }
  const id_window_stats s = x.w.stats();
  state.counters["refused"] = static_cast<double>(refused);
  state.counters["in_ram"] = static_cast<double>(s.in_memory);
  state.counters["in_store"] = static_cast<double>(s.in_store);
  state.counters["ram_MiB"] = static_cast<double>(s.memory_bytes) / (1 << 20);
  state.counters["bytes_per_id"] =
      static_cast<double>(s.memory_bytes) / static_cast<double>(s.in_memory + s.in_store);
  state.counters["ids/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kBatch),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK(BM_id_window)
    ->ArgsProduct({{1'000'000, 100'000'000}, {0, 256}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
