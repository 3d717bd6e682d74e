#include "config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace simcap {
namespace {

bool has_error(const std::vector<std::string>& errors, const std::string& key_prefix) {
  for (const auto& e : errors) {
    if (e.rfind(key_prefix, 0) == 0) return true;
  }
  return false;
}

TEST(Config, TheShippedConfigLoads) {
  std::filesystem::current_path(SIMCAP_SOURCE_DIR);  // as ./run.sh runs it
  auto cfg = load_config("config/simcapd.toml");
  ASSERT_TRUE(cfg) << (cfg ? "" : cfg.error().front());
  EXPECT_EQ(cfg->http, "127.0.0.1:7070");
  EXPECT_EQ(cfg->feed, "127.0.0.1:7071");
  EXPECT_EQ(cfg->engine.mb_bytes, 1'000'000u);
  EXPECT_EQ(cfg->engine.late_grace, std::chrono::hours(48));
  EXPECT_EQ(cfg->engine.future_skew, std::chrono::minutes(5));
  ASSERT_EQ(cfg->feeds.size(), 1u);
  EXPECT_EQ(cfg->feeds[0].name, "carrier-a");
  ASSERT_EQ(cfg->products.size(), 1u);
  EXPECT_EQ(cfg->products[0].settings.id, "acme");
  EXPECT_TRUE(cfg->products[0].iccids_file.has_value());
  ASSERT_EQ(cfg->tokens.size(), 2u);
  EXPECT_TRUE(cfg->tokens[0].admin);
  EXPECT_EQ(cfg->tokens[1].product, "acme");
}

TEST(Config, DefaultsWhenEmpty) {
  auto cfg = parse_config("", ".");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->engine.default_mb_limit, 5u);
  EXPECT_EQ(cfg->engine.alert_thresholds, std::vector<double>{0.9});
  EXPECT_EQ(cfg->ack_interval, std::chrono::milliseconds(200));
  EXPECT_EQ(cfg->engine.shards, 0u);
  EXPECT_EQ(cfg->http_nice, -5);
}

TEST(Config, HttpNice) {
  auto cfg = parse_config("[server]\nhttp_nice = 0\n", ".");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->http_nice, 0);
  auto bad = parse_config("[server]\nhttp_nice = -21\n", ".");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(has_error(bad.error(), "server.http_nice:"));
}

TEST(Config, EveryProblemIsReportedWithItsKey) {
  auto cfg = parse_config(R"(
[server]
http = "nonsense"
shards = -1
colour = "blue"
[limits]
late_grace = "two days"
alert_thresholds = [0.9, 0.5]
mb_bytes = "1e6"
[[feeds]]
name = "a"
[[products]]
default_mb_limit = 0
iccids_file = "/nonexistent/file.txt"
[[tokens]]
token = "x"
)",
                          ".");
  ASSERT_FALSE(cfg);
  const auto& e = cfg.error();
  EXPECT_TRUE(has_error(e, "server.http:"));
  EXPECT_TRUE(has_error(e, "server.shards:"));
  EXPECT_TRUE(has_error(e, "server.colour: unknown key"));
  EXPECT_TRUE(has_error(e, "limits.late_grace:"));
  EXPECT_TRUE(has_error(e, "limits.alert_thresholds:"));
  EXPECT_TRUE(has_error(e, "limits.mb_bytes:"));
  EXPECT_TRUE(has_error(e, "feeds[0].token:"));
  EXPECT_TRUE(has_error(e, "products[0].id:"));
  EXPECT_TRUE(has_error(e, "products[0].default_mb_limit:"));
  EXPECT_TRUE(has_error(e, "products[0].iccids_file:"));
  EXPECT_TRUE(has_error(e, "tokens[0].scope:"));
}

TEST(Config, SyntaxErrorNamesTheLine) {
  auto cfg = parse_config("[server\nhttp = 1", ".");
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error()[0].find("line 1"), std::string::npos);
}

TEST(Config, SplitsHostAndPort) {
  EXPECT_EQ(split_host_port("127.0.0.1:0")->second, 0);
  EXPECT_EQ(split_host_port("[::1]:7070")->first, "::1");
  EXPECT_FALSE(split_host_port("127.0.0.1"));
  EXPECT_FALSE(split_host_port("host:99999"));
}

TEST(Config, DurationsAndNumbersAreBounded) {
  for (const char* bad :
       {"[limits]\nfuture_skew = \"9223372036854775807\"\n",
        "[limits]\nlate_grace = \"8901000000000000000\"\n", "[limits]\nlate_grace = \"400d\"\n",
        "[limits]\nfuture_skew = \"2d\"\n", "[server]\ncheckpoint_interval = \"2h\"\n",
        "[factory_test]\nperiod = \"0s\"\n", "[limits]\nmax_record_bytes = 0\n",
        "[server]\ncheckpoint_stall_percent = 0\n", "[server]\ncheckpoint_stall_percent = 101\n"}) {
    auto cfg = parse_config(bad, ".");
    ASSERT_FALSE(cfg) << bad;
    EXPECT_EQ(cfg.error().size(), 1u) << bad;
  }
  EXPECT_FALSE(parse_duration("8901000000000000000"));
  EXPECT_FALSE(parse_duration("9223372036854775807"));
  EXPECT_EQ(parse_duration("36500d"), std::chrono::hours(24 * 36500));
  EXPECT_EQ(parse_config("", ".")->engine.checkpoint_stall_percent, 5u);
  auto ok = parse_config(
      "[server]\ncheckpoint_stall_percent = 100\n[limits]\nmax_record_bytes = 5000\n"
      "future_skew = \"10m\"\n",
      ".");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->engine.checkpoint_stall_percent, 100u);
  EXPECT_EQ(ok->engine.max_record_bytes, 5000u);
  EXPECT_EQ(ok->engine.future_skew, std::chrono::minutes(10));
}

TEST(Config, DedupMemoryIsASize) {
  EXPECT_EQ(parse_config("", ".")->engine.dedup_memory, 256u << 20);
  for (auto [text, bytes] :
       std::initializer_list<std::pair<const char*, std::uint64_t>>{{"\"256MB\"", 256ULL << 20},
                                                                    {"\"2GiB\"", 2ULL << 30},
                                                                    {"\"64M\"", 64ULL << 20},
                                                                    {"\"40000 K\"", 40000ULL << 10},
                                                                    {"33554432", 32ULL << 20}}) {
    auto cfg = parse_config(std::string("[limits]\ndedup_memory = ") + text + "\n", ".");
    ASSERT_TRUE(cfg) << text;
    EXPECT_EQ(cfg->engine.dedup_memory, bytes) << text;
  }
  for (const char* bad : {"\"lots\"", "\"12XB\"", "\"1MBB\"", "\"1MB\"", "-5", "\"2TB\"",
                          "\"99999999999999999999G\""}) {
    auto cfg = parse_config(std::string("[limits]\ndedup_memory = ") + bad + "\n", ".");
    ASSERT_FALSE(cfg) << bad;
    EXPECT_NE(cfg.error().front().find("limits.dedup_memory"), std::string::npos) << bad;
  }
}

// Found by fuzz_config (tests/fuzz/corpus/config/long-file-name.toml): a file name the system
// cannot look up (longer than a name may be) threw out of the loader.
TEST(Config, AFileNameTooLongToLookUpIsNotFoundNotAnException) {
  const std::string name(300, 'g');
  for (const std::string key :
       {"[tls]\ncert", "[[products]]\nid = \"a\"\niccids_file", "[billing]\nrates_file"}) {
    std::expected<daemon_config, std::vector<std::string>> cfg;
    ASSERT_NO_THROW(cfg = parse_config(key + " = \"" + name + "\"\n", ".")) << key;
    ASSERT_FALSE(cfg) << key;
    EXPECT_TRUE(std::any_of(cfg.error().begin(), cfg.error().end(),
                            [](const std::string& e) {
                              return e.find("not found") != std::string::npos ||
                                     e.find("cannot") != std::string::npos ||
                                     e.find("open") != std::string::npos;
                            }))
        << key << ": " << cfg.error().front();
  }
}

TEST(Config, EventRetentionByAgeAndCount) {
  const auto dflt = parse_config("", ".");
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->engine.events_retention, std::chrono::seconds(400 * 86400));
  EXPECT_EQ(dflt->engine.events_max, 100'000'000u);
  auto cfg = parse_config("[limits]\nevents_retention = \"90d\"\nevents_max = 5000000\n", ".");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->engine.events_retention, std::chrono::seconds(90 * 86400));
  EXPECT_EQ(cfg->engine.events_max, 5'000'000u);
  auto off = parse_config("[limits]\nevents_retention = \"0s\"\nevents_max = 0\n", ".");
  ASSERT_TRUE(off);
  EXPECT_EQ(off->engine.events_retention.count(), 0);
  EXPECT_EQ(off->engine.events_max, 0u);
  for (const char* bad : {"events_retention = \"forever\"", "events_retention = \"36501d\"",
                          "events_max = -1", "events_max = 5000",  // below events_in_memory
                          "events_in_memory = 20000\nevents_max = 10000"}) {
    auto c = parse_config(std::string("[limits]\n") + bad + "\n", ".");
    ASSERT_FALSE(c) << bad;
    EXPECT_TRUE(has_error(c.error(), std::string(bad).find("events_max") != std::string::npos
                                         ? "limits.events_max"
                                         : "limits.events_retention"))
        << bad;
  }
}

TEST(Config, ThresholdsThatRoundToTheSamePermilleAreRefused) {
  auto cfg = parse_config("[limits]\nalert_thresholds = [0.9, 0.9001]\n", ".");
  ASSERT_FALSE(cfg);
  EXPECT_TRUE(has_error(cfg.error(), "limits.alert_thresholds"));
}

TEST(Config, ProductCountryIsAnIsoCode) {
  auto cfg = parse_config("[[products]]\nid = \"a\"\ncountry = \"XX\"\n", ".");
  ASSERT_FALSE(cfg);
  EXPECT_TRUE(has_error(cfg.error(), "products[0].country"));
  auto ok = parse_config("[[products]]\nid = \"a\"\ncountry = \"DE\"\n", ".");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->products[0].settings.country, "DE");
  EXPECT_GT(ok->engine.countries.size(), 200u);  // from iso-codes
}

}  // namespace
}  // namespace simcap

namespace simcap {
namespace {

TEST(Config, SinksAreReadWithTheirDefaults) {
  auto cfg = parse_config(R"(
[[sinks]]
name = "carrier"
kind = "carrier"
url = "https://mvno.example/network/sims/events"
secret = "s"

[[sinks]]
name = "hooks"
kind = "webhook"
url = "http://127.0.0.1:9000/in"
types = ["paused", "alert"]
products = ["acme"]
batch = 50
max_in_flight = 4
timeout = "2s"
retry_min = "100ms"
retry_max = "1m"
start = "oldest"
)",
                          ".");
  ASSERT_TRUE(cfg) << cfg.error().front();
  ASSERT_EQ(cfg->sinks.size(), 2u);
  const auto& c = cfg->sinks[0];
  EXPECT_EQ(c.kind, sink_config::kind_t::carrier);
  EXPECT_EQ(c.batch, 1u);
  EXPECT_EQ(c.max_in_flight, 64u);
  EXPECT_EQ(c.timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.retry_min, std::chrono::seconds(1));
  EXPECT_EQ(c.retry_max, std::chrono::minutes(5));
  EXPECT_FALSE(c.start_oldest);
  const auto& h = cfg->sinks[1];
  EXPECT_EQ(h.types, (std::vector<event_type>{event_type::paused, event_type::alert}));
  EXPECT_EQ(h.products, std::vector<std::string>{"acme"});
  EXPECT_EQ(h.batch, 50u);
  EXPECT_EQ(h.max_in_flight, 4u);
  EXPECT_EQ(h.retry_min, std::chrono::milliseconds(100));
  EXPECT_TRUE(h.start_oldest);
}

TEST(Config, EverySinkProblemNamesItsKey) {
  auto cfg = parse_config(R"(
[[sinks]]
kind = "pigeon"
url = "ftp://x"
types = ["paused", "nope"]
batch = 0
retry_min = "10s"
retry_max = "1s"
start = "yesterday"
colour = "red"

[[sinks]]
name = "a"
kind = "webhook"

[[sinks]]
name = "a"
kind = "email"
smtp = "127.0.0.1:25"
url = "http://x/"
batch = 5

[[sinks]]
name = "b"
kind = "webhook"
url = "http://x/"
smtp = "127.0.0.1:25"

[[products]]
id = "p"
alert_emails = ["ops@example.com", "not an address"]
)",
                          ".");
  ASSERT_FALSE(cfg);
  const auto& e = cfg.error();
  for (const char* key :
       {"sinks[0].name", "sinks[0].kind", "sinks[0].url", "sinks[0].types", "sinks[0].batch",
        "sinks[0].retry_max", "sinks[0].start", "sinks[0].colour", "sinks[1].url", "sinks[2].name",
        "sinks[2].from", "sinks[2].url", "sinks[2].batch", "sinks[3].smtp",
        "products[0].alert_emails"}) {
    EXPECT_TRUE(has_error(e, key)) << key;
  }
  EXPECT_FALSE(has_error(e, "sinks[2].kind"));
}

TEST(Config, TlsIsReadWithItsFilesAndFeedNames) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("simcap-config-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* f : {"cert.pem", "key.pem", "ca.pem"}) std::ofstream(dir / f) << "x\n";
  // Relative names are the config file's directory's; both ports speak TLS by default.
  auto cfg = parse_config(R"(
[tls]
cert = "cert.pem"
key = "key.pem"
client_ca = "ca.pem"

[[feeds]]
name = "carrier-a"
token = "t"
cert_cn = "carrier-a.example"
)",
                          dir);
  ASSERT_TRUE(cfg) << cfg.error().front();
  EXPECT_TRUE(cfg->tls.http);
  EXPECT_TRUE(cfg->tls.feed);
  EXPECT_EQ(cfg->tls.cert, dir / "cert.pem");
  EXPECT_EQ(cfg->tls.client_ca, dir / "ca.pem");
  EXPECT_EQ(cfg->feeds.at(0).cert_cn, "carrier-a.example");
  // No [tls]: both plain.
  auto plain = parse_config("", dir);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->tls.any());

  auto bad = parse_config(R"(
[tls]
key = "missing.pem"
http = "yes"
colour = 1

[[feeds]]
name = "carrier-a"
token = "t"
cert_cn = "carrier-a.example"
)",
                          dir);
  ASSERT_FALSE(bad);
  for (const char* key : {"tls.cert", "tls.key", "tls.http", "tls.colour", "feeds[0].cert_cn"})
    EXPECT_TRUE(has_error(bad.error(), key)) << key;
  auto ca_without_feed = parse_config(R"(
[tls]
cert = "cert.pem"
key = "key.pem"
feed = false
client_ca = "ca.pem"
)",
                                      dir);
  ASSERT_FALSE(ca_without_feed);
  EXPECT_TRUE(has_error(ca_without_feed.error(), "tls.client_ca"));
  std::filesystem::remove_all(dir);
}

TEST(Config, EmailSinkAndAlertEmails) {
  auto cfg = parse_config(R"(
[[sinks]]
name = "mail"
kind = "email"
smtp = "127.0.0.1:2525"
from = "simcap@example.com"

[[products]]
id = "acme"
alert_emails = ["ops@example.com", "fleet@example.org"]
)",
                          ".");
  ASSERT_TRUE(cfg) << (cfg ? "" : cfg.error().front());
  ASSERT_EQ(cfg->sinks.size(), 1u);
  EXPECT_EQ(cfg->sinks[0].kind, sink_config::kind_t::email);
  EXPECT_EQ(cfg->sinks[0].smtp, "127.0.0.1:2525");
  EXPECT_EQ(cfg->sinks[0].from, "simcap@example.com");
  ASSERT_EQ(cfg->products.size(), 1u);
  EXPECT_EQ(cfg->products[0].settings.alert_emails,
            (std::vector<std::string>{"ops@example.com", "fleet@example.org"}));
}

TEST(Config, PooledProducts) {
  auto cfg = parse_config(R"(
[[products]]
id = "free"
pool_mb = 100
pool_action = "pause"

[[products]]
id = "basic"
pool_mb = 540
pool_price = "29.00"
)",
                          ".");
  ASSERT_TRUE(cfg) << (cfg ? "" : cfg.error().front());
  ASSERT_EQ(cfg->products.size(), 2u);
  EXPECT_EQ(cfg->products[0].settings.pool_mb, 100u);
  EXPECT_EQ(cfg->products[0].settings.pool_action, pool_action::pause);
  EXPECT_FALSE(cfg->products[0].settings.pool_price);
  EXPECT_EQ(cfg->products[1].settings.pool_price, 29'000'000);
  EXPECT_FALSE(cfg->products[1].settings.pool_action);  // overage, the default
  auto bad = parse_config(R"(
[[products]]
id = "p"
pool_mb = -1
pool_action = "stop"
pool_price = "cheap"
)",
                          ".");
  ASSERT_FALSE(bad);
  for (const char* key :
       {"products[0].pool_mb", "products[0].pool_action", "products[0].pool_price"})
    EXPECT_TRUE(has_error(bad.error(), key)) << key;
}

}  // namespace
}  // namespace simcap
