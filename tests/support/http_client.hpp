#pragma once
// A small synchronous HTTP/1.1 client for tests (Boost.Beast), keeping its connection alive.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string>

namespace simcap::testing {

class http_client {
 public:
  struct reply {
    unsigned status = 0;
    std::string body;
    std::string content_type;
  };

  explicit http_client(std::uint16_t port) : stream_(io_) {
    stream_.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  }

  reply request(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& token = "",
                const std::string& content_type = "application/json") {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!body.empty()) {
      req.set(http::field::content_type, content_type);
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    parser.skip(method == "HEAD");
    http::read(stream_, buffer_, parser);
    auto& res = parser.get();
    return reply{res.result_int(), res.body(), std::string(res[http::field::content_type])};
  }

 private:
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

// A figure of the /metrics on `port`, e.g. metric(port, "simcap_connections{port=\"feed\"}");
// ~0 when it is not there.
inline std::uint64_t metric(std::uint16_t port, const std::string& name) {
  http_client c(port);
  const std::string body = c.request("GET", "/metrics").body;
  const auto at = body.find("\n" + name + " ");
  return at == std::string::npos ? ~0ULL : std::stoull(body.substr(at + name.size() + 2));
}

}  // namespace simcap::testing
