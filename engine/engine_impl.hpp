#pragma once
// The engine's insides, shared by its files:
//   engine.cpp                  start/stop, the ticker, feeds, stats, the producer
//   control.cpp                 products, imports and SIM changes (validated here, once)
//   queries.cpp                 SIMs, fleet usage, closed periods
//   durability/checkpointer.cpp checkpoints: cut, write, retry, taking a change back
//   durability/recovery.cpp     loading the store at start, re-sharding
#include <chrono>
#include <condition_variable>
#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "catalog/catalog.hpp"
#include "catalog/feeds.hpp"
#include "durability/store.hpp"
#include "shard/shard_set.hpp"
#include "simcap/engine.hpp"

namespace simcap {

struct engine::impl final : detail::shard_host {
  impl(engine_options o, clock& c, dead_letter_sink& d);
  ~impl();

  // ---- shard_host (called on shard threads)
  detail::product_info first_activation(std::uint16_t product, unix_seconds when) override;
  std::string feed_name(std::uint32_t feed) const override { return feeds.name(feed); }
  country_code country_at(std::uint8_t index) const override { return products.country_at(index); }
  pool_crossing pool_add(const detail::product_info& p, unix_seconds period_start,
                         std::uint64_t bytes) override;
  bool pool_exhausted(std::uint16_t product, unix_seconds period_start) const override;

  // ---- time (engine.cpp)
  void ticker_loop();
  // Runs what is due by the clock's now: the shards' rollovers and factory-test ends, then the
  // catalog's periods and their period_closed events.
  void do_tick();
  // The daily unused_charged events, once the day is new for a product.
  void unused_events(unix_seconds now);
  // An engine-level event (period_closed): with the next checkpoint, or at once without a store.
  void publish(const event& e);
  // Resolves a caller's product scope: nullopt for "all", or the index; not_found when the
  // named product does not exist (then nothing is visible).
  std::expected<std::optional<std::uint16_t>, control_error> scope_of(std::string_view scope) const;

  // ---- durability (durability/checkpointer.cpp)
  // A control change on one shard, as it can be taken back: the SIMs as they were, and the
  // events it made.
  struct change {
    std::vector<detail::shard::undo_point> points;
    std::vector<event> events;
  };
  // Takes back a control change whose checkpoint failed (indexed by shard).
  void take_back(std::vector<change> changes);
  // What one checkpoint writes, kept whole until it is on disk. Event ids are given at the
  // write, so that events taken out (an undone control change) leave no gap.
  struct pending_checkpoint {
    std::uint64_t number = 0;
    detail::write_batch ops;
    std::vector<event> events;
    std::vector<std::uint64_t> low =
        std::vector<std::uint64_t>(detail::kMaxFeeds, std::numeric_limits<std::uint64_t>::max());
    std::vector<unsigned> seen = std::vector<unsigned>(detail::kMaxFeeds, 0);
    std::uint64_t sims = 0;
    double longest_cut = 0;      // wall time (s)
    double longest_cut_cpu = 0;  // a shard thread's CPU time (s)
  };
  pending_checkpoint cut(std::uint64_t n);
  static void append(pending_checkpoint& older, pending_checkpoint&& newer);
  bool write(pending_checkpoint& p, std::chrono::steady_clock::time_point t0);
  bool store_writable();
  double checkpoint();  // the CPU time the longest cut took of its shard (s)
  void checkpointer_loop();
  void notify_checkpoint_listeners();

  // ---- pools (pools.cpp): every pooled product's usage in its current period, from all shards
  struct pool_entry {
    unix_seconds period_start = 0;
    std::uint64_t used = 0;
    std::uint32_t fired = 0;  // bit i: threshold i
    bool exhausted = false;
  };
  // The pause under way (one at a time is measured): when it began, shards still pausing.
  struct pool_pause_clock {
    std::uint16_t product = 0;
    std::uint64_t pool_bytes = 0;
    std::chrono::steady_clock::time_point began{};
    unsigned left = 0;
  };
  pool_pause_clock pausing;       // pool_mu
  std::uint64_t pool_pauses = 0;  // pool_mu, with the two below
  double last_pool_pause_seconds = 0;
  std::uint64_t last_pool_overshoot_bytes = 0;
  mutable std::mutex pool_mu;
  std::vector<pool_entry> pools;  // by product index
  // After a product change: its pool's state from the shards' usage, pausing or unpausing.
  void pools_changed(const detail::product_info& p, unix_seconds period_start);
  // After recovery, before the shards start.
  void rebuild_pools();
  // Asks every shard to pause (or unpause) the product's SIMs for its pool.
  // measured: time the pause (the one that used the pool up).
  void post_pool_change(std::uint16_t product, bool pause, std::uint64_t pool_bytes = 0,
                        bool measured = false);
  // The fleet answer's pool fields.
  void fill_pool(fleet_usage& u, std::uint16_t product) const;
  // What a product's pool adds to a period's bill: its price, and the overage beyond it.
  micros pool_charge(std::uint16_t product, std::uint64_t total_bytes) const;

  // ---- rating (invoices.cpp)
  // The discounts a product can be rated at: none, then each volume tier's.
  std::vector<std::uint32_t> discounts;
  // The index in discounts of a product with this many chargeable SIMs.
  std::size_t discount_index(std::uint64_t chargeable) const;

  // ---- recovery (durability/recovery.cpp)
  void recover();
  void reshard(std::uint32_t from);

  engine_options opts;
  clock& clk;
  dead_letter_sink& dl;
  event_log events;
  detail::catalog products{opts};
  detail::feed_book feeds;
  detail::shard_set shards;
  std::optional<rater> rates;  // with opts.rates

  // Durability.
  std::unique_ptr<detail::store> st;
  std::mutex checkpoint_mu;  // one checkpoint at a time
  std::uint64_t checkpoint_no = 0;
  unix_seconds stored_time = 0;  // the clock's time in the last checkpoint
  mutable std::mutex side_mu;
  std::map<std::string, std::string, std::less<>> side;  // side state (empty values are gone)
  std::set<std::string, std::less<>> side_dirty;         // keys changed since the last cut
  std::mutex listener_mu;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> checkpoint_listeners;
  std::uint64_t next_listener = 1;
  std::mutex stats_mu;
  engine_stats stats;  // the checkpoint fields only
  bool recovered = false;
  bool checkpointer_stop = false;
  std::atomic<bool> store_failed{false};
  std::string store_failure;  // stats_mu
  // A checkpoint the store could not write (checkpoint_mu): written first, with what changed
  // since, once the store can write again; when to try.
  std::optional<pending_checkpoint> unwritten;
  // The batches of the last checkpoint written (checkpoint_mu), emptied, for the next: tens of
  // MB allocated afresh each time were mapped and faulted in page by page as they filled (a
  // quarter of simcapd's page faults at full ingest, in the checkpointer and the cuts).
  detail::write_batch spare_ops;
  std::vector<detail::write_batch> spare_parts;
  std::chrono::steady_clock::time_point next_retry{};
  std::chrono::milliseconds retry_wait{500};
  // Event retention (checkpoint_mu): the oldest event id kept, when the next purge by age is due,
  // and whether the last purge left index postings for the next.
  std::uint64_t oldest_event = 1;
  unix_seconds next_event_purge = 0;
  bool event_purge_unfinished = false;
  void purge_events();
  bool checkpoint_requested = false;  // ticker_mu
  std::thread checkpointer;

  std::mutex tick_mu;  // one tick at a time
  std::mutex ticker_mu;
  std::condition_variable ticker_cv;
  bool ticker_stop = false;
  std::thread ticker;
  bool started = false;
};

// A control change is checkpointed before it is answered: nullopt once it is durable, else why
// not (the store failed).
std::optional<control_error> make_durable(engine& e);
// While the store cannot write, control changes are refused before anything changes.
std::optional<control_error> refuse_when_not_durable(const engine& e);
inline control_error error(control_errc c, std::string msg) {
  return control_error{c, std::move(msg), {}, {}};
}

}  // namespace simcap
