#include "simcap/engine.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "simcap/thread_name.hpp"
#include "catalog/calendar.hpp"
#include "durability/codec.hpp"
#include "state/hash.hpp"
#include "shard/shard.hpp"
#include "durability/keys.hpp"
#include "durability/sim_blobs.hpp"
#include "durability/store.hpp"

namespace simcap {

using detail::product_info;
using detail::shard;
using detail::shard_msg;

namespace {

std::vector<std::uint16_t> to_permille(const std::vector<double>& t) {
  std::vector<std::uint16_t> out;
  for (double v : t) out.push_back(static_cast<std::uint16_t>(std::lround(v * 1000)));
  return out;
}

control_error error(control_errc c, std::string msg) { return control_error{c, std::move(msg), {}, {}}; }

}  // namespace

struct engine::impl final : detail::shard_host {
  struct product_entry {
    product_settings settings;
    product_info info;
    unix_seconds period_start = 0;
    unix_seconds period_end = 0;
    bool dirty = true;  // not yet in a checkpoint
  };

  impl(engine_options o, clock& c, dead_letter_sink& d) : opts(std::move(o)), clk(c), dl(d) {
    if (opts.shards == 0) opts.shards = std::max(1u, std::thread::hardware_concurrency());
    if (opts.expected_sims != 0) opts.expected_sims = opts.expected_sims / opts.shards + 1;
    for (unsigned i = 0; i < opts.shards; ++i) {
      shards.push_back(std::make_unique<shard>(i, opts, clk, events, dl, *this));
    }
  }

  // ---- posting work to shards
  template <class F>
  void post(unsigned s, F&& f) {
    shards[s]->post_task(new detail::fn_task<std::decay_t<F>>(std::forward<F>(f)));
  }
  template <class F>
  void post_read(unsigned s, F&& f) {
    shards[s]->post_read(new detail::fn_task<std::decay_t<F>>(std::forward<F>(f)));
  }
  // A query: read(shard&) runs under the shard (in this thread when the shard is idle, else on
  // the shard thread between batches), then(result) right after it, outside the shard.
  template <class Read, class Then>
  void read(unsigned s, Read&& r, Then&& then) {
    using T = std::invoke_result_t<Read&, shard&>;
    std::optional<T> v;
    if (shards[s]->try_read_here([&](shard& sh) { v.emplace(r(sh)); })) {
      then(std::move(*v));
      return;
    }
    post_read(s, [r = std::forward<Read>(r), then = std::forward<Then>(then)](shard& sh) mutable {
      then(r(sh));
    });
  }
  template <class F>
  auto call(unsigned s, F&& f) -> std::invoke_result_t<F&, shard&> {
    using R = std::invoke_result_t<F&, shard&>;
    std::promise<R> done;
    auto fut = done.get_future();
    post(s, [&f, &done](shard& sh) {
      if constexpr (std::is_void_v<R>) {
        f(sh);
        done.set_value();
      } else {
        done.set_value(f(sh));
      }
    });
    return fut.get();
  }
  // Runs f on every shard in parallel; results indexed by shard.
  template <class F>
  auto call_all(F f) {
    using R = std::invoke_result_t<F&, shard&>;
    std::vector<std::promise<std::conditional_t<std::is_void_v<R>, int, R>>> done(shards.size());
    for (unsigned s = 0; s < shards.size(); ++s) {
      post(s, [&f, p = &done[s]](shard& sh) {
        if constexpr (std::is_void_v<R>) {
          f(sh);
          p->set_value(0);
        } else {
          p->set_value(f(sh));
        }
      });
    }
    std::vector<std::conditional_t<std::is_void_v<R>, int, R>> out;
    out.reserve(shards.size());
    for (auto& p : done) out.push_back(p.get_future().get());
    return out;
  }

  // ---- shard_host
  product_info first_activation(std::uint16_t product, unix_seconds when) override {
    std::lock_guard lock(catalog_mu);
    product_entry& e = products[product];
    if (e.info.anniversary_day == 0) {
      e.info.anniversary_day = civil_of(when).day;
      e.info.first_period_start = day_start(when);
      e.info.version++;
      e.period_start = e.info.first_period_start;
      e.period_end = billing::next_period_start(e.info.anniversary_day, e.period_start);
      e.dirty = true;
      for (unsigned s = 0; s < shards.size(); ++s) {
        post(s, [info = e.info](shard& sh) { sh.learn_product(info); });
      }
    }
    return e.info;
  }
  std::string feed_name(std::uint32_t feed) const override {
    std::lock_guard lock(feeds_mu);
    return feed < feeds.size() ? feeds[feed] : std::string();
  }

  // catalog_mu held. The index of a country code, added when new; 0 for none (or, past 255
  // countries, which ISO 3166-1 does not have).
  std::uint8_t country_index(std::string_view code) {
    if (code.size() != 2) return 0;
    const unsigned n = country_count.load(std::memory_order_relaxed);
    for (unsigned i = 1; i < n; ++i) {
      if (countries[i][0] == code[0] && countries[i][1] == code[1]) return static_cast<std::uint8_t>(i);
    }
    if (n >= countries.size()) return 0;
    countries[n] = {code[0], code[1]};
    country_count.store(n + 1, std::memory_order_release);
    countries_dirty = true;
    return static_cast<std::uint8_t>(n);
  }
  // Sets v.country from its index, or from its product's country (any thread, no shard lock).
  void fill_country(sim_view& v) const {
    if (v.country_index != 0 && v.country_index < country_count.load(std::memory_order_acquire)) {
      v.country.assign(countries[v.country_index].data(), 2);
      return;
    }
    std::lock_guard lock(catalog_mu);
    auto it = by_id.find(v.product);
    v.country = it == by_id.end() ? std::string() : products[it->second].settings.country.value_or("");
  }

  std::optional<std::uint16_t> product_index(std::string_view id) const {
    std::lock_guard lock(catalog_mu);
    auto it = by_id.find(std::string(id));
    if (it == by_id.end()) return std::nullopt;
    return it->second;
  }
  // catalog_mu held. The shards' view of e after its settings changed (a new version, to be
  // checkpointed).
  product_info apply_settings(product_entry& e) {
    e.info.id = e.settings.id;
    e.info.default_mb_limit = e.settings.default_mb_limit.value_or(opts.default_mb_limit);
    e.info.thresholds = to_permille(e.settings.alert_thresholds.value_or(opts.alert_thresholds));
    e.info.version++;
    e.dirty = true;
    return e.info;
  }
  product_view view_of(const product_entry& e) const {
    product_view v;
    v.id = e.settings.id;
    v.default_mb_limit = e.info.default_mb_limit;
    v.alert_thresholds = e.settings.alert_thresholds.value_or(opts.alert_thresholds);
    v.country = e.settings.country.value_or("");
    v.anniversary_day = e.info.anniversary_day;
    v.first_period_start = e.info.first_period_start;
    v.period_start = e.period_start;
    v.period_end = e.period_end;
    return v;
  }
  // Resolves a caller's product scope: nullopt for "all", or the index; error when the named
  // product does not exist (then nothing is visible).
  std::expected<std::optional<std::uint16_t>, control_error> scope_of(std::string_view scope) const {
    if (scope.empty()) return std::optional<std::uint16_t>{};
    auto idx = product_index(scope);
    if (!idx) return std::unexpected(error(control_errc::not_found, "no such SIM"));
    return idx;
  }

  void ticker_loop() {
    std::unique_lock lock(ticker_mu);
    while (!ticker_stop) {
      ticker_cv.wait_for(lock, opts.tick_interval, [&] { return ticker_stop; });
      if (ticker_stop) break;
      lock.unlock();
      do_tick();
      lock.lock();
    }
  }

  void do_tick() {
    std::lock_guard tick_lock(tick_mu);
    const unix_seconds now = clk.now();
    call_all([now](shard& sh) { sh.run_due(now); });
    struct closing {
      std::uint16_t product;
      unix_seconds start, end;
    };
    std::vector<closing> closed;
    {
      std::lock_guard lock(catalog_mu);
      for (std::size_t i = 0; i < products.size(); ++i) {
        product_entry& e = products[i];
        if (e.info.anniversary_day == 0) continue;
        while (e.period_end <= now) {
          closed.push_back({static_cast<std::uint16_t>(i), e.period_start, e.period_end});
          e.period_start = e.period_end;
          e.period_end = billing::next_period_start(e.info.anniversary_day, e.period_start);
          e.dirty = true;
        }
      }
    }
    for (const closing& c : closed) {
      auto parts = call_all([&](shard& sh) { return sh.closed_of(c.product, false); });
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
  }

  void publish(const event& e) {
    if (st) {
      std::lock_guard lock(catalog_mu);
      pending_events.push_back(e);
    } else {
      events.append(e);
    }
  }

  // Runs f on every shard, in parallel on their threads while they run, else here.
  template <class F>
  void each_shard(F f) {
    if (started) {
      call_all([&](shard& sh) { f(sh); });
    } else {
      for (auto& sh : shards) f(*sh);
    }
  }

  static std::string encode(const product_entry& e) {
    detail::writer w;
    w.text(e.settings.id);
    w.put(static_cast<std::uint8_t>(e.settings.default_mb_limit.has_value()))
        .put(e.settings.default_mb_limit.value_or(0));
    w.put(static_cast<std::uint8_t>(e.settings.alert_thresholds.has_value()));
    const auto& th = e.settings.alert_thresholds ? *e.settings.alert_thresholds : std::vector<double>{};
    w.put(static_cast<std::uint32_t>(th.size()));
    for (double t : th) w.put(t);
    w.put(static_cast<std::uint8_t>(e.settings.country.has_value())).text(e.settings.country.value_or(""));
    w.put(static_cast<std::uint32_t>(e.info.anniversary_day)).put(e.info.first_period_start).put(e.info.version);
    w.put(e.period_start).put(e.period_end);
    return std::move(w.str());
  }
  product_entry decode_product(std::string_view v, std::uint16_t index) const {
    detail::reader r(v);
    product_entry e;
    e.settings.id = r.text();
    bool has_limit = r.get<std::uint8_t>() != 0;
    auto limit = r.get<std::uint32_t>();
    if (has_limit) e.settings.default_mb_limit = limit;
    bool has_th = r.get<std::uint8_t>() != 0;
    std::vector<double> th(r.get<std::uint32_t>());
    for (double& t : th) t = r.get<double>();
    if (has_th) e.settings.alert_thresholds = th;
    bool has_country = r.get<std::uint8_t>() != 0;
    std::string country = r.text();
    if (has_country) e.settings.country = country;
    e.info.index = index;
    e.info.id = e.settings.id;
    e.info.default_mb_limit = e.settings.default_mb_limit.value_or(opts.default_mb_limit);
    e.info.thresholds = to_permille(e.settings.alert_thresholds.value_or(opts.alert_thresholds));
    e.info.anniversary_day = r.get<std::uint32_t>();
    e.info.first_period_start = r.get<unix_seconds>();
    e.info.version = r.get<std::uint64_t>();
    e.period_start = r.get<unix_seconds>();
    e.period_end = r.get<unix_seconds>();
    e.dirty = false;
    if (!r.ok) throw std::runtime_error("store: product " + std::to_string(index) + " is unreadable");
    return e;
  }

  // Loads the store into the catalog, the event log and the shards (before they start).
  void recover() {
    st = std::make_unique<detail::store>(opts.store_dir);
    if (!st->writable()) {
      // A full disk at start: the state is read, nothing is acknowledged until it can write.
      spdlog::error("store {}: {}; acks stop until it can write", opts.store_dir, st->open_error());
      store_failure = st->open_error();
      store_failed.store(true);
    }
    std::string meta;
    if (st->get(detail::key_of(detail::key_kind::meta).str(), meta)) {
      detail::reader r(meta);
      checkpoint_no = r.get<std::uint64_t>();
      auto stored_shards = r.get<std::uint32_t>();
      // A simulated clock goes on from where it was (SPEC §4), not from the real time.
      const auto stored_now = r.get<unix_seconds>();
      stored_time = stored_now;
      if (auto* mc = dynamic_cast<manual_clock*>(&clk); mc != nullptr && r.ok && opts.resume_clock) {
        mc->set(stored_now);
      }
      if (stored_shards != shards.size()) reshard(stored_shards);
    }
    std::string codes;
    if (st->get(detail::key_of(detail::key_kind::countries).str(), codes)) {
      for (std::size_t at = 0; at + 2 <= codes.size() && at / 2 + 1 < countries.size(); at += 2) {
        countries[at / 2 + 1] = {codes[at], codes[at + 1]};
      }
      country_count.store(static_cast<unsigned>(std::min(codes.size() / 2 + 1, countries.size())));
    }
    st->scan(detail::key_of(detail::key_kind::product).str(), [&](std::string_view k, std::string_view v) {
      auto idx = detail::read_be<std::uint16_t>(k, 1);
      if (idx != products.size()) throw std::runtime_error("store: products are not dense");
      products.push_back(decode_product(v, idx));
      if (!products.back().settings.id.empty()) by_id.emplace(products.back().settings.id, idx);
      return true;
    });
    // The event log loads beside the shards.
    std::exception_ptr events_failed;
    std::thread event_loader([&] {
      try {
        st->scan(detail::key_of(detail::key_kind::events).str(), [&](std::string_view, std::string_view v) {
          for (std::size_t at = 0; at + sizeof(event) <= v.size(); at += sizeof(event)) {
            event e;
            std::memcpy(static_cast<void*>(&e), v.data() + at, sizeof e);
            events.restore(e);
          }
          return true;
        });
      } catch (...) {
        events_failed = std::current_exception();
      }
    });
    for (auto& sh : shards) {
      for (const product_entry& e : products) sh->learn_product(e.info);
    }
    std::vector<std::vector<std::pair<std::string, std::uint64_t>>> seqs(shards.size());
    std::vector<std::thread> loaders;
    std::vector<std::exception_ptr> failed(shards.size());
    for (unsigned s = 0; s < shards.size(); ++s) {
      loaders.emplace_back([&, s] {
        try {
          seqs[s] = shards[s]->recover(*st);
        } catch (...) {
          failed[s] = std::current_exception();
        }
      });
    }
    for (auto& t : loaders) t.join();
    event_loader.join();
    if (events_failed) std::rethrow_exception(events_failed);
    for (auto& f : failed) {
      if (f) std::rethrow_exception(f);
    }
    std::lock_guard lock(feeds_mu);
    for (unsigned s = 0; s < shards.size(); ++s) {
      for (auto& [name, seq] : seqs[s]) {
        auto& v = recovered_seqs[name];
        v.resize(shards.size(), 0);
        v[s] = seq;
      }
    }
    for (std::uint32_t f = 0; f < feeds.size(); ++f) apply_recovered_seq(f);
  }
  // The store holds the state of `from` shards and simcapd runs with another count: moves every
  // SIM to the shard shard_for() now places it in, in one atomic write, before the normal
  // recovery reads the store. Only a store stopped cleanly can be re-sharded (every shard at the
  // same seq of each feed: a crash leaves them apart, and no shard could tell which of the
  // records between them it has counted).
  void reshard(std::uint32_t from) {
    if (!st->writable()) throw std::runtime_error("data_dir: cannot re-shard a store that cannot be written");
    std::vector<product_entry> catalog;
    st->scan(detail::key_of(detail::key_kind::product).str(), [&](std::string_view k, std::string_view v) {
      catalog.push_back(decode_product(v, detail::read_be<std::uint16_t>(k, 1)));
      return true;
    });
    auto make = [&](unsigned count) {
      std::vector<std::unique_ptr<shard>> out;
      for (unsigned i = 0; i < count; ++i) {
        out.push_back(std::make_unique<shard>(i, opts, clk, events, dl, *this));
        for (const product_entry& e : catalog) out.back()->learn_product(e.info);
      }
      return out;
    };
    auto old_shards = make(from);
    auto new_shards = make(static_cast<unsigned>(shards.size()));
    std::map<std::string, std::vector<std::uint64_t>> seqs;
    for (auto& sh : old_shards) {
      for (auto& [name, seq] : sh->recover(*st)) seqs[name].push_back(seq);
    }
    for (const auto& [name, list] : seqs) {
      if (list.size() != from || std::adjacent_find(list.begin(), list.end(), std::not_equal_to<>()) != list.end()) {
        throw std::runtime_error("data_dir holds " + std::to_string(from) + " shards that were not stopped cleanly (feed " +
                                 name + "): start once with --shards " + std::to_string(from) +
                                 ", stop with SIGTERM, then start with the new count");
      }
    }
    std::vector<shard*> targets;
    for (auto& sh : new_shards) targets.push_back(sh.get());
    for (auto& sh : old_shards) sh->hand_over(targets);
    detail::write_batch wb;
    for (detail::key_kind kind : detail::kShardKinds) {
      wb.del_range(detail::shard_key(kind, 0).str(), detail::shard_key(kind, 0xffff).str());
    }
    const std::uint64_t n = checkpoint_no + 1;
    for (auto& sh : new_shards) {
      detail::shard_cut cut;
      detail::write_batch part;
      sh->cut(part, cut, n);
      wb.append(part);
      for (auto& [k, v] : cut.blobs) wb.put(k, v);
      for (const auto& [name, list] : seqs) {
        const std::uint64_t seq = list.front();
        wb.put(detail::shard_key(detail::key_kind::watermark, sh->index()).text(name).str(),
               std::string_view(reinterpret_cast<const char*>(&seq), sizeof seq));
      }
    }
    detail::writer meta;
    meta.put(n).put(static_cast<std::uint32_t>(shards.size())).put(stored_time);
    wb.put(detail::key_of(detail::key_kind::meta).str(), meta.str());
    st->write(wb);
    checkpoint_no = n;
    spdlog::info("store re-sharded from {} to {} shards", from, shards.size());
  }

  // feeds_mu held.
  void apply_recovered_seq(std::uint32_t f) {
    auto it = recovered_seqs.find(feeds[f]);
    if (it == recovered_seqs.end() || f >= detail::kMaxFeeds) return;
    std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
    for (unsigned s = 0; s < shards.size(); ++s) {
      shards[s]->set_feed_seq(f, it->second[s]);
      low = std::min(low, it->second[s]);
    }
    durable[f].store(low, std::memory_order_release);
  }


  // A control change on one shard, as it can be taken back: the SIMs as they were, and the
  // events it made.
  struct change {
    std::vector<shard::undo_point> points;
    std::vector<event> events;
  };
  // Takes back a control change whose checkpoint failed (indexed by shard): it was answered 503,
  // so it must not be seen, now or after the store writes again. Its events leave the unwritten
  // checkpoint (or the shards, if no cut took them); the SIMs are put back and marked, so the
  // next checkpoint writes them as they were, in the same write as the unwritten one.
  void take_back(std::vector<change> changes) {
    {
      std::lock_guard ck(checkpoint_mu);
      for (change& c : changes) {
        std::erase_if(c.events, [&](const event& e) {
          if (!unwritten) return false;
          auto& evs = unwritten->events;
          auto it = std::find_if(evs.begin(), evs.end(), [&](const event& p) { return same_event(p, e); });
          if (it == evs.end()) return false;
          evs.erase(it);
          return true;
        });
      }
    }
    for (unsigned s = 0; s < changes.size(); ++s) {
      if (changes[s].points.empty() && changes[s].events.empty()) continue;
      call(s, [&](shard& sh) {
        for (auto it = changes[s].points.rbegin(); it != changes[s].points.rend(); ++it) sh.restore(*it);
        sh.drop_events(changes[s].events);
      });
    }
  }

  // What one checkpoint writes, kept whole until it is on disk. Event ids are given at the
  // write, so that events taken out (an undone control change) leave no gap.
  struct pending_checkpoint {
    std::uint64_t number = 0;
    detail::write_batch ops;
    std::vector<event> events;
    std::vector<std::uint64_t> low = std::vector<std::uint64_t>(detail::kMaxFeeds, std::numeric_limits<std::uint64_t>::max());
    std::vector<unsigned> seen = std::vector<unsigned>(detail::kMaxFeeds, 0);
    std::uint64_t sims = 0;
    double longest_cut = 0;
  };

  // Takes what changed since the last cut from the catalog and the shards.
  pending_checkpoint cut(std::uint64_t n) {
    pending_checkpoint p;
    p.number = n;
    {
      // The catalog before the shards: a period the catalog closes after this point is
      // closed again (with its event) after a crash.
      std::lock_guard lock(catalog_mu);
      for (std::size_t i = 0; i < products.size(); ++i) {
        if (!products[i].dirty) continue;
        products[i].dirty = false;
        p.ops.put(detail::key_of(detail::key_kind::product).be(static_cast<std::uint16_t>(i)).str(), encode(products[i]));
      }
      p.events = std::move(pending_events);
      pending_events.clear();
      if (countries_dirty) {
        countries_dirty = false;
        std::string codes;
        for (unsigned i = 1; i < country_count.load(); ++i) codes.append(countries[i].data(), 2);
        p.ops.put(detail::key_of(detail::key_kind::countries).str(), codes);
      }
    }
    std::vector<detail::write_batch> parts(shards.size());
    std::vector<detail::shard_cut> cuts(shards.size());
    each_shard([&](shard& sh) { sh.cut(parts[sh.index()], cuts[sh.index()], n); });
    for (unsigned s = 0; s < shards.size(); ++s) {
      p.longest_cut = std::max(p.longest_cut, cuts[s].seconds);
      p.ops.append(parts[s]);
      for (auto& [k, v] : cuts[s].blobs) p.ops.put(k, v);
      p.sims += cuts[s].sims;
      for (event& e : cuts[s].events) p.events.push_back(e);
      // Durable watermarks: every shard's, the lowest counts.
      for (auto [f, seq] : cuts[s].watermarks) {
        p.low[f] = std::min(p.low[f], seq);
        p.seen[f]++;
      }
    }
    return p;
  }

  // A checkpoint that could not be written goes first into the next one: its writes, then the
  // newer ones, in one atomic write.
  static void append(pending_checkpoint& older, pending_checkpoint&& newer) {
    older.ops.append(newer.ops);
    older.number = newer.number;
    for (event& e : newer.events) older.events.push_back(e);
    older.low = std::move(newer.low);
    older.seen = std::move(newer.seen);
    older.sims += newer.sims;
    older.longest_cut = std::max(older.longest_cut, newer.longest_cut);
  }

  // Writes p; false (and p kept for the next try) when the store cannot write.
  bool write(pending_checkpoint& p, std::chrono::steady_clock::time_point t0) {
    const bool clock_moved = clk.is_manual() && clk.now() != stored_time;
    if (p.ops.count() == 0 && p.events.empty() && !clock_moved) return true;
    if (opts.test_checkpoint_pause.count() > 0) std::this_thread::sleep_for(opts.test_checkpoint_pause);  // crash tests only
    // The events and the meta key go on top of the state writes; a failed write takes them off
    // again (the events may still change, and their ids with them).
    detail::write_batch& wb = p.ops;
    wb.set_save_point();
    // The checkpoint's events, in values of up to kBlobBytes keyed by their first id.
    std::uint64_t id = events.last_id() + 1;
    for (event& e : p.events) e.id = id++;
    const std::size_t per_value = detail::kBlobBytes / sizeof(event);
    for (std::size_t at = 0; at < p.events.size(); at += per_value) {
      const std::size_t k = std::min(per_value, p.events.size() - at);
      wb.put(detail::key_of(detail::key_kind::events).be(p.events[at].id).str(),
             std::string_view(reinterpret_cast<const char*>(p.events.data() + at), k * sizeof(event)));
    }
    detail::writer meta;
    meta.put(p.number).put(static_cast<std::uint32_t>(shards.size())).put(clk.now());
    wb.put(detail::key_of(detail::key_kind::meta).str(), meta.str());
    try {
      st->write(wb);
    } catch (const std::exception& e) {
      wb.rollback_to_save_point();
      std::lock_guard lock(stats_mu);
      if (!store_failed.load()) spdlog::error("checkpoint not written, acks stop until it is: {}", e.what());
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
  bool store_writable() {
    if (!store_failed.load()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_retry) return false;
    const std::uint64_t needed = std::max<std::uint64_t>(1 << 20, 2 * (unwritten ? unwritten->ops.data_size() : 0));
    if (st->free_bytes() < needed || !st->recover_writes()) {
      retry_wait = std::min(retry_wait * 2, std::chrono::milliseconds(5000));
      next_retry = now + retry_wait;
      return false;
    }
    retry_wait = std::chrono::milliseconds(500);
    return true;
  }

  void checkpoint() {
    if (!st) return;
    std::lock_guard ck(checkpoint_mu);
    if (!store_writable()) return;
    const auto t0 = std::chrono::steady_clock::now();
    pending_checkpoint p = cut(std::max(checkpoint_no, unwritten ? unwritten->number : 0) + 1);
    if (unwritten) {
      append(*unwritten, std::move(p));
      p = std::move(*unwritten);
      unwritten.reset();
    }
    if (!write(p, t0)) {
      unwritten = std::move(p);
      next_retry = std::chrono::steady_clock::now() + retry_wait;
      return;
    }
    if (store_failed.exchange(false)) {
      spdlog::info("the store writes again: acks resume");
      std::lock_guard lock(stats_mu);
      store_failure.clear();
    }
    bool moved = false;
    for (std::size_t f = 0; f < detail::kMaxFeeds; ++f) {
      if (p.seen[f] != shards.size()) continue;  // some shard has not seen the feed yet
      if (p.low[f] > durable[f].load(std::memory_order_relaxed)) {
        durable[f].store(p.low[f], std::memory_order_release);
        moved = true;
      }
    }
    if (moved) {
      std::lock_guard lock(listener_mu);
      if (on_checkpoint) on_checkpoint();
    }
  }

  // A checkpoint every checkpoint_interval. When one takes long (most of a big fleet changed
  // since the last), the next waits nine times as long as it took (at most 2 s), so that
  // checkpoints take about a tenth of the time and ingest keeps the rest; a feed waiting for
  // its last ack asks for one at once (request_checkpoint).
  void checkpointer_loop() {
    std::unique_lock lock(ticker_mu);
    auto wait = opts.checkpoint_interval;
    while (!checkpointer_stop) {
      ticker_cv.wait_for(lock, wait, [&] { return checkpointer_stop || checkpoint_requested; });
      if (checkpointer_stop) break;
      checkpoint_requested = false;
      lock.unlock();
      const auto t0 = std::chrono::steady_clock::now();
      checkpoint();
      const auto took =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0) - opts.test_checkpoint_pause;
      wait = std::clamp(9 * took, opts.checkpoint_interval,
                        std::max(opts.checkpoint_interval, std::chrono::milliseconds(2000)));
      lock.lock();
    }
  }

  engine_options opts;
  clock& clk;
  dead_letter_sink& dl;
  event_log events;
  std::vector<std::unique_ptr<shard>> shards;

  mutable std::mutex catalog_mu;  // guards products/by_id; never held while waiting on a shard
  std::vector<product_entry> products;
  std::unordered_map<std::string, std::uint16_t> by_id;

  mutable std::mutex feeds_mu;
  std::vector<std::string> feeds;

  // Home countries of SIMs, by the index their slots keep (0: none, the product's). Entries are
  // added under catalog_mu and never change; readers take the count first (acquire).
  std::array<std::array<char, 2>, 256> countries{};
  std::atomic<unsigned> country_count{1};
  bool countries_dirty = false;  // catalog_mu

  // Durability.
  std::unique_ptr<detail::store> st;
  std::vector<event> pending_events;  // engine-level events for the next checkpoint (catalog_mu)
  std::mutex checkpoint_mu;           // one checkpoint at a time
  std::uint64_t checkpoint_no = 0;
  unix_seconds stored_time = 0;  // the clock's time in the last checkpoint
  std::unordered_map<std::string, std::vector<std::uint64_t>> recovered_seqs;  // feeds_mu
  std::array<std::atomic<std::uint64_t>, detail::kMaxFeeds> durable{};
  std::mutex listener_mu;
  std::function<void()> on_checkpoint;
  std::mutex stats_mu;
  engine_stats stats;  // the checkpoint fields only
  bool recovered = false;
  bool checkpointer_stop = false;
  std::atomic<bool> store_failed{false};
  std::string store_failure;  // stats_mu
  // A checkpoint the store could not write (checkpoint_mu): written first, with what changed
  // since, once the store can write again; when to try.
  std::optional<pending_checkpoint> unwritten;
  std::chrono::steady_clock::time_point next_retry{};
  std::chrono::milliseconds retry_wait{500};
  bool checkpoint_requested = false;  // ticker_mu
  std::thread checkpointer;

  std::mutex tick_mu;  // one tick at a time
  std::mutex ticker_mu;
  std::condition_variable ticker_cv;
  bool ticker_stop = false;
  std::thread ticker;
  bool started = false;
};

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
  impl_->started = true;
  for (auto& s : impl_->shards) s->start();
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
  for (auto& s : impl_->shards) s->stop();
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

namespace {
// A control change is checkpointed before it is answered: nullopt once it is durable, else why
// not (the store failed).
std::optional<control_error> make_durable(engine& e) {
  e.checkpoint();
  if (auto why = e.store_error()) return control_error{control_errc::unavailable, "the change is not durable: " + *why, {}, {}};
  return std::nullopt;
}
// While the store cannot write, control changes are refused before anything changes.
std::optional<control_error> refuse_when_not_durable(const engine& e) {
  if (auto why = e.store_error()) {
    return control_error{control_errc::unavailable, "the store cannot write, nothing was changed: " + *why, {}, {}};
  }
  return std::nullopt;
}
}  // namespace

std::optional<std::string> check_alert_thresholds(const std::vector<double>& t) {
  if (t.size() > 8) return "at most 8 alert thresholds";
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (!(t[i] > 0.0 && t[i] <= 10.0)) return "alert thresholds must be in (0, 10]";
    if (i > 0 && t[i] <= t[i - 1]) return "alert thresholds must be strictly increasing";
  }
  // They are kept in per mille: two that round to the same one would be one threshold.
  const auto permille = to_permille(t);
  for (std::size_t i = 1; i < permille.size(); ++i) {
    if (permille[i] <= permille[i - 1]) return "alert thresholds must differ by at least 0.001";
  }
  if (!permille.empty() && permille.front() == 0) return "alert thresholds must be at least 0.001";
  return std::nullopt;
}

bool engine::valid_country(std::string_view code) const {
  if (code.size() != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z') return false;
  const auto& list = impl_->opts.countries;
  return list.empty() || std::find(list.begin(), list.end(), code) != list.end();
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
  return feed < detail::kMaxFeeds ? impl_->durable[feed].load(std::memory_order_acquire) : 0;
}

std::uint64_t engine::resume_after(std::uint32_t feed) const noexcept {
  std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
  for (const auto& s : impl_->shards) low = std::min(low, s->feed_seq(feed));
  return low;
}

void engine::set_checkpoint_listener(std::function<void()> f) {
  std::lock_guard lock(impl_->listener_mu);
  impl_->on_checkpoint = std::move(f);
}

unsigned engine::shard_count() const noexcept { return static_cast<unsigned>(impl_->shards.size()); }

unsigned engine::shard_for(std::uint64_t key, unsigned shards) noexcept {
  return static_cast<unsigned>(detail::reduce(detail::mix64(key), shards));
}

const engine_options& engine::options() const noexcept { return impl_->opts; }
const clock& engine::time_source() const noexcept { return impl_->clk; }
event_log& engine::events() noexcept { return impl_->events; }
const event_log& engine::events() const noexcept { return impl_->events; }

std::string engine::product_name(std::uint16_t index) const {
  std::lock_guard lock(impl_->catalog_mu);
  return index < impl_->products.size() ? impl_->products[index].settings.id : std::string();
}

std::uint32_t engine::register_feed(std::string_view name) {
  std::lock_guard lock(impl_->feeds_mu);
  auto& f = impl_->feeds;
  auto it = std::find(f.begin(), f.end(), name);
  if (it != f.end()) return static_cast<std::uint32_t>(it - f.begin());
  f.emplace_back(name);
  const auto id = static_cast<std::uint32_t>(f.size() - 1);
  impl_->apply_recovered_seq(id);
  return id;
}

std::string engine::feed_name(std::uint32_t id) const { return impl_->feed_name(id); }

control_result<product_view> engine::put_product(const product_settings& s) {
  if (s.id.empty() || s.id.size() > 128) {
    return std::unexpected(error(control_errc::bad_request, "product id must be 1-128 characters"));
  }
  if (s.default_mb_limit && *s.default_mb_limit == 0) {
    return std::unexpected(error(control_errc::bad_request, "default_mb_limit must be at least 1"));
  }
  if (s.default_mb_limit && *s.default_mb_limit > kMaxMbLimit) {
    return std::unexpected(error(control_errc::bad_request, "default_mb_limit must be 1 to 100000000"));
  }
  if (s.alert_thresholds) {
    if (auto why = check_alert_thresholds(*s.alert_thresholds)) {
      return std::unexpected(error(control_errc::bad_request, *why));
    }
  }
  if (s.country && !valid_country(*s.country)) {
    return std::unexpected(error(control_errc::bad_request, "country must be an ISO 3166-1 alpha-2 code, e.g. \"US\""));
  }
  if (auto why = refuse_when_not_durable(*this)) return std::unexpected(*why);
  product_info info;
  product_view view;
  std::optional<product_settings> before;  // unset: the product is new
  {
    std::lock_guard lock(impl_->catalog_mu);
    auto it = impl_->by_id.find(s.id);
    if (it != impl_->by_id.end()) before = impl_->products[it->second].settings;
    if (it == impl_->by_id.end()) {
      if (impl_->products.size() >= 0xffff) {
        return std::unexpected(error(control_errc::bad_request, "too many products"));
      }
      auto idx = static_cast<std::uint16_t>(impl_->products.size());
      impl_->by_id.emplace(s.id, idx);
      impl_->products.emplace_back();
      impl_->products.back().info.index = idx;
      impl_->products.back().settings.id = s.id;
      it = impl_->by_id.find(s.id);
    }
    impl::product_entry& e = impl_->products[it->second];
    if (s.default_mb_limit) e.settings.default_mb_limit = s.default_mb_limit;
    if (s.alert_thresholds) e.settings.alert_thresholds = s.alert_thresholds;
    if (s.country) e.settings.country = s.country;
    info = impl_->apply_settings(e);
    view = impl_->view_of(e);
  }
  impl_->call_all([&info](shard& sh) { sh.learn_product(info); });
  if (auto err = make_durable(*this)) {
    // Taken back: the product as it was (a new one is left nameless, its index unused).
    {
      std::lock_guard lock(impl_->catalog_mu);
      impl::product_entry& e = impl_->products[info.index];
      if (before) {
        e.settings = *before;
      } else {
        impl_->by_id.erase(s.id);
        e.settings.id.clear();
      }
      info = impl_->apply_settings(e);
    }
    impl_->call_all([&info](shard& sh) { sh.learn_product(info); });
    return std::unexpected(*err);
  }
  return view;
}

std::optional<product_view> engine::get_product(std::string_view id) const {
  std::lock_guard lock(impl_->catalog_mu);
  auto it = impl_->by_id.find(std::string(id));
  if (it == impl_->by_id.end()) return std::nullopt;
  return impl_->view_of(impl_->products[it->second]);
}

std::vector<product_view> engine::products() const {
  std::lock_guard lock(impl_->catalog_mu);
  std::vector<product_view> out;
  for (const auto& e : impl_->products) out.push_back(impl_->view_of(e));
  return out;
}

control_result<import_result> engine::import_sims(std::string_view product,
                                                  std::span<const iccid> ids, const import_options& how) {
  const sim_state initial = how.initial;
  if (initial != sim_state::active && initial != sim_state::issued &&
      initial != sim_state::factory_test) {
    return std::unexpected(error(control_errc::bad_request,
                                 "imported SIMs start active, issued or factory_test"));
  }
  if (how.country && !valid_country(*how.country)) {
    return std::unexpected(error(control_errc::bad_request, "country must be an ISO 3166-1 alpha-2 code, e.g. \"US\""));
  }
  if (auto why = refuse_when_not_durable(*this)) return std::unexpected(*why);
  product_info info;
  std::uint8_t country = 0;
  {
    std::lock_guard lock(impl_->catalog_mu);
    auto it = impl_->by_id.find(std::string(product));
    if (it == impl_->by_id.end()) {
      return std::unexpected(error(control_errc::unknown_product, "no such product"));
    }
    info = impl_->products[it->second].info;
    // The SIMs keep their home country: a later change of the product's is for SIMs after.
    country = impl_->country_index(how.country.value_or(impl_->products[it->second].settings.country.value_or("")));
  }
  const unsigned n = shard_count();
  std::vector<std::vector<std::size_t>> by_shard(n);
  for (std::size_t i = 0; i < ids.size(); ++i) by_shard[shard_for(ids[i])].push_back(i);
  const unix_seconds now = impl_->clk.now();
  std::vector<impl::change> changes(n);
  auto outcomes = impl_->call_all([&](shard& sh) {
    sh.learn_product(info);
    impl::change& c = changes[sh.index()];
    const std::size_t events_before = sh.pending_event_count();
    std::vector<detail::import_outcome> out;
    out.reserve(by_shard[sh.index()].size());
    for (std::size_t i : by_shard[sh.index()]) {
      auto before = sh.undo_point_of(ids[i].key());
      out.push_back(sh.import_sim(ids[i].key(), info.index, initial, country, how.only_new, now));
      if (out.back() == detail::import_outcome::imported) c.points.push_back(std::move(before));
    }
    c.events = sh.pending_events_since(events_before);
    return out;
  });
  import_result r;
  for (unsigned s = 0; s < n; ++s) {
    for (std::size_t k = 0; k < by_shard[s].size(); ++k) {
      switch (outcomes[s][k]) {
        case detail::import_outcome::imported: r.imported++; break;
        case detail::import_outcome::already_present: r.already_present++; break;
        case detail::import_outcome::other_product:
          r.refused.push_back({by_shard[s][k], ids[by_shard[s][k]], "belongs_to_other_product"});
          break;
      }
    }
  }
  std::sort(r.refused.begin(), r.refused.end(),
            [](const import_refusal& a, const import_refusal& b) { return a.index < b.index; });
  if (auto err = make_durable(*this)) {
    impl_->take_back(std::move(changes));
    return std::unexpected(*err);
  }
  return r;
}

control_result<sim_view> engine::update_sim(iccid id, const sim_update& u, std::string_view scope) {
  auto sc = impl_->scope_of(scope);
  if (!sc) return std::unexpected(sc.error());
  if (u.mb_limit && (*u.mb_limit == 0 || *u.mb_limit > kMaxMbLimit)) {
    return std::unexpected(error(control_errc::bad_request, "mb_limit must be 1 to 100000000"));
  }
  if (auto why = refuse_when_not_durable(*this)) return std::unexpected(*why);
  const unix_seconds now = impl_->clk.now();
  std::vector<impl::change> changes(shard_count());
  impl::change& c = changes[shard_for(id)];
  auto r = impl_->call(shard_for(id), [&](shard& sh) {
    c.points.push_back(sh.undo_point_of(id.key()));
    const std::size_t events_before = sh.pending_event_count();
    auto v = sh.update(id.key(), *sc, u, now);
    c.events = sh.pending_events_since(events_before);
    return v;
  });
  if (r) {
    if (auto err = make_durable(*this)) {
      impl_->take_back(std::move(changes));
      return std::unexpected(*err);
    }
    impl_->fill_country(*r);
  }
  return r;
}

control_result<sim_view> engine::get_sim(iccid id, std::string_view scope) const {
  auto sc = impl_->scope_of(scope);
  if (!sc) return std::unexpected(sc.error());
  auto v = impl_->call(shard_for(id), [&](shard& sh) { return sh.view(id.key(), *sc); });
  if (!v) return std::unexpected(error(control_errc::not_found, "no such SIM"));
  impl_->fill_country(*v);
  return *v;
}

void engine::get_sim_async(iccid id, std::string_view scope,
                           std::function<void(control_result<sim_view>)> done) const {
  auto sc = impl_->scope_of(scope);
  if (!sc) {
    done(std::unexpected(sc.error()));
    return;
  }
  impl_->read(
      shard_for(id), [key = id.key(), scope = *sc](shard& sh) { return sh.view(key, scope); },
      [this, done = std::move(done)](std::optional<sim_view> v) {
        if (v) {
          impl_->fill_country(*v);
          done(std::move(*v));
        } else {
          done(std::unexpected(error(control_errc::not_found, "no such SIM")));
        }
      });
}

sim_page engine::list_sims(const sim_filter& f, std::size_t offset, std::size_t limit) const {
  sim_page page;
  std::optional<std::uint16_t> product;
  if (f.product) {
    product = impl_->product_index(*f.product);
    if (!product) return page;
  }
  auto parts = impl_->call_all(
      [&](shard& sh) { return sh.select(product, f.state, f.include_released); });
  std::vector<std::uint64_t> keys;
  for (auto& p : parts) keys.insert(keys.end(), p.begin(), p.end());
  std::sort(keys.begin(), keys.end());
  page.total = keys.size();
  if (offset >= keys.size()) return page;
  std::size_t end = std::min(keys.size(), offset + limit);
  std::vector<std::uint64_t> wanted(keys.begin() + static_cast<std::ptrdiff_t>(offset),
                                    keys.begin() + static_cast<std::ptrdiff_t>(end));
  auto views = impl_->call_all([&](shard& sh) {
    std::vector<sim_view> out;
    for (std::uint64_t k : wanted) {
      if (shard_for(k, shard_count()) != sh.index()) continue;
      if (auto v = sh.view(k, std::nullopt)) out.push_back(std::move(*v));
    }
    return out;
  });
  for (auto& v : views) {
    for (auto& s : v) page.sims.push_back(std::move(s));
  }
  std::sort(page.sims.begin(), page.sims.end(),
            [](const sim_view& a, const sim_view& b) { return a.id < b.id; });
  for (sim_view& v : page.sims) impl_->fill_country(v);
  return page;
}

namespace {
fleet_usage add_up(const std::vector<fleet_usage>& parts) {
  fleet_usage total;
  for (const fleet_usage& u : parts) {
    total.bytes_up += u.bytes_up;
    total.bytes_down += u.bytes_down;
    total.sms += u.sms;
    for (std::size_t i = 0; i < total.sims_by_state.size(); ++i) {
      total.sims_by_state[i] += u.sims_by_state[i];
    }
    total.chargeable_sims += u.chargeable_sims;
    total.unused_charged_sims += u.unused_charged_sims;
    if (total.by_hour.size() < u.by_hour.size()) total.by_hour.resize(u.by_hour.size());
    for (std::size_t h = 0; h < u.by_hour.size(); ++h) total.by_hour[h] += u.by_hour[h];
  }
  return total;
}
}  // namespace

control_result<fleet_usage> engine::product_usage(std::string_view product) const {
  auto idx = impl_->product_index(product);
  if (!idx) return std::unexpected(error(control_errc::unknown_product, "no such product"));
  fleet_usage total = add_up(impl_->call_all([&](shard& sh) { return sh.usage_of(*idx); }));
  auto view = get_product(product);
  total.period_start = view->period_start;
  total.period_end = view->period_end;
  return total;
}

void engine::product_usage_async(std::string_view product,
                                 std::function<void(control_result<fleet_usage>)> done) const {
  auto idx = impl_->product_index(product);
  if (!idx) {
    done(std::unexpected(error(control_errc::unknown_product, "no such product")));
    return;
  }
  struct gather {
    std::vector<fleet_usage> parts;
    std::atomic<unsigned> left;
    std::string product;
    std::function<void(control_result<fleet_usage>)> done;
  };
  const unsigned n = shard_count();
  auto g = std::make_shared<gather>();
  g->parts.resize(n);
  g->left.store(n);
  g->product = std::string(product);
  g->done = std::move(done);
  for (unsigned s = 0; s < n; ++s) {
    impl_->read(s, [index = *idx](shard& sh) { return sh.usage_of(index); },
                [this, g, s](fleet_usage part) {
      g->parts[s] = std::move(part);
      if (g->left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      fleet_usage total = add_up(g->parts);
      if (auto view = get_product(g->product)) {
        total.period_start = view->period_start;
        total.period_end = view->period_end;
      }
      g->done(std::move(total));
    });
  }
}

control_result<std::pair<sim_view, std::vector<day_bytes>>> engine::sim_usage_by_day(
    iccid id, std::string_view scope) const {
  auto sc = impl_->scope_of(scope);
  if (!sc) return std::unexpected(sc.error());
  const unix_seconds now = impl_->clk.now();
  auto r = impl_->call(shard_for(id), [&](shard& sh) {
    return std::pair{sh.view(id.key(), *sc), sh.days_of(id.key(), *sc, now)};
  });
  if (!r.first || !r.second) return std::unexpected(error(control_errc::not_found, "no such SIM"));
  impl_->fill_country(*r.first);
  return std::pair{std::move(*r.first), std::move(*r.second)};
}

control_result<std::vector<closed_period>> engine::closed_periods(std::string_view product,
                                                                  bool itemized) const {
  auto idx = impl_->product_index(product);
  if (!idx) return std::unexpected(error(control_errc::unknown_product, "no such product"));
  auto parts = impl_->call_all([&](shard& sh) { return sh.closed_of(*idx, itemized); });
  std::vector<closed_period> merged;
  for (auto& list : parts) {
    for (auto& cp : list) {
      auto it = std::find_if(merged.begin(), merged.end(),
                             [&](const closed_period& m) { return m.start == cp.start; });
      if (it == merged.end()) {
        merged.push_back(std::move(cp));
        continue;
      }
      it->total_bytes += cp.total_bytes;
      it->chargeable_sims += cp.chargeable_sims;
      it->lines.insert(it->lines.end(), cp.lines.begin(), cp.lines.end());
    }
  }
  for (auto& m : merged) {
    std::sort(m.lines.begin(), m.lines.end(),
              [](const closed_line& a, const closed_line& b) { return a.sim < b.sim; });
  }
  std::sort(merged.begin(), merged.end(),
            [](const closed_period& a, const closed_period& b) { return a.start > b.start; });
  return merged;
}

void engine::tick() { impl_->do_tick(); }

bool engine::advance_clock(unix_seconds t) {
  auto* mc = dynamic_cast<manual_clock*>(&impl_->clk);
  if (mc == nullptr || !mc->advance_to(t)) return false;
  impl_->do_tick();
  impl_->checkpoint();  // the rollovers and their events, durable and visible
  return true;
}

engine_stats engine::stats() const {
  engine_stats st;
  for (const auto& s : impl_->shards) {
    auto c = s->read_counters();
    st.records_counted += c.counted;
    st.late_records += c.late;
    st.duplicate_ids += c.duplicate_ids;
    for (std::size_t i = 0; i < kRejectReasonCount; ++i) st.rejected[i] += c.rejected[i];
    for (std::size_t i = 0; i < kSimStateCount; ++i) st.sims_by_state[i] += c.by_state[i];
    st.queue_depth.push_back(s->queue_depth());
    if (st.apply_bucket_counts.empty()) st.apply_bucket_counts.assign(c.apply_buckets.size(), 0);
    for (std::size_t i = 0; i < c.apply_buckets.size(); ++i) st.apply_bucket_counts[i] += c.apply_buckets[i];
    st.apply_seconds += static_cast<double>(c.apply_nanos) / 1e9;
  }
  st.apply_bucket_bounds.assign(shard::kApplyBuckets.begin(), shard::kApplyBuckets.end());
  {
    std::lock_guard lock(impl_->stats_mu);
    st.checkpoints = impl_->stats.checkpoints;
    st.last_checkpoint_seconds = impl_->stats.last_checkpoint_seconds;
    st.last_checkpoint_time = impl_->stats.last_checkpoint_time;
    st.last_checkpoint_sims = impl_->stats.last_checkpoint_sims;
    st.last_cut_seconds = impl_->stats.last_cut_seconds;
  }
  if (impl_->st) st.store_bytes = impl_->st->disk_bytes();
  return st;
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
  impl_->eng.impl_->shards[shard]->queue().enqueue(impl_->tokens[shard], shard_msg{&b});
}

}  // namespace simcap
