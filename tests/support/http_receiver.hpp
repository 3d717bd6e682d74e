#pragma once
// Test support: an HTTP(S) receiver for outbound sinks on 127.0.0.1 (Boost.Beast, synchronous,
// one thread a connection), with a policy for what it answers, checking every request's
// signature (when it has a secret) and keeping each request's headers.
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "outbound/signature.hpp"
#include "simcap/iccid.hpp"
#include "test_cert.hpp"

namespace simcap::testing {

namespace receiver_detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// An HTTP receiver: one thread a connection; every request's signature is checked and its
// answer comes from a policy. The flaky one: every 5th request is answered 503, every 7th is
// never answered (the connection stays open, silent), every 11th has its connection dropped;
// the rest 200.
class http_receiver {
 public:
  struct arrival {
    std::uint64_t id, sim;
    bool answered_ok;
    std::map<std::string, std::string> headers;  // names in lower case
  };
  // status_of(request number, event id, SIM key): the status to answer, 0 for none (the
  // connection stays silent), -1 to drop the connection.
  using policy = std::function<int(std::uint64_t, std::uint64_t, std::uint64_t)>;
  static int flaky(std::uint64_t n, std::uint64_t, std::uint64_t) {
    if (n % 11 == 0) return -1;
    if (n % 7 == 0) return 0;
    return n % 5 == 0 ? 503 : 200;
  }
  // With a certificate: HTTPS only.
  explicit http_receiver(std::string secret, policy p = flaky, const test_cert* tls = nullptr)
      : secret_(std::move(secret)),
        policy_(std::move(p)),
        acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    if (tls != nullptr) {
      tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      tls_->use_certificate_chain_file(tls->cert.string());
      tls_->use_private_key_file(tls->key.string(), asio::ssl::context::pem);
    }
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~http_receiver() {
    stopping_ = true;
    boost::system::error_code ec;
    {
      tcp::socket wake(io_);  // a blocking accept returns for it
      wake.connect({asio::ip::make_address("127.0.0.1"), port()}, ec);
    }
    thread_.join();
    acceptor_.close(ec);
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
    }
    for (auto& t : workers_) t.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::vector<arrival> arrivals() {
    std::lock_guard lock(mu_);
    return arrivals_;
  }
  std::set<std::uint64_t> delivered() {
    std::lock_guard lock(mu_);
    std::set<std::uint64_t> out;
    for (const auto& a : arrivals_) {
      if (a.answered_ok) out.insert(a.id);
    }
    return out;
  }
  std::size_t bad_signatures() {
    std::lock_guard lock(mu_);
    return bad_signatures_;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      auto s = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*s, ec);
      if (ec || stopping_) return;
      std::lock_guard lock(mu_);
      sockets_.push_back(s);
      workers_.emplace_back([this, s] {
        if (!tls_) return serve(*s, *s);
        asio::ssl::stream<tcp::socket&> tls(*s, *tls_);
        boost::system::error_code hec;
        tls.handshake(asio::ssl::stream_base::server, hec);
        if (!hec) serve(tls, *s);
      });
    }
  }
  template <class Stream>
  void serve(Stream& s, tcp::socket& lowest) {
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(s, buf, req, ec);
      if (ec) return;
      std::uint64_t n;
      {
        std::lock_guard lock(mu_);
        n = ++requests_;
      }
      const auto body = boost::json::parse(req.body());
      const std::uint64_t id = body.at("id").to_number<std::uint64_t>();
      const auto* ic = body.at("iccid").if_string();
      const std::uint64_t sim = ic != nullptr ? iccid::parse(*ic).value().key() : 0;
      if (!secret_.empty()) check_signature(req);
      std::map<std::string, std::string> headers;
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        headers[name] = std::string(f.value());
      }
      const int status = policy_(n, id, sim);
      if (status < 0) {
        lowest.close(ec);  // dropped
        record(id, sim, false, std::move(headers));
        return;
      }
      if (status == 0) {
        record(id, sim, false, std::move(headers));
        continue;  // never answered (the client times out and closes)
      }
      http::response<http::string_body> res{static_cast<http::status>(status), 11};
      res.keep_alive(true);
      res.prepare_payload();
      // Recorded before the answer leaves: the sender cannot have the next event yet.
      record(id, sim, status / 100 == 2, std::move(headers));
      http::write(s, res, ec);
      if (ec) return;
    }
  }
  void record(std::uint64_t id, std::uint64_t sim, bool ok,
              std::map<std::string, std::string> headers) {
    std::lock_guard lock(mu_);
    arrivals_.push_back({id, sim, ok, std::move(headers)});
  }
  void check_signature(const http::request<http::string_body>& req) {
    const std::string sig(req["Simcap-Signature"]);
    const auto comma = sig.find(",v1=");
    bool good =
        sig.starts_with("t=") && comma != std::string::npos &&
        outbound::hmac_sha256_hex(secret_, sig.substr(2, comma - 2) + "." + req.body()) ==
            sig.substr(comma + 4) &&
        req["Idempotency-Key"] ==
            std::to_string(boost::json::parse(req.body()).at("id").to_number<std::uint64_t>());
    if (!good) {
      std::lock_guard lock(mu_);
      ++bad_signatures_;
    }
  }

  std::string secret_;
  policy policy_;
  std::unique_ptr<asio::ssl::context> tls_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> workers_;
  std::vector<arrival> arrivals_;
  std::uint64_t requests_ = 0;
  std::size_t bad_signatures_ = 0;
};

}  // namespace receiver_detail

using receiver_detail::http_receiver;

}  // namespace simcap::testing
