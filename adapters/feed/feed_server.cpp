#include "feed/feed_server.hpp"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>
#include <cstring>
#include <deque>

#include "simcap/thread_name.hpp"
#include "feed/record_parser.hpp"
#include "error_text.hpp"
#include "secret.hpp"
#include "simcap/json_text.hpp"

namespace simcap {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {


template <class T>
void bump(std::atomic<T>& c, T by = 1) noexcept {
  c.fetch_add(by, std::memory_order_relaxed);
}

// One parser per I/O thread: simdjson keeps its buffers between calls. Each call sets the
// options of the engine it parses for.
record_parser& thread_parser(const engine_options& eo) {
  thread_local record_parser parser;
  parser.set_options(parse_options{true, eo.future_skew.count(), eo.max_record_bytes});
  return parser;
}

bool is_blank(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

struct pending_reject {
  std::optional<std::uint64_t> seq;
  reject_reason reason;
  std::string detail;
};

void append_reject(std::string& out, const pending_reject& r) {
  out += "{\"reject\":{\"seq\":";
  out += r.seq ? std::to_string(*r.seq) : std::string("null");
  out += ",\"reason\":\"";
  out += to_string(r.reason);
  out += "\",\"detail\":";
  append_json_string(out, r.detail);
  out += "}}\n";
}


}  // namespace

// ------------------------------------------------------------------ registry

feed_registry::feed_registry(engine& e, const std::vector<feed_config>& feeds) {
  for (const auto& f : feeds) {
    auto fd = std::make_unique<feed>();
    fd->name = f.name;
    fd->token = f.token;
    fd->engine_id = e.register_feed(f.name);
    fd->watermark.store(e.resume_after(fd->engine_id));  // recovered from the store, if any
    feeds_.push_back(std::move(fd));
  }
}

feed_registry::feed* feed_registry::authenticate(std::string_view name, std::string_view token) {
  feed* found = nullptr;
  for (auto& f : feeds_) {
    bool ok = same_secret(f->token, token);
    if (f->name == name && ok) found = f.get();
  }
  return found;
}

std::vector<const feed_registry::feed*> feed_registry::all() const {
  std::vector<const feed*> out;
  for (const auto& f : feeds_) out.push_back(f.get());
  return out;
}

// ------------------------------------------------------------------ session

class feed_session final : public std::enable_shared_from_this<feed_session>, private parse_sink {
 public:
  feed_session(feed_server& srv, tcp::socket sock)
      : srv_(srv),
        sock_(std::move(sock)),
        wake_reader_(sock_.get_executor()),
        wake_writer_(sock_.get_executor()),
        watchdog_(sock_.get_executor()) {}

  ~feed_session() override {
    if (feed_ != nullptr) feed_->sessions.fetch_sub(1, std::memory_order_relaxed);
  }

  void start() {
    asio::co_spawn(sock_.get_executor(), [self = shared_from_this()] { return self->run(); },
                   asio::detached);
  }

  // Stops reading. Graceful: what was read is still applied and acknowledged before the
  // connection closes. Not graceful: the connection closes now (in-flight batches still apply).
  void close(bool graceful) {
    asio::post(sock_.get_executor(), [self = shared_from_this(), graceful] {
      boost::system::error_code ec;
      if (graceful && self->welcomed_) {
        self->stop_reading_ = true;
        self->sock_.shutdown(tcp::socket::shutdown_receive, ec);
      } else {
        self->stop_reading_ = true;
        self->sock_.close(ec);
      }
      self->wake_reader_.cancel();
      self->wake_writer_.cancel();
    });
  }

  bool drained() const noexcept { return drained_.load(std::memory_order_acquire); }
  // A checkpoint made more of the feed durable: send the ack now.
  void on_durable() {
    asio::post(sock_.get_executor(), [self = shared_from_this()] { self->wake_writer_.cancel(); });
  }

 private:
  struct chunk;

  struct part final : record_batch {
    chunk* owner = nullptr;
    std::vector<usage_record> recs;
    std::vector<pending_reject> rejects;  // written by the shard thread only

    void on_reject(const usage_record& r, reject_reason why, std::string_view detail) noexcept override {
      rejects.push_back({r.seq, why, std::string(detail)});
    }
    void on_applied() noexcept override { owner->part_done(); }
  };

  struct chunk {
    feed_session* session = nullptr;
    std::unique_ptr<char[]> buf;
    std::size_t text_len = 0;
    std::uint64_t upto_seq = 0;
    std::vector<pending_reject> rejects;  // found while parsing
    std::vector<part> parts;              // one per shard
    std::atomic<unsigned> pending{0};
    bool done = false;
    std::shared_ptr<feed_session> keep_alive;  // while shards hold it

    void part_done() noexcept {
      if (pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      auto s = keep_alive;
      asio::post(s->sock_.get_executor(), [s, this] { s->on_chunk_done(this); });
    }
  };

  asio::awaitable<void> run() {
    try {
      if (co_await handshake()) {
        asio::co_spawn(sock_.get_executor(), [self = shared_from_this()] { return self->writer(); },
                       asio::detached);
        co_await reader();
      }
    } catch (const std::exception& e) {
      spdlog::warn("feed session ended: {}", e.what());
    }
    stop_reading_ = true;
    reading_done_ = true;
    wake_writer_.cancel();
    maybe_finish();
  }

  // Reads and checks the hello, takes the feed over from an older session, sends welcome.
  asio::awaitable<bool> handshake() {
    using namespace asio::experimental::awaitable_operators;
    std::string buf;
    asio::steady_timer timer(sock_.get_executor());
    timer.expires_after(srv_.options().hello_timeout);
    auto result = co_await (asio::async_read_until(sock_, asio::dynamic_buffer(buf, kMaxLineBytes), '\n',
                                                   asio::as_tuple(asio::use_awaitable)) ||
                            timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (result.index() == 1) {
      co_await send_error("bad_hello", "no hello within the hello timeout");
      co_return false;
    }
    auto [ec, n] = std::get<0>(result);
    if (ec) {
      if (ec == asio::error::not_found) co_await send_error("bad_hello", "hello line is too long");
      co_return false;
    }
    std::string_view line(buf.data(), n);
    boost::system::error_code jec;
    boost::json::value v = boost::json::parse(line, jec);
    const boost::json::object* hello = nullptr;
    if (!jec && v.is_object()) {
      if (auto* h = v.as_object().if_contains("hello")) hello = h->if_object();
    }
    const boost::json::string* name = nullptr;
    const boost::json::string* token = nullptr;
    if (hello != nullptr) {
      if (auto* f = hello->if_contains("feed")) name = f->if_string();
      if (auto* t = hello->if_contains("token")) token = t->if_string();
    }
    if (name == nullptr || token == nullptr) {
      co_await send_error("bad_hello",
                          "expected {\"hello\":{\"feed\":\"NAME\",\"token\":\"SECRET\"}}");
      co_return false;
    }
    feed_ = srv_.feeds().authenticate(*name, *token);
    if (feed_ == nullptr) {
      co_await send_error("bad_token", "unknown feed or wrong token");
      co_return false;
    }
    feed_->sessions.fetch_add(1, std::memory_order_relaxed);
    // A reconnect supersedes the older session of the feed; it resumes once everything the
    // older one read has been applied, so resume_after is exact.
    std::shared_ptr<feed_session> old;
    {
      std::lock_guard lock(feed_->mu);
      old = feed_->session.lock();
      feed_->session = shared_from_this();
    }
    if (old) {
      old->close(false);
      auto deadline = std::chrono::steady_clock::now() + srv_.options().takeover_timeout;
      while (!old->drained() && std::chrono::steady_clock::now() < deadline) {
        timer.expires_after(2ms);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if (!old->drained()) {
        co_await send_error("busy", "the previous session of this feed is still draining");
        co_return false;
      }
    }
    old.reset();
    producer_ = std::make_unique<engine::producer>(srv_.eng());
    const unsigned shards = srv_.eng().shard_count();
    for (std::size_t i = 0; i < srv_.options().chunks_per_session; ++i) {
      auto c = std::make_unique<chunk>();
      c->session = this;
      c->buf = std::make_unique<char[]>(buffer_size());
      c->parts = std::vector<part>(shards);
      for (auto& p : c->parts) p.owner = c.get();
      free_.push_back(c.get());
      chunks_.push_back(std::move(c));
    }
    received_high_ = applied_ = srv_.eng().resume_after(feed_->engine_id);
    // What the welcome promises is durable: records applied but not yet in a checkpoint (a
    // store that cannot write) are resent and dropped as duplicates by the shards.
    acked_ = std::min(applied_, srv_.eng().durable_seq(feed_->engine_id));
    carry_.assign(buf.data() + n, buf.size() - n);  // records sent right behind the hello
    std::string welcome = "{\"welcome\":{\"feed\":";
    append_json_string(welcome, feed_->name);
    welcome += ",\"resume_after\":" + std::to_string(acked_) + "}}\n";
    boost::system::error_code wec;
    co_await asio::async_write(sock_, asio::buffer(welcome), asio::redirect_error(asio::use_awaitable, wec));
    if (wec) co_return false;
    welcomed_ = true;
    co_return true;
  }

  asio::awaitable<void> send_error(std::string_view code, std::string_view message) {
    std::string line = feed_error_line(code, message);
    boost::system::error_code ec;
    co_await asio::async_write(sock_, asio::buffer(line), asio::redirect_error(asio::use_awaitable, ec));
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
  }

  std::size_t buffer_size() const {
    return kMaxLineBytes + srv_.options().read_size + simdjson::SIMDJSON_PADDING;
  }

  asio::awaitable<chunk*> get_chunk() {
    while (free_.empty() && !stop_reading_) {
      wake_reader_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_reader_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (stop_reading_) co_return nullptr;
    chunk* c = free_.back();
    free_.pop_back();
    co_return c;
  }

  asio::awaitable<void> reader() {
    for (;;) {
      chunk* c = co_await get_chunk();
      if (c == nullptr) break;
      const std::size_t have = carry_.size();
      std::memcpy(c->buf.get(), carry_.data(), have);
      const bool complete_lines = carry_.find('\n') != std::string::npos;
      carry_.clear();
      if (complete_lines) {
        process(c, have, false);  // lines that came in with the hello
        continue;
      }
      const std::size_t room = srv_.options().read_size;
      const std::size_t slice = std::min(room, srv_.options().recv_slice);
      auto [ec, n] = co_await sock_.async_read_some(asio::buffer(c->buf.get() + have, slice),
                                                    asio::as_tuple(asio::use_awaitable));
      // Then fill the chunk, a slice per read, with what has already arrived (an error or end of
      // stream here shows again on the next read).
      while (!ec && n < room) {
        boost::system::error_code rec;
        std::size_t m = sock_.read_some(asio::buffer(c->buf.get() + have + n, std::min(slice, room - n)), rec);
        if (rec) break;
        n += m;
      }
      if (ec) {
        // End of stream: a last line without its newline still counts.
        if (have > 0 && !discarding_) {
          process(c, have, true);
        } else {
          free_.push_back(c);
        }
        break;
      }
      process(c, have + n, false);
    }
  }

  // Cuts the read data at its last newline, parses the complete lines and hands them on.
  void process(chunk* c, std::size_t total, bool eof) {
    char* b = c->buf.get();
    cur_ = c;
    std::size_t start = 0;
    if (discarding_) {
      auto* nl = static_cast<char*>(std::memchr(b, '\n', total));
      if (nl == nullptr) {
        free_.push_back(c);
        return;
      }
      start = static_cast<std::size_t>(nl - b) + 1;
      discarding_ = false;
    }
    std::size_t end = total;
    if (!eof) {
      auto* last = static_cast<char*>(memrchr(b + start, '\n', total - start));
      end = last == nullptr ? start : static_cast<std::size_t>(last - b) + 1;
    }
    std::memset(b + total, ' ', simdjson::SIMDJSON_PADDING);
    feed_->last_seen.store(srv_.eng().time_source().now(), std::memory_order_relaxed);
    if (end > start) {
      received_since_ack_ = true;
      thread_parser(srv_.eng().options()).parse(b, start, end, srv_.eng().time_source().now(), *this);
    }
    // The incomplete last line waits for the next read. The 4 KiB limit is on the line without
    // the white space around it, whatever the reads: leading blanks are dropped, and blanks past
    // 4 KiB of the line cannot be part of a line within the limit.
    std::size_t from = end;
    while (from < total && is_blank(b[from])) ++from;
    std::size_t tail = total - from;
    bool over_long = false;
    if (tail > kMaxLineBytes) {
      over_long = !std::all_of(b + from + kMaxLineBytes, b + total, is_blank);
      tail = kMaxLineBytes;
    }
    if (over_long) {
      // Reject it from its first 4 KiB (no seq: it was not parsed) and skip it to its newline.
      reject(parse_reject{std::nullopt, reject_reason::line_too_long, "line is over 4096 bytes",
                          static_cast<std::uint32_t>(from), static_cast<std::uint32_t>(kMaxLineBytes)});
      discarding_ = true;
      received_since_ack_ = true;
    } else {
      carry_.assign(b + from, tail);
    }
    c->text_len = over_long ? from + kMaxLineBytes : end;
    c->upto_seq = received_high_;
    dispatch(c);
  }

  // parse_sink
  void record(const usage_record& r) override {
    if (r.seq <= received_high_) {
      bump(feed_->duplicates);
      return;
    }
    received_high_ = r.seq;
    cur_->parts[engine::shard_for(r.sim, static_cast<unsigned>(cur_->parts.size()))].recs.push_back(r);
  }
  void reject(const parse_reject& r) override {
    if (r.seq && *r.seq <= received_high_) {
      bump(feed_->duplicates);
      return;
    }
    if (r.seq) received_high_ = *r.seq;
    bump(feed_->rejected[static_cast<std::size_t>(r.reason)]);
    dead_letter d;
    d.time = srv_.eng().time_source().now();
    d.feed = feed_->name;
    d.seq = r.seq;
    d.reason = r.reason;
    d.detail = r.detail;
    d.raw = std::string_view(cur_->buf.get() + r.line_offset, r.line_length);
    srv_.dead_letters().write(d);
    cur_->rejects.push_back({r.seq, r.reason, std::string(r.detail)});
  }

  // Every shard gets its part of every chunk, empty or not: a shard's watermark of the feed
  // (what it has applied up to) moves with each chunk, so a resume point is never held back by
  // a shard that happened to get no records.
  void dispatch(chunk* c) {
    inflight_.push_back(c);
    c->keep_alive = shared_from_this();
    c->pending.store(static_cast<unsigned>(c->parts.size()), std::memory_order_release);
    std::uint64_t handed = 0;
    for (unsigned s = 0; s < c->parts.size(); ++s) {
      part& p = c->parts[s];
      p.records = p.recs;
      p.text = std::string_view(c->buf.get(), c->text_len);
      p.feed = feed_->engine_id;
      p.upto_seq = c->upto_seq;
      handed += p.recs.size();
      producer_->submit(s, p);
    }
    bump(feed_->records, handed);
  }

  // On the strand: a chunk is fully applied. Acks go out for the longest finished prefix.
  void on_chunk_done(chunk* c) {
    c->done = true;
    auto keep = std::move(c->keep_alive);
    while (!inflight_.empty() && inflight_.front()->done) {
      chunk* f = inflight_.front();
      inflight_.pop_front();
      std::vector<pending_reject> all = std::move(f->rejects);
      f->rejects.clear();
      for (auto& p : f->parts) {
        for (auto& r : p.rejects) {
          bump(feed_->rejected[static_cast<std::size_t>(r.reason)]);
          all.push_back(std::move(r));
        }
        p.rejects.clear();
        p.recs.clear();
      }
      std::stable_sort(all.begin(), all.end(), [](const pending_reject& a, const pending_reject& b) {
        return a.seq.value_or(0) < b.seq.value_or(0);
      });
      for (const auto& r : all) append_reject(out_, r);
      applied_ = std::max(applied_, f->upto_seq);
      f->done = false;
      free_.push_back(f);
    }
    if (applied_ > feed_->watermark.load(std::memory_order_relaxed)) {
      feed_->watermark.store(applied_, std::memory_order_release);
    }
    wake_reader_.cancel();
    wake_writer_.cancel();
    maybe_finish();
  }

  // What may be acknowledged: applied, and (with a store) in a durable checkpoint.
  std::uint64_t ackable() const { return std::min(applied_, srv_.eng().durable_seq(feed_->engine_id)); }

  asio::awaitable<void> writer() {
    auto last_ack = std::chrono::steady_clock::now();
    for (;;) {
      // Done once everything read is applied and acknowledged as durable (or, when simcapd
      // stops with a store that cannot write, applied: no ack is coming; the feed resends from
      // its last one).
      const bool idle_done = reading_done_ && inflight_.empty() &&
                             (acked_ >= applied_ || (srv_.stopping() && srv_.eng().store_error().has_value()));
      if (reading_done_ && inflight_.empty() && ackable() < applied_ && !asked_checkpoint_) {
        srv_.eng().request_checkpoint();  // the feed waits for its last ack: no need to wait
        asked_checkpoint_ = true;
      }
      const bool interval_due =
          received_since_ack_ && std::chrono::steady_clock::now() - last_ack >= srv_.options().ack_interval;
      if (out_.empty() && ackable() <= acked_ && !interval_due) {
        if (idle_done || sock_closed_) break;
        wake_writer_.expires_after(srv_.options().ack_interval);
        co_await wake_writer_.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      std::string buf = std::move(out_);
      out_.clear();
      const std::uint64_t ack = ackable();
      if (ack > acked_ || received_since_ack_) {
        buf += "{\"ack\":" + std::to_string(ack) + "}\n";
        acked_ = std::max(acked_, ack);
        received_since_ack_ = false;
        last_ack = std::chrono::steady_clock::now();
      }
      watchdog_.expires_after(srv_.options().write_timeout);
      watchdog_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) {
          boost::system::error_code ignore;
          self->sock_.close(ignore);
        }
      });
      auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      watchdog_.cancel();
      if (ec) {
        sock_closed_ = true;
        stop_reading_ = true;
        boost::system::error_code ignore;
        sock_.close(ignore);
        wake_reader_.cancel();
        break;
      }
    }
    writer_done_ = true;
    boost::system::error_code ignore;
    sock_.shutdown(tcp::socket::shutdown_both, ignore);
    sock_.close(ignore);
    maybe_finish();
  }

  void maybe_finish() {
    if (reading_done_ && inflight_.empty() && (writer_done_ || !welcomed_)) {
      drained_.store(true, std::memory_order_release);
      if (feed_ != nullptr) {
        std::lock_guard lock(feed_->mu);
        if (feed_->session.lock().get() == this) feed_->session.reset();
      }
    }
  }

  feed_server& srv_;
  tcp::socket sock_;
  asio::steady_timer wake_reader_;
  asio::steady_timer wake_writer_;
  asio::steady_timer watchdog_;
  feed_registry::feed* feed_ = nullptr;
  std::unique_ptr<engine::producer> producer_;
  std::vector<std::unique_ptr<chunk>> chunks_;
  std::vector<chunk*> free_;
  std::deque<chunk*> inflight_;
  chunk* cur_ = nullptr;
  std::string carry_;
  std::string out_;
  std::uint64_t received_high_ = 0;  // highest seq read (dedup threshold)
  std::uint64_t applied_ = 0;        // every seq up to it handled
  std::uint64_t acked_ = 0;
  bool discarding_ = false;
  bool asked_checkpoint_ = false;
  bool received_since_ack_ = false;
  bool welcomed_ = false;
  bool stop_reading_ = false;
  bool reading_done_ = false;
  bool writer_done_ = false;
  bool sock_closed_ = false;
  std::atomic<bool> drained_{false};
};

// ------------------------------------------------------------------ server

feed_server::feed_server(engine& e, feed_registry& feeds, dead_letter_sink& dead_letters,
                         const tcp::endpoint& at, feed_server_options opts)
    : engine_(e),
      feeds_(feeds),
      dead_letters_(dead_letters),
      opts_(opts),
      acceptor_(io_) {
  acceptor_.open(at.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(at);
  acceptor_.listen();
}

feed_server::~feed_server() { stop(std::chrono::milliseconds(0)); }

tcp::endpoint feed_server::local_endpoint() const { return acceptor_.local_endpoint(); }

void feed_server::start() {
  checkpoint_listener_ = engine_.add_checkpoint_listener([this] {
    std::lock_guard lock(sessions_mu_);
    for (auto& w : sessions_) {
      if (auto s = w.lock()) s->on_durable();
    }
  });
  do_accept();
  for (unsigned i = 0; i < std::max(1u, opts_.io_threads); ++i) {
    threads_.emplace_back([this, i] {
      set_thread_name("feed-io-" + std::to_string(i));
      io_.run();
    });
  }
}

void feed_server::do_accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](boost::system::error_code ec, tcp::socket sock) {
    if (ec) {
      if (ec != asio::error::operation_aborted && !stopping_) do_accept();
      return;
    }
    if (stopping_) return;
    boost::system::error_code ignore;
    sock.set_option(tcp::no_delay(true), ignore);
    sock.set_option(asio::socket_base::keep_alive(true), ignore);
    sock.non_blocking(true, ignore);  // a session reads what has arrived without waiting
    auto s = std::make_shared<feed_session>(*this, std::move(sock));
    {
      std::lock_guard lock(sessions_mu_);
      sessions_.remove_if([](const std::weak_ptr<feed_session>& w) { return w.expired(); });
      sessions_.push_back(s);
    }
    s->start();
    do_accept();
  });
}

void feed_server::stop(std::chrono::milliseconds grace) {
  if (stopping_.exchange(true)) return;
  struct unhook {
    engine& e;
    std::uint64_t id;
    ~unhook() {
      if (id != 0) e.remove_checkpoint_listener(id);
    }
  } unhook_listener{engine_, checkpoint_listener_};
  asio::post(io_, [this] {
    boost::system::error_code ignore;
    acceptor_.close(ignore);
  });
  std::vector<std::shared_ptr<feed_session>> live;
  {
    std::lock_guard lock(sessions_mu_);
    for (auto& w : sessions_) {
      if (auto s = w.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->close(true);
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& s : live) {
    while (!s->drained() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    if (!s->drained()) s->close(false);
  }
  // In-flight batches must be applied before the sessions (which own them) go away.
  for (auto& s : live) {
    while (!s->drained() && std::chrono::steady_clock::now() < deadline + 10s) {
      std::this_thread::sleep_for(1ms);
    }
  }
  live.clear();
  io_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace simcap
