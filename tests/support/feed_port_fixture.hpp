#pragma once
// What the feed-port tests share: an engine with two shards on a manual clock, product acme
// with SIMs 0..99, and a feed server on 127.0.0.1 port 0 that start_port() opens (after the
// test has made what its options need, e.g. certificates).
#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine_fixture.hpp"
#include "feed/feed_server.hpp"

namespace simcap::testing {

class feed_port_fixture : public ::testing::Test {
 protected:
  static constexpr unix_seconds kNow = 1763800000;

  feed_port_fixture() : clock_(kNow) {
    engine_options o;
    o.shards = 2;
    o.default_mb_limit = 100000;
    eng_ = std::make_unique<engine>(o, clock_, dead_letters_);
    eng_->start();
    product_settings p;
    p.id = "acme";
    EXPECT_TRUE(eng_->put_product(p));
    std::vector<iccid> ids;
    for (std::uint64_t i = 0; i < 100; ++i) ids.push_back(test_iccid(i));
    EXPECT_TRUE(eng_->import_sims("acme", ids));
  }
  ~feed_port_fixture() override {
    if (server_) server_->stop(std::chrono::seconds(2));
    eng_->stop();
  }
  // Opens the port for these feeds (short ack interval and hello timeout unless fo says).
  void start_port(std::vector<feed_config> feeds, feed_server_options fo) {
    feeds_ = std::make_unique<feed_registry>(*eng_, feeds);
    server_ = std::make_unique<feed_server>(
        *eng_, *feeds_, dead_letters_,
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0), fo);
    server_->start();
    port_ = server_->local_endpoint().port();
  }
  static feed_server_options quick_options() {
    feed_server_options fo;
    fo.ack_interval = std::chrono::milliseconds(20);
    fo.hello_timeout = std::chrono::seconds(2);
    return fo;
  }

  static std::string hello(const std::string& feed = "carrier-a",
                           const std::string& token = "secret") {
    return "{\"hello\":{\"feed\":\"" + feed + "\",\"token\":\"" + token + "\"}}\n";
  }
  static std::string line(std::uint64_t seq, std::uint64_t sim, std::uint64_t bytes) {
    return "{\"seq\":" + std::to_string(seq) + ",\"iccid\":\"" + test_iccid_text(sim) +
           "\",\"end\":" + std::to_string(kNow - 60) + ",\"up\":" + std::to_string(bytes) + "}\n";
  }
  struct replies {
    std::uint64_t ack = 0;
    std::vector<boost::json::object> rejects;
  };
  // Reads replies until an ack of at least `seq` (or the timeout); Client: feed_client or
  // tls_client.
  template <class Client>
  static replies until_ack(Client& c, std::uint64_t seq,
                           std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    replies r;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (r.ack < seq && std::chrono::steady_clock::now() < deadline) {
      auto l = c.read_line(std::chrono::milliseconds(200));
      if (!l) {
        if (c.closed()) break;
        continue;
      }
      auto v = boost::json::parse(*l).as_object();
      if (auto* a = v.if_contains("ack")) r.ack = a->template to_number<std::uint64_t>();
      if (auto* j = v.if_contains("reject")) r.rejects.push_back(j->as_object());
    }
    return r;
  }
  std::uint64_t usage(std::uint64_t sim) { return eng_->get_sim(test_iccid(sim))->usage_bytes(); }

  manual_clock clock_;
  memory_dead_letters dead_letters_;
  std::unique_ptr<engine> eng_;
  std::unique_ptr<feed_registry> feeds_;
  std::unique_ptr<feed_server> server_;
  std::uint16_t port_ = 0;
};

}  // namespace simcap::testing
