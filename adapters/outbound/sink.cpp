#include "outbound/sink.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <charconv>
#include <future>
#include <optional>
#include <sstream>

#include "http/answers.hpp"

namespace simcap::outbound {

namespace asio = boost::asio;

std::string event_json(const event& e, const engine& eng) {
  return boost::json::serialize(web::event_object(e, eng));
}

namespace {

std::vector<event_type> default_types(sink_config::kind_t k) {
  if (k == sink_config::kind_t::carrier) {
    return {event_type::activated, event_type::deactivated, event_type::released,
            event_type::paused, event_type::unpaused};
  }
  if (k == sink_config::kind_t::email) {
    return {event_type::alert, event_type::paused, event_type::pool_alert,
            event_type::pool_exhausted};
  }
  std::vector<event_type> all;
  for (int i = 0; i < static_cast<int>(event_type::kCount); ++i)
    all.push_back(static_cast<event_type>(i));
  return all;
}

std::string kind_name(sink_config::kind_t k) {
  switch (k) {
    case sink_config::kind_t::carrier:
      return "carrier";
    case sink_config::kind_t::webhook:
      return "webhook";
    case sink_config::kind_t::email:
      return "email";
  }
  return "webhook";
}

std::string padded(std::uint64_t id) {
  std::string s = std::to_string(id);
  return std::string(20 - std::min<std::size_t>(20, s.size()), '0') + s;
}

std::vector<std::uint64_t> numbers(std::string_view text) {
  std::vector<std::uint64_t> out;
  while (!text.empty()) {
    auto sp = text.find(' ');
    std::string_view w = text.substr(0, sp);
    std::uint64_t v = 0;
    if (std::from_chars(w.data(), w.data() + w.size(), v).ec == std::errc()) out.push_back(v);
    text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
  }
  return out;
}

// A dead letter's value keeps its event (so that retention may delete the log's copy): after
// the status and the time parked, the event's fields but its id (the key's).
std::string parked_event_fields(const event& e) {
  std::string s;
  for (std::uint64_t v :
       {static_cast<std::uint64_t>(e.time), e.sim, std::uint64_t{e.product},
        std::uint64_t{static_cast<std::uint8_t>(e.type)},
        std::uint64_t{static_cast<std::uint8_t>(e.reason)}, std::uint64_t{e.threshold_permille},
        e.usage_bytes, e.limit_bytes, static_cast<std::uint64_t>(e.period_start)}) {
    s += ' ';
    s += std::to_string(v);
  }
  return s;
}

std::optional<event> parked_event_of(std::uint64_t id, const std::vector<std::uint64_t>& head) {
  if (head.size() != 11 || head[5] >= static_cast<std::uint64_t>(event_type::kCount) ||
      head[6] > 255 || head[4] > 0xFFFF || head[7] > 0xFFFF)
    return std::nullopt;
  event e;
  e.id = id;
  e.time = static_cast<unix_seconds>(head[2]);
  e.sim = head[3];
  e.product = static_cast<std::uint16_t>(head[4]);
  e.type = static_cast<event_type>(head[5]);
  e.reason = static_cast<event_reason>(head[6]);
  e.threshold_permille = static_cast<std::uint16_t>(head[7]);
  e.usage_bytes = head[8];
  e.limit_bytes = head[9];
  e.period_start = static_cast<unix_seconds>(head[10]);
  return e;
}

}  // namespace

sink::sink(sink_config cfg, engine& eng, transport& t, asio::io_context& io)
    : cfg_(std::move(cfg)),
      eng_(eng),
      transport_(t),
      strand_(asio::make_strand(io)),
      save_timer_(strand_),
      types_(cfg_.types.empty() ? default_types(cfg_.kind) : cfg_.types),
      window_(std::max<std::size_t>(256, std::size_t{4} * cfg_.max_in_flight * cfg_.batch)) {
  stats_.name = cfg_.name;
  stats_.kind = kind_name(cfg_.kind);
}

bool sink::wants(const event& e) const {
  if (std::find(types_.begin(), types_.end(), e.type) == types_.end()) return false;
  if (cfg_.products.empty() && cfg_.kind != sink_config::kind_t::email) return true;
  const std::string p = eng_.product_name(e.product);
  if (!cfg_.products.empty() &&
      std::find(cfg_.products.begin(), cfg_.products.end(), p) == cfg_.products.end())
    return false;
  // An email sink mails the products that name someone to mail.
  if (cfg_.kind == sink_config::kind_t::email) {
    const auto view = eng_.get_product(p);
    return view && !view->alert_emails.empty();
  }
  return true;
}

std::uint64_t sink::lane_of(const event& e) const noexcept {
  // A SIM's key (ICCIDs are large numbers), or the product for events without a SIM.
  return e.sim != 0 ? e.sim : std::uint64_t{e.product} + 1;
}

bool sink::start() {
  // A sink new to the store starts at the next event (or backfills): that position is side
  // state at once, so that the checkpoint the caller makes before any event can follow holds it
  // (a restart before the sink's first save must not take it for new again and skip events).
  const std::string key = "sink/" + cfg_.name;
  const auto saved = eng_.side_state(key);
  const bool is_new = saved.empty() || saved.front().first != key;
  if (is_new)
    eng_.put_side_state(key, std::to_string(cfg_.start_oldest ? eng_.events().first_retained()
                                                              : eng_.events().last_id() + 1));
  asio::post(strand_, [this, key] {
    const auto saved = eng_.side_state(key);
    if (!saved.empty() && saved.front().first == key) {
      const auto n = numbers(saved.front().second);
      if (!n.empty()) {
        recovered_next_ = n.front();
        recovered_open_.insert(n.begin() + 1, n.end());
        std::lock_guard lock(mu_);
        recovered_next_seen_ = recovered_next_;
        recovered_open_seen_ = recovered_open_;
        next_ = recovered_open_.empty() ? recovered_next_
                                        : std::min(recovered_next_, *recovered_open_.begin());
      }
    }
    const std::string dl = "dl/" + cfg_.name + "/";
    for (const auto& [dl_key, value] : eng_.side_state(dl)) {
      std::uint64_t id = 0;
      std::from_chars(dl_key.data() + dl.size(), dl_key.data() + dl_key.size(), id);
      parked_event p;
      const auto nl = value.find('\n');
      const auto head = numbers(std::string_view(value).substr(0, nl));
      if (auto ev = parked_event_of(id, head)) {
        p.ev = *ev;
      } else {
        // Parked before dead letters kept their event: from the log, while it has it.
        auto evs = eng_.events().read(id - 1, 1);
        if (evs.empty() || evs.front().id != id) continue;
        p.ev = evs.front();
      }
      if (head.size() >= 2) {
        p.status = static_cast<unsigned>(head[0]);
        p.parked_at = static_cast<unix_seconds>(head[1]);
      }
      if (nl != std::string::npos) p.answer = value.substr(nl + 1);
      std::lock_guard lock(mu_);
      parked_.emplace(id, std::move(p));
    }
    next_seen_.store(next_);
    floor_.store(next_);
    pump();
  });
  return is_new;
}

void sink::wake() {
  if (wake_posted_.exchange(true)) return;
  asio::post(strand_, [this] {
    wake_posted_.store(false);
    pump();
  });
}

// Ids below the log's oldest kept were deleted by retention: those the sink had not finished
// are counted (and logged) as expired, and reading goes on from the oldest kept.
void sink::skip_expired() {
  const std::uint64_t oldest = eng_.events().first_retained();
  if (next_ >= oldest) return;
  std::uint64_t gone = 0;
  // Finished before a restart: below recovered_next_ and not open then.
  if (oldest > recovered_next_) gone += oldest - std::max(next_, recovered_next_);
  for (auto it = recovered_open_.lower_bound(next_);
       it != recovered_open_.end() && *it < std::min(oldest, recovered_next_); ++it)
    ++gone;
  spdlog::warn("outbound: {}: events {}..{} were deleted by retention before it read them",
               cfg_.name, next_, oldest - 1);
  next_ = oldest;
  std::lock_guard lock(mu_);
  stats_.expired += gone;
}

void sink::pump() {
  if (retired_) return;
  skip_expired();
  bool read_any = false;
  while (open_.size() < window_) {
    const auto evs =
        eng_.events().read(next_ - 1, std::min<std::size_t>(256, window_ - open_.size()));
    if (evs.empty()) break;
    read_any = true;
    for (const event& e : evs) {
      next_ = e.id + 1;
      if (e.id < recovered_next_ && !recovered_open_.contains(e.id))
        continue;  // done before a restart
      {
        std::lock_guard lock(mu_);
        if (parked_.contains(e.id)) continue;
      }
      if (!wants(e)) continue;
      open_.insert(e.id);
      {
        std::lock_guard lock(mu_);
        open_times_.emplace(e.id, e.time);
      }
      const std::uint64_t key = lane_of(e);
      lane& l = lanes_[key];
      l.events.push_back(e);
      if (!l.busy && l.events.size() == 1) ready_.push_back(key);
    }
  }
  next_seen_.store(next_);
  if (read_any) save_position();
  send_ready();
}

void sink::send_ready() {
  if (retired_) return;
  while (in_flight_ < cfg_.max_in_flight && !ready_.empty()) {
    request r;
    while (r.events.size() < cfg_.batch && !ready_.empty()) {
      auto it = lanes_.find(ready_.front());
      ready_.pop_front();
      if (it == lanes_.end() || it->second.busy || it->second.events.empty()) continue;
      it->second.busy = true;
      r.events.push_back(it->second.events.front());
    }
    if (r.events.empty()) break;
    std::sort(r.events.begin(), r.events.end(),
              [](const event& a, const event& b) { return a.id < b.id; });
    if (cfg_.batch == 1) {
      r.body = event_json(r.events.front(), eng_);
      r.idempotency_key = std::to_string(r.events.front().id);
    } else {
      r.body = "{\"events\":[";
      for (std::size_t i = 0; i < r.events.size(); ++i) {
        if (i != 0) r.body += ',';
        r.body += event_json(r.events[i], eng_);
      }
      r.body += "]}";
      r.idempotency_key =
          std::to_string(r.events.front().id) + "-" + std::to_string(r.events.back().id);
    }
    ++in_flight_;
    const auto t0 = clock::now();
    auto sent = std::make_shared<request>(std::move(r));
    transport_.post(*sent, [this, sent, t0](answer a) {
      asio::post(strand_, [this, sent, t0, a = std::move(a)] { finish(*sent, a, t0); });
    });
  }
}

void sink::finish(const request& r, const answer& a, clock::time_point t0) {
  if (retired_) return;
  --in_flight_;
  const double secs = std::chrono::duration<double>(clock::now() - t0).count();
  const outcome o = a.verdict ? *a.verdict : outcome_of(a.status);
  {
    std::lock_guard lock(mu_);
    std::size_t b = 0;
    while (b < kDurationBounds.size() && secs > kDurationBounds[b]) ++b;
    stats_.duration_buckets[b]++;
    stats_.duration_sum += secs;
    if (o != outcome::delivered) {
      stats_.last_error = !a.error.empty() ? a.error : "HTTP " + std::to_string(a.status);
    }
  }
  for (const event& e : r.events) {
    const std::uint64_t key = lane_of(e);
    lane& l = lanes_[key];
    if (o == outcome::retry) {
      const unsigned attempt = l.attempt++;
      std::uniform_real_distribution<double> u(0.0, 1.0);
      auto delay = backoff_delay(attempt, cfg_.retry_min, cfg_.retry_max, u(rng_));
      if (a.retry_after) delay = std::min(std::max(*a.retry_after, cfg_.retry_min), cfg_.retry_max);
      {
        std::lock_guard lock(mu_);
        stats_.retried++;
      }
      auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
      timer->async_wait([this, timer, key](boost::system::error_code ec) {
        if (ec) return;
        auto it = lanes_.find(key);
        if (it == lanes_.end()) return;
        it->second.busy = false;
        ready_.push_back(key);
        send_ready();
      });
      continue;
    }
    if (o == outcome::park) {
      parked_event p{e, a.status, a.body.substr(0, 1024), eng_.time_source().now()};
      eng_.put_side_state("dl/" + cfg_.name + "/" + padded(e.id),
                          std::to_string(p.status) + " " + std::to_string(p.parked_at) +
                              parked_event_fields(e) + "\n" + p.answer);
      std::lock_guard lock(mu_);
      parked_.emplace(e.id, std::move(p));
    } else {
      std::lock_guard lock(mu_);
      stats_.delivered++;
    }
    l.events.pop_front();
    l.busy = false;
    l.attempt = 0;
    done_with(e);
    if (on_finished_) on_finished_(e, o == outcome::park);
    if (l.events.empty()) {
      lanes_.erase(key);
    } else {
      ready_.push_back(key);
    }
  }
  pump();
}

void sink::done_with(const event& e) {
  open_.erase(e.id);
  {
    std::lock_guard lock(mu_);
    open_times_.erase(e.id);
  }
  save_position();
}

// The position goes to the side state at most every 50 ms (it is written with the next
// checkpoint anyway).
void sink::save_position() {
  if (save_pending_) return;
  save_pending_ = true;
  save_timer_.expires_after(std::chrono::milliseconds(50));
  save_timer_.async_wait([this](boost::system::error_code ec) {
    save_pending_ = false;
    if (!ec) write_position();
  });
}

void sink::write_position() {
  if (retired_) return;
  // Ids not read again yet since a restart keep their recovered state.
  std::set<std::uint64_t> open = open_;
  std::uint64_t next = next_;
  if (next < recovered_next_) {
    for (auto it = recovered_open_.lower_bound(next); it != recovered_open_.end(); ++it)
      open.insert(*it);
    next = recovered_next_;
  }
  std::string v = std::to_string(next);
  for (std::uint64_t id : open) {
    v += ' ';
    v += std::to_string(id);
  }
  eng_.put_side_state("sink/" + cfg_.name, std::move(v));
}

void sink::flush() {
  std::promise<void> done;
  auto f = done.get_future();
  asio::post(strand_, [&] {
    write_position();
    done.set_value();
  });
  f.wait();
}

void sink::retire() {
  std::promise<void> done;
  auto f = done.get_future();
  asio::post(strand_, [&] {
    retired_ = true;
    save_timer_.cancel();
    lanes_.clear();
    ready_.clear();
    open_.clear();
    eng_.put_side_state("sink/" + cfg_.name, "");
    for (const auto& [key, value] : eng_.side_state("dl/" + cfg_.name + "/"))
      eng_.put_side_state(key, "");
    {
      std::lock_guard lock(mu_);
      parked_.clear();
      open_times_.clear();
    }
    done.set_value();
  });
  f.wait();
}

sink_stats sink::stats() const {
  std::lock_guard lock(mu_);
  sink_stats s = stats_;
  s.parked = parked_.size();
  const std::uint64_t last = eng_.events().last_id(), next = next_seen_.load();
  s.backlog = open_times_.size() + (last >= next ? last - next + 1 : 0);
  if (!open_times_.empty()) {
    unix_seconds oldest = open_times_.begin()->second;
    for (const auto& [id, t] : open_times_) oldest = std::min(oldest, t);
    s.oldest_undelivered_age_s =
        static_cast<double>(std::max<unix_seconds>(0, eng_.time_source().now() - oldest));
  }
  return s;
}

bool sink::finished(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  if (parked_.contains(id) || open_times_.contains(id)) return !open_times_.contains(id);
  if (id < next_seen_.load()) return true;
  return id < recovered_next_seen_ && !recovered_open_seen_.contains(id);
}

bool sink::is_parked(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  return parked_.contains(id);
}

std::vector<parked_event> sink::dead_letters() const {
  std::lock_guard lock(mu_);
  std::vector<parked_event> out;
  for (const auto& [id, p] : parked_) out.push_back(p);
  return out;
}

std::size_t sink::redrive() {
  std::map<std::uint64_t, parked_event> taken;
  {
    std::lock_guard lock(mu_);
    taken.swap(parked_);
  }
  asio::post(strand_, [this, taken] {
    for (const auto& [id, p] : taken) {
      eng_.put_side_state("dl/" + cfg_.name + "/" + padded(id), "");
      open_.insert(id);
      {
        std::lock_guard lock(mu_);
        open_times_.emplace(id, p.ev.time);
      }
      const std::uint64_t key = lane_of(p.ev);
      lane& l = lanes_[key];
      l.events.push_back(p.ev);
      if (!l.busy && l.events.size() == 1) ready_.push_back(key);
    }
    save_position();
    send_ready();
  });
  return taken.size();
}

}  // namespace simcap::outbound
