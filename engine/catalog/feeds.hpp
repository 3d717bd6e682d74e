#pragma once
// The feeds the engine has heard of, and how far each has got: the one home of a feed's
// progress. A feed has a small id (record batches and shard watermarks use it) and a name (the
// store and the dead-letter log use it). Per feed and shard, the shard keeps the highest seq it
// applied (shard::feed_seq); here are the seqs recovered from the store, by name (a feed is
// registered after recovery or before it, in either order), and the durable seq: the highest
// that every shard has in a written checkpoint (what the feed is acknowledged up to).
//
// Thread-safe.
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace simcap::detail {

// Feeds a shard tracks a sequence watermark for (engine::register_feed ids).
inline constexpr std::size_t kMaxFeeds = 256;

class feed_book {
 public:
  // The feed's id (a new name gets the next one); a feed the store knows gets its shards'
  // applied seqs and its durable seq from what was recovered.
  template <class Shards>
  std::uint32_t register_feed(std::string_view name, Shards& shards) {
    std::lock_guard lock(mu_);
    for (std::uint32_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return i;
    }
    names_.emplace_back(name);
    const auto id = static_cast<std::uint32_t>(names_.size() - 1);
    apply_recovered(id, shards);
    return id;
  }
  std::string name(std::uint32_t id) const {
    std::lock_guard lock(mu_);
    return id < names_.size() ? names_[id] : std::string();
  }
  // Recovery: the seqs each shard applied, by feed name (by_shard[s]).
  template <class Shards>
  void recovered(const std::vector<std::vector<std::pair<std::string, std::uint64_t>>>& by_shard,
                 Shards& shards) {
    std::lock_guard lock(mu_);
    for (unsigned s = 0; s < by_shard.size(); ++s) {
      for (const auto& [name, seq] : by_shard[s]) {
        auto& v = recovered_[name];
        v.resize(by_shard.size(), 0);
        v[s] = seq;
      }
    }
    for (std::uint32_t f = 0; f < names_.size(); ++f) apply_recovered(f, shards);
  }
  // Everything up to seq of the feed is in a written checkpoint; true when that moved it.
  bool raise_durable(std::uint32_t feed, std::uint64_t seq) noexcept {
    if (feed >= kMaxFeeds || seq <= durable_[feed].load(std::memory_order_relaxed)) return false;
    durable_[feed].store(seq, std::memory_order_release);
    return true;
  }
  std::uint64_t durable(std::uint32_t feed) const noexcept {
    return feed < kMaxFeeds ? durable_[feed].load(std::memory_order_acquire) : 0;
  }

 private:
  // mu_ held.
  template <class Shards>
  void apply_recovered(std::uint32_t f, Shards& shards) {
    auto it = recovered_.find(names_[f]);
    if (it == recovered_.end() || f >= kMaxFeeds) return;
    std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
    for (unsigned s = 0; s < shards.size() && s < it->second.size(); ++s) {
      shards[s].set_feed_seq(f, it->second[s]);
      low = std::min(low, it->second[s]);
    }
    durable_[f].store(low, std::memory_order_release);
  }

  mutable std::mutex mu_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::vector<std::uint64_t>> recovered_;
  std::array<std::atomic<std::uint64_t>, kMaxFeeds> durable_{};
};

}  // namespace simcap::detail
