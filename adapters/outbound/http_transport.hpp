#pragma once
// A sink's HTTP(S) client (Boost.Beast; TLS through Asio's OpenSSL stream, certificates checked
// against the system store and the sink's ca_file, host name verified): POSTs with
// Content-Type, Idempotency-Key, Simcap-Signature and the sink's own headers, over keep-alive
// connections (at most max_in_flight, reused while the receiver keeps them open). Every
// exchange has the sink's timeout; an answer's body is read up to 64 KiB (a longer one ends the
// connection after its status is known), so a misbehaving receiver costs bounded memory.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.hpp"
#include "outbound/sink.hpp"

namespace simcap::outbound {

class http_transport final : public transport {
 public:
  // Throws std::invalid_argument for a URL it cannot use.
  http_transport(boost::asio::io_context& io, const sink_config& cfg);
  ~http_transport() override;
  void post(const request& r, std::function<void(answer)> done) override;

 private:
  struct connection;
  boost::asio::awaitable<void> exchange(request r, std::function<void(answer)> done);
  boost::asio::awaitable<answer> send_on(connection& c, const request& r, bool& reusable);

  boost::asio::io_context& io_;
  const sink_config cfg_;
  bool tls_ = false;
  std::string host_, port_, target_, host_header_;
  std::unique_ptr<boost::asio::ssl::context> ssl_;
  std::mutex idle_mu_;
  std::vector<std::unique_ptr<connection>> idle_;
};

}  // namespace simcap::outbound
