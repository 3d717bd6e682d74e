// Shard apply: batches of parsed records applied to the per-SIM accumulators of one shard, on
// one core, with the fleet resident (10k SIMs fit in cache; 1M and 10M do not).
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>

#include "bench_util.hpp"
#include "shard/shard.hpp"

namespace {

using namespace simcap;

constexpr unix_seconds kNow = 1763800000;

class null_dead_letters final : public dead_letter_sink {
 public:
  void write(const dead_letter&) override {}
};

class host final : public detail::shard_host {
 public:
  detail::product_info info;
  detail::product_info first_activation(std::uint16_t, unix_seconds) override { return info; }
  std::string feed_name(std::uint32_t) const override { return "bench"; }
};

class batch final : public record_batch {
 public:
  void on_applied() noexcept override {}
};

struct fleet {
  explicit fleet(std::size_t sims) : clk(kNow) {
    opts.mb_bytes = 1'000'000;
    opts.expected_sims = sims;
    h.info.index = 0;
    h.info.version = 1;
    h.info.id = "bench";
    h.info.default_mb_limit = 1'000'000;  // high: no SIM pauses during the run
    h.info.thresholds = {900};
    h.info.anniversary_day = civil_of(kNow).day;
    h.info.first_period_start = day_start(kNow);
    s = std::make_unique<detail::shard>(0, opts, clk, events, dl, h);
    s->learn_product(h.info);
    for (std::size_t i = 0; i < sims; ++i) {
      keys.push_back(iccid::parse(bench::sim_iccid(i))->key());
      s->import_sim(keys.back(), 0, sim_state::issued, 0, false, kNow);  // no activation events
    }
  }
  engine_options opts;
  manual_clock clk;
  event_log events;
  null_dead_letters dl;
  host h;
  std::unique_ptr<detail::shard> s;
  std::vector<std::uint64_t> keys;
};

fleet& fleet_of(std::size_t sims) {
  static std::map<std::size_t, std::unique_ptr<fleet>> fleets;
  auto& f = fleets[sims];
  if (!f) {
    f = std::make_unique<fleet>(sims);
    // Activate every SIM (one event each, as a real import would emit).
    for (std::uint64_t k : f->keys) {
      sim_update u;
      u.action = sim_action::activate;
      f->s->update(k, std::nullopt, u, kNow);
    }
  }
  return *f;
}

void BM_shard_apply(benchmark::State& state) {
  const auto sims = static_cast<std::size_t>(state.range(0));
  fleet& f = fleet_of(sims);
  constexpr std::size_t kBatch = 2048;
  constexpr std::size_t kBatches = 64;
  std::vector<std::vector<usage_record>> data(kBatches);
  std::uint64_t seq = 0;
  for (auto& d : data) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      std::uint64_t r = bench::splitmix(++seq);
      usage_record rec;
      rec.sim = f.keys[r % sims];
      rec.event_time = kNow - 60;
      rec.up = r % 2000;
      rec.down = (r >> 20) % 2000;
      rec.seq = seq;
      d.push_back(rec);
    }
  }
  batch b;
  std::size_t i = 0;
  const auto before = f.s->read_counters().counted;
  for (auto _ : state) {
    b.records = data[i++ % kBatches];
    f.s->apply(b);
  }
  if (f.s->read_counters().counted - before != state.iterations() * kBatch) {
    state.SkipWithError("records were not all counted");
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kBatch),
                                                   benchmark::Counter::kIsRate);
  state.counters["bytes_per_sim"] =
      static_cast<double>(f.s->table().memory_bytes()) / static_cast<double>(f.s->table().size());
}
BENCHMARK(BM_shard_apply)
    ->Arg(10'000)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->Unit(benchmark::kMicrosecond);

// The same records with record ids: each also goes through the id dedup set.
void BM_shard_apply_with_ids(benchmark::State& state) {
  const auto sims = static_cast<std::size_t>(state.range(0));
  fleet& f = fleet_of(sims);
  constexpr std::size_t kBatch = 2048;
  std::vector<usage_record> data(kBatch);
  batch b;
  std::uint64_t seq = 1'000'000'000;
  for (auto _ : state) {
    for (auto& rec : data) {
      std::uint64_t r = bench::splitmix(++seq);
      rec.sim = f.keys[r % sims];
      rec.event_time = kNow - 60;
      rec.up = r % 2000;
      rec.id_hash = bench::splitmix(seq ^ 77) | 1;
    }
    b.records = data;
    f.s->apply(b);
  }
  state.counters["id_set_entries"] = static_cast<double>(state.iterations() * kBatch);
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(state.iterations() * kBatch),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_shard_apply_with_ids)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

}  // namespace
