#include <spdlog/spdlog.h>

#include <algorithm>

#include "durability/event_store.hpp"
#include "durability/keys.hpp"
#include "durability/sim_blobs.hpp"
#include "engine_impl.hpp"

// Checkpoints: what changed since the last one is cut from the catalog and the shards (each cut
// between its record batches), written in one atomic, synced batch, and only then are the
// feeds' durable seqs moved and their acks sent. A checkpoint the store cannot write is kept and
// written first once it can (the acks wait meanwhile).
namespace simcap {

// Takes back a control change whose checkpoint failed (indexed by shard): it was answered 503,
// so it must not be seen, now or after the store writes again. Its events leave the unwritten
// checkpoint (or the shards, if no cut took them); the SIMs are put back and marked, so the
// next checkpoint writes them as they were, in the same write as the unwritten one.
void engine::impl::take_back(std::vector<change> changes) {
  {
    std::lock_guard ck(checkpoint_mu);
    for (change& c : changes) {
      std::erase_if(c.events, [&](const event& e) {
        if (!unwritten) return false;
        auto& evs = unwritten->events;
        auto it =
            std::find_if(evs.begin(), evs.end(), [&](const event& p) { return same_event(p, e); });
        if (it == evs.end()) return false;
        evs.erase(it);
        return true;
      });
    }
  }
  for (unsigned s = 0; s < changes.size(); ++s) {
    if (changes[s].points.empty() && changes[s].events.empty()) continue;
    shards.call(s, [&](detail::shard& sh) {
      for (auto it = changes[s].points.rbegin(); it != changes[s].points.rend(); ++it)
        sh.restore(*it);
      sh.drop_events(changes[s].events);
    });
  }
}

// The batches kept for the next checkpoint take at most this much in all: those of a checkpoint
// at full ingest (5-15 MB) are, an import's or a first base's are not kept for good.
constexpr std::size_t kMaxSpareBatch = std::size_t{32} << 20;

// Takes what changed since the last cut from the catalog and the shards.
engine::impl::pending_checkpoint engine::impl::cut(std::uint64_t n) {
  pending_checkpoint p;
  p.number = n;
  std::swap(p.ops, spare_ops);
  // The catalog before the shards: a period the catalog closes after this point is closed
  // again (with its event) after a crash.
  products.cut(p.ops, p.events);
  {
    std::lock_guard lock(side_mu);
    for (const std::string& k : side_dirty) {
      const std::string key = detail::key_of(detail::key_kind::side).text(k).str();
      auto it = side.find(k);
      if (it == side.end()) {
        p.ops.del(key);
      } else {
        p.ops.put(key, it->second);
      }
    }
    side_dirty.clear();
  }
  std::vector<detail::write_batch> parts = std::move(spare_parts);
  parts.resize(shards.size());
  std::vector<detail::shard_cut> cuts(shards.size());
  const std::uint64_t durable = checkpoint_no;
  shards.call_all(
      [&](detail::shard& sh) { sh.cut(parts[sh.index()], cuts[sh.index()], n, durable); });
  // The batch is allocated once: added to piece by piece it would be moved each time it
  // doubled, which took as long as the cut (tens of MB at full ingest). Room for the events
  // (values and index entries) and the meta key, which the write adds.
  std::size_t bytes = p.events.size() * (sizeof(event) + 64) + (64 << 10);
  for (unsigned s = 0; s < shards.size(); ++s) {
    bytes += parts[s].data_size() + cuts[s].events.size() * (sizeof(event) + 64);
    for (const auto& [k, v] : cuts[s].blobs) bytes += k.size() + v.size() + 16;
  }
  p.ops.reserve(bytes);
  for (unsigned s = 0; s < shards.size(); ++s) {
    p.longest_cut = std::max(p.longest_cut, cuts[s].seconds);
    p.longest_cut_cpu = std::max(p.longest_cut_cpu, cuts[s].cpu_seconds);
    p.ops.append(parts[s]);
    parts[s].clear();
    for (auto& [k, v] : cuts[s].blobs) p.ops.put(k, v);
    p.sims += cuts[s].sims;
    for (event& e : cuts[s].events) p.events.push_back(e);
    // Durable watermarks: every shard's, the lowest counts.
    for (auto [f, seq] : cuts[s].watermarks) {
      p.low[f] = std::min(p.low[f], seq);
      p.seen[f]++;
    }
  }
  for (detail::write_batch& b : parts) {
    if (b.capacity() > kMaxSpareBatch / shards.size()) b = detail::write_batch();
  }
  spare_parts = std::move(parts);
  return p;
}

// A checkpoint that could not be written goes first into the next one: its writes, then the
// newer ones, in one atomic write.
void engine::impl::append(pending_checkpoint& older, pending_checkpoint&& newer) {
  older.ops.append(newer.ops);
  older.number = newer.number;
  for (event& e : newer.events) older.events.push_back(e);
  older.low = std::move(newer.low);
  older.seen = std::move(newer.seen);
  older.sims += newer.sims;
  older.longest_cut = std::max(older.longest_cut, newer.longest_cut);
  older.longest_cut_cpu = std::max(older.longest_cut_cpu, newer.longest_cut_cpu);
}

// Writes p; false (and p kept for the next try) when the store cannot write.
bool engine::impl::write(pending_checkpoint& p, std::chrono::steady_clock::time_point t0) {
  const bool clock_moved = clk.is_manual() && clk.now() != stored_time;
  if (p.ops.count() == 0 && p.events.empty() && !clock_moved) return true;
  if (opts.test_checkpoint_pause.count() > 0)
    std::this_thread::sleep_for(opts.test_checkpoint_pause);  // crash tests only
  // The events and the meta key go on top of the state writes; a failed write takes them off
  // again (the events may still change, and their ids with them).
  detail::write_batch& wb = p.ops;
  wb.set_save_point();
  // The checkpoint's events, with their index entries.
  std::uint64_t id = events.last_id() + 1;
  for (event& e : p.events) e.id = id++;
  detail::put_events(wb, p.events);
  detail::writer meta;
  meta.put(p.number).put(static_cast<std::uint32_t>(shards.size())).put(clk.now());
  meta.put(detail::kStoreFormat);
  wb.put(detail::key_of(detail::key_kind::meta).str(), meta.str());
  try {
    st->write(wb);
  } catch (const std::exception& e) {
    wb.rollback_to_save_point();
    std::lock_guard lock(stats_mu);
    if (!store_failed.load())
      spdlog::error("checkpoint not written, acks stop until it is: {}", e.what());
    store_failure = e.what();
    store_failed.store(true);
    return false;
  }
  checkpoint_no = p.number;
  stored_time = clk.now();
  for (const event& e : p.events) events.append(e);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard lock(stats_mu);
  stats.checkpoints++;
  stats.last_checkpoint_seconds = secs;
  stats.last_checkpoint_time = clk.now();
  stats.last_checkpoint_sims = p.sims;
  stats.last_cut_seconds = p.longest_cut;
  return true;
}

// checkpoint_mu held. While the store cannot write, nothing more is taken from the shards
// (their changes wait there, marked): a try every retry_wait checks whether it can write again.
bool engine::impl::store_writable() {
  if (!store_failed.load()) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_retry) return false;
  const std::uint64_t needed =
      std::max<std::uint64_t>(1 << 20, 2 * (unwritten ? unwritten->ops.data_size() : 0));
  if (st->free_bytes() < needed || !st->recover_writes()) {
    if (!st->open_error().empty()) {
      std::lock_guard lock(stats_mu);
      if (store_failure != st->open_error()) spdlog::warn("store: {}", st->open_error());
      store_failure = st->open_error();
    }
    retry_wait = std::min(retry_wait * 2, std::chrono::milliseconds(5000));
    next_retry = now + retry_wait;
    return false;
  }
  retry_wait = std::chrono::milliseconds(500);
  return true;
}

double engine::impl::checkpoint() {
  if (!st) return 0;
  std::lock_guard ck(checkpoint_mu);
  if (!store_writable()) return 0;
  const auto t0 = std::chrono::steady_clock::now();
  pending_checkpoint p = cut(std::max(checkpoint_no, unwritten ? unwritten->number : 0) + 1);
  const double stopped = p.longest_cut_cpu;
  if (unwritten) {
    append(*unwritten, std::move(p));
    p = std::move(*unwritten);
    unwritten.reset();
  }
  if (!write(p, t0)) {
    unwritten = std::move(p);
    next_retry = std::chrono::steady_clock::now() + retry_wait;
    return stopped;
  }
  if (p.ops.capacity() <= kMaxSpareBatch) {
    p.ops.clear();
    std::swap(p.ops, spare_ops);
  }
  if (store_failed.exchange(false)) {
    spdlog::info("the store writes again: acks resume");
    std::lock_guard lock(stats_mu);
    store_failure.clear();
  }
  // The records the acks cover that were rejected are in the dead-letter log first.
  dl.flush();
  bool moved = false;
  for (std::uint32_t f = 0; f < detail::kMaxFeeds; ++f) {
    if (p.seen[f] != shards.size()) continue;  // some shard has not seen the feed yet
    moved = feeds.raise_durable(f, p.low[f]) || moved;
  }
  if (moved) notify_checkpoint_listeners();
  purge_events();
  return stopped;
}

// Event retention, after a checkpoint's acks: by age at most hourly (clock time), by count as
// soon as the store holds a sixteenth more than events_max, and again at the next checkpoint
// while a purge is left unfinished (each does a bounded amount: at most kPurgeScanEvents events
// looked at or deleted, kPurgeKeys index values deleted; BM_events_purge: ~100 ms on a 2-core
// VM). One atomic, synced write; a write that fails is tried again at the next due time.
constexpr std::size_t kPurgeScanEvents = std::size_t{1} << 20;
constexpr std::size_t kPurgeKeys = std::size_t{1} << 16;
constexpr unix_seconds kPurgeEvery = 3600;

void engine::impl::purge_events() {
  const std::uint64_t last = events.last_id();
  const unix_seconds now = clk.now();
  const std::uint64_t stored = last >= oldest_event ? last - oldest_event + 1 : 0;
  const bool by_age = opts.events_retention.count() > 0 && now >= next_event_purge;
  const bool by_count = opts.events_max > 0 &&
                        stored > opts.events_max + std::max<std::uint64_t>(opts.events_max / 16, 1);
  if (!by_age && !by_count && !event_purge_unfinished) return;
  std::uint64_t below = oldest_event;
  if (opts.events_max > 0 && stored > opts.events_max) below = last - opts.events_max + 1;
  bool age_complete = true;
  if (opts.events_retention.count() > 0) {
    const auto dated = detail::first_value_dated(
        *st, oldest_event, now - static_cast<unix_seconds>(opts.events_retention.count()),
        kPurgeScanEvents);
    below = std::max(below, dated.id);
    age_complete = dated.complete;
  }
  const bool capped = below > oldest_event + kPurgeScanEvents;
  if (capped) below = oldest_event + kPurgeScanEvents;
  if (below > oldest_event || event_purge_unfinished) {
    detail::write_batch wb;
    const detail::events_purge p = detail::purge_events_below(*st, wb, below, kPurgeKeys);
    try {
      st->write(wb);
    } catch (const std::exception& e) {
      spdlog::warn("events: the purge of events below {} was not written: {}", below, e.what());
      next_event_purge = now + kPurgeEvery;
      return;
    }
    event_purge_unfinished = !p.complete || capped;
    if (p.oldest > oldest_event) {
      {
        std::lock_guard lock(stats_mu);
        stats.events_purged += p.oldest - oldest_event;
      }
      oldest_event = p.oldest;
      events.forget_below(oldest_event);
    }
  }
  if (by_age && age_complete && !capped) next_event_purge = now + kPurgeEvery;
}

// A checkpoint begins every checkpoint_interval, or when the last one ends if it took longer.
// A cut stops the shards (the write does not: ingest goes on meanwhile), so the next begins no
// sooner than (100 - p) / p times the longest cut's CPU time after it (p:
// checkpoint_stall_percent, 5 by default: 19 times): cuts take at most p % of the shards' time,
// however busy the feeds (up to kMaxCheckpointPause: a fleet so big that its cuts take longer
// than that allows gives up some ingest rather than ack later still). CPU time, not the time
// the cut held the shard: where the feeds keep every core busy, a shard thread waits for a core
// during its cut about as long as it works, and other threads use that time (pacing on the
// hold spaced checkpoints twice as far apart for the same cost). A feed waiting for its last
// ack asks for one at once (request_checkpoint).
constexpr std::chrono::milliseconds kMaxCheckpointPause{2000};

void engine::impl::checkpointer_loop() {
  using clock = std::chrono::steady_clock;
  const unsigned share = std::clamp(opts.checkpoint_stall_percent, 1U, 100U);
  const double idle = static_cast<double>(100 - share) / share;
  std::unique_lock lock(ticker_mu);
  auto next = clock::now() + opts.checkpoint_interval;
  while (!checkpointer_stop) {
    ticker_cv.wait_until(lock, next, [&] { return checkpointer_stop || checkpoint_requested; });
    if (checkpointer_stop) break;
    checkpoint_requested = false;
    lock.unlock();
    const auto t0 = clock::now();
    const double stopped = checkpoint();
    const auto pause = std::min<clock::duration>(
        std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(stopped * idle)),
        kMaxCheckpointPause);
    next = std::max(t0 + std::max<clock::duration>(opts.checkpoint_interval, pause), clock::now());
    lock.lock();
  }
}

void engine::impl::notify_checkpoint_listeners() {
  std::lock_guard lock(listener_mu);
  for (auto& [id, f] : checkpoint_listeners) f();
}

}  // namespace simcap
