#include "feed/session.hpp"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cstring>

#include "error_text.hpp"
#include "net/tls_server.hpp"

namespace simcap {

namespace asio = boost::asio;
using asio::ip::tcp;

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

}  // namespace

// ------------------------------------------------------------------ chunks

void feed_session::part::on_reject(const usage_record& r, reject_reason why,
                                   std::string_view detail) noexcept {
  rejects.push_back({r.seq, why, std::string(detail)});
}

void feed_session::part::on_applied() noexcept { owner->part_done(); }

void feed_session::chunk::part_done() noexcept {
  if (pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  auto s = keep_alive;
  asio::post(s->stream_.get_executor(), [s, this] { s->on_chunk_done(this); });
}

// ------------------------------------------------------------------ life

feed_session::feed_session(feed_server& srv, net_stream stream, connection_gate::ticket place)
    : srv_(srv),
      stream_(std::move(stream)),
      place_(std::move(place)),
      wake_reader_(stream_.get_executor()),
      wake_writer_(stream_.get_executor()),
      watchdog_(stream_.get_executor()) {}

feed_session::~feed_session() {
  if (feed_ != nullptr) feed_->sessions.fetch_sub(1, std::memory_order_relaxed);
  add_pending(-static_cast<std::int64_t>(pending_write()));
}

void feed_session::add_pending(std::int64_t delta) noexcept {
  if (delta != 0) srv_.pending_write_bytes().fetch_add(delta, std::memory_order_relaxed);
}

void feed_session::start() {
  asio::co_spawn(
      stream_.get_executor(), [self = shared_from_this()] { return self->run(); }, asio::detached);
}

void feed_session::close(bool graceful) {
  asio::post(stream_.get_executor(), [self = shared_from_this(), graceful] {
    boost::system::error_code ec;
    if (graceful && self->phase_ != phase::hello) {
      self->stream_.socket().shutdown(tcp::socket::shutdown_receive, ec);
    } else {
      self->stream_.socket().close(ec);
    }
    if (self->phase_ < phase::closing) self->phase_ = phase::closing;
    self->wake_reader_.cancel();
    self->wake_writer_.cancel();
  });
}

void feed_session::on_durable() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    self->wake_writer_.cancel();
    self->wake_reader_.cancel();  // it may be held while the store could not write
  });
}

void feed_session::on_drained(std::function<void()> f) {
  std::unique_lock lock(drain_mu_);
  if (drained_.load(std::memory_order_acquire)) {
    lock.unlock();
    f();
    return;
  }
  drain_waiters_.push_back(std::move(f));
}

asio::awaitable<void> feed_session::run() {
  try {
    if (co_await handshake()) {
      writer_running_ = true;
      asio::co_spawn(
          stream_.get_executor(), [self = shared_from_this()] { return self->writer(); },
          asio::detached);
      co_await reader();
    }
  } catch (const std::exception& e) {
    spdlog::warn("feed session ended: {}", e.what());
  }
  phase_ = phase::draining;
  wake_writer_.cancel();
  maybe_finish();
}

void feed_session::maybe_finish() {
  if (phase_ != phase::draining || !inflight_.empty() || writer_running_) return;
  phase_ = phase::drained;
  if (feed_ != nullptr) {
    std::lock_guard lock(feed_->mu);
    if (feed_->session.lock().get() == this) feed_->session.reset();
  }
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(drain_mu_);
    drained_.store(true, std::memory_order_release);
    waiters.swap(drain_waiters_);
  }
  for (auto& f : waiters) f();
  srv_.session_drained();
}

// ------------------------------------------------------------------ hello

// Reads and checks the hello, takes the feed over from an older session, sends welcome.
asio::awaitable<bool> feed_session::handshake() {
  using namespace asio::experimental::awaitable_operators;
  std::string buf;
  asio::steady_timer timer(stream_.get_executor());
  // The TLS handshake and the hello, together within the hello timeout.
  timer.expires_after(srv_.options().hello_timeout);
  if (stream_.tls()) {
    auto shook =
        co_await (stream_.handshake() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (shook.index() == 1 || std::get<0>(shook)) {
      // No TLS to answer over (a plain client, no or a wrong client certificate, too slow).
      bump(srv_.tls_refused());
      if (shook.index() == 0)
        spdlog::debug("feed: TLS handshake failed: {}", std::get<0>(shook).message());
      boost::system::error_code ignore;
      stream_.socket().close(ignore);
      co_return false;
    }
  }
  auto result = co_await (asio::async_read_until(stream_, asio::dynamic_buffer(buf, kMaxLineBytes),
                                                 '\n', asio::as_tuple(asio::use_awaitable)) ||
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
  auto hello = feed_protocol::parse_hello(std::string_view(buf.data(), n));
  if (!hello) {
    co_await send_error("bad_hello", hello.error());
    co_return false;
  }
  feed_ = srv_.feeds().authenticate(hello->feed, hello->token);
  if (feed_ == nullptr) {
    co_await send_error("bad_token", "unknown feed or wrong token");
    co_return false;
  }
  if (!feed_->cert_cn.empty() &&
      (!stream_.tls() || !peer_certificate_has_name(stream_.native_handle(), feed_->cert_cn))) {
    feed_ = nullptr;
    co_await send_error("bad_certificate", "the client certificate is not this feed's");
    co_return false;
  }
  feed_->sessions.fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<feed_session> old;
  {
    std::lock_guard lock(feed_->mu);
    old = feed_->session.lock();
    feed_->session = shared_from_this();
  }
  if (old && !co_await take_over(std::move(old))) {
    co_await send_error("busy", "the previous session of this feed is still draining");
    co_return false;
  }
  producer_ = std::make_unique<engine::producer>(srv_.eng());
  const unsigned shards = srv_.eng().shard_count();
  for (std::size_t i = 0; i < srv_.options().chunks_per_session; ++i) {
    auto c = std::make_unique<chunk>();
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
  const std::string welcome = feed_protocol::welcome_line(feed_->name, acked_);
  boost::system::error_code wec;
  co_await asio::async_write(stream_, asio::buffer(welcome),
                             asio::redirect_error(asio::use_awaitable, wec));
  if (wec || phase_ != phase::hello) co_return false;
  phase_ = phase::streaming;
  co_return true;
}

// A reconnect supersedes the older session of the feed; this one resumes once everything the
// older one read has been applied, so resume_after is exact. False when the old one is still
// draining after takeover_timeout.
asio::awaitable<bool> feed_session::take_over(std::shared_ptr<feed_session> old) {
  old->close(false);
  auto wait = std::make_shared<asio::steady_timer>(stream_.get_executor());
  wait->expires_after(srv_.options().takeover_timeout);
  old->on_drained([wait] { asio::post(wait->get_executor(), [wait] { wait->cancel(); }); });
  co_await wait->async_wait(asio::as_tuple(asio::use_awaitable));
  co_return old->drained();
}

asio::awaitable<void> feed_session::send_error(std::string_view code, std::string_view message) {
  std::string line = feed_error_line(code, message);
  boost::system::error_code ec;
  co_await asio::async_write(stream_, asio::buffer(line),
                             asio::redirect_error(asio::use_awaitable, ec));
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
}

std::size_t feed_session::buffer_size() const {
  return kMaxLineBytes + srv_.options().read_size + simdjson::SIMDJSON_PADDING;
}

// ------------------------------------------------------------------ reading

asio::awaitable<feed_session::chunk*> feed_session::get_chunk() {
  while (free_.empty() && !reading_stopped()) {
    wake_reader_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_reader_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (reading_stopped()) co_return nullptr;
  chunk* c = free_.back();
  free_.pop_back();
  co_return c;
}

asio::awaitable<void> feed_session::reader() {
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
    if (pending_write() > srv_.options().max_pending_write) {
      // The peer is not reading its rejects: read no more until it does.
      bump(srv_.write_waits());
      while (pending_write() > srv_.options().max_pending_write && !reading_stopped()) {
        wake_reader_.expires_at(asio::steady_timer::time_point::max());
        co_await wake_reader_.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if (reading_stopped()) {
        free_.push_back(c);
        break;
      }
    }
    if (srv_.eng().ingest_held()) {
      // The store cannot write and what waits for it fills its RAM: read no more until it
      // writes again (a checkpoint wakes the session; the timer is the fallback).
      bump(srv_.store_waits());
      while (srv_.eng().ingest_held() && !reading_stopped()) {
        wake_reader_.expires_after(std::chrono::seconds(1));
        co_await wake_reader_.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if (reading_stopped()) {
        free_.push_back(c);
        break;
      }
    }
    const std::size_t room = std::min(read_room_, srv_.options().read_size);
    const std::size_t slice = std::min(room, srv_.options().recv_slice);
    auto [ec, n] = co_await stream_.async_read_some(asio::buffer(c->buf.get() + have, slice),
                                                    asio::as_tuple(asio::use_awaitable));
    // Then fill the chunk, a slice per read, with what has already arrived (an error or end of
    // stream here shows again on the next read).
    while (!ec && n < room) {
      const auto into = asio::buffer(c->buf.get() + have + n, std::min(slice, room - n));
      boost::system::error_code rec;
      std::size_t m = 0;
      if (!stream_.tls()) {
        m = stream_.socket().read_some(into, rec);  // non-blocking: would_block ends it
      } else if (stream_.readable_now() > 0) {
        // TLS reads a record at a time, asynchronously (a synchronous read could have to write
        // while the writer does); only while bytes are there, so it does not wait for more.
        std::tie(rec, m) =
            co_await stream_.async_read_some(into, asio::as_tuple(asio::use_awaitable));
      } else {
        break;
      }
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
void feed_session::process(chunk* c, std::size_t total, bool eof) {
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
                        static_cast<std::uint32_t>(from),
                        static_cast<std::uint32_t>(kMaxLineBytes)});
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
void feed_session::record(const usage_record& r) {
  if (r.seq <= received_high_) {
    bump(feed_->duplicates);
    return;
  }
  received_high_ = r.seq;
  cur_->parts[engine::shard_for(r.sim, static_cast<unsigned>(cur_->parts.size()))].recs.push_back(
      r);
}
void feed_session::reject(const parse_reject& r) {
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
void feed_session::dispatch(chunk* c) {
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

// ------------------------------------------------------------------ answering

// On the strand: a chunk is fully applied. Acks go out for the longest finished prefix.
void feed_session::on_chunk_done(chunk* c) {
  c->done = true;
  auto keep = std::move(c->keep_alive);
  while (!inflight_.empty() && inflight_.front()->done) {
    chunk* f = inflight_.front();
    inflight_.pop_front();
    std::vector<feed_protocol::reject> all = std::move(f->rejects);
    f->rejects.clear();
    for (auto& p : f->parts) {
      for (auto& r : p.rejects) {
        bump(feed_->rejected[static_cast<std::size_t>(r.reason)]);
        all.push_back(std::move(r));
      }
      p.rejects.clear();
      p.recs.clear();
    }
    std::stable_sort(all.begin(), all.end(),
                     [](const feed_protocol::reject& a, const feed_protocol::reject& b) {
                       return a.seq.value_or(0) < b.seq.value_or(0);
                     });
    const std::size_t before = out_.size();
    for (const auto& r : all) feed_protocol::append_reject(out_, r);
    add_pending(static_cast<std::int64_t>(out_.size() - before));
    read_room_ = all.empty() ? std::min(2 * read_room_, srv_.options().read_size) : kMinReadRoom;
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
std::uint64_t feed_session::ackable() const {
  return std::min(applied_, srv_.eng().durable_seq(feed_->engine_id));
}

asio::awaitable<void> feed_session::writer() {
  auto last_ack = std::chrono::steady_clock::now();
  for (;;) {
    // Done once everything read is applied and acknowledged as durable (or, when simcapd
    // stops with a store that cannot write, applied: no ack is coming; the feed resends from
    // its last one).
    const bool idle_done =
        phase_ >= phase::draining && inflight_.empty() &&
        (acked_ >= applied_ || (srv_.stopping() && srv_.eng().store_error().has_value()));
    if (phase_ >= phase::draining && inflight_.empty() && ackable() < applied_ &&
        !asked_checkpoint_) {
      srv_.eng().request_checkpoint();  // the feed waits for its last ack: no need to wait
      asked_checkpoint_ = true;
    }
    const bool interval_due = received_since_ack_ && std::chrono::steady_clock::now() - last_ack >=
                                                         srv_.options().ack_interval;
    if (out_.empty() && ackable() <= acked_ && !interval_due) {
      if (idle_done) break;
      wake_writer_.expires_after(srv_.options().ack_interval);
      co_await wake_writer_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    std::string buf = std::move(out_);
    out_.clear();
    writing_ = buf.size();  // (the rejects in it are already in pending_write_bytes)
    const std::uint64_t ack = ackable();
    if (ack > acked_ || received_since_ack_) {
      feed_protocol::append_ack(buf, ack);
      acked_ = std::max(acked_, ack);
      received_since_ack_ = false;
      last_ack = std::chrono::steady_clock::now();
    }
    watchdog_.expires_after(srv_.options().write_timeout);
    watchdog_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) {
        boost::system::error_code ignore;
        self->stream_.socket().close(ignore);
      }
    });
    auto [ec, n] =
        co_await asio::async_write(stream_, asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    watchdog_.cancel();
    add_pending(-static_cast<std::int64_t>(std::exchange(writing_, 0)));
    wake_reader_.cancel();  // it may be waiting for the peer to read
    if (ec) {
      if (phase_ < phase::closing) phase_ = phase::closing;
      boost::system::error_code ignore;
      stream_.socket().close(ignore);
      wake_reader_.cancel();
      break;
    }
  }
  writer_running_ = false;
  boost::system::error_code ignore;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignore);
  stream_.socket().close(ignore);
  maybe_finish();
}

}  // namespace simcap
