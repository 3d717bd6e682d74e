#pragma once
// The engine's C++ API: products, SIM import and control, queries, time, and the ingest path.
// Every SIM lives in one shard (shard_for), whose own thread is the only one that changes it.
// Control requests are posted to the owning shard and run there between record batches;
// queries read the shard in the calling thread when it is idle (under its lock), else on its
// thread between batches. The synchronous calls below block the calling thread (never call them
// from a shard thread) until the shards have answered.
#include <array>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "simcap/clock.hpp"
#include "simcap/dead_letter.hpp"
#include "simcap/event_log.hpp"
#include "simcap/iccid.hpp"
#include "simcap/rating.hpp"
#include "simcap/reason.hpp"
#include "simcap/record.hpp"
#include "simcap/sim.hpp"

namespace simcap {

// Data limits (a SIM's mb_limit, a product's default_mb_limit) are 1 to this many MB.
inline constexpr std::uint32_t kMaxMbLimit = 100'000'000;

// Product ids are 1 to this many bytes.
inline constexpr std::size_t kMaxProductIdLength = 128;

// The checks every caller of the engine shares (the engine runs them again on every change;
// the config and the HTTP port run them to name the key or field at fault). Each returns why
// the value is not valid, or nullopt.
std::optional<std::string> check_product_id(std::string_view id);
std::optional<std::string> check_mb_limit(std::uint64_t mb);
// A product's alert_emails: at most 16 addresses, each local@domain of printable ASCII without
// spaces, commas or angle brackets, at most 254 characters.
std::optional<std::string> check_alert_emails(const std::vector<std::string>& addresses);

// Why a list of alert thresholds (ratios of the limit) is not valid, or nullopt: at most 8,
// strictly increasing, in (0, 10], at least 0.001 apart. The one check the config and the
// HTTP port use.
std::optional<std::string> check_alert_thresholds(const std::vector<double>& t);

struct engine_options {
  unsigned shards = 0;  // 0: one per core
  std::uint64_t mb_bytes = 1'000'000;
  std::uint32_t default_mb_limit = 5;
  std::vector<double> alert_thresholds{0.9};
  std::chrono::seconds late_grace{48 * 3600};
  std::chrono::seconds future_skew{5 * 60};
  std::chrono::seconds dedup_window{24 * 3600};
  // RAM for the record-id window (all shards); with a store, older ids move there.
  std::uint64_t dedup_memory = 256ULL << 20;
  std::uint64_t factory_test_bytes = 100'000;  // 100 KB
  std::uint32_t factory_test_sms = 10;
  std::chrono::seconds factory_test_period{30 * 86400};
  std::size_t closed_periods_kept = 12;           // closed periods kept per product
  std::size_t expected_sims = 0;                  // pre-sizes the SIM tables (0: grow on demand)
  std::chrono::milliseconds tick_interval{1000};  // real clock: how often due work is checked
  // Durability: the store's directory (empty: state in memory only, acks after apply) and how
  // often a checkpoint runs while anything changes. At full ingest a record waits for the next
  // cut (up to this long) and then for its write: 100 ms keeps the ack lag's p99 near 200 ms
  // without record ids and 250 ms with them on 2 cores, where 200 ms gave 320 and 374 ms, for
  // under a point more of the ingest rate spent on checkpoints (README, "Ack lag under load").
  std::string store_dir;
  std::chrono::milliseconds checkpoint_interval{100};
  // At most this share (percent) of the shards' time goes to cutting checkpoints: after a cut
  // that held them for t, the next waits at least t * (100 - p) / p. Lower: fewer, bigger
  // checkpoints and later acks under load; 100: one every checkpoint_interval, whatever it costs.
  unsigned checkpoint_stall_percent = 5;
  // With a store: the newest events the event log keeps in memory (older ones are read from
  // the store). Without one every event stays in memory.
  std::size_t events_in_memory = 100'000;
  // With a store: how long events are kept (by their time; 0: no age limit) and how many at most
  // (0: no count limit; the oldest go first). Purged at most hourly by age, and as soon as the
  // store holds a sixteenth more than events_max by count.
  std::chrono::seconds events_retention{400 * 86400};
  std::uint64_t events_max = 100'000'000;
  // A manual clock is put back at the time stored with the state when it is recovered (simcapd
  // --clock simulated: the simulated time goes on across restarts).
  bool resume_clock = false;
  // The country codes a product or SIM may have (ISO 3166-1 alpha-2, from Debian's iso-codes:
  // simcap::load_iso3166); empty: any two capital letters.
  std::vector<std::string> countries;
  // up + down of one record above this is bad_value (API.md [limits] max_record_bytes).
  std::uint64_t max_record_bytes = 1ULL << 40;
  // Tests only (simcapd --test-checkpoint-pause-ms): every checkpoint waits this long between
  // taking the shards' cuts and writing them, so that a crash test's kills land inside one.
  std::chrono::milliseconds test_checkpoint_pause{0};
  // Rating (SPEC §11): the rate table ([billing] rates_file; none: nothing is priced), the
  // visited network -> country table, and how long an active SIM without usage in the open
  // period may be before it counts as unused but charged.
  std::optional<rate_table> rates;
  std::shared_ptr<const network_countries> networks;
  std::chrono::seconds unused_after{7 * 86400};
};

// What a pooled product does at its pool (SPEC §11).
enum class pool_action : std::uint8_t { overage, pause };
constexpr std::string_view to_string(pool_action a) noexcept {
  return a == pool_action::pause ? "pause" : "overage";
}
constexpr std::optional<pool_action> pool_action_of(std::string_view s) noexcept {
  if (s == "pause") return pool_action::pause;
  if (s == "overage") return pool_action::overage;
  return std::nullopt;
}

struct product_settings {
  std::string id;
  std::optional<std::uint32_t> default_mb_limit;  // unset: the engine default
  std::optional<std::vector<double>> alert_thresholds;
  std::optional<std::string> country;
  std::optional<std::vector<std::string>> alert_emails;  // who the email sinks mail
  std::optional<std::uint64_t> pool_mb;                  // > 0: a pooled plan
  std::optional<simcap::pool_action> pool_action;
  std::optional<micros> pool_price;  // per period
};

struct product_view {
  std::string id;
  std::uint32_t default_mb_limit = 0;
  std::vector<double> alert_thresholds;
  std::string country;
  std::vector<std::string> alert_emails;
  std::uint64_t pool_mb = 0;
  simcap::pool_action pool_action = simcap::pool_action::overage;
  micros pool_price = 0;
  unsigned anniversary_day = 0;  // 0: no SIM activated yet
  unix_seconds first_period_start = 0;
  unix_seconds period_start = 0;  // current period; 0 when there is none yet
  unix_seconds period_end = 0;
};

enum class control_errc {
  not_found,           // no such SIM (or not visible in the caller's product)
  unknown_product,     // no such product
  bad_request,         // a value is out of range
  invalid_transition,  // the life cycle does not allow it
  limit_reached,       // activation refused: usage is at or over the limit
  unavailable,         // done in memory, but the store failed: not durable
};

struct control_error {
  control_errc code;
  std::string message;
  std::optional<sim_state> current;  // for transition errors
  std::vector<sim_action> allowed;   // actions the current state allows
};

template <class T>
using control_result = std::expected<T, control_error>;

struct sim_update {
  std::optional<sim_action> action;
  std::optional<std::uint32_t> mb_limit;  // applied before the action
};

struct import_refusal {
  std::size_t index;  // position in the request
  iccid id;
  std::string reason;  // "belongs_to_other_product"
};

struct import_options {
  sim_state initial = sim_state::active;  // active, issued or factory_test
  // The SIMs' home country (validated); unset: the product's country at the time of import.
  std::optional<std::string> country;
  // Leave every SIM the engine knows as it is, released ones included: only SIMs never seen
  // are imported (the config's iccids_file at every start).
  bool only_new = false;
  // Move SIMs that belong to another product here (SPEC §11 "Transfer"): their usage so far is
  // charged in the old product's period, they start anew here; keep_limit keeps their own
  // limit. (An admin's choice: the HTTP layer checks who asks.)
  bool transfer = false;
  bool keep_limit = false;
};

struct import_result {
  std::size_t imported = 0;
  std::size_t already_present = 0;
  std::size_t transferred = 0;
  std::vector<import_refusal> refused;
};

struct sim_filter {
  std::optional<std::string> product;  // only this product's SIMs
  std::optional<sim_state> state;
  bool include_released = false;
  // Only unused-but-charged SIMs (SPEC §11): active for [billing] unused_after of the open
  // period with no usage in it.
  bool unused = false;
};

struct sim_page {
  std::vector<sim_view> sims;  // ordered by ICCID
  std::size_t total = 0;       // matches before paging
};

struct day_bytes {
  unix_seconds day = 0;  // 00:00 UTC of the day
  std::uint64_t bytes = 0;
};

struct fleet_usage {
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  std::uint64_t sms = 0;
  std::array<std::size_t, kSimStateCount> sims_by_state{};
  std::size_t chargeable_sims = 0;      // active or paused at some moment of the period
  std::size_t unused_charged_sims = 0;  // active, no usage this period
  unix_seconds period_start = 0;
  unix_seconds period_end = 0;
  std::vector<std::uint64_t> by_hour;    // bytes per hour from period_start (the sparkline)
  std::optional<micros> estimated_cost;  // with a rate table: the period so far
  std::uint64_t pool_mb = 0;             // > 0: a pooled product
  pool_action pool_mode = pool_action::overage;
  bool pool_exhausted = false;
  std::uint32_t discount_ppm = 0;               // the volume tier's discount it was rated at
  std::uint64_t usage_bytes() const noexcept {  // saturates, as the counters do
    return bytes_up + bytes_down < bytes_up ? ~std::uint64_t{0} : bytes_up + bytes_down;
  }
};

struct closed_line {
  std::uint64_t sim = 0;
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  std::uint32_t sms = 0;
  bool chargeable = false;
  // Rating (SPEC §11; with a rate table): the day (0: the first) the SIM first became
  // chargeable in the period, its home country, and its bytes by visited country beyond the
  // home country's within the limit (rating_input).
  std::uint8_t charge_day = 0;
  bool transferred_out = false;
  country_code country = 0;
  std::vector<country_bytes> away;
  std::uint64_t usage_bytes() const noexcept {
    return bytes_up + bytes_down < bytes_up ? ~std::uint64_t{0} : bytes_up + bytes_down;
  }
};

// What rating reads of a line (it must outlive the result).
inline rating_input rating_input_of(const closed_line& l) noexcept {
  rating_input in;
  in.home = l.country;
  in.chargeable = l.chargeable;
  in.charge_day = l.charge_day;
  in.usage = l.usage_bytes();
  in.away = l.away.data();
  in.away_count = l.away.size();
  return in;
}

struct closed_period {
  unix_seconds start = 0;
  unix_seconds end = 0;
  std::uint64_t total_bytes = 0;
  std::size_t chargeable_sims = 0;
  std::vector<closed_line> lines;  // ordered by ICCID; empty in summaries
  std::vector<micros> costs;       // (with a rate table) its lines' cost, for each discount asked
  std::optional<micros> cost;      // (with a rate table) what it costs, from the engine
  unsigned days() const noexcept { return static_cast<unsigned>((end - start) / 86400); }
};

// An itemized bill of one period of a product (SPEC §11): its summary and a line per SIM.
struct invoice_line {
  closed_line line;
  sim_charges charges;
};
struct invoice {
  std::string product;
  unix_seconds start = 0, end = 0;
  bool open = false;  // the current period: an estimate of the usage so far
  std::size_t chargeable_sims = 0;
  std::uint64_t total_bytes = 0;
  micros base = 0, data_within = 0, data_over = 0, roaming = 0, pool = 0, pool_overage = 0;
  std::uint64_t pool_overshoot_bytes = 0;
  std::uint32_t discount_ppm = 0;
  micros total = 0;
  std::vector<invoice_line> lines;  // by ICCID
};

struct engine_stats {
  std::uint64_t records_counted = 0;
  std::uint64_t late_records = 0;
  std::uint64_t duplicate_ids = 0;
  // The record-id window (as of the last checkpoint): entries in RAM and in the store, the RAM
  // it takes, store reads for late records, moves to the store, failed reads, moves added to
  // the store as table files and moves whose file was refused (written with checkpoints).
  std::uint64_t ids_in_memory = 0, ids_in_store = 0, ids_memory_bytes = 0, ids_store_reads = 0,
                ids_moves = 0, ids_read_errors = 0, ids_files = 0, ids_file_errors = 0;
  std::array<std::uint64_t, kRejectReasonCount> rejected{};
  std::vector<std::size_t> queue_depth;  // per shard, in messages
  // Time to apply one record batch on a shard: histogram bucket bounds (seconds), counts per
  // bucket (the last one: above every bound; not cumulative), and the total time.
  std::vector<double> apply_bucket_bounds;
  std::vector<std::uint64_t> apply_bucket_counts;
  double apply_seconds = 0;
  std::array<std::size_t, kSimStateCount> sims_by_state{};
  // Checkpoints (all zero when state is in memory only).
  std::uint64_t checkpoints = 0;
  double last_checkpoint_seconds = 0;  // how long the last one took
  unix_seconds last_checkpoint_time = 0;
  std::uint64_t last_checkpoint_sims = 0;  // SIMs it wrote
  double last_cut_seconds = 0;             // the longest a shard stopped for it
  std::uint64_t store_bytes = 0;
  // The event log in the store: events kept (ids from the oldest kept to the newest) and
  // deleted by retention since the start.
  std::uint64_t events_stored = 0;
  std::uint64_t events_purged = 0;
  // RAM of the events the shards hold for the next checkpoint (as of their last batches).
  std::uint64_t events_waiting_bytes = 0;
  // Pools (pause mode): the last pause of a used-up pool, from the report that used it up to the
  // last shard's pause, and what the product's SIMs counted beyond the pool by then.
  std::uint64_t pool_pauses = 0;
  double last_pool_pause_seconds = 0;
  std::uint64_t last_pool_overshoot_bytes = 0;
};

// A batch of parsed records bound for one shard. The producer keeps it (and the text its
// records point into) alive until on_applied() has been called on the shard's thread.
class record_batch {
 public:
  std::span<const usage_record> records;
  std::string_view text;   // raw lines; usage_record::line_offset/length index into it
  std::uint32_t feed = 0;  // engine::register_feed
  std::uint64_t upto_seq = 0;

  // Called on the shard thread for each record the shard does not count (already written to
  // the dead-letter log by the engine), before on_applied().
  virtual void on_reject(const usage_record&, reject_reason, std::string_view /*detail*/) noexcept {
  }
  // Called on the shard thread once every record has been counted or rejected.
  virtual void on_applied() noexcept = 0;

 protected:
  ~record_batch() = default;
};

class engine {
 public:
  // The engine reads clk; when clk is a manual_clock, advance_clock() moves it.
  engine(engine_options opts, clock& clk, dead_letter_sink& dead_letters);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Starts the shard threads and, for a real clock, the ticker. stop() drains every queue,
  // then joins; it is called by the destructor too.
  void start();
  void stop();

  unsigned shard_count() const noexcept;
  // The one function that places a SIM: pure, stable for a given shard count.
  static unsigned shard_for(std::uint64_t iccid_key, unsigned shards) noexcept;
  unsigned shard_for(iccid id) const noexcept { return shard_for(id.key(), shard_count()); }

  const engine_options& options() const noexcept;
  const clock& time_source() const noexcept;
  event_log& events() noexcept;
  const event_log& events() const noexcept;
  // Product id for an event's product index.
  std::string product_name(std::uint16_t index) const;

  // Feeds: a small id for a feed name, used in record batches and dead-letter entries.
  std::uint32_t register_feed(std::string_view name);
  std::string feed_name(std::uint32_t id) const;

  // Products.
  control_result<product_view> put_product(const product_settings& s);
  std::optional<product_view> get_product(std::string_view id) const;
  std::vector<product_view> products() const;

  // SIMs. `scope`, when not empty, is the only product whose SIMs the caller may see.
  control_result<import_result> import_sims(std::string_view product, std::span<const iccid> ids,
                                            const import_options& how);
  control_result<import_result> import_sims(std::string_view product, std::span<const iccid> ids,
                                            sim_state initial = sim_state::active) {
    import_options how;
    how.initial = initial;
    return import_sims(product, ids, how);
  }
  // Whether code is a country a product or SIM may have (engine_options::countries).
  bool valid_country(std::string_view code) const;
  control_result<sim_view> update_sim(iccid id, const sim_update& u, std::string_view scope = {});
  control_result<sim_view> get_sim(iccid id, std::string_view scope = {}) const;
  // The same without waiting: `done` runs in the calling thread, before this returns, when the
  // shard is idle, else later on the SIM's shard thread (keep it short; post the answer on to
  // where it is needed).
  void get_sim_async(iccid id, std::string_view scope,
                     std::function<void(control_result<sim_view>)> done) const;
  sim_page list_sims(const sim_filter& f, std::size_t offset, std::size_t limit) const;
  control_result<fleet_usage> product_usage(std::string_view product) const;
  // The same without waiting: each shard adds its part; `done` runs where the last part is
  // added: in the calling thread when every shard was idle, else on a shard thread (keep it
  // short).
  void product_usage_async(std::string_view product,
                           std::function<void(control_result<fleet_usage>)> done) const;
  // The SIM and its bytes per day of the current period (first day to today, zeros included).
  control_result<std::pair<sim_view, std::vector<day_bytes>>> sim_usage_by_day(
      iccid id, std::string_view scope = {}) const;
  // Closed periods of a product, newest first; with lines only when `itemized`.
  control_result<std::vector<closed_period>> closed_periods(std::string_view product,
                                                            bool itemized) const;
  // Rating (engine_options::rates; nullptr without one).
  const rater* rating() const noexcept;
  // The invoice of the product's period that starts at `start`: a closed one, or the current
  // one (open: rated so far). not_found when there is no such period.
  control_result<invoice> invoice_of(std::string_view product, unix_seconds start) const;
  // Fills v.charges (with a rate table): what the SIM costs in its period so far.
  void rate_sim(sim_view& v) const;

  // Time. tick() runs everything due by the clock's now (rollovers, factory-test periods,
  // period_closed events) and returns when it has happened. advance_clock() moves a manual
  // clock forward and ticks; false when the clock is not manual or t is in the past.
  void tick();
  bool advance_clock(unix_seconds t);

  // Durability (engine_options::store_dir set). start() recovers the store's state before the
  // shards run. checkpoint() writes everything changed since the last one, atomically and
  // durably, and returns when it is on disk; it also runs every checkpoint_interval and at
  // stop(). Control calls (put_product, import_sims, update_sim) checkpoint before returning.
  bool durable() const noexcept;
  void checkpoint();
  // Asks the checkpointing thread for a checkpoint now, without waiting for it.
  void request_checkpoint();
  // Set once a checkpoint could not be written (disk full, I/O error): from then on nothing
  // more is acknowledged or reported durable; a restart recovers the last good checkpoint.
  std::optional<std::string> store_error() const;
  // True while what waits for the store in RAM has outgrown dedup_memory: the events not yet
  // cut into a checkpoint (a late record makes one each; a checkpoint that stalls or fails
  // holds them), or, while the store cannot write, those and the record ids of the records
  // applied since. Feeds stop reading until it is written, so memory stays bounded however
  // long the store is down. Cheap; any thread.
  bool ingest_held() const noexcept;
  // The feed's highest seq whose records are all in a durable checkpoint (acks); without a
  // store, every applied record counts (UINT64_MAX).
  std::uint64_t durable_seq(std::uint32_t feed) const noexcept;
  // Where a feed resumes: its highest seq applied by every shard (records up to it are counted
  // or rejected; later ones a shard has seen already are dropped as duplicates there).
  std::uint64_t resume_after(std::uint32_t feed) const noexcept;
  // Durable side state of the adapters (a sink's delivery position, webhooks made at run time):
  // written with the next checkpoint, loaded back by start(). An empty value removes the key.
  // Thread-safe. Without a store it lives in memory only.
  void put_side_state(std::string_view key, std::string value);
  // The side state whose keys start with prefix, ordered by key.
  std::vector<std::pair<std::string, std::string>> side_state(std::string_view prefix) const;

  // Listeners called on the checkpointing thread after each checkpoint that moved a feed's
  // durable_seq (keep them short). Any number; remove by the id add returned.
  std::uint64_t add_checkpoint_listener(std::function<void()> f);
  void remove_checkpoint_listener(std::uint64_t id);

  engine_stats stats() const;

  // One per producing thread or feed session (moodycamel producer tokens): not thread-safe,
  // keeps the order of what it submits per shard.
  class producer {
   public:
    explicit producer(engine& e);
    ~producer();
    producer(const producer&) = delete;
    producer& operator=(const producer&) = delete;
    void submit(unsigned shard, record_batch& b);

   private:
    struct impl;
    std::unique_ptr<impl> impl_;
  };

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace simcap
