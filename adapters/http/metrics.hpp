#pragma once
// The figures /metrics exposes (Prometheus text) and the daemon's stats line prints, from one
// place.
#include <array>
#include <cstdint>
#include <string>

#include "dead_letter_file.hpp"
#include "feed/feed_server.hpp"
#include "simcap/engine.hpp"

namespace simcap {

class http_api;

// Records by outcome over every feed. The feeds' counters hold the rejects found while parsing
// and those the shards reported; duplicates are the feeds' (seq) and the shards' (ids).
struct record_totals {
  std::uint64_t counted = 0, late = 0, duplicates = 0, rejected = 0;
  std::array<std::uint64_t, kRejectReasonCount> rejected_by_reason{};
};
record_totals totals_of(const engine_stats& st, const feed_registry* feeds);

// The whole /metrics body.
std::string prometheus_text(const engine& eng, const feed_registry* feeds, const http_api& api);
// The dead-letter log's counters, as Prometheus text.
std::string dead_letter_metrics(const dead_letter_file& dl);

}  // namespace simcap
