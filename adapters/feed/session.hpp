#pragma once
// One feed connection (SPEC §6, API.md "Feed protocol"), on its own strand, as two coroutines:
// the reader (hello, then records: read, cut at the last newline, parse, hand each shard its
// part) and the writer (rejects in seq order, acks of what is durable). A record's path:
//   reader() -> process() -> record_parser -> dispatch() -> engine::producer -> the shards
//   -> part::on_applied() -> on_chunk_done() -> writer(): {"ack":N} once a checkpoint holds it.
//
// Memory is bounded: a session owns a fixed pool of read chunks; a chunk is busy until every
// shard has applied its part, and a session with no free chunk stops reading (TCP back-pressure).
//
// Who checks what: the session drops a seq it has already read in this connection (duplicate)
// and dead-letters the lines it cannot parse; a shard drops a seq at or below its own applied
// watermark of the feed (a resend after a reconnect) and dead-letters the records the engine
// refuses. Each record is dead-lettered at most once, by the layer that refused it.
#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "feed/feed_server.hpp"
#include "feed/protocol.hpp"
#include "feed/record_parser.hpp"
#include "net/stream.hpp"

namespace simcap {

class feed_session final : public std::enable_shared_from_this<feed_session>, private parse_sink {
 public:
  // stream: plain, or TLS not yet handshaken (the session does it, within the hello timeout).
  feed_session(feed_server& srv, net_stream stream, connection_gate::ticket place);
  ~feed_session() override;

  void start();
  // Stops reading. Graceful: what was read is still applied and acknowledged before the
  // connection closes. Not graceful: the connection closes now (in-flight batches still apply).
  void close(bool graceful);
  // Nothing of the session is in flight any more: its chunks are applied and its writer ended.
  bool drained() const noexcept { return drained_.load(std::memory_order_acquire); }
  // Calls f once the session has drained: at once (here) when it has, else from its strand.
  void on_drained(std::function<void()> f);
  // A checkpoint made more of the feed durable: send the ack now.
  void on_durable();

 private:
  // The session's life, in order (close() or a failed write may move it to closing early).
  enum class phase : std::uint8_t {
    hello,      // reading and checking the hello, taking the feed over
    streaming,  // the reader reads records, the writer sends rejects and acks
    closing,    // asked to stop reading: the reader ends at its next step
    draining,   // the reader has ended: in-flight chunks finish, the writer sends the last acks
    drained,    // nothing left in flight, the writer has ended (or never started)
  };

  struct chunk;
  struct part final : record_batch {
    chunk* owner = nullptr;
    std::vector<usage_record> recs;
    std::vector<feed_protocol::reject> rejects;  // written by the shard thread only
    void on_reject(const usage_record& r, reject_reason why,
                   std::string_view detail) noexcept override;
    void on_applied() noexcept override;
  };
  // A read buffer and what came of it: one part per shard.
  struct chunk {
    std::unique_ptr<char[]> buf;
    std::size_t text_len = 0;
    std::uint64_t upto_seq = 0;
    std::vector<feed_protocol::reject> rejects;  // found while parsing
    std::vector<part> parts;
    std::atomic<unsigned> pending{0};
    bool done = false;
    std::shared_ptr<feed_session> keep_alive;  // while shards hold it
    void part_done() noexcept;
  };

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<bool> handshake();
  boost::asio::awaitable<bool> take_over(std::shared_ptr<feed_session> old);
  boost::asio::awaitable<void> send_error(std::string_view code, std::string_view message);
  boost::asio::awaitable<chunk*> get_chunk();
  boost::asio::awaitable<void> reader();
  void process(chunk* c, std::size_t total, bool eof);
  void record(const usage_record& r) override;
  void reject(const parse_reject& r) override;
  void dispatch(chunk* c);
  void on_chunk_done(chunk* c);
  std::uint64_t ackable() const;
  boost::asio::awaitable<void> writer();
  void maybe_finish();
  std::size_t buffer_size() const;
  bool reading_stopped() const noexcept { return phase_ >= phase::closing; }
  // Rejects and acks written back but not yet taken by the peer's socket; the reader stops
  // reading above the server's max_pending_write (a peer that never reads its rejects is read no
  // further).
  std::size_t pending_write() const noexcept { return out_.size() + writing_; }
  void add_pending(std::int64_t delta) noexcept;
  static constexpr std::size_t kMinReadRoom = 64u << 10;

  feed_server& srv_;
  net_stream stream_;
  connection_gate::ticket place_;  // under the port's max_connections
  boost::asio::steady_timer wake_reader_;
  boost::asio::steady_timer wake_writer_;
  boost::asio::steady_timer watchdog_;
  feed_registry::feed* feed_ = nullptr;
  std::unique_ptr<engine::producer> producer_;
  std::vector<std::unique_ptr<chunk>> chunks_;
  std::vector<chunk*> free_;
  std::deque<chunk*> inflight_;
  chunk* cur_ = nullptr;
  std::string carry_;        // the incomplete last line of a read, for the next
  std::string out_;          // rejects waiting for the writer
  std::size_t writing_ = 0;  // bytes the writer is sending now
  // Bytes read into the next chunk: small while the feed sends bad lines (each bad line makes a
  // reject line to write back), doubling up to read_size with each chunk that has none.
  std::size_t read_room_ = kMinReadRoom;
  std::uint64_t received_high_ = 0;  // highest seq read (dedup threshold)
  std::uint64_t applied_ = 0;        // every seq up to it handled
  std::uint64_t acked_ = 0;
  phase phase_ = phase::hello;
  bool writer_running_ = false;
  bool discarding_ = false;          // skipping an over-long line up to its newline
  bool received_since_ack_ = false;  // lines read since the last ack (an ack answers them)
  bool asked_checkpoint_ = false;    // the last ack is waiting: a checkpoint was asked for
  std::atomic<bool> drained_{false};
  std::mutex drain_mu_;
  std::vector<std::function<void()>> drain_waiters_;
};

}  // namespace simcap
