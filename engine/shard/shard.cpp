#include "shard/shard.hpp"

#include <chrono>

#include "simcap/thread_name.hpp"

// The shard's runtime: its thread, the loop that takes record batches and tasks from its
// queues, and the busy lock a borrowed read takes (shard.hpp says who may do what).
namespace simcap::detail {

shard::shard(unsigned index, const engine_options& opts, const clock& clk, event_log& events,
             dead_letter_sink& dead_letters, shard_host& host)
    : index_(index),
      opts_(opts),
      clock_(clk),
      events_(events),
      dead_letters_(dead_letters),
      host_(host),
      queue_(1024),
      table_(opts.expected_sims),
      dedup_(static_cast<std::size_t>(opts.dedup_memory / std::max(1u, opts.shards))),
      durable_(!opts.store_dir.empty()) {
  if (opts.rates) {
    static const network_countries no_networks;
    networks_ = opts.networks ? opts.networks.get() : &no_networks;
    rater_.emplace(*opts.rates, opts.mb_bytes);
  }
}

shard::~shard() { stop(); }

void shard::start() {
  if (thread_.joinable()) return;
  stopping_.store(false);
  thread_ = std::thread([this] {
    set_thread_name("shard-" + std::to_string(index_));
    prefer_short_slices(std::chrono::microseconds(200));
    owner_.store(std::this_thread::get_id(), std::memory_order_release);
    loop();
    owner_.store(std::thread::id{}, std::memory_order_release);
  });
}

void shard::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  queue_.enqueue(shard_msg{});  // wakes the thread
  thread_.join();
}

void shard::lock_busy() {
  // A query answered in another thread holds the lock for a microsecond or two: spin a little
  // before sleeping on it.
  for (int i = 0; i < 200; ++i) {
    if (busy_.try_lock()) return;
    std::this_thread::yield();
  }
  busy_.lock();
}

void shard::loop() {
  shard_msg msgs[64];
  lock_busy();
  for (;;) {
    run_tasks();
    std::size_t n = queue_.try_dequeue_bulk(msgs, 64);
    if (n == 0) {
      busy_.unlock();
      n = queue_.wait_dequeue_bulk_timed(msgs, 64, std::chrono::milliseconds(100));
      lock_busy();
    }
    for (std::size_t i = 0; i < n; ++i) {
      run_tasks();
      handle(msgs[i]);
    }
    // Between checkpoints too: while the store cannot write, ids and events stay in RAM until
    // it can, and ingest is held once they outgrow dedup_memory (engine::ingest_held). The
    // events every round (a flood of late records makes one each: 16 rounds of them overshot
    // the budget by tens of MB), the ids' size, which takes longer to add up, every 16.
    if (n != 0) {
      pending_event_bytes_.store(pending_events_.capacity() * sizeof(event),
                                 std::memory_order_relaxed);
      if ((++rounds_ & 15) == 0) {
        ids_memory_bytes_.store(dedup_.stats().memory_bytes, std::memory_order_relaxed);
      }
    }
    unix_seconds now = clock_.now();
    if (now >= next_due_) run_due(now);
    if (stopping_.load(std::memory_order_acquire) && queue_.size_approx() == 0 &&
        tasks_.size_approx() == 0 && reads_.size_approx() == 0) {
      run_tasks();
      break;
    }
  }
  busy_.unlock();
}

void shard::run_tasks() {
  run_reads();
  shard_task* t = nullptr;
  while (tasks_.try_dequeue(t)) {
    t->run(*this);
    delete t;
  }
}

void shard::run_reads() {
  shard_task* t = nullptr;
  while (reads_.try_dequeue(t)) {
    t->run(*this);
    delete t;
  }
}

void shard::handle(shard_msg& m) {
  if (m.batch == nullptr) return;
  const auto t0 = std::chrono::steady_clock::now();
  apply(*m.batch);
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::size_t b = 0;
  while (b < kApplyBuckets.size() && static_cast<double>(ns) > kApplyBuckets[b] * 1e9) ++b;
  bump(apply_buckets_[b]);
  bump(apply_nanos_, static_cast<std::uint64_t>(ns));
  m.batch->on_applied();
}

shard::counters shard::read_counters() const noexcept {
  counters c;
  c.counted = counted_.load(std::memory_order_relaxed);
  c.late = late_.load(std::memory_order_relaxed);
  c.duplicate_ids = duplicate_ids_.load(std::memory_order_relaxed);
  c.ids.in_memory = ids_in_memory_.load(std::memory_order_relaxed);
  c.ids.in_store = ids_in_store_.load(std::memory_order_relaxed);
  c.ids.memory_bytes = ids_memory_bytes_.load(std::memory_order_relaxed);
  c.ids.store_lookups = ids_store_reads_.load(std::memory_order_relaxed);
  c.ids.moves = ids_moves_.load(std::memory_order_relaxed);
  c.ids.lookup_errors = ids_read_errors_.load(std::memory_order_relaxed);
  c.ids.files = ids_files_.load(std::memory_order_relaxed);
  c.ids.file_errors = ids_file_errors_.load(std::memory_order_relaxed);
  c.apply_nanos = apply_nanos_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < c.apply_buckets.size(); ++i) {
    c.apply_buckets[i] = apply_buckets_[i].load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < kRejectReasonCount; ++i) {
    c.rejected[i] = rejected_[i].load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < kSimStateCount; ++i) {
    c.by_state[i] = by_state_[i].load(std::memory_order_relaxed);
  }
  return c;
}

}  // namespace simcap::detail
