#include "outbound/http_transport.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url.hpp>
#include <ctime>
#include <stdexcept>

#include "outbound/signature.hpp"
#include "outbound/tls_client.hpp"

namespace simcap::outbound {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct http_transport::connection {
  explicit connection(asio::io_context& io) : plain(io) {}
  beast::tcp_stream plain;
  std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool open = false;
  beast::tcp_stream& lowest() { return tls ? tls->next_layer() : plain; }
};

http_transport::http_transport(asio::io_context& io, const sink_config& cfg) : io_(io), cfg_(cfg) {
  auto u = boost::urls::parse_absolute_uri(cfg.url);
  if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty()) {
    throw std::invalid_argument("sink " + cfg.name + ": url must be an http:// or https:// URL");
  }
  tls_ = u->scheme() == "https";
  host_ = std::string(u->host());
  if (host_.size() > 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
  port_ = u->has_port() ? std::string(u->port()) : (tls_ ? "443" : "80");
  target_ = std::string(u->encoded_target());
  if (target_.empty()) target_ = "/";
  host_header_ = std::string(u->encoded_host_and_port());
  if (tls_) {
    ssl_ = client_tls_context(cfg);
  }
}

http_transport::~http_transport() = default;

void http_transport::post(const request& r, std::function<void(answer)> done) {
  asio::co_spawn(io_, exchange(r, std::move(done)), asio::detached);
}

asio::awaitable<void> http_transport::exchange(request r, std::function<void(answer)> done) {
  std::unique_ptr<connection> c;
  {
    std::lock_guard lock(idle_mu_);
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  const bool reused = c != nullptr;
  if (!c) c = std::make_unique<connection>(io_);
  bool reusable = false;
  answer a = co_await send_on(*c, r, reusable);
  if (reused && a.status == 0) {
    // The receiver may have closed a kept-alive connection meanwhile: once more on a new one.
    c = std::make_unique<connection>(io_);
    a = co_await send_on(*c, r, reusable);
  }
  if (reusable) {
    std::lock_guard lock(idle_mu_);
    if (idle_.size() < cfg_.max_in_flight) idle_.push_back(std::move(c));
  }
  done(std::move(a));
}

namespace {

template <class Stream>
asio::awaitable<answer> write_and_read(Stream& s, beast::flat_buffer& buffer,
                                       http::request<http::string_body>& req, bool& keep) {
  answer a;
  auto [wec, wn] = co_await http::async_write(s, req, asio::as_tuple(asio::use_awaitable));
  if (wec) {
    a.error = wec.message();
    co_return a;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024);
  parser.header_limit(16 * 1024);
  auto [rec, rn] =
      co_await http::async_read(s, buffer, parser, asio::as_tuple(asio::use_awaitable));
  if (parser.is_header_done()) {
    a.status = parser.get().result_int();
    if (auto it = parser.get().find(http::field::retry_after); it != parser.get().end()) {
      a.retry_after = retry_after(std::string_view(it->value().data(), it->value().size()));
    }
  }
  if (rec) {
    // A body past the limit (or cut off): the status stands, the connection goes.
    if (!parser.is_header_done()) a.error = rec.message();
    keep = false;
    co_return a;
  }
  a.body = parser.get().body().substr(0, 1024);
  keep = parser.get().keep_alive();
  co_return a;
}

}  // namespace

asio::awaitable<answer> http_transport::send_on(connection& c, const request& r, bool& reusable) {
  reusable = false;
  answer a;
  c.lowest().expires_after(cfg_.timeout);
  if (!c.open) {
    tcp::resolver resolver(io_);
    auto [ec, results] =
        co_await resolver.async_resolve(host_, port_, asio::as_tuple(asio::use_awaitable));
    if (ec) {
      a.error = "resolve " + host_ + ": " + ec.message();
      co_return a;
    }
    auto [cec, ep] = co_await c.plain.async_connect(results, asio::as_tuple(asio::use_awaitable));
    if (cec) {
      a.error = "connect: " + cec.message();
      co_return a;
    }
    if (tls_) {
      c.tls = std::make_unique<ssl::stream<beast::tcp_stream>>(std::move(c.plain), *ssl_);
      if (!prepare_tls_client(*c.tls, host_, cfg_.verify_tls)) {
        a.error = "TLS: cannot set the server name";
        co_return a;
      }
      auto [hec] = co_await c.tls->async_handshake(ssl::stream_base::client,
                                                   asio::as_tuple(asio::use_awaitable));
      if (hec) {
        a.error = "TLS handshake: " + hec.message();
        co_return a;
      }
    }
    c.open = true;
  }
  http::request<http::string_body> req{http::verb::post, target_, 11};
  req.set(http::field::host, host_header_);
  req.set(http::field::user_agent, "simcap");
  req.set(http::field::content_type, "application/json");
  req.set("Idempotency-Key", r.idempotency_key);
  if (!cfg_.secret.empty()) {
    req.set("Simcap-Signature",
            signature_header(cfg_.secret, static_cast<std::int64_t>(std::time(nullptr)), r.body));
  }
  for (const auto& [k, v] : cfg_.headers) req.set(k, v);
  req.keep_alive(true);
  req.body() = r.body;
  req.prepare_payload();
  bool keep = false;
  if (c.tls) {
    a = co_await write_and_read(*c.tls, c.buffer, req, keep);
  } else {
    a = co_await write_and_read(c.plain, c.buffer, req, keep);
  }
  if (a.status == 0 && a.error.empty()) a.error = "no answer";
  if (a.error == "The socket was closed due to a timeout" ||
      a.error.find("timed out") != std::string::npos) {
    a.error = "timeout after " + std::to_string(cfg_.timeout.count()) + " ms";
  }
  reusable = keep && a.status != 0;
  if (!reusable) c.open = false;
  co_return a;
}

}  // namespace simcap::outbound
