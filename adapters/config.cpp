#include "config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "countries.hpp"
#include "rates.hpp"
#include "toml_reader.hpp"

namespace simcap {

namespace {
// Whether a file is there; a name the system cannot even look up (too long, a bad component)
// is not, rather than an exception out of the loader.
bool file_exists(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}
}  // namespace

std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string host(s.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  std::string_view port = s.substr(colon + 1);
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p > 65535) return std::nullopt;
  return std::pair{host, static_cast<std::uint16_t>(p)};
}

std::expected<daemon_config, std::vector<std::string>> parse_config(
    std::string_view text, const std::filesystem::path& base_dir) {
  std::vector<std::string> errors;
  toml::table root;
  if (auto why = parse_toml(text, "config", root)) return std::unexpected(std::vector{*why});
  toml_reader rd(errors);
  daemon_config cfg;
  rd.only(root, "",
          {"server", "tls", "limits", "engine", "factory_test", "billing", "tokens", "feeds",
           "products", "sinks"});

  using std::chrono::duration_cast;
  using std::chrono::hours;
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  using std::chrono::seconds;
  if (const toml::table* s = root["server"].as_table()) {
    rd.only(*s, "server.",
            {"http", "feed", "data_dir", "shards", "io_threads", "ack_interval",
             "checkpoint_interval", "checkpoint_stall_percent", "http_nice", "max_long_polls",
             "max_connections", "deadletter_max_bytes", "deadletter_files"});
    rd.address(*s, "server.", "http", cfg.http);
    rd.address(*s, "server.", "feed", cfg.feed);
    if (auto d = rd.get<std::string>(*s, "server.", "data_dir")) cfg.data_dir = *d;
    if (auto n = rd.number(*s, "server.", "shards", 0, 256, "0 (one per core) to 256")) {
      cfg.engine.shards = static_cast<unsigned>(*n);
    }
    if (auto n = rd.number(*s, "server.", "io_threads", 1, 64, "1 to 64"))
      cfg.io_threads = static_cast<unsigned>(*n);
    if (auto n = rd.number(*s, "server.", "http_nice", -20, 19, "-20 to 19"))
      cfg.http_nice = static_cast<int>(*n);
    if (auto n = rd.number(*s, "server.", "max_long_polls", 1, 100'000, "1 to 100000")) {
      cfg.max_long_polls = static_cast<std::size_t>(*n);
    }
    if (auto n = rd.number(*s, "server.", "max_connections", 1, 1'000'000, "1 to 1000000"))
      cfg.max_connections = static_cast<std::size_t>(*n);
    if (auto n = rd.number(*s, "server.", "deadletter_max_bytes", 65'536, std::int64_t{1} << 50,
                           "65536 to 2^50")) {
      cfg.dead_letters.max_bytes = static_cast<std::uint64_t>(*n);
    }
    if (auto n = rd.number(*s, "server.", "deadletter_files", 0, 1000, "0 to 1000"))
      cfg.dead_letters.files = static_cast<unsigned>(*n);
    // 0: no store, state in memory only.
    if (auto d = rd.duration(*s, "server.", "checkpoint_interval", milliseconds(0), hours(1),
                             "0s to 1h")) {
      cfg.engine.checkpoint_interval = *d;
    }
    if (auto n = rd.number(*s, "server.", "checkpoint_stall_percent", 1, 100, "1 to 100"))
      cfg.engine.checkpoint_stall_percent = static_cast<unsigned>(*n);
    if (auto d = rd.duration(*s, "server.", "ack_interval", milliseconds(1), seconds(60),
                             "1ms to 60s")) {
      cfg.ack_interval = *d;
    }
  } else if (root.contains("server")) {
    rd.error("server", "must be a table");
  }

  // A relative file name is the working directory's, else the config file's directory's when
  // it is there.
  const auto config_file = [&](const std::string& name) {
    std::filesystem::path p = name;
    if (p.is_relative() && !file_exists(p) && file_exists(base_dir / p)) p = base_dir / p;
    return p;
  };
  if (const toml::table* t = root["tls"].as_table()) {
    rd.only(*t, "tls.", {"cert", "key", "http", "feed", "client_ca"});
    // With a [tls] table both ports speak TLS unless one is turned off.
    cfg.tls.http = rd.get<bool>(*t, "tls.", "http").value_or(true);
    cfg.tls.feed = rd.get<bool>(*t, "tls.", "feed").value_or(true);
    for (auto [key, out] : {std::pair{"cert", &cfg.tls.cert}, std::pair{"key", &cfg.tls.key},
                            std::pair{"client_ca", &cfg.tls.client_ca}}) {
      auto f = rd.get<std::string>(*t, "tls.", key);
      if (!f || f->empty()) {
        if (cfg.tls.any() && std::string_view(key) != "client_ca")
          rd.error(std::string("tls.") + key, "is required when a port speaks TLS");
        continue;
      }
      *out = config_file(*f);
      if (!file_exists(*out)) rd.error(std::string("tls.") + key, "file not found: " + *f);
    }
    if (!cfg.tls.client_ca.empty() && !cfg.tls.feed)
      rd.error("tls.client_ca",
               "needs feed = true (client certificates are asked on the feed port)");
  } else if (root.contains("tls")) {
    rd.error("tls", "must be a table");
  }

  if (const toml::table* l = root["limits"].as_table()) {
    rd.only(*l, "limits.",
            {"mb_bytes", "default_mb_limit", "alert_thresholds", "late_grace", "future_skew",
             "dedup_window", "dedup_memory", "max_record_bytes", "events_in_memory",
             "events_retention", "events_max"});
    if (auto n = rd.number(*l, "limits.", "mb_bytes", 1, 1'000'000'000'000,
                           "1 to 1000000000000 bytes")) {
      cfg.engine.mb_bytes = static_cast<std::uint64_t>(*n);
    }
    if (auto n = rd.number(*l, "limits.", "default_mb_limit", 1, kMaxMbLimit, "1 to 100000000")) {
      cfg.engine.default_mb_limit = static_cast<std::uint32_t>(*n);
    }
    if (auto t = rd.thresholds(*l, "limits.")) cfg.engine.alert_thresholds = *t;
    if (auto d = rd.duration(*l, "limits.", "late_grace", milliseconds(0), hours(24 * 31),
                             "0s to 31d")) {
      cfg.engine.late_grace = duration_cast<seconds>(*d);
    }
    if (auto d =
            rd.duration(*l, "limits.", "future_skew", milliseconds(0), hours(24), "0s to 24h")) {
      cfg.engine.future_skew = duration_cast<seconds>(*d);
    }
    if (auto d = rd.duration(*l, "limits.", "dedup_window", milliseconds(0), hours(24 * 366),
                             "0s to 366d")) {
      cfg.engine.dedup_window = duration_cast<seconds>(*d);
    }
    if (auto n = rd.size(*l, "limits.", "dedup_memory", 16ULL << 20, 1ULL << 40, "16MB to 1TB"))
      cfg.engine.dedup_memory = *n;
    if (auto n = rd.number(*l, "limits.", "max_record_bytes", 1, std::int64_t{1} << 50,
                           "1 to 1125899906842624 (1 PiB)")) {
      cfg.engine.max_record_bytes = static_cast<std::uint64_t>(*n);
    }
    if (auto n = rd.number(*l, "limits.", "events_in_memory", 1000, 100'000'000,
                           "1000 to 100000000 events")) {
      cfg.engine.events_in_memory = static_cast<std::size_t>(*n);
    }
    if (auto d = rd.duration(*l, "limits.", "events_retention", milliseconds(0), hours(24 * 36500),
                             "0s (no age limit) to 36500d")) {
      cfg.engine.events_retention = duration_cast<seconds>(*d);
    }
    if (auto n = rd.number(*l, "limits.", "events_max", 0, 1'000'000'000'000,
                           "0 (no count limit) to 1000000000000 events")) {
      cfg.engine.events_max = static_cast<std::uint64_t>(*n);
      if (cfg.engine.events_max != 0 && cfg.engine.events_max < cfg.engine.events_in_memory) {
        rd.error("limits.events_max", "must be 0 or at least events_in_memory (" +
                                          std::to_string(cfg.engine.events_in_memory) + ")");
      }
    }
  } else if (root.contains("limits")) {
    rd.error("limits", "must be a table");
  }

  if (const toml::table* b = root["billing"].as_table()) {
    rd.only(*b, "billing.", {"rates_file", "unused_after"});
    if (auto f = rd.get<std::string>(*b, "billing.", "rates_file")) {
      // Relative to the config file's folder (then to the working directory).
      std::filesystem::path p(*f);
      if (p.is_relative() && (file_exists(base_dir / p) || !file_exists(p))) p = base_dir / p;
      auto currencies = load_iso4217();
      if (!currencies) rd.error("billing.rates_file", currencies.error());
      auto rates =
          load_rates(p, cfg.engine.countries, currencies.value_or(std::vector<std::string>{}));
      if (!rates) {
        for (const std::string& e : rates.error())
          rd.error("billing.rates_file", p.string() + ": " + e);
      } else {
        cfg.engine.rates = std::move(*rates);
        cfg.rates_file = p;
      }
    }
    if (auto d = rd.duration(*b, "billing.", "unused_after", std::chrono::hours(1),
                             std::chrono::hours(24 * 31), "1h to 31d"))
      cfg.engine.unused_after = duration_cast<seconds>(*d);
  } else if (root.contains("billing")) {
    rd.error("billing", "must be a table");
  }

  if (const toml::table* e = root["engine"].as_table()) {
    rd.only(*e, "engine.", {"closed_periods_kept", "expected_sims"});
    if (auto n = rd.number(*e, "engine.", "closed_periods_kept", 1, 1200, "1 to 1200")) {
      cfg.engine.closed_periods_kept = static_cast<std::size_t>(*n);
    }
    if (auto n = rd.number(*e, "engine.", "expected_sims", 0, 1'000'000'000, "0 to 1000000000")) {
      cfg.engine.expected_sims = static_cast<std::size_t>(*n);
    }
  }

  if (const toml::table* f = root["factory_test"].as_table()) {
    rd.only(*f, "factory_test.", {"data_bytes", "sms", "period"});
    if (auto n = rd.number(*f, "factory_test.", "data_bytes", 1, 1'000'000'000'000,
                           "1 to 1000000000000")) {
      cfg.engine.factory_test_bytes = static_cast<std::uint64_t>(*n);
    }
    if (auto n = rd.number(*f, "factory_test.", "sms", 1, 1'000'000, "1 to 1000000")) {
      cfg.engine.factory_test_sms = static_cast<std::uint32_t>(*n);
    }
    if (auto d =
            rd.duration(*f, "factory_test.", "period", seconds(1), hours(24 * 366), "1s to 366d")) {
      cfg.engine.factory_test_period = duration_cast<seconds>(*d);
    }
  }

  auto countries = load_iso3166();
  if (countries) {
    cfg.engine.countries = std::move(*countries);
  } else {
    rd.error("countries", countries.error());
  }

  auto tables_of = [&](const char* name) { return rd.tables(root, "", name); };

  for (auto& [prefix, t] : tables_of("tokens")) {
    rd.only(*t, prefix, {"token", "scope", "product"});
    token_config tc;
    auto tok = rd.get<std::string>(*t, prefix, "token");
    if (!tok || tok->empty())
      rd.error(prefix + "token", "is required");
    else
      tc.token = *tok;
    auto scope = rd.get<std::string>(*t, prefix, "scope");
    auto product = rd.get<std::string>(*t, prefix, "product");
    if (scope && *scope == "admin" && !product) {
      tc.admin = true;
    } else if (product && !scope) {
      tc.product = *product;
    } else {
      rd.error(prefix + "scope", "set scope = \"admin\" or product = \"ID\" (one of them)");
    }
    cfg.tokens.push_back(std::move(tc));
  }

  std::set<std::string> feed_names;
  for (auto& [prefix, t] : tables_of("feeds")) {
    rd.only(*t, prefix, {"name", "token", "cert_cn"});
    feed_config fc;
    if (auto cn = rd.get<std::string>(*t, prefix, "cert_cn")) {
      if (cfg.tls.client_ca.empty())
        rd.error(prefix + "cert_cn", "needs [tls] client_ca (client certificates)");
      else if (cn->empty())
        rd.error(prefix + "cert_cn", "must not be empty");
      fc.cert_cn = *cn;
    }
    auto name = rd.get<std::string>(*t, prefix, "name");
    auto tok = rd.get<std::string>(*t, prefix, "token");
    if (!name || name->empty())
      rd.error(prefix + "name", "is required");
    else if (!feed_names.insert(*name).second)
      rd.error(prefix + "name", "duplicate feed name");
    if (!tok || tok->empty()) rd.error(prefix + "token", "is required");
    fc.name = name.value_or("");
    fc.token = tok.value_or("");
    cfg.feeds.push_back(std::move(fc));
  }

  std::set<std::string> product_ids;
  for (auto& [prefix, t] : tables_of("products")) {
    rd.only(*t, prefix,
            {"id", "default_mb_limit", "country", "iccids_file", "alert_thresholds", "alert_emails",
             "pool_mb", "pool_action", "pool_price"});
    product_config pc;
    auto id = rd.get<std::string>(*t, prefix, "id");
    if (!id || id->empty())
      rd.error(prefix + "id", "is required");
    else if (auto why = check_product_id(*id))
      rd.error(prefix + "id", *why);
    else if (!product_ids.insert(*id).second)
      rd.error(prefix + "id", "duplicate product id");
    pc.settings.id = id.value_or("");
    if (auto n = rd.number(*t, prefix, "default_mb_limit", 1, kMaxMbLimit, "1 to 100000000")) {
      pc.settings.default_mb_limit = static_cast<std::uint32_t>(*n);
    }
    if (auto c = rd.get<std::string>(*t, prefix, "country")) {
      const auto& known = cfg.engine.countries;
      if (c->size() != 2 ||
          (!known.empty() && !std::binary_search(known.begin(), known.end(), *c))) {
        rd.error(prefix + "country", "must be an ISO 3166-1 alpha-2 code, e.g. \"US\"");
      } else {
        pc.settings.country = *c;
      }
    }
    pc.settings.alert_thresholds = rd.thresholds(*t, prefix);
    if (auto emails = rd.strings(*t, prefix, "alert_emails", "e-mail addresses")) {
      if (auto why = check_alert_emails(*emails))
        rd.error(prefix + "alert_emails", *why);
      else
        pc.settings.alert_emails = std::move(*emails);
    }
    if (auto n = rd.number(*t, prefix, "pool_mb", 0, 1'000'000'000, "0 to 1000000000")) {
      pc.settings.pool_mb = static_cast<std::uint64_t>(*n);
    }
    if (auto a = rd.get<std::string>(*t, prefix, "pool_action")) {
      if (auto action = pool_action_of(*a))
        pc.settings.pool_action = *action;
      else
        rd.error(prefix + "pool_action", "must be \"overage\" or \"pause\"");
    }
    if (auto price = rd.get<std::string>(*t, prefix, "pool_price")) {
      if (auto m = parse_money(*price))
        pc.settings.pool_price = *m;
      else
        rd.error(prefix + "pool_price",
                 "must be decimal text with at most 6 decimals, e.g. \"9.90\"");
    }
    if (auto f = rd.get<std::string>(*t, prefix, "iccids_file")) {
      const std::filesystem::path p = config_file(*f);
      if (!file_exists(p)) rd.error(prefix + "iccids_file", "file not found: " + *f);
      pc.iccids_file = p;
    }
    cfg.products.push_back(std::move(pc));
  }

  std::set<std::string> sink_names;
  for (auto& [prefix, t] : tables_of("sinks")) {
    rd.only(*t, prefix,
            {"name", "kind", "url", "secret", "types", "products", "batch", "max_in_flight",
             "timeout", "retry_min", "retry_max", "start", "ca_file", "smtp", "from"});
    sink_config sc;
    auto name = rd.get<std::string>(*t, prefix, "name");
    if (!name || name->empty())
      rd.error(prefix + "name", "is required");
    else if (name->size() > 64 || name->find_first_of("/ \t\n") != std::string::npos)
      rd.error(prefix + "name", "must be 1 to 64 characters without spaces or '/'");
    else if (!sink_names.insert(*name).second)
      rd.error(prefix + "name", "duplicate sink name");
    sc.name = name.value_or("");
    const auto kind = rd.get<std::string>(*t, prefix, "kind");
    if (!kind) {
      rd.error(prefix + "kind", "is required: \"carrier\", \"webhook\" or \"email\"");
    } else if (*kind == "carrier") {
      sc.kind = sink_config::kind_t::carrier;
    } else if (*kind == "webhook") {
      sc.kind = sink_config::kind_t::webhook;
    } else if (*kind == "email") {
      sc.kind = sink_config::kind_t::email;
    } else {
      rd.error(prefix + "kind", "must be \"carrier\", \"webhook\" or \"email\"");
    }
    const bool email = sc.kind == sink_config::kind_t::email;
    if (auto u = rd.get<std::string>(*t, prefix, "url")) {
      if (email)
        rd.error(prefix + "url", "is for carrier and webhook sinks (an email sink has smtp)");
      else if (!u->starts_with("http://") && !u->starts_with("https://"))
        rd.error(prefix + "url", "must be an http:// or https:// URL");
      sc.url = *u;
    } else if (kind && !email) {
      rd.error(prefix + "url", "is required");
    }
    if (email) {
      rd.address(*t, prefix, "smtp", sc.smtp);
      if (!t->contains("smtp")) rd.error(prefix + "smtp", "is required: the relay's HOST:PORT");
      if (auto f = rd.get<std::string>(*t, prefix, "from")) {
        if (check_alert_emails({*f}))
          rd.error(prefix + "from", "must be an e-mail address, e.g. \"simcap@example.com\"");
        sc.from = *f;
      } else {
        rd.error(prefix + "from", "is required: the sender's address");
      }
      if (t->contains("batch")) rd.error(prefix + "batch", "email sinks send one mail an event");
    } else {
      for (const char* key : {"smtp", "from"}) {
        if (t->contains(key)) rd.error(prefix + key, "is for email sinks");
      }
    }
    sc.secret = rd.get<std::string>(*t, prefix, "secret").value_or("");
    if (const toml::node* n = t->get("types")) {
      const toml::array* a = n->as_array();
      bool ok = a != nullptr;
      for (std::size_t i = 0; ok && i < a->size(); ++i) {
        auto v = (*a)[i].value<std::string>();
        std::optional<event_type> type;
        for (int k = 0; v && k < static_cast<int>(event_type::kCount); ++k) {
          if (*v == to_string(static_cast<event_type>(k))) type = static_cast<event_type>(k);
        }
        if (!type) {
          rd.error(prefix + "types", v ? "unknown event type \"" + *v + "\""
                                       : std::string("must be an array of event types"));
          ok = false;
        } else {
          sc.types.push_back(*type);
        }
      }
      if (a == nullptr) rd.error(prefix + "types", "must be an array of event types");
    }
    if (auto ps = rd.strings(*t, prefix, "products", "product ids")) sc.products = std::move(*ps);
    if (auto n = rd.number(*t, prefix, "batch", 1, 1000, "1 to 1000"))
      sc.batch = static_cast<unsigned>(*n);
    if (auto n = rd.number(*t, prefix, "max_in_flight", 1, 1024, "1 to 1024"))
      sc.max_in_flight = static_cast<unsigned>(*n);
    if (auto d = rd.duration(*t, prefix, "timeout", milliseconds(10), minutes(10), "10ms to 10m"))
      sc.timeout = *d;
    if (auto d = rd.duration(*t, prefix, "retry_min", milliseconds(1), hours(1), "1ms to 1h"))
      sc.retry_min = *d;
    if (auto d = rd.duration(*t, prefix, "retry_max", milliseconds(1), hours(24), "1ms to 24h"))
      sc.retry_max = *d;
    if (sc.retry_max < sc.retry_min) rd.error(prefix + "retry_max", "must be at least retry_min");
    if (auto st = rd.get<std::string>(*t, prefix, "start")) {
      if (*st == "oldest")
        sc.start_oldest = true;
      else if (*st != "now")
        rd.error(prefix + "start", "must be \"now\" or \"oldest\"");
    }
    if (auto f = rd.get<std::string>(*t, prefix, "ca_file")) {
      const std::filesystem::path p = config_file(*f);
      if (!file_exists(p)) rd.error(prefix + "ca_file", "file not found: " + *f);
      sc.ca_file = p.string();
    }
    cfg.sinks.push_back(std::move(sc));
  }

  if (!errors.empty()) return std::unexpected(std::move(errors));
  return cfg;
}

std::expected<daemon_config, std::vector<std::string>> load_config(
    const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::unexpected(std::vector<std::string>{"config: cannot read " + file.string()});
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), file.parent_path());
}

}  // namespace simcap
