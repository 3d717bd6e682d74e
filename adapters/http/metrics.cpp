#include "http/metrics.hpp"

#include <charconv>
#include <sstream>

#include "http/http_api.hpp"
#include "outbound/outbound.hpp"

namespace simcap {

record_totals totals_of(const engine_stats& st, const feed_registry* feeds) {
  record_totals t;
  t.counted = st.records_counted;
  t.late = st.late_records;
  t.duplicates = st.duplicate_ids;
  if (feeds != nullptr) {
    for (const auto* f : feeds->all()) {
      t.duplicates += f->duplicates.load();
      for (std::size_t i = 0; i < kRejectReasonCount; ++i) {
        const std::uint64_t n = f->rejected[i].load();
        t.rejected_by_reason[i] += n;
        t.rejected += n;
      }
    }
  }
  return t;
}

std::string prometheus_text(const engine& eng, const feed_registry* feeds, const http_api& api) {
  std::ostringstream os;
  const engine_stats st = eng.stats();
  const record_totals totals = totals_of(st, feeds);
  const std::uint64_t duplicates = totals.duplicates;
  const auto& rejected = totals.rejected_by_reason;
  os << "# HELP simcap_records_total Usage records by outcome.\n# TYPE simcap_records_total "
        "counter\n"
     << "simcap_records_total{outcome=\"counted\"} " << st.records_counted << "\n"
     << "simcap_records_total{outcome=\"late\"} " << st.late_records << "\n"
     << "simcap_records_total{outcome=\"duplicate\"} " << duplicates << "\n";
  os << "# HELP simcap_records_rejected_total Records not counted, by reason.\n"
     << "# TYPE simcap_records_rejected_total counter\n";
  for (std::size_t i = 0; i < kRejectReasonCount; ++i) {
    os << "simcap_records_rejected_total{reason=\"" << to_string(static_cast<reject_reason>(i))
       << "\"} " << rejected[i] << "\n";
  }
  os << "# HELP simcap_queue_depth Messages waiting in a shard's queue.\n# TYPE simcap_queue_depth "
        "gauge\n";
  for (std::size_t i = 0; i < st.queue_depth.size(); ++i) {
    os << "simcap_queue_depth{shard=\"" << i << "\"} " << st.queue_depth[i] << "\n";
  }
  os << "# HELP simcap_batch_apply_seconds Time a shard takes to apply one batch of records.\n"
     << "# TYPE simcap_batch_apply_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < st.apply_bucket_counts.size(); ++i) {
    cumulative += st.apply_bucket_counts[i];
    os << "simcap_batch_apply_seconds_bucket{le=\"";
    if (i < st.apply_bucket_bounds.size()) {
      char b[32];
      auto r = std::to_chars(b, b + sizeof b, st.apply_bucket_bounds[i]);
      os.write(b, r.ptr - b);
    } else {
      os << "+Inf";
    }
    os << "\"} " << cumulative << "\n";
  }
  os << "simcap_batch_apply_seconds_sum " << st.apply_seconds << "\n"
     << "simcap_batch_apply_seconds_count " << cumulative << "\n";
  os << "# HELP simcap_sims SIMs by state.\n# TYPE simcap_sims gauge\n";
  for (int i = 0; i < kSimStateCount; ++i) {
    os << "simcap_sims{state=\"" << to_string(static_cast<sim_state>(i)) << "\"} "
       << st.sims_by_state[i] << "\n";
  }
  if (feeds != nullptr) {
    os << "# HELP simcap_feed_watermark Highest seq of a feed with everything up to it handled.\n"
       << "# TYPE simcap_feed_watermark gauge\n";
    for (const auto* f : feeds->all()) {
      os << "simcap_feed_watermark{feed=\"" << f->name << "\"} " << f->watermark.load() << "\n";
    }
  }
  os << "# HELP simcap_events_last_id Id of the newest event.\n# TYPE simcap_events_last_id gauge\n"
     << "simcap_events_last_id " << eng.events().last_id() << "\n";
  if (eng.durable()) {
    const unix_seconds now = eng.time_source().now();
    os << "# HELP simcap_record_ids Record ids remembered (as of the last checkpoint), in the RAM "
          "table or moved to the store.\n# TYPE simcap_record_ids gauge\n"
       << "simcap_record_ids{where=\"memory\"} " << st.ids_in_memory << "\n"
       << "simcap_record_ids{where=\"store\"} " << st.ids_in_store << "\n"
       << "# HELP simcap_record_id_memory_bytes RAM the record-id window takes (table, moved ids "
          "not yet written, the store part's filters).\n# TYPE simcap_record_id_memory_bytes "
          "gauge\n"
       << "simcap_record_id_memory_bytes " << st.ids_memory_bytes << "\n"
       << "# HELP simcap_record_id_moves_total Times the oldest record ids moved to the store.\n"
          "# TYPE simcap_record_id_moves_total counter\n"
       << "simcap_record_id_moves_total " << st.ids_moves << "\n"
       << "# HELP simcap_record_id_files_total Moves of record ids added to the store as table "
          "files, or refused (then written with the checkpoints).\n"
          "# TYPE simcap_record_id_files_total counter\n"
       << "simcap_record_id_files_total{outcome=\"added\"} " << st.ids_files << "\n"
       << "simcap_record_id_files_total{outcome=\"refused\"} " << st.ids_file_errors << "\n"
       << "# HELP simcap_record_id_store_reads_total Store reads for record ids (late records "
          "the filters did not rule out).\n# TYPE simcap_record_id_store_reads_total counter\n"
       << "simcap_record_id_store_reads_total " << st.ids_store_reads << "\n"
       << "# HELP simcap_record_id_read_errors_total Store reads for record ids that failed (the "
          "record counted as new).\n# TYPE simcap_record_id_read_errors_total counter\n"
       << "simcap_record_id_read_errors_total " << st.ids_read_errors << "\n";
    os << "# HELP simcap_checkpoints_total Checkpoints written.\n# TYPE simcap_checkpoints_total "
          "counter\n"
       << "simcap_checkpoints_total " << st.checkpoints << "\n"
       << "# HELP simcap_checkpoint_duration_seconds How long the last checkpoint took.\n"
       << "# TYPE simcap_checkpoint_duration_seconds gauge\n"
       << "simcap_checkpoint_duration_seconds " << st.last_checkpoint_seconds << "\n"
       << "# HELP simcap_checkpoint_age_seconds Time since the last checkpoint was written.\n"
       << "# TYPE simcap_checkpoint_age_seconds gauge\n"
       << "simcap_checkpoint_age_seconds "
       << (st.checkpoints == 0 ? 0 : now - st.last_checkpoint_time) << "\n"
       << "# HELP simcap_checkpoint_sims SIMs written by the last checkpoint.\n"
       << "# TYPE simcap_checkpoint_sims gauge\n"
       << "simcap_checkpoint_sims " << st.last_checkpoint_sims << "\n"
       << "# HELP simcap_checkpoint_cut_seconds The longest a shard stopped for the last "
          "checkpoint.\n"
       << "# TYPE simcap_checkpoint_cut_seconds gauge\n"
       << "simcap_checkpoint_cut_seconds " << st.last_cut_seconds << "\n"
       << "# HELP simcap_store_bytes Size of the store's files under data_dir.\n# TYPE "
          "simcap_store_bytes gauge\n"
       << "simcap_store_bytes " << st.store_bytes << "\n"
       << "# HELP simcap_events_stored Events the store keeps (from the oldest kept to the "
          "newest).\n# TYPE simcap_events_stored gauge\n"
       << "simcap_events_stored " << st.events_stored << "\n"
       << "# HELP simcap_events_purged_total Events deleted by retention (events_retention, "
          "events_max).\n# TYPE simcap_events_purged_total counter\n"
       << "simcap_events_purged_total " << st.events_purged << "\n"
       << "# HELP simcap_events_waiting_bytes RAM of the events the shards hold for the next "
          "checkpoint.\n# TYPE simcap_events_waiting_bytes gauge\n"
       << "simcap_events_waiting_bytes " << st.events_waiting_bytes << "\n"
       << "# HELP simcap_pool_pauses_total Used-up pools (pause mode) whose pause reached every "
          "shard.\n# TYPE simcap_pool_pauses_total counter\n"
       << "simcap_pool_pauses_total " << st.pool_pauses << "\n"
       << "# HELP simcap_pool_pause_seconds The last one: from the record batch that used the pool "
          "up to the last shard's pause.\n# TYPE simcap_pool_pause_seconds gauge\n"
       << "simcap_pool_pause_seconds " << st.last_pool_pause_seconds << "\n"
       << "# HELP simcap_pool_overshoot_bytes The last one: what the product's SIMs had counted "
          "beyond the pool by then.\n# TYPE simcap_pool_overshoot_bytes gauge\n"
       << "simcap_pool_overshoot_bytes " << st.last_pool_overshoot_bytes << "\n";
    if (feeds != nullptr) {
      os << "# HELP simcap_feed_durable_seq Highest seq of the feed in a durable checkpoint "
            "(acked).\n"
         << "# TYPE simcap_feed_durable_seq gauge\n";
      for (const auto* f : feeds->all()) {
        os << "simcap_feed_durable_seq{feed=\"" << f->name << "\"} "
           << eng.durable_seq(f->engine_id) << "\n";
      }
    }
  }
  if (outbound::service* sinks = api.outbound()) {
    const auto all = sinks->stats();
    auto family = [&](const char* name, const char* type, const char* help, auto value) {
      os << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
      for (const auto& s : all) os << name << "{sink=\"" << s.name << "\"} " << value(s) << "\n";
    };
    family("simcap_sink_delivered_total", "counter", "Events a sink delivered.",
           [](const auto& s) { return s.delivered; });
    family("simcap_sink_retried_total", "counter", "Deliveries a sink tried again.",
           [](const auto& s) { return s.retried; });
    family("simcap_sink_parked", "gauge", "Events in a sink's dead letters.",
           [](const auto& s) { return s.parked; });
    family("simcap_sink_backlog", "gauge", "Events for a sink not yet delivered or parked.",
           [](const auto& s) { return s.backlog; });
    family("simcap_sink_expired_total", "counter",
           "Event ids retention deleted before the sink had them.",
           [](const auto& s) { return s.expired; });
    family("simcap_sink_oldest_undelivered_age_seconds", "gauge",
           "Age of a sink's oldest undelivered event.",
           [](const auto& s) { return s.oldest_undelivered_age_s; });
    os << "# HELP simcap_sink_request_duration_seconds A sink's requests, answered or not.\n"
       << "# TYPE simcap_sink_request_duration_seconds histogram\n";
    for (const auto& s : all) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < s.duration_buckets.size(); ++i) {
        cumulative += s.duration_buckets[i];
        os << "simcap_sink_request_duration_seconds_bucket{sink=\"" << s.name << "\",le=\"";
        if (i < outbound::kDurationBounds.size()) {
          os << outbound::kDurationBounds[i];
        } else {
          os << "+Inf";
        }
        os << "\"} " << cumulative << "\n";
      }
      os << "simcap_sink_request_duration_seconds_sum{sink=\"" << s.name << "\"} " << s.duration_sum
         << "\n"
         << "simcap_sink_request_duration_seconds_count{sink=\"" << s.name << "\"} " << cumulative
         << "\n";
    }
  }
  os << api.http_metrics();
  for (const auto& more : api.more_metrics()) os << more();
  return os.str();
}

std::string dead_letter_metrics(const dead_letter_file& dl) {
  const dead_letter_file::counters c = dl.read_counters();
  std::ostringstream os;
  auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
       << name << ' ' << v << '\n';
  };
  counter("simcap_deadletter_entries_total", "Entries handed to the dead-letter log.", c.entries);
  counter("simcap_deadletter_bytes_written_total", "Bytes written to the dead-letter files.",
          c.bytes_written);
  counter("simcap_deadletter_dropped_total",
          "Dead-letter entries lost: the buffer was full or a write failed (a full disk).",
          c.dropped);
  counter("simcap_deadletter_rotations_total", "Times the dead-letter log rotated.", c.rotations);
  return os.str();
}

}  // namespace simcap
