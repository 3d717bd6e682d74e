// The event log in the store. BM_events_purge: what one retention purge costs (it runs after a
// checkpoint, under the checkpoint lock, so its time is a delay of the next checkpoint). A store of
// 4M events made by checkpoints of 4,096 events over 1M SIMs (every checkpoint writes index values
// for most SIM buckets, the worst case for the index walk); the purge deletes the oldest 1M events
// (the most one purge does in simcapd) and at most range(0) index values (simcapd: 65,536; 0: all
// of them). The store lives under $TMPDIR (a real file system: the synced write is part of the
// cost).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "durability/event_store.hpp"

namespace simcap::bench {
namespace {

namespace fs = std::filesystem;

// Events 1..n in checkpoints of per events, SIMs drawn from 1..sims.
void write_events(detail::store& st, std::uint64_t n, std::uint64_t per, std::uint64_t sims) {
  std::mt19937_64 rng(1);
  for (std::uint64_t id = 1; id <= n;) {
    std::vector<event> evs;
    for (std::uint64_t i = 0; i < per && id <= n; ++i, ++id) {
      event e;
      e.id = id;
      e.time = static_cast<unix_seconds>(id);
      e.sim = 1 + rng() % sims;
      e.product = static_cast<std::uint16_t>(id % 4);
      e.type = static_cast<event_type>(id % 6);
      evs.push_back(e);
    }
    detail::write_batch wb;
    detail::put_events(wb, evs);
    st.write(wb);
  }
}

void BM_events_purge(benchmark::State& state) {
  constexpr std::uint64_t n = std::uint64_t{1} << 22;
  const std::size_t max_keys =
      state.range(0) == 0 ? std::size_t{1} << 30 : static_cast<std::size_t>(state.range(0));
  const fs::path dir =
      fs::temp_directory_path() / ("simcap-bench-purge-" + std::to_string(::getpid()));
  constexpr std::uint64_t kPerCheckpoint = 4096;
  std::uint64_t purged = 0, keys = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    {
      detail::store st(dir);
      write_events(st, n, kPerCheckpoint, 1'000'000);
    }
    auto st = std::make_unique<detail::store>(dir);  // opened again: the writes are in tables
    state.ResumeTiming();
    detail::write_batch wb;
    const auto p = detail::purge_events_below(*st, wb, (std::uint64_t{1} << 20) + 1, max_keys);
    st->write(wb);
    purged += p.oldest - 1;
    keys += p.keys;
    state.PauseTiming();
    st.reset();
    state.ResumeTiming();
  }
  fs::remove_all(dir);
  state.counters["events"] =
      benchmark::Counter(static_cast<double>(purged), benchmark::Counter::kIsRate);
  state.counters["keys"] =
      benchmark::Counter(static_cast<double>(keys), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_events_purge)
    ->Arg(1 << 16)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2)
    ->UseRealTime();

// A SIM's events from the oldest on (GET /v1/events?iccid=...&after=0&limit=100), read from
// the store: 1M events of 10,000 SIMs (about 100 a SIM, each in its own value), in checkpoints
// of 4,096. range(0): 1 with the last 16 MB of writes still in the memtable (as under ingest),
// 0 all in table files.
void BM_events_read_sim(benchmark::State& state) {
  const fs::path dir =
      fs::temp_directory_path() / ("simcap-bench-read-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto st = std::make_unique<detail::store>(dir);
  write_events(*st, std::uint64_t{1} << 20, 4096, 10'000);
  if (state.range(0) == 0) st = std::make_unique<detail::store>(dir);
  std::uint64_t sim = 1, events = 0;
  for (auto _ : state) {
    event_filter f;
    f.sim = sim;
    sim = sim % 10'000 + 1;
    std::vector<event> out;
    detail::read_stored_events(*st, 1, std::uint64_t{1} << 21, 100, f, out);
    events += out.size();
  }
  st.reset();
  fs::remove_all(dir);
  state.counters["events"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_events_read_sim)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace simcap::bench
