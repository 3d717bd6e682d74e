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
  country_code country_at(std::uint8_t index) const override {
    return index == 1 ? pack_country("US") : 0;
  }
};

class batch final : public record_batch {
 public:
  void on_applied() noexcept override {}
};

struct fleet {
  // rated: with a rate table (US SIMs, a US and a Canadian network).
  explicit fleet(std::size_t sims, bool rated = false) : clk(kNow) {
    opts.mb_bytes = 1'000'000;
    if (rated) {
      rate_table t;
      t.zones.push_back({"zone2", 2'990'000, 990'000, {"US"}});
      t.zones.push_back({"zone3", 3'990'000, 1'490'000, {"CA"}});
      opts.rates = std::move(t);
      opts.networks = std::make_shared<network_countries>(
          std::vector<network_entry>{{"310", "410", "US"}, {"302", "220", "CA"}},
          std::vector<std::pair<std::string, std::string>>{});
    }
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
      s->import_sim(keys.back(), 0, sim_state::issued, rated ? 1 : 0, false,
                    kNow);  // no activation events
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

fleet& fleet_of(std::size_t sims, bool rated = false) {
  static std::map<std::pair<std::size_t, bool>, std::unique_ptr<fleet>> fleets;
  auto& f = fleets[{sims, rated}];
  if (!f) {
    f = std::make_unique<fleet>(sims, rated);
    // Activate every SIM (one event each, as a real import would emit).
    for (std::uint64_t k : f->keys) {
      sim_update u;
      u.action = sim_action::activate;
      f->s->update(k, std::nullopt, u, kNow);
    }
  }
  return *f;
}

// 64 batches of 2,048 records over the fleet's SIMs, applied round and round. mccmnc(r): the
// visited network of the record drawn from r.
template <class Network>
void apply_batches(benchmark::State& state, fleet& f, Network&& mccmnc) {
  const std::size_t sims = f.keys.size();
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
      rec.mccmnc = mccmnc(r);
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

void BM_shard_apply(benchmark::State& state) {
  apply_batches(state, fleet_of(static_cast<std::size_t>(state.range(0))),
                [](std::uint64_t) { return std::uint32_t{0}; });
}
BENCHMARK(BM_shard_apply)
    ->Arg(10'000)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->Unit(benchmark::kMicrosecond);

// BM_shard_apply's records with a rate table and the visited network on every record (the home
// network; the second argument: percent of records from a roaming one): per-zone accounting.
void BM_shard_apply_rated(benchmark::State& state) {
  const auto roaming = static_cast<std::uint64_t>(state.range(1));
  const std::uint32_t home = network_countries::key_of("310410");
  const std::uint32_t away = network_countries::key_of("302220");
  apply_batches(state, fleet_of(static_cast<std::size_t>(state.range(0)), true),
                [&](std::uint64_t r) { return (r >> 40) % 100 < roaming ? away : home; });
}
BENCHMARK(BM_shard_apply_rated)
    ->Args({1'000'000, 0})
    ->Args({1'000'000, 10})
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

// The rating scan of a fleet query (GET /v1/products/:p/sims/data_usage) over one shard's SIMs
// with a rate table: the open period's cost for two discounts and the unused-but-charged list.
void BM_fleet_cost_scan(benchmark::State& state) {
  fleet& f = fleet_of(static_cast<std::size_t>(state.range(0)), true);
  const std::uint32_t discounts[] = {0, 100'000};
  std::size_t unused = 0;
  for (auto _ : state) {
    auto costs = f.s->open_cost_of(0, discounts);
    benchmark::DoNotOptimize(costs);
    unused = f.s->unused_of(0, kNow + 8 * 86400).size();
  }
  state.counters["unused"] = static_cast<double>(unused);
  state.counters["sims/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * f.keys.size()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_fleet_cost_scan)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
