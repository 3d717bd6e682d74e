#include "net/stream.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>

namespace simcap {

std::size_t net_stream::readable_now() {
  boost::system::error_code ec;
  std::size_t n = socket().available(ec);
  if (ec) n = 0;
  if (tls_) {
    // Decrypted bytes of the record being read, and records received but not yet decrypted.
    SSL* ssl = tls_->native_handle();
    n += static_cast<std::size_t>(std::max(SSL_pending(ssl), 0));
    n += BIO_ctrl_pending(SSL_get_rbio(ssl));
  }
  return n;
}

boost::asio::awaitable<boost::system::error_code> net_stream::handshake() {
  if (!tls_) co_return boost::system::error_code{};
  auto [ec] = co_await tls_->async_handshake(boost::asio::ssl::stream_base::server,
                                             boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return ec;
}

}  // namespace simcap
