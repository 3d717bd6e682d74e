#pragma once
// One shard: an owner thread, its bounded message queue, and the state of the SIMs that
// shard_for() places here.
//
// Threading model. The owner thread (the shard's own, started by start()) is the only one that
// changes the shard: record batches, posted tasks (control changes) and due work all run there.
// Another thread may *borrow* the shard to read it: try_read_here() takes the shard's busy lock,
// which the owner holds whenever it works and releases only while it waits for work, so a
// borrower reads an idle shard, never one in the middle of a batch. Reads posted with
// post_read() run on the owner between batches, and in the middle of a checkpoint's cut. So:
//   - members below "owner thread only" are called on the owner thread, by a borrower holding the
//     busy lock (const reads only), or before start() / after stop();
//   - feed_seq(), read_counters() and queue_depth() are safe from any thread (atomics).
// SIMCAP_ASSERT_OWNER() checks, in debug builds, that the caller is the owner thread or a
// borrower holding the lock (the owner's id is set by start(); before it, anyone may).
#include <concurrentqueue/blockingconcurrentqueue.h>

#include <atomic>
#include <cassert>
#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "catalog/feeds.hpp"
#include "catalog/product.hpp"
#include "durability/id_window.hpp"
#include "simcap/engine.hpp"
#include "state/day_usage.hpp"
#include "state/sim_table.hpp"

#ifndef NDEBUG
#define SIMCAP_ASSERT_OWNER() assert(may_touch() && "shard state touched off its owner thread")
#else
#define SIMCAP_ASSERT_OWNER() ((void)0)
#endif

namespace simcap::detail {

class shard;
class store;
class write_batch;

// A unit of work run on a shard's thread; deleted by the shard after it ran.
struct shard_task {
  virtual ~shard_task() = default;
  virtual void run(shard& s) = 0;
};

template <class F>
struct fn_task final : shard_task {
  explicit fn_task(F&& fn) : f(std::move(fn)) {}
  void run(shard& s) override { f(s); }
  F f;
};

// A message in a shard's queue: a record batch, or nothing (a wake-up).
struct shard_msg {
  record_batch* batch = nullptr;
};
using shard_queue = moodycamel::BlockingConcurrentQueue<shard_msg>;

inline constexpr unix_seconds kNoPeriod = std::numeric_limits<unix_seconds>::min();
inline constexpr unix_seconds kNever = std::numeric_limits<unix_seconds>::max();

// The engine's side of the shard: called from shard threads.
class shard_host {
 public:
  virtual ~shard_host() = default;
  // A SIM of a product without an anniversary was activated at `when`; returns the catalog's
  // product info with the anniversary it chose (the first report wins).
  virtual product_info first_activation(std::uint16_t product, unix_seconds when) = 0;
  virtual std::string feed_name(std::uint32_t feed) const = 0;
  // The country of an index of the engine's country list (SIMs keep the index).
  virtual country_code country_at(std::uint8_t index) const = 0;
  // Pools (SPEC §11): a shard adds what a batch counted for a pooled product in its period
  // starting at period_start; the host keeps the product's total across shards, says which pool
  // thresholds (permille) this addition crossed and whether it used the pool up (once a
  // period), and then pauses the product's SIMs on every shard (pause mode).
  struct pool_crossing {
    std::vector<std::uint16_t> thresholds;
    bool exhausted = false;
    std::uint64_t used = 0;
  };
  virtual pool_crossing pool_add(const product_info&, unix_seconds, std::uint64_t) { return {}; }
  // Whether the product's pool is used up in its period starting at period_start.
  virtual bool pool_exhausted(std::uint16_t, unix_seconds) const { return false; }
};

// Of `bytes` added to a SIM that had used `before` of its `limit`, how many are over the limit
// (a record that crosses the limit is split at it).
constexpr std::uint64_t bytes_over(std::uint64_t before, std::uint64_t bytes,
                                   std::uint64_t limit) noexcept {
  const std::uint64_t room = before < limit ? limit - before : 0;
  return bytes > room ? bytes - room : 0;
}
// Adds bytes of visited country c to a SIM's away list (home: its home country, whose bytes
// within the limit are implied).
void add_country_bytes(std::vector<country_bytes>& away, country_code home, country_code c,
                       std::uint64_t within, std::uint64_t over);
// Adds `from`, another life of the same SIM in the same period, to `into`: bytes, SMS, whether
// and from which day it was chargeable, bytes by country.
void merge_line(closed_line& into, const closed_line& from);

// What rating keeps of a SIM in its product's current period beyond its slot (closed_line has
// the same fields).
struct sim_rating {
  std::uint8_t charge_day = 0;
  bool listed = false;  // in rating_changed_ (the next cut writes it)
  std::vector<country_bytes> away;
};

enum class import_outcome { imported, already_present, other_product, transferred };

// What a shard hands to a checkpoint besides its writes: the events since the last one (they
// get their ids from the checkpoint) and its applied watermark of each feed.
struct shard_cut {
  std::vector<std::pair<std::string, std::string>> blobs;  // big values: put as they are
  std::vector<event> events;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> watermarks;  // feed id, seq
  std::size_t sims = 0;                                             // SIMs written
  double seconds = 0;      // how long the cut held the shard
  double cpu_seconds = 0;  // the shard thread's CPU time in it (what paces checkpoints)
};

class shard {
 public:
  shard(unsigned index, const engine_options& opts, const clock& clk, event_log& events,
        dead_letter_sink& dead_letters, shard_host& host);
  ~shard();
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  void start();
  // Processes everything already queued, then joins the thread.
  void stop();
  // Record batches, in order per producer.
  shard_queue& queue() noexcept { return queue_; }
  // Control commands and queries: run between batches, ahead of batches still queued, so a
  // query waits for at most the batch being applied. Any thread.
  void post_task(shard_task* t) {
    tasks_.enqueue(t);
    queue_.enqueue(shard_msg{});  // wakes the thread if it is idle
  }
  // A task that only reads (a query): it may also run in the middle of a checkpoint's cut, so
  // a query never waits for a whole cut.
  void post_read(shard_task* t) {
    reads_.enqueue(t);
    queue_.enqueue(shard_msg{});
  }
  // Runs read(*this) in the calling thread, at once, when the shard thread is idle (waiting for
  // work), and returns true; returns false without running it when the shard is busy (post_read
  // it then: a busy shard answers it between two batches). Either way no thread is woken just
  // to answer a query of an idle shard. read must only read, and take no lock of the engine.
  template <class F>
  bool try_read_here(F&& read) {
    std::unique_lock l(busy_, std::try_to_lock);
    if (!l) return false;
    borrower_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    read(*this);
    borrower_.store(std::thread::id{}, std::memory_order_relaxed);
    return true;
  }
  unsigned index() const noexcept { return index_; }
  std::size_t queue_depth() const noexcept { return queue_.size_approx(); }
  // RAM the record-id window takes (as of the last batches; any thread).
  std::uint64_t ids_memory_bytes() const noexcept {
    return ids_memory_bytes_.load(std::memory_order_relaxed);
  }
  // RAM the events waiting for the next cut take (as of the last batches; any thread).
  std::uint64_t pending_event_bytes() const noexcept {
    return pending_event_bytes_.load(std::memory_order_relaxed);
  }

  // Upper bounds (seconds) of the batch apply-time histogram buckets; the last is +Inf.
  static constexpr std::array<double, 8> kApplyBuckets{0.0001, 0.00025, 0.0005, 0.001,
                                                       0.0025, 0.005,   0.01,   0.1};

  struct counters {
    std::uint64_t counted = 0, late = 0, duplicate_ids = 0;
    id_window_stats ids;  // as of the last checkpoint
    std::array<std::uint64_t, kApplyBuckets.size() + 1> apply_buckets{};  // not cumulative
    std::uint64_t apply_nanos = 0;
    std::array<std::uint64_t, kRejectReasonCount> rejected{};
    std::array<std::size_t, kSimStateCount> by_state{};
  };
  // Any thread (relaxed reads of single-writer counters).
  counters read_counters() const noexcept;

  // ---- owner thread only ----
  void apply(record_batch& b);
  void run_due(unix_seconds now);
  void learn_product(const product_info& p);
  // country: the SIM's home country (engine country index, 0: the product's). only_new: leave
  // every SIM this shard knows as it is, released ones included (start-up import of a list).
  // transfer: a SIM of another product (not released) moves here (keep_limit: with its own
  // limit).
  struct import_how {
    bool only_new = false, transfer = false, keep_limit = false;
  };
  import_outcome import_sim(std::uint64_t key, std::uint16_t product, sim_state initial,
                            std::uint8_t country, import_how how, unix_seconds now);
  import_outcome import_sim(std::uint64_t key, std::uint16_t product, sim_state initial,
                            std::uint8_t country, bool only_new, unix_seconds now) {
    return import_sim(key, product, initial, country, import_how{only_new, false, false}, now);
  }
  control_result<sim_view> update(std::uint64_t key, std::optional<std::uint16_t> scope,
                                  const sim_update& u, unix_seconds now);
  std::optional<sim_view> view(std::uint64_t key, std::optional<std::uint16_t> scope) const;
  // Keys of the SIMs that match, ordered.
  std::vector<std::uint64_t> select(std::optional<std::uint16_t> product,
                                    std::optional<sim_state> state, bool include_released) const;
  // Unused but charged (SPEC §11): active SIMs of the product, active since at most
  // active_before (in the current period) with no usage in it; their keys, ordered.
  std::vector<std::uint64_t> unused_of(std::uint16_t product, unix_seconds now) const;
  // by_hour: with the hourly usage (the sparkline).
  fleet_usage usage_of(std::uint16_t product, bool by_hour = true) const;
  // Earlier lives, in the product's current period, of SIMs released and imported again.
  const std::unordered_map<std::uint64_t, closed_line>& retired_of(std::uint16_t product) const;
  // Bytes per day of the SIM's current period, from its first day up to `now` (nullopt: no such
  // SIM in scope).
  std::optional<std::vector<day_bytes>> days_of(std::uint64_t key,
                                                std::optional<std::uint16_t> scope,
                                                unix_seconds now) const;
  // Pools: pauses every active SIM of the product (its pool is used up), or unpauses those it
  // paused for its pool (raised above its usage).
  void pause_for_pool(std::uint16_t product, unix_seconds now);
  void unpause_for_pool(std::uint16_t product, unix_seconds now);
  // Closed periods of a product, oldest first.
  // With a rate table, each period's costs has the total of its lines here for each discount.
  std::vector<closed_period> closed_of(std::uint16_t product, bool itemized,
                                       std::span<const std::uint32_t> discounts = {}) const;
  // The product's lines of its current period as a closed period would have them (one a SIM,
  // earlier lives merged).
  std::vector<closed_line> open_lines_of(std::uint16_t product) const;
  // What the product's SIMs here cost in the current period: one total for each discount (ppm).
  std::vector<micros> open_cost_of(std::uint16_t product,
                                   std::span<const std::uint32_t> discounts) const;

  // ---- taking back a control change whose checkpoint failed (owner thread)
  // A SIM as it was before a change: restore() puts it back (or removes a SIM the change
  // created), and the retired line the change wrote, if any.
  struct undo_point {
    std::uint64_t key = 0;
    bool existed = false;
    sim_slot before{};
    std::optional<closed_line> retired;  // its old product's retired line before the change
    std::optional<sim_rating> rating;    // its rating entry before the change
  };
  undo_point undo_point_of(std::uint64_t key) const;
  void restore(const undo_point& u);
  // Events the shard made since `from` (pending_event_count() before the change) and not yet
  // handed to a checkpoint; drop_events() takes such events back (each once).
  std::size_t pending_event_count() const noexcept { return pending_events_.size(); }
  std::vector<event> pending_events_since(std::size_t from) const;
  void drop_events(std::vector<event>& taken_back);

  // ---- durability (owner thread, or before start() / after stop())
  // Writes everything changed since the last cut into wb (consistent: it runs between batches)
  // and hands over the events and watermarks that go with it.
  // durable: the newest checkpoint known written.
  void cut(write_batch& wb, shard_cut& out, std::uint64_t checkpoint, std::uint64_t durable);
  // Loads the shard's part of the store (products must be learnt first). Returns the feeds'
  // watermarks by feed name.
  std::vector<std::pair<std::string, std::uint64_t>> recover(const store& st);
  // Re-sharding (before any shard starts): moves this shard's SIMs, their per-day usage,
  // closed-period and retired lines to the shard of `to` that shard_for() places each in, gives
  // every one of them all record ids (ids carry no SIM), the products' periods, and the hourly
  // usage to the first; everything moved is marked for the next cut.
  void hand_over(const std::vector<shard*>& to);
  // Re-sharding: the new shard writes its record ids to st (recover() does this otherwise).
  void attach_store(const store& st) noexcept { dedup_.attach(&st, index_); }
  // Waits until no moved record ids are being added to the store as a file (after stop()).
  void settle_ids() { dedup_.settle(); }
  // The highest seq of the feed applied here (any thread). Records at or below it are
  // duplicates; set at start-up from the store.
  std::uint64_t feed_seq(std::uint32_t feed) const noexcept {
    return feed < kMaxFeeds ? feed_seq_[feed].load(std::memory_order_acquire) : 0;
  }
  void set_feed_seq(std::uint32_t feed, std::uint64_t seq) noexcept {
    if (feed < kMaxFeeds) feed_seq_[feed].store(seq, std::memory_order_release);
  }
  const sim_table& table() const noexcept { return table_; }

 private:
  struct shard_product {
    bool known = false;
    product_info info;
    unix_seconds period_start = kNoPeriod;
    unix_seconds period_end = kNever;
    std::deque<closed_period> closed;   // oldest first
    std::vector<std::uint64_t> hourly;  // bytes per hour of the current period
    // The product's SIMs in this shard, kept as they change, so a fleet query costs O(1):
    // bytes and counts of the current period (factory-test usage is free and left out).
    fleet_usage totals;
    // Earlier lives, in this period, of SIMs released here and imported again (here or into
    // another product): what they used stays in this period (and in totals) for good; merged
    // into the SIMs' lines when the period closes.
    std::unordered_map<std::uint64_t, closed_line> retired;
    bool changed = false;          // period or hourly usage changed since the last cut
    std::uint64_t pool_delta = 0;  // pooled: bytes of this batch, for the host (pool_add)
  };

  // Rating (a rate table is configured): a record's bytes by visited country, within and over
  // the limit (the home country's within is what the rest does not account for), and the day a
  // SIM became chargeable when that is not its period's first. Kept for the SIMs that need it:
  // a SIM at home under its limit has no entry. Call before adding the bytes to the slot.
  [[gnu::always_inline]] void rate_record(sim_slot& s, const usage_record& r, std::uint64_t bytes) {
    const country_code home = codes_[s.country];
    const country_code c = r.mccmnc == 0 ? home : networks_->code_of(r.mccmnc);
    const std::uint64_t before = s.usage();
    // The usual case: at home and short of the next action, which an active SIM's limit never
    // is below (recompute_next).
    if (c == home && before + bytes < s.next_action &&
        s.state == static_cast<std::uint8_t>(sim_state::active)) {
      return;
    }
    const std::uint64_t over = bytes_over(before, bytes, limit_bytes(s));
    if (over != 0 || c != home) add_away(s.key, s.product, home, c, bytes - over, over);
  }
  void add_away(std::uint64_t sim, std::uint16_t product, country_code home, country_code c,
                std::uint64_t within, std::uint64_t over);
  void note_chargeable(const sim_slot& s, const shard_product& p, unix_seconds now);
  // Pools: the batch's bytes of pooled products to the host, and their events.
  void report_pools(unix_seconds now);
  // An active SIM of a product whose pool is used up (pause mode) is paused at once.
  void hold_for_pool(sim_slot& s, const shard_product& p, unix_seconds now);
  void pause_at_pool(sim_slot& s, const shard_product& p, unix_seconds now);
  void rating_changed(std::uint16_t product, std::uint64_t sim, sim_rating& e) {
    if (durable_ && !e.listed) rating_changed_.push_back({product, sim});
    e.listed = durable_;
  }
  // The SIM's line of its current period (its rating entry included).
  closed_line line_of_slot(const sim_slot& s) const;
  static std::int32_t day_index(unix_seconds t) noexcept {
    return static_cast<std::int32_t>(day_start(t) / kSecondsPerDay);
  }
  // Per-day and per-hour usage of a record about to be added to s (call before adding it).
  void add_to_buckets(sim_slot& s, shard_product& p, unix_seconds t, std::uint64_t bytes);
  std::uint64_t closed_days_bytes(const sim_slot& s, const shard_product& p) const;
  void loop();
  void lock_busy();  // takes busy_ for the shard thread
  void handle(shard_msg& m);
  void run_tasks();
  void run_reads();
  void reject(record_batch& b, const usage_record& r, reject_reason why, std::string_view detail);
  // Adds a record to the SIM's current period (t: the time its per-day and per-hour buckets
  // take) and enforces what it crosses.
  void count_in_period(sim_slot& s, shard_product& p, const usage_record& r, unix_seconds t,
                       unix_seconds now);
  // A released SIM's late record that still counts (dated before the release, in a closed
  // period the SIM was chargeable in).
  bool used_before_release(const sim_slot& s, const shard_product& p, const usage_record& r) const;
  // Moves a released SIM's period usage to its product's retired lines before it is imported
  // again; true when that product is new_product and the retired line is chargeable.
  bool retire(sim_slot& s, std::uint16_t new_product, bool transferred = false);
  bool apply_late(record_batch& b, const usage_record& r, sim_slot& s, shard_product& p,
                  unix_seconds now);
  static std::vector<closed_line>::iterator line_in(closed_period& cp, std::uint64_t sim);
  static unsigned day_of(const closed_period& cp, unix_seconds t) noexcept;
  // The product a SIM was transferred out of, and its last closed period, when that period
  // covers t and has the SIM's transferred_out line.
  std::optional<std::pair<std::uint16_t, closed_period*>> transferred_line(std::uint64_t sim,
                                                                           std::uint16_t current,
                                                                           unix_seconds t);
  shard_product& product(std::uint16_t index);
  void set_period(shard_product& p, unix_seconds now);
  void on_activation(shard_product& p, unix_seconds when);
  std::uint64_t limit_bytes(const sim_slot& s) const noexcept {
    return static_cast<std::uint64_t>(s.mb_limit) * opts_.mb_bytes;
  }
  void recompute_next(sim_slot& s, const shard_product& p) const noexcept;
  void enforce(sim_slot& s, shard_product& p, unix_seconds now);
  // account = false: leave the product totals alone (the rollover rebuilds them).
  void set_state(sim_slot& s, sim_state to, unix_seconds now, bool account = true);
  // Adds (+1) or removes (-1) the SIM's contribution to its product's totals.
  void account(const sim_slot& s, int sign) noexcept;
  // Marks the SIM for the next checkpoint (call before or after changing it, same batch):
  // touch() when only its usage changes (the record path), touch_all() for anything else.
  void touch(sim_slot& s) { mark(s, sim_slot::kFlagDirtyUsage); }
  void touch_all(sim_slot& s) { mark(s, sim_slot::kFlagDirtyAll); }
  void mark(sim_slot& s, std::uint8_t flag) {
    if (!durable_) return;
    if (!(s.flags & sim_slot::kFlagDirty)) table_.mark_dirty(s);
    s.flags |= flag;
  }
  void publish(const event& e);
  void add_day(std::uint64_t sim, std::uint16_t product, std::int32_t day, std::uint64_t bytes);
  bool remember_id(std::uint64_t fp, unix_seconds t) { return dedup_.insert(fp, t); }
  void emit(const sim_slot& s, event_type type, event_reason why, unix_seconds when,
            std::uint16_t threshold = 0);
  void end_factory_test(sim_slot& s, shard_product& p, event_reason why, unix_seconds when);
  void close_periods(unix_seconds now);
  // The earliest event time a record of the product can still be counted at (open period, or
  // the closed one within late_grace).
  unix_seconds earliest_accepted(const shard_product& p, unix_seconds now) const noexcept;
  // Record ids with event times before this can be forgotten: no record dated then can be
  // counted any more (and dedup_window has passed).
  unix_seconds id_horizon(unix_seconds now) const noexcept;
  sim_view make_view(const sim_slot& s) const;
  void refresh_next_due() noexcept;
  template <class T>
  static void bump(std::atomic<T>& c, T by = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  const unsigned index_;
  const engine_options& opts_;
  const clock& clock_;
  event_log& events_;
  dead_letter_sink& dead_letters_;
  shard_host& host_;
  shard_queue queue_;
  moodycamel::ConcurrentQueue<shard_task*> tasks_;
  moodycamel::ConcurrentQueue<shard_task*> reads_;
  // Whether this thread may use the owner-only members now: the owner thread, a borrower
  // inside try_read_here, or anyone before start().
  bool may_touch() const noexcept {
    const auto me = std::this_thread::get_id();
    const auto owner = owner_.load(std::memory_order_acquire);
    return owner == std::thread::id{} || owner == me ||
           borrower_.load(std::memory_order_relaxed) == me;
  }

  std::thread thread_;
  std::atomic<std::thread::id> owner_{};
  // Held by the shard thread while it works (released only while it waits for work), and by a
  // thread answering a query of the idle shard (try_read_here).
  std::mutex busy_;
  std::atomic<std::thread::id> borrower_{};  // who borrows the idle shard (debug checks)
  std::atomic<bool> stopping_{false};

  sim_table table_;
  id_window dedup_;
  day_usage days_;
  std::vector<shard_product> products_;
  using deadline = std::pair<unix_seconds, std::uint64_t>;
  std::priority_queue<deadline, std::vector<deadline>, std::greater<>> factory_deadlines_;
  unix_seconds next_due_ = kNever;
  unix_seconds next_purge_ = 0;

  // Durability: what changed since the last cut.
  const bool durable_;
  // SIM state is stored as blobs of 64-byte slots: a delta per checkpoint (the dirty SIMs) and
  // a base (every SIM) written a slice per checkpoint. Recovery loads the last complete base
  // and the deltas after the checkpoint its first slice was written in.
  struct base_build {
    bool active = false;
    std::uint64_t gen = 0;  // = the checkpoint its first slice went into
    std::size_t next_slot = 0;
    std::size_t capacity = 0;  // the table's when it began (a grown table starts over)
    std::uint32_t chunk = 0;
  };
  base_build build_;
  std::uint64_t base_gen_ = 0;     // the last complete base (0: none)
  std::uint64_t delta_bytes_ = 0;  // written as deltas since that base began
  struct day_ref {
    std::uint64_t sim;
    std::uint16_t product;
    std::int32_t day;
  };
  std::vector<day_ref> dirty_days_;
  std::vector<std::uint16_t> days_dropped_;  // products whose days were purged at a rollover
  struct closed_ref {
    std::uint16_t product;
    unix_seconds start;
    std::uint64_t sim;  // 0: the whole period
  };
  std::vector<closed_ref> closed_changed_;
  std::vector<std::pair<std::uint16_t, std::uint64_t>> retired_changed_;  // product, SIM
  std::vector<std::uint64_t> erased_;  // SIMs removed (an import taken back): tombstones
  std::vector<closed_ref> closed_dropped_;
  unix_seconds ids_purged_before_ = 0;  // dedup entries older than this are gone
  std::vector<event> pending_events_;
  // Rating: none without a rate table. SIM key -> its entry (only charge_day, country and away
  // are used) in its product's current period; codes_: the engine's country list.
  const network_countries* networks_ = nullptr;
  std::optional<rater> rater_;
  std::unordered_map<std::uint64_t, sim_rating> rating_;
  std::vector<std::pair<std::uint16_t, std::uint64_t>> rating_changed_;  // product, SIM
  std::array<country_code, 256> codes_{};
  std::vector<std::uint16_t> pools_touched_;  // pooled products with a pool_delta
  std::array<std::atomic<std::uint64_t>, kMaxFeeds> feed_seq_{};
  std::array<std::uint64_t, kMaxFeeds> feed_seq_written_{};

  std::atomic<std::uint64_t> counted_{0}, late_{0}, duplicate_ids_{0}, apply_nanos_{0};
  unsigned rounds_ = 0;  // of the loop: the id window's RAM is read every few
  std::atomic<std::uint64_t> pending_event_bytes_{0};
  std::atomic<std::uint64_t> ids_in_memory_{0}, ids_in_store_{0}, ids_memory_bytes_{0},
      ids_store_reads_{0}, ids_moves_{0}, ids_read_errors_{0}, ids_files_{0}, ids_file_errors_{0};
  std::array<std::atomic<std::uint64_t>, kApplyBuckets.size() + 1> apply_buckets_{};
  std::array<std::atomic<std::uint64_t>, kRejectReasonCount> rejected_{};
  std::array<std::atomic<std::size_t>, kSimStateCount> by_state_{};
};

}  // namespace simcap::detail
