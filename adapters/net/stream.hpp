#pragma once
// A connection's byte stream: the accepted socket itself, or TLS over it (tls_server.hpp). One
// type for both, so a session's code is the same either way; handshake() first on TLS.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <optional>

namespace simcap {

class net_stream {
 public:
  using tcp = boost::asio::ip::tcp;
  using executor_type = tcp::socket::executor_type;

  explicit net_stream(tcp::socket s) : plain_(std::move(s)) {}
  // TLS with this context (the stream keeps it: a reload does not touch this connection).
  net_stream(tcp::socket s, std::shared_ptr<boost::asio::ssl::context> ctx)
      : ctx_(std::move(ctx)), tls_(std::in_place, std::move(s), *ctx_) {}

  executor_type get_executor() noexcept {
    return tls_ ? tls_->next_layer().get_executor() : plain_->get_executor();
  }
  // The socket under it (options, shutdown, close).
  tcp::socket& socket() noexcept { return tls_ ? tls_->next_layer() : *plain_; }
  bool tls() const noexcept { return tls_.has_value(); }
  // The TLS connection (null for a plain one): the peer's certificate.
  SSL* native_handle() noexcept { return tls_ ? tls_->native_handle() : nullptr; }
  // Bytes that can be read now without waiting: decrypted ones held by TLS, else the socket's.
  std::size_t readable_now();

  // The server's side of the TLS handshake (nothing to do on a plain stream).
  boost::asio::awaitable<boost::system::error_code> handshake();

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& bufs) {
          if (tls_) {
            tls_->async_read_some(bufs, std::move(handler));
          } else {
            plain_->async_read_some(bufs, std::move(handler));
          }
        },
        token, b);
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& bufs) {
          if (tls_) {
            tls_->async_write_some(bufs, std::move(handler));
          } else {
            plain_->async_write_some(bufs, std::move(handler));
          }
        },
        token, b);
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> ctx_;
  std::optional<tcp::socket> plain_;
  std::optional<boost::asio::ssl::stream<tcp::socket>> tls_;
};

}  // namespace simcap
