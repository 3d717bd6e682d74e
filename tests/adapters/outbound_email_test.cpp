// Email sinks against a real SMTP receiver on 127.0.0.1 (Debian's python3-aiosmtpd): the alert
// at 90 % and the pause reach the product's alert_emails over STARTTLS, through a relay that
// first answers 451 and refuses one of the addresses; a product without alert_emails gets none.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "engine_fixture.hpp"
#include "eventually.hpp"
#include "outbound/outbound.hpp"
#include "process.hpp"
#include "test_cert.hpp"

namespace simcap::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class OutboundEmail : public engine_fixture {
 protected:
  OutboundEmail()
      : dir_(fs::temp_directory_path() / ("simcap-email-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "mail");
  }
  ~OutboundEmail() override { fs::remove_all(dir_); }

  void product_mailing(const std::string& id, std::vector<std::string> emails) {
    product_settings s;
    s.id = id;
    s.default_mb_limit = 1;
    s.alert_emails = std::move(emails);
    ASSERT_TRUE(eng_->put_product(s).has_value());
  }
  std::vector<std::string> mails() const {
    std::set<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir_ / "mail")) {
      if (e.path().extension() == ".eml") files.insert(e.path());
    }
    std::vector<std::string> out;
    for (const auto& f : files) out.push_back(read_file(f));
    return out;
  }

  fs::path dir_;
};

TEST_F(OutboundEmail, AlertAndPauseAreMailedToTheProductsAlertEmails) {
  const test_cert cert = make_test_cert(dir_ / "tls");
  child rx({"/usr/bin/python3", SIMCAP_SOURCE_DIR "/tests/support/smtp_receiver.py",
            (dir_ / "mail").string(), "--tls", cert.cert.string(), cert.key.string(), "--refuse",
            "nobody@example.com", "--busy", "1"},
           dir_ / "rx.out", dir_ / "rx.err");
  const auto port = rx.wait_for_line("port ", 20s);
  ASSERT_TRUE(port) << rx.err();

  product_mailing("acme", {"ops@example.com", "nobody@example.com"});
  product_mailing("quiet", {});
  sink_config mail;
  mail.name = "mail";
  mail.kind = sink_config::kind_t::email;
  mail.smtp = "127.0.0.1:" + *port;
  mail.from = "simcap@example.com";
  mail.ca_file = cert.cert.string();
  mail.retry_min = 5ms;
  mail.retry_max = 40ms;
  outbound::service out(*eng_, {mail});
  out.start();

  import("acme", {1});
  import("quiet", {2});
  feed({rec(2, 1'100'000, kStart)});  // alert and pause of a product that names nobody
  feed({rec(1, 950'000, kStart)});    // 95 %: the alert
  feed({rec(1, 100'000, kStart)});    // 1.05 MB: the pause
  ASSERT_EQ(count_of(eng_->events(), event_type::paused), 2u);

  ASSERT_TRUE(eventually(
      [&] {
        const auto st = out.stats();
        return st.size() == 1 && st[0].delivered == 2 && st[0].backlog == 0;
      },
      30s))
      << "delivered " << out.stats()[0].delivered << ", last error " << out.stats()[0].last_error
      << "\n"
      << rx.err();
  const auto st = out.stats()[0];
  EXPECT_GE(st.retried, 1u);  // the relay's first 451
  EXPECT_EQ(st.parked, 0u);

  const auto got = mails();
  ASSERT_EQ(got.size(), 2u);
  const std::string iccid = test_iccid_text(1);
  const std::string& alert = got[0];
  const std::string& paused = got[1];
  for (const std::string& m : got) {
    EXPECT_NE(m.find("X-Envelope-To: ops@example.com\r\n"), std::string::npos) << m;
    EXPECT_EQ(m.find("X-Envelope-To: nobody@example.com"), std::string::npos) << m;
    EXPECT_NE(m.find("From: simcap <simcap@example.com>\r\n"), std::string::npos) << m;
    EXPECT_NE(m.find("To: ops@example.com, nobody@example.com\r\n"), std::string::npos) << m;
    EXPECT_NE(m.find("Content-Type: text/plain"), std::string::npos) << m;
    EXPECT_NE(m.find("Product:      acme"), std::string::npos) << m;
    EXPECT_NE(m.find("SIM:          " + iccid), std::string::npos) << m;
    EXPECT_NE(m.find("Data limit:   1.00 MB (1000000 bytes)"), std::string::npos) << m;
  }
  EXPECT_NE(alert.find("Subject: [simcap] SIM " + iccid + " at 90% of its data limit (acme)"),
            std::string::npos)
      << alert;
  EXPECT_NE(alert.find("Usage:        0.95 MB (950000 bytes)"), std::string::npos) << alert;
  EXPECT_NE(paused.find("Subject: [simcap] SIM " + iccid + " paused (acme)"), std::string::npos)
      << paused;
  EXPECT_NE(paused.find("was paused: it reached its data limit"), std::string::npos) << paused;
  EXPECT_NE(paused.find("Usage:        1.05 MB (1050000 bytes)"), std::string::npos) << paused;
  out.stop();
}

TEST_F(OutboundEmail, ARefusedMailIsParkedWithTheRelaysReply) {
  child rx({"/usr/bin/python3", SIMCAP_SOURCE_DIR "/tests/support/smtp_receiver.py",
            (dir_ / "mail").string(), "--refuse", "gone@example.com"},
           dir_ / "rx.out", dir_ / "rx.err");
  const auto port = rx.wait_for_line("port ", 20s);
  ASSERT_TRUE(port) << rx.err();
  product_mailing("acme", {"gone@example.com"});
  sink_config mail;
  mail.name = "mail";
  mail.kind = sink_config::kind_t::email;
  mail.smtp = "127.0.0.1:" + *port;
  mail.from = "simcap@example.com";
  outbound::service out(*eng_, {mail});
  out.start();
  import("acme", {1});
  feed({rec(1, 1'100'000, kStart)});
  ASSERT_TRUE(eventually([&] { return out.stats()[0].parked == 2; }, 30s))
      << out.stats()[0].last_error;
  const auto dl = out.find("mail")->dead_letters();
  ASSERT_EQ(dl.size(), 2u);
  EXPECT_EQ(dl[0].status, 550u);
  EXPECT_NE(dl[0].answer.find("no such mailbox"), std::string::npos) << dl[0].answer;
  EXPECT_TRUE(mails().empty());
  out.stop();
}

}  // namespace
}  // namespace simcap::testing
