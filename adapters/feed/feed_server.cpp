#include "feed/feed_server.hpp"

#include <algorithm>

#include "feed/session.hpp"
#include "secret.hpp"
#include "simcap/thread_name.hpp"

namespace simcap {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// ------------------------------------------------------------------ registry

feed_registry::feed_registry(engine& e, const std::vector<feed_config>& feeds) {
  for (const auto& f : feeds) {
    auto fd = std::make_unique<feed>();
    fd->name = f.name;
    fd->token = f.token;
    fd->cert_cn = f.cert_cn;
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

// ------------------------------------------------------------------ server

feed_server::feed_server(engine& e, feed_registry& feeds, dead_letter_sink& dead_letters,
                         const tcp::endpoint& at, feed_server_options opts)
    : engine_(e),
      feeds_(feeds),
      dead_letters_(dead_letters),
      opts_(opts),
      gate_("feed", opts.max_connections),
      acceptor_(io_),
      accept_wait_(io_) {
  acceptor_.open(at.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(at);
  acceptor_.listen();
}

std::string feed_server::write_metrics() const {
  return "# HELP simcap_feed_pending_write_bytes Rejects and acks waiting to be written to feed "
         "peers.\n# TYPE simcap_feed_pending_write_bytes gauge\nsimcap_feed_pending_write_bytes " +
         std::to_string(pending_write_bytes_.load(std::memory_order_relaxed)) +
         "\n# HELP simcap_feed_write_waits_total Times a feed session stopped reading until its "
         "peer read what it had to write.\n# TYPE simcap_feed_write_waits_total counter\n"
         "simcap_feed_write_waits_total " +
         std::to_string(write_waits_.load(std::memory_order_relaxed)) +
         "\n# HELP simcap_feed_store_waits_total Times a feed session stopped reading because the "
         "store could not write and the record ids waiting for it had outgrown dedup_memory.\n"
         "# TYPE simcap_feed_store_waits_total counter\nsimcap_feed_store_waits_total " +
         std::to_string(store_waits_.load(std::memory_order_relaxed)) + "\n";
}

void feed_server::session_drained() {
  std::lock_guard lock(drain_mu_);
  drain_cv_.notify_all();
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
  acceptor_.async_accept(
      asio::make_strand(io_), [this](boost::system::error_code ec, tcp::socket sock) {
        if (ec) {
          if (ec == asio::error::operation_aborted || stopping_) return;
          gate_.retry_accept(accept_wait_, ec, [this] {
            if (!stopping_) do_accept();
          });
          return;
        }
        if (stopping_) return;
        gate_.accepted();
        auto place = gate_.admit();
        boost::system::error_code ignore;
        if (!place) {
          sock.close(ignore);  // at max_connections: closed at once
          return do_accept();
        }
        sock.set_option(tcp::no_delay(true), ignore);
        sock.set_option(asio::socket_base::keep_alive(true), ignore);
        sock.non_blocking(true, ignore);  // a session reads what has arrived without waiting
        net_stream stream = opts_.tls ? net_stream(std::move(sock), opts_.tls->current())
                                      : net_stream(std::move(sock));
        auto s = std::make_shared<feed_session>(*this, std::move(stream), std::move(*place));
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
  auto all_drained = [&] {
    return std::all_of(live.begin(), live.end(), [](const auto& s) { return s->drained(); });
  };
  const auto deadline = std::chrono::steady_clock::now() + grace;
  {
    std::unique_lock lock(drain_mu_);
    drain_cv_.wait_until(lock, deadline, all_drained);
  }
  for (auto& s : live) {
    if (!s->drained()) s->close(false);
  }
  // In-flight batches must be applied before the sessions (which own them) go away.
  {
    std::unique_lock lock(drain_mu_);
    drain_cv_.wait_until(lock, deadline + 10s, all_drained);
  }
  live.clear();
  io_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace simcap
