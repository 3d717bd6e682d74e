// TLS on the feed port (in-process, real sockets on 127.0.0.1, certificates made by
// `openssl req` for the test): a feed streams over mutual TLS; a client without the CA's
// certificate, with another CA's or with another feed's name is refused, and a plain one gets
// nothing; a reload serves the new certificate to new connections and keeps the open ones.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <memory>

#include "feed_client.hpp"
#include "feed_port_fixture.hpp"
#include "test_cert.hpp"
#include "tls_client.hpp"

namespace simcap::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Tls : public feed_port_fixture {
 protected:
  Tls() {
    dir_ = fs::temp_directory_path() /
           ("simcap-tls-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ca_ = make_test_ca(dir_, "carriers-ca");
    server_cert_ = make_signed_cert(dir_, ca_, "server", "simcap-one");
    feed_cert_ = make_signed_cert(dir_, ca_, "carrier-a", "carrier-a.example");
    tls_ = std::make_shared<tls_server_context>(
        tls_files{server_cert_.cert, server_cert_.key, ca_.cert});
    feed_server_options fo = quick_options();
    fo.tls = tls_;
    start_port({{"carrier-a", "secret", "carrier-a.example"}, {"carrier-b", "secret-b", ""}}, fo);
  }
  ~Tls() override { fs::remove_all(dir_); }

  tls_client::identity carrier_a() const { return {ca_.cert, feed_cert_.cert, feed_cert_.key}; }

  fs::path dir_;
  test_ca ca_;
  test_cert server_cert_, feed_cert_;
  std::shared_ptr<tls_server_context> tls_;
};

TEST_F(Tls, AFeedStreamsOverMutualTlsAndIsAcked) {
  tls_client c(port_, carrier_a());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.server_name(), "simcap-one");
  ASSERT_TRUE(c.send(hello()));
  auto w = c.read_line();
  ASSERT_TRUE(w) << "no welcome";
  EXPECT_NE(w->find("\"welcome\""), std::string::npos) << *w;
  // Many TLS records at once: the session reads them all into its chunks.
  std::string all;
  constexpr std::uint64_t kRecords = 20000;
  for (std::uint64_t seq = 1; seq <= kRecords; ++seq) all += line(seq, seq % 100, 10);
  ASSERT_TRUE(c.send(all));
  EXPECT_EQ(until_ack(c, kRecords).ack, kRecords);
  EXPECT_EQ(eng_->stats().records_counted, kRecords);
  EXPECT_EQ(usage(7), 10u * (kRecords / 100));
}

TEST_F(Tls, AFeedWithoutItsCertificateIsRefused) {
  // No client certificate: the handshake fails (TLS 1.3 tells the client on its first read).
  {
    tls_client c(port_, {ca_.cert, {}, {}});
    if (c.ok()) {
      c.send(hello());
      EXPECT_FALSE(c.read_line(5s));
      EXPECT_TRUE(c.closed());
    }
  }
  // A certificate another CA signed.
  const test_ca other_ca = make_test_ca(dir_, "other-ca");
  const test_cert stranger = make_signed_cert(dir_, other_ca, "stranger", "carrier-a.example");
  {
    tls_client c(port_, {ca_.cert, stranger.cert, stranger.key});
    if (c.ok()) {
      c.send(hello());
      EXPECT_FALSE(c.read_line(5s));
      EXPECT_TRUE(c.closed());
    }
  }
  // The right CA, but not the name carrier-a's cert_cn binds it to: the hello is refused.
  const test_cert other_name = make_signed_cert(dir_, ca_, "other-name", "carrier-b.example");
  {
    tls_client c(port_, {ca_.cert, other_name.cert, other_name.key});
    ASSERT_TRUE(c.ok()) << c.error();
    c.send(hello());
    auto l = c.read_line(5s);
    ASSERT_TRUE(l);
    EXPECT_NE(l->find("\"bad_certificate\""), std::string::npos) << *l;
    EXPECT_FALSE(c.read_line(5s));
    EXPECT_TRUE(c.closed());
  }
  // That certificate is good for a feed without cert_cn.
  {
    tls_client c(port_, {ca_.cert, other_name.cert, other_name.key});
    ASSERT_TRUE(c.ok()) << c.error();
    c.send(hello("carrier-b", "secret-b"));
    auto l = c.read_line(5s);
    ASSERT_TRUE(l);
    EXPECT_NE(l->find("\"welcome\""), std::string::npos) << *l;
  }
  // A plain client gets nothing: its hello is not TLS.
  {
    feed_client plain(port_);
    plain.send(hello());
    const std::string got = plain.read_to_close(5s);
    EXPECT_EQ(got.find("welcome"), std::string::npos) << got;
    EXPECT_EQ(got.find("{"), std::string::npos) << got;
    EXPECT_TRUE(plain.closed());
  }
  EXPECT_GE(server_->tls_refused().load(), 3u);
  EXPECT_EQ(eng_->stats().records_counted, 0u);
}

TEST_F(Tls, AReloadServesTheNewCertificateAndKeepsOpenSessions) {
  tls_client open(port_, carrier_a());
  ASSERT_TRUE(open.ok()) << open.error();
  ASSERT_TRUE(open.send(hello()));
  ASSERT_TRUE(open.read_line());
  ASSERT_TRUE(open.send(line(1, 1, 100)));
  EXPECT_EQ(until_ack(open, 1).ack, 1u);

  // New files in place of the old, then the reload (what SIGHUP does).
  const test_cert next = make_signed_cert(dir_, ca_, "next", "simcap-two");
  fs::copy_file(next.cert, server_cert_.cert, fs::copy_options::overwrite_existing);
  fs::copy_file(next.key, server_cert_.key, fs::copy_options::overwrite_existing);
  EXPECT_EQ(tls_->reload(), std::nullopt);
  {
    tls_client fresh(port_, carrier_a());
    ASSERT_TRUE(fresh.ok()) << fresh.error();
    EXPECT_EQ(fresh.server_name(), "simcap-two");
  }
  // The open session goes on, on its old certificate.
  ASSERT_TRUE(open.send(line(2, 1, 100)));
  EXPECT_EQ(until_ack(open, 2).ack, 2u);
  EXPECT_EQ(usage(1), 200u);

  // A key that does not load: the reload says why and the port keeps what it had.
  { std::ofstream(server_cert_.key) << "not a key\n"; }
  const auto why = tls_->reload();
  ASSERT_TRUE(why);
  EXPECT_NE(why->find(server_cert_.key.string()), std::string::npos) << *why;
  tls_client after(port_, carrier_a());
  ASSERT_TRUE(after.ok()) << after.error();
  EXPECT_EQ(after.server_name(), "simcap-two");
}

}  // namespace
}  // namespace simcap::testing
