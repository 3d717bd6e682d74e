#include "http/http_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "error_text.hpp"
#include "simcap/thread_name.hpp"

namespace simcap {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

// Answers an error and closes gracefully: the client may still be sending (its body, the rest
// of an over-long header), so what follows is read and dropped (for a bounded time and amount)
// before the close, or the client would see a reset instead of the answer.
template <class Stream>
asio::awaitable<void> refuse(Stream& stream, http::status status, std::string_view code,
                             std::string_view what) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  http::response<http::string_body> res{status, 11};
  res.set(http::field::server, "simcap");
  res.set(http::field::content_type, "application/json");
  res.body() = http_error_body(code, what);
  res.keep_alive(false);
  res.prepare_payload();
  tcp_layer.expires_after(std::chrono::seconds(5));
  auto [ec, n] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return;
  boost::system::error_code ignore;
  tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignore);
  tcp_layer.expires_after(std::chrono::seconds(5));
  std::vector<char> scratch(64 * 1024);
  std::size_t dropped = 0;
  while (dropped < (256u << 20)) {
    auto [rec, got] =
        co_await stream.async_read_some(asio::buffer(scratch), asio::as_tuple(asio::use_awaitable));
    if (rec) break;
    dropped += got;
  }
}

// What a request that could not be read gets: nothing when the client went away or was too
// slow, else the status and error code of its fault (target: the request target parsed, if any).
struct read_fault {
  http::status status;
  std::string_view code, what;
};
std::optional<read_fault> fault_of(const boost::system::error_code& ec, std::string_view target,
                                   std::size_t max_target) {
  if (ec == http::error::header_limit) {
    // The parser had not got past the request line (no target yet), or got a long one: the
    // target is too long; else the header fields are.
    if (target.empty() || target.size() > max_target) {
      return read_fault{http::status::uri_too_long, "uri_too_long",
                        "the request target is over the limit"};
    }
    return read_fault{http::status::request_header_fields_too_large, "header_too_large",
                      "the request headers are over the limit"};
  }
  if (ec == http::error::body_limit) {
    return read_fault{http::status::payload_too_large, "payload_too_large",
                      "the request body is over the limit"};
  }
  // The client closed, mid-request or not, or the deadline passed: nobody to answer.
  static const boost::system::error_category& parse_errors =
      http::make_error_code(http::error::bad_target).category();
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec.category() != parse_errors) {
    return std::nullopt;
  }
  // Malformed: a bad request line, a bare LF, a duplicate or invalid Content-Length, a bad
  // chunk, garbage.
  return read_fault{http::status::bad_request, "bad_request", "the request is not valid HTTP/1.1"};
}

}  // namespace

http_server::http_server(http_api& api, const tcp::endpoint& at, http_server_options opts)
    : api_(api),
      opts_(opts),
      gate_("http", opts.max_connections),
      workers_(std::max(1u, opts.workers)),
      acceptor_(io_),
      accept_wait_(io_) {
  acceptor_.open(at.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(at);
  acceptor_.listen();
}

http_server::~http_server() { stop(); }

tcp::endpoint http_server::local_endpoint() const { return acceptor_.local_endpoint(); }

void http_server::start() {
  events_listener_ = api_.events().add_listener([this](const event&) {
    event_generation_.fetch_add(1, std::memory_order_acq_rel);
    if (!wake_posted_.exchange(true, std::memory_order_acq_rel))
      asio::post(io_, [this] { wake_long_polls(); });
  });
  do_accept();
  for (unsigned i = 0; i < std::max(1u, opts_.io_threads); ++i) {
    threads_.emplace_back([this, i] {
      set_thread_name("http-io-" + std::to_string(i));
      if (!set_nice(opts_.nice) && i == 0) {
        spdlog::info(
            "http I/O threads keep nice {} (asked for {}: needs CAP_SYS_NICE or a nice limit, e.g. "
            "systemd LimitNICE=)",
            getpriority(PRIO_PROCESS, 0), opts_.nice);
      }
      prefer_short_slices(std::chrono::microseconds(200));  // keeps the nice value
      io_.run();
    });
  }
}

void http_server::stop() {
  if (stopping_.exchange(true)) return;
  if (events_listener_ != 0) api_.events().remove_listener(events_listener_);
  asio::post(io_, [this] {
    boost::system::error_code ignore;
    acceptor_.close(ignore);
  });
  io_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  workers_.join();
}

void http_server::wake_long_polls() {
  wake_posted_.store(false, std::memory_order_release);
  std::lock_guard lock(waiters_mu_);
  for (auto& t : waiters_) asio::post(t->get_executor(), [t] { t->cancel(); });
}

template <class Stream>
asio::awaitable<bool> http_server::wait_for_event(Stream& stream, beast::flat_buffer& buffer,
                                                  std::chrono::steady_clock::time_point deadline,
                                                  std::uint64_t seen_generation,
                                                  bool& watch_client) {
  using namespace asio::experimental::awaitable_operators;
  auto timer = std::make_shared<asio::steady_timer>(stream.get_executor());
  timer->expires_at(deadline);
  std::list<std::shared_ptr<asio::steady_timer>>::iterator self;
  {
    std::lock_guard lock(waiters_mu_);
    self = waiters_.insert(waiters_.end(), timer);
  }
  struct unlist {
    http_server& s;
    std::list<std::shared_ptr<asio::steady_timer>>::iterator it;
    ~unlist() {
      std::lock_guard lock(s.waiters_mu_);
      s.waiters_.erase(it);
    }
  } guard{*this, self};
  // An event that landed since the caller's query: ask again at once.
  if (event_generation_.load(std::memory_order_acquire) != seen_generation) co_return true;
  if (!watch_client) {
    co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
    co_return true;
  }
  // A read on the socket notices a client that closed; bytes it sends (a pipelined request)
  // stay in the buffer for the next request.
  auto room = buffer.prepare(4096);
  auto result = co_await (timer->async_wait(asio::as_tuple(asio::use_awaitable)) ||
                          stream.async_read_some(room, asio::as_tuple(asio::use_awaitable)));
  if (result.index() == 1) {
    auto [ec, n] = std::get<1>(result);
    if (ec) co_return false;  // the client went away
    buffer.commit(n);
    watch_client = false;  // it is talking: its next request is read after this answer
  }
  co_return true;
}

void http_server::do_accept() {
  acceptor_.async_accept(
      asio::make_strand(io_), [this](boost::system::error_code ec, tcp::socket sock) {
        if (ec) {
          if (ec == asio::error::operation_aborted || stopping_) return;
          gate_.retry_accept(accept_wait_, ec, [this] {
            if (!stopping_) do_accept();
          });
          return;
        }
        gate_.accepted();
        if (auto place = gate_.admit()) {
          asio::co_spawn(sock.get_executor(), session(std::move(sock), std::move(*place)),
                         asio::detached);
        } else {
          boost::system::error_code ignore;
          sock.close(ignore);  // at max_connections: closed at once
        }
        do_accept();
      });
}

asio::awaitable<void> http_server::session(tcp::socket sock,
                                           [[maybe_unused]] connection_gate::ticket place) {
  boost::system::error_code ignore;
  if (!opts_.tls) {
    beast::tcp_stream stream(std::move(sock));
    co_await serve(stream);
    stream.socket().shutdown(tcp::socket::shutdown_send, ignore);
    co_return;
  }
  // HTTPS: the handshake within the first request's header timeout, with the context of now
  // (a reload does not touch this connection).
  const std::shared_ptr<asio::ssl::context> ctx = opts_.tls->current();
  beast::ssl_stream<beast::tcp_stream> stream(std::move(sock), *ctx);
  beast::get_lowest_layer(stream).expires_after(opts_.header_timeout);
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server,
                                               asio::as_tuple(asio::use_awaitable));
  if (hec) {
    tls_refused_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("https: TLS handshake failed: {}", hec.message());
    co_return;
  }
  co_await serve(stream);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  auto [sec] = co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
  (void)sec;  // a client that closed first is the usual end
}

template <class Stream>
asio::awaitable<void> http_server::serve(Stream& stream) {
  auto& tcp_layer = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  try {
    for (std::size_t served = 0; served < kMaxRequestsPerConnection; ++served) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(opts_.header_limit));
      parser.body_limit(opts_.body_limit);
      tcp_layer.expires_after(served == 0 ? opts_.header_timeout : opts_.idle_timeout);
      auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser,
                                                        asio::as_tuple(asio::use_awaitable));
      std::optional<read_fault> fault;
      if (hec) {
        fault = fault_of(hec, parser.get().target(), opts_.max_target);
        if (!fault) break;  // closed or timed out: nothing to answer
      } else if (parser.get().target().size() > opts_.max_target) {
        fault = read_fault{http::status::uri_too_long, "uri_too_long",
                           "the request target is over the limit"};
      } else if (parser.content_length() && *parser.content_length() > opts_.body_limit) {
        fault = fault_of(http::error::body_limit, {}, opts_.max_target);
      }
      if (fault) {
        api_.count("unmatched", static_cast<unsigned>(fault->status));
        co_await refuse(stream, fault->status, fault->code, fault->what);
        break;
      }
      if (parser.get()[http::field::expect] == "100-continue") {
        http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
        co_await http::async_write(stream, cont, asio::as_tuple(asio::use_awaitable));
      }
      auto [ec, n] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (auto f = fault_of(ec, {}, opts_.max_target)) {
          api_.count("unmatched", static_cast<unsigned>(f->status));
          co_await refuse(stream, f->status, f->code, f->what);
        }
        break;
      }
      auto& breq = parser.get();
      http_request req;
      req.method = std::string(breq.method_string());
      req.target = std::string(breq.target());
      req.authorization = std::string(breq[http::field::authorization]);
      req.content_type = std::string(breq[http::field::content_type]);
      req.accept = std::string(breq[http::field::accept]);
      req.body = std::move(breq.body());
      const bool keep_alive = breq.keep_alive();
      const unsigned version = breq.version();

      // One shard's answer comes straight back to this strand; anything else runs on a worker.
      auto try_async = [this, &req](auto handler) {
        using handler_t = decltype(handler);
        auto h = std::make_shared<handler_t>(std::move(handler));
        auto resume = [h](std::optional<http_response> r) {
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex, [h, r = std::move(r)]() mutable { std::move (*h)(std::move(r)); });
        };
        if (!api_.handle_async(req, [resume](http_response r) { resume(std::move(r)); }))
          resume(std::nullopt);
      };
      // Taken before the answer is computed: an event landing after this wakes a long-poll.
      std::uint64_t generation = event_generation_.load(std::memory_order_acquire);
      std::optional<http_response> quick =
          co_await asio::async_initiate<decltype(asio::use_awaitable),
                                        void(std::optional<http_response>)>(try_async,
                                                                            asio::use_awaitable);
      auto run = [this, &req]() -> asio::awaitable<http_response> { co_return api_.handle(req); };
      // (Not a conditional expression: GCC 12 destroys a co_await's result early in one.)
      http_response out;
      if (quick) {
        out = std::move(*quick);
      } else {
        out = co_await asio::co_spawn(workers_, run(), asio::use_awaitable);
      }
      if (out.long_poll.count() > 0) {
        // Nothing yet: wait for an event (no polling), the deadline, or the client to go away.
        struct release {
          std::atomic<std::size_t>& n;
          ~release() { n.fetch_sub(1); }
        } slot{api_.long_polls()};
        if (api_.long_polls().fetch_add(1) >= opts_.max_long_polls) {
          out = http_response{429, http_error_body("too_many_requests",
                                                   "too many long-polls are waiting; try again")};
        } else {
          const auto deadline = std::chrono::steady_clock::now() + out.long_poll;
          bool watch_client = true;
          while (out.long_poll.count() > 0 && std::chrono::steady_clock::now() < deadline) {
            if (!co_await wait_for_event(stream, buffer, deadline, generation, watch_client)) {
              api_.count(http_api::route_of(req), 499);  // the client closed while waiting
              co_return;
            }
            generation = event_generation_.load(std::memory_order_acquire);
            out = co_await asio::co_spawn(workers_, run(), asio::use_awaitable);
          }
        }
      }
      api_.count(http_api::route_of(req), out.status);

      http::response<http::string_body> res{static_cast<http::status>(out.status), version};
      res.set(http::field::server, "simcap");
      if (out.status != 204) res.set(http::field::content_type, out.content_type);
      if (req.method != "HEAD") res.body() = std::move(out.body);
      res.keep_alive(keep_alive && served + 1 < kMaxRequestsPerConnection);
      if (out.status != 204) res.prepare_payload();
      tcp_layer.expires_after(opts_.idle_timeout);
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !res.keep_alive()) break;
    }
  } catch (const std::exception& e) {
    spdlog::debug("http session: {}", e.what());
  }
}

}  // namespace simcap
