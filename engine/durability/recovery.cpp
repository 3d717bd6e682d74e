#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <stdexcept>
#include <string>

#include "durability/codec.hpp"
#include "durability/event_store.hpp"
#include "durability/keys.hpp"
#include "engine_impl.hpp"

// Recovery: at start, the store's state goes back into the catalog, the event log and the
// shards (each shard loads its own part, in parallel), before any shard runs. A store written
// with another shard count is re-sharded first.
namespace simcap {

void engine::impl::recover() {
  using detail::key_kind;
  st = std::make_unique<detail::store>(opts.store_dir);
  if (!st->writable()) {
    // A full disk at start: the state is read, nothing is acknowledged until it can write.
    spdlog::error("store {}: {}; acks stop until it can write", opts.store_dir, st->open_error());
    store_failure = st->open_error();
    store_failed.store(true);
  }
  std::string meta;
  if (st->get(detail::key_of(key_kind::meta).str(), meta)) {
    detail::reader r(meta);
    checkpoint_no = r.get<std::uint64_t>();
    auto stored_shards = r.get<std::uint32_t>();
    // A simulated clock goes on from where it was (SPEC §4), not from the real time.
    const auto stored_now = r.get<unix_seconds>();
    stored_time = stored_now;
    if (auto* mc = dynamic_cast<manual_clock*>(&clk); mc != nullptr && r.ok && opts.resume_clock) {
      mc->set(stored_now);
    }
    const std::uint32_t format = r.left() >= sizeof(std::uint32_t) ? r.get<std::uint32_t>() : 1;
    if (format > detail::kStoreFormat) {
      throw std::runtime_error("store " + opts.store_dir + " is of format " +
                               std::to_string(format) + ", written by a later simcapd; this one " +
                               "reads formats up to " + std::to_string(detail::kStoreFormat));
    }
    if (stored_shards != shards.size()) reshard(stored_shards);
  }
  products.recover(*st);
  {
    const std::string prefix = detail::key_of(key_kind::side).str();
    std::lock_guard lock(side_mu);
    st->scan(prefix, [&](std::string_view k, std::string_view v) {
      side.emplace(std::string(k.substr(prefix.size())), std::string(v));
      return true;
    });
  }
  // The event log loads beside the shards.
  std::exception_ptr events_failed;
  std::thread event_loader([&] {
    try {
      detail::recover_events(*st, events, opts.events_in_memory);
    } catch (...) {
      events_failed = std::current_exception();
    }
  });
  const auto infos = products.infos();
  for (auto& sh : shards) {
    for (const detail::product_info& info : infos) sh->learn_product(info);
  }
  std::vector<std::vector<std::pair<std::string, std::uint64_t>>> seqs(shards.size());
  std::vector<std::thread> loaders;
  std::vector<std::exception_ptr> failed(shards.size());
  for (unsigned s = 0; s < shards.size(); ++s) {
    loaders.emplace_back([&, s] {
      try {
        seqs[s] = shards[s].recover(*st);
      } catch (...) {
        failed[s] = std::current_exception();
      }
    });
  }
  for (auto& t : loaders) t.join();
  event_loader.join();
  if (events_failed) std::rethrow_exception(events_failed);
  // From now on the log keeps its newest events; older ones are read from the store.
  events.page_older_through(
      [s = st.get()](std::uint64_t from, std::uint64_t below, std::size_t limit,
                     const event_filter& f, std::vector<event>& out) {
        detail::read_stored_events(*s, from, below, limit, f, out);
      },
      opts.events_in_memory);
  // What retention left: reads begin at the oldest value kept.
  if (const std::uint64_t oldest = detail::oldest_stored_event(*st); oldest > 1) {
    oldest_event = oldest;
    events.forget_below(oldest);
  }
  for (auto& f : failed) {
    if (f) std::rethrow_exception(f);
  }
  feeds.recovered(seqs, shards);
}

// The store holds the state of `from` shards and simcapd runs with another count: moves every
// SIM to the shard shard_for() now places it in, in one atomic write, before the normal
// recovery reads the store. Only a store stopped cleanly can be re-sharded (every shard at the
// same seq of each feed: a crash leaves them apart, and no shard could tell which of the
// records between them it has counted).
void engine::impl::reshard(std::uint32_t from) {
  using detail::key_kind;
  if (!st->writable())
    throw std::runtime_error("data_dir: cannot re-shard a store that cannot be written");
  const auto stored = products.stored_products(*st);
  auto make = [&](unsigned count) {
    std::vector<std::unique_ptr<detail::shard>> out;
    for (unsigned i = 0; i < count; ++i) {
      out.push_back(std::make_unique<detail::shard>(i, opts, clk, events, dl, *this));
      for (const detail::product_info& info : stored) out.back()->learn_product(info);
    }
    return out;
  };
  auto old_shards = make(from);
  auto new_shards = make(shards.size());
  std::map<std::string, std::vector<std::uint64_t>> seqs;
  for (auto& sh : old_shards) {
    for (auto& [name, seq] : sh->recover(*st)) seqs[name].push_back(seq);
  }
  for (const auto& [name, list] : seqs) {
    if (list.size() != from ||
        std::adjacent_find(list.begin(), list.end(), std::not_equal_to<>()) != list.end()) {
      throw std::runtime_error("data_dir holds " + std::to_string(from) +
                               " shards that were not stopped cleanly (feed " + name +
                               "): start once with --shards " + std::to_string(from) +
                               ", stop with SIGTERM, then start with the new count");
    }
  }
  std::vector<detail::shard*> targets;
  for (auto& sh : new_shards) {
    sh->attach_store(*st);
    targets.push_back(sh.get());
  }
  for (auto& sh : old_shards) sh->hand_over(targets);
  detail::write_batch wb;
  for (key_kind kind : detail::kShardKinds) {
    wb.del_range(detail::shard_key(kind, 0).str(), detail::shard_key(kind, 0xffff).str());
  }
  wb.del_range_id(*st, detail::shard_key(key_kind::id_group, 0).str(),
                  detail::shard_key(key_kind::id_group, 0xffff).str());
  const std::uint64_t n = checkpoint_no + 1;
  for (auto& sh : new_shards) {
    detail::shard_cut cut;
    detail::write_batch part;
    sh->cut(part, cut, n, checkpoint_no);
    wb.append(part);
    for (auto& [k, v] : cut.blobs) wb.put(k, v);
    for (const auto& [name, list] : seqs) {
      const std::uint64_t seq = list.front();
      wb.put(detail::shard_key(key_kind::watermark, sh->index()).text(name).str(),
             std::string_view(reinterpret_cast<const char*>(&seq), sizeof seq));
    }
  }
  detail::writer meta;
  meta.put(n).put(static_cast<std::uint32_t>(shards.size())).put(stored_time);
  meta.put(detail::kStoreFormat);
  wb.put(detail::key_of(key_kind::meta).str(), meta.str());
  st->write(wb);
  checkpoint_no = n;
  spdlog::info("store re-sharded from {} to {} shards", from, shards.size());
}

}  // namespace simcap
