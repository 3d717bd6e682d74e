// Parsing throughput: one 256 KiB read of JSON lines, parsed in one iterate_many pass (the
// feed session's path) against line-by-line iterate (its fallback for broken input).
#include <benchmark/benchmark.h>

#include <cstring>

#include "bench_util.hpp"
#include "feed/record_parser.hpp"

namespace {

using namespace simcap;

constexpr std::int64_t kNow = 1763800000;

struct counting_sink final : parse_sink {
  std::uint64_t n = 0, bytes = 0, rejects = 0;
  void record(const usage_record& r) override {
    ++n;
    bytes += r.up + r.down;
  }
  void reject(const parse_reject&) override { ++rejects; }
};

std::string chunk_of_lines(std::size_t target, int shape = 1) {
  std::string s;
  for (std::uint64_t seq = 1; s.size() < target; ++seq)
    s += bench::record_line(seq, 1'000'000, kNow, shape);
  s.resize(s.rfind('\n') + 1);
  return s;
}

// Arg: line shape (0: with id, ~136 B; 1: without id, ~120 B; 2: without mccmnc and id, ~102 B).
void BM_parse_iterate_many(benchmark::State& state) {
  std::string text = chunk_of_lines(256 * 1024, static_cast<int>(state.range(0)));
  std::string buf = text + std::string(simdjson::SIMDJSON_PADDING, ' ');
  record_parser p;
  counting_sink sink;
  for (auto _ : state) {
    p.parse(buf.data(), 0, text.size(), kNow, sink);
  }
  if (sink.rejects) state.SkipWithError("unexpected rejects");
  std::uint64_t lines = static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(lines * state.iterations()),
                                                   benchmark::Counter::kIsRate);
  state.counters["line_bytes"] = static_cast<double>(text.size()) / static_cast<double>(lines);
  state.SetBytesProcessed(static_cast<std::int64_t>(text.size() * state.iterations()));
}
BENCHMARK(BM_parse_iterate_many)->Arg(0)->Arg(1)->Arg(2);

void BM_parse_line_by_line(benchmark::State& state) {
  std::string text = chunk_of_lines(256 * 1024);
  std::string buf = text + std::string(simdjson::SIMDJSON_PADDING, ' ');
  record_parser p;
  std::uint64_t lines = 0;
  for (auto _ : state) {
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t nl = text.find('\n', pos);
      usage_record r;
      std::string_view detail;
      auto why = p.parse_line(buf.data() + pos, nl - pos, buf.size() - pos, kNow, r, detail);
      benchmark::DoNotOptimize(why);
      benchmark::DoNotOptimize(r);
      pos = nl + 1;
      ++lines;
    }
  }
  state.counters["records/s"] =
      benchmark::Counter(static_cast<double>(lines), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(text.size() * state.iterations()));
}
BENCHMARK(BM_parse_line_by_line);

// One malformed line in the middle of a read: the rest of that read takes the line-by-line path.
void BM_parse_with_one_bad_line(benchmark::State& state) {
  std::string text = chunk_of_lines(256 * 1024);
  std::size_t mid = text.find('\n', text.size() / 2) + 1;
  text.insert(mid, "{\"seq\":1,\"iccid\":\"oops\n");
  std::string buf = text + std::string(simdjson::SIMDJSON_PADDING, ' ');
  record_parser p;
  counting_sink sink;
  for (auto _ : state) p.parse(buf.data(), 0, text.size(), kNow, sink);
  std::uint64_t lines = static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(lines * state.iterations()),
                                                   benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<std::int64_t>(text.size() * state.iterations()));
}
BENCHMARK(BM_parse_with_one_bad_line);

}  // namespace
