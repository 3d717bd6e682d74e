#include "simcap/engine.hpp"

#include <algorithm>
#include <limits>

#include "catalog/calendar.hpp"
#include "engine_impl.hpp"
#include "simcap/thread_name.hpp"
#include "state/hash.hpp"

// The engine's frame: its threads (shards, ticker, checkpointer), time, feeds, and the producer
// record batches enter by. What the rest does: engine_impl.hpp.
namespace simcap {

engine::impl::impl(engine_options o, clock& c, dead_letter_sink& d)
    : opts([&] {
        if (o.shards == 0) o.shards = std::max(1u, std::thread::hardware_concurrency());
        if (o.expected_sims != 0) o.expected_sims = o.expected_sims / o.shards + 1;
        return std::move(o);
      }()),
      clk(c),
      dl(d),
      shards(opts.shards, [this](unsigned i) {
        return std::make_unique<detail::shard>(i, opts, clk, events, dl, *this);
      }) {
  if (opts.rates) {
    rates.emplace(*opts.rates, opts.mb_bytes);
    discounts.push_back(0);
    for (const volume_tier& t : opts.rates->tiers) discounts.push_back(t.discount_ppm);
  }
}

// Record ids being added to the store as files are in before the store closes (st is
// destroyed before the shards).
engine::impl::~impl() {
  for (auto& s : shards) s->settle_ids();
}

detail::product_info engine::impl::first_activation(std::uint16_t product, unix_seconds when) {
  auto [info, set] = products.first_activation(product, when);
  if (set) {
    for (unsigned s = 0; s < shards.size(); ++s) {
      shards.post(s, [info](detail::shard& sh) { sh.learn_product(info); });
    }
  }
  return info;
}

std::expected<std::optional<std::uint16_t>, control_error> engine::impl::scope_of(
    std::string_view scope) const {
  if (scope.empty()) return std::optional<std::uint16_t>{};
  auto idx = products.index_of(scope);
  if (!idx) return std::unexpected(error(control_errc::not_found, "no such SIM"));
  return idx;
}

void engine::impl::ticker_loop() {
  std::unique_lock lock(ticker_mu);
  while (!ticker_stop) {
    ticker_cv.wait_for(lock, opts.tick_interval, [&] { return ticker_stop; });
    if (ticker_stop) break;
    lock.unlock();
    do_tick();
    lock.lock();
  }
}

void engine::impl::do_tick() {
  std::lock_guard tick_lock(tick_mu);
  const unix_seconds now = clk.now();
  shards.call_all([now](detail::shard& sh) { sh.run_due(now); });
  const auto closed = products.close_periods(now);
  for (const detail::catalog::closed_span& c : closed) {
    auto parts = shards.call_all([&](detail::shard& sh) { return sh.closed_of(c.product, false); });
    event ev;
    ev.time = c.end;
    ev.product = c.product;
    ev.type = event_type::period_closed;
    ev.reason = event_reason::anniversary;
    ev.period_start = c.start;
    for (const auto& list : parts) {
      for (const closed_period& cp : list) {
        if (cp.start == c.start) ev.usage_bytes += cp.total_bytes;
      }
    }
    publish(ev);
  }
  unused_events(now);
}

void engine::impl::unused_events(unix_seconds now) {
  // Once a UTC day per product, when some of its SIMs are unused but charged (SPEC §11). The
  // day last reported is side state, so a restart does not report the same day again.
  const std::int64_t today = now / kSecondsPerDay;
  for (std::uint16_t i = 0; i < products.size(); ++i) {
    const detail::product_info p = products.info_at(i);
    if (p.anniversary_day == 0) continue;
    const std::string key = "unused/" + p.id;
    {
      std::lock_guard lock(side_mu);
      auto it = side.find(key);
      if (it != side.end() && std::stoll(it->second) >= today) continue;
      side[key] = std::to_string(today);
      side_dirty.insert(key);
    }
    std::size_t count = 0;
    for (const auto& keys :
         shards.call_all([&](detail::shard& sh) { return sh.unused_of(i, now); }))
      count += keys.size();
    if (count == 0) continue;
    event ev;
    ev.time = now;
    ev.product = i;
    ev.type = event_type::unused_charged;
    ev.reason = event_reason::unused;
    ev.usage_bytes = count;
    publish(ev);
  }
}

void engine::impl::publish(const event& e) {
  if (st) {
    products.add_event(e);
  } else {
    events.append(e);
  }
}

// ------------------------------------------------------------------ engine

engine::engine(engine_options opts, clock& clk, dead_letter_sink& dead_letters)
    : impl_(std::make_unique<impl>(std::move(opts), clk, dead_letters)) {}

engine::~engine() { stop(); }

void engine::start() {
  if (impl_->started) return;
  if (!impl_->opts.store_dir.empty() && !impl_->recovered) {
    impl_->recover();
    impl_->recovered = true;
  }
  impl_->rebuild_pools();
  impl_->started = true;
  impl_->shards.start();
  if (impl_->st && impl_->opts.checkpoint_interval.count() > 0) {
    impl_->checkpointer_stop = false;
    impl_->checkpointer = std::thread([this] {
      set_thread_name("checkpointer");
      lower_priority();  // background work: ingest and queries come first
      impl_->checkpointer_loop();
    });
  }
  if (!impl_->clk.is_manual()) {
    impl_->ticker_stop = false;
    impl_->ticker = std::thread([this] {
      set_thread_name("ticker");
      impl_->ticker_loop();
    });
  }
}

void engine::stop() {
  if (!impl_->started) return;
  {
    std::lock_guard lock(impl_->ticker_mu);
    impl_->ticker_stop = true;
    impl_->checkpointer_stop = true;
  }
  impl_->ticker_cv.notify_all();
  if (impl_->ticker.joinable()) impl_->ticker.join();
  if (impl_->checkpointer.joinable()) impl_->checkpointer.join();
  impl_->shards.stop();
  for (auto& s : impl_->shards) s->settle_ids();  // the moves' files in the last checkpoint
  impl_->started = false;
  impl_->checkpoint();  // everything applied, on disk
}

bool engine::durable() const noexcept { return !impl_->opts.store_dir.empty(); }

void engine::checkpoint() { impl_->checkpoint(); }

std::optional<std::string> engine::store_error() const {
  if (!impl_->store_failed.load()) return std::nullopt;
  std::lock_guard lock(impl_->stats_mu);
  return impl_->store_failure;
}

bool engine::ingest_held() const noexcept {
  std::uint64_t ids = 0, events = 0;
  for (const auto& s : impl_->shards) {
    ids += s->ids_memory_bytes();
    events += s->pending_event_bytes();
  }
  // Events wait for the next cut whatever the store does (a write that stalls holds them too);
  // record ids stay in RAM beyond their budget only while the store cannot take moved ones.
  if (events > impl_->opts.dedup_memory) return true;
  return impl_->store_failed.load(std::memory_order_relaxed) &&
         ids + events > impl_->opts.dedup_memory;
}

void engine::request_checkpoint() {
  {
    std::lock_guard lock(impl_->ticker_mu);
    impl_->checkpoint_requested = true;
  }
  impl_->ticker_cv.notify_all();
}

std::uint64_t engine::durable_seq(std::uint32_t feed) const noexcept {
  if (impl_->opts.store_dir.empty()) return std::numeric_limits<std::uint64_t>::max();
  return impl_->feeds.durable(feed);
}

std::uint64_t engine::resume_after(std::uint32_t feed) const noexcept {
  std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
  for (const auto& s : impl_->shards) low = std::min(low, s->feed_seq(feed));
  return low;
}

void engine::put_side_state(std::string_view key, std::string value) {
  std::lock_guard lock(impl_->side_mu);
  if (value.empty()) {
    if (auto it = impl_->side.find(key); it != impl_->side.end()) impl_->side.erase(it);
  } else {
    impl_->side.insert_or_assign(std::string(key), std::move(value));
  }
  if (impl_->st) impl_->side_dirty.emplace(key);
}

std::vector<std::pair<std::string, std::string>> engine::side_state(std::string_view prefix) const {
  std::lock_guard lock(impl_->side_mu);
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = impl_->side.lower_bound(prefix);
       it != impl_->side.end() && it->first.starts_with(prefix); ++it) {
    out.emplace_back(it->first, it->second);
  }
  return out;
}

std::uint64_t engine::add_checkpoint_listener(std::function<void()> f) {
  std::lock_guard lock(impl_->listener_mu);
  const std::uint64_t id = impl_->next_listener++;
  impl_->checkpoint_listeners.emplace_back(id, std::move(f));
  return id;
}

void engine::remove_checkpoint_listener(std::uint64_t id) {
  std::lock_guard lock(impl_->listener_mu);
  std::erase_if(impl_->checkpoint_listeners, [id](const auto& l) { return l.first == id; });
}

unsigned engine::shard_count() const noexcept {
  return static_cast<unsigned>(impl_->shards.size());
}

unsigned engine::shard_for(std::uint64_t key, unsigned shards) noexcept {
  return static_cast<unsigned>(detail::reduce(detail::mix64(key), shards));
}

const engine_options& engine::options() const noexcept { return impl_->opts; }
const clock& engine::time_source() const noexcept { return impl_->clk; }
event_log& engine::events() noexcept { return impl_->events; }
const event_log& engine::events() const noexcept { return impl_->events; }

std::string engine::product_name(std::uint16_t index) const { return impl_->products.name(index); }

std::uint32_t engine::register_feed(std::string_view name) {
  return impl_->feeds.register_feed(name, impl_->shards);
}

std::string engine::feed_name(std::uint32_t id) const { return impl_->feed_name(id); }

void engine::tick() { impl_->do_tick(); }

bool engine::advance_clock(unix_seconds t) {
  auto* mc = dynamic_cast<manual_clock*>(&impl_->clk);
  if (mc == nullptr || !mc->advance_to(t)) return false;
  impl_->do_tick();
  impl_->checkpoint();  // the rollovers and their events, durable and visible
  return true;
}

// ------------------------------------------------------------------ producer

struct engine::producer::impl {
  explicit impl(engine& e) : eng(e) {
    for (auto& s : eng.impl_->shards) tokens.emplace_back(s->queue());
  }
  engine& eng;
  std::vector<moodycamel::ProducerToken> tokens;
};

engine::producer::producer(engine& e) : impl_(std::make_unique<impl>(e)) {}
engine::producer::~producer() = default;

void engine::producer::submit(unsigned shard, record_batch& b) {
  impl_->eng.impl_->shards[shard].queue().enqueue(impl_->tokens[shard], detail::shard_msg{&b});
}

}  // namespace simcap
