#include "daemon.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <array>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "countries.hpp"
#include "http/metrics.hpp"
#include "networks.hpp"
#include "simcap/iccid_list.hpp"

namespace simcap {

namespace asio = boost::asio;

namespace {

// Both ports' connections at their caps, the store's files and the rest: the soft open-file
// limit is raised to that (up to the hard limit) so that running out of descriptors is the
// caps' doing, not a failed store write.
void raise_open_files(std::size_t max_connections) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = static_cast<rlim_t>(2 * max_connections + 4096);
  if (lim.rlim_cur >= want) return;
  const rlim_t old = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  if (lim.rlim_cur > old && ::setrlimit(RLIMIT_NOFILE, &lim) != 0) lim.rlim_cur = old;
  if (lim.rlim_cur < want) {
    spdlog::warn(
        "open files: limit {} (hard {}) is below the {} that max_connections {} on two "
        "ports needs; raise it (systemd LimitNOFILE=) or lower max_connections",
        lim.rlim_cur, lim.rlim_max, want, max_connections);
  } else if (lim.rlim_cur != old) {
    spdlog::info("open files: limit raised from {} to {}", old, lim.rlim_cur);
  }
}

asio::ip::tcp::endpoint endpoint_of(const std::string& key, const std::string& addr) {
  auto hp = split_host_port(addr);
  if (!hp) throw std::runtime_error(key + ": must be ADDRESS:PORT, got " + addr);
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first == "localhost" ? "127.0.0.1" : hp->first, ec);
  if (ec) throw std::runtime_error(key + ": not an IP address: " + hp->first);
  return {ip, hp->second};
}

// Logs events: each type at most 10 lines a second, then a count of what was left out, so that
// a burst of alerts cannot hide the pauses behind it.
class event_logger {
 public:
  explicit event_logger(engine& e) : eng_(e) {}
  void operator()(const event& ev) {
    if (ev.type == event_type::activated || ev.type == event_type::late_adjustment) return;
    auto now = std::chrono::steady_clock::now();
    if (now - window_ > std::chrono::seconds(1)) {
      for (std::size_t t = 0; t < suppressed_.size(); ++t) {
        if (suppressed_[t] > 0) {
          spdlog::info("... and {} more {} events", suppressed_[t],
                       to_string(static_cast<event_type>(t)));
        }
      }
      window_ = now;
      logged_.fill(0);
      suppressed_.fill(0);
    }
    auto t = static_cast<std::size_t>(ev.type);
    if (++logged_[t] > 10) {
      ++suppressed_[t];
      return;
    }
    if (ev.type == event_type::period_closed) {
      spdlog::info("event {} period_closed product={} period_start={} usage_bytes={}", ev.id,
                   eng_.product_name(ev.product), format_rfc3339(ev.period_start), ev.usage_bytes);
      return;
    }
    spdlog::info("event {} {} iccid={} product={} reason={} usage_bytes={} limit_bytes={}", ev.id,
                 to_string(ev.type), iccid::from_key(ev.sim).str(), eng_.product_name(ev.product),
                 reason_text(ev), ev.usage_bytes, ev.limit_bytes);
  }

 private:
  engine& eng_;
  std::chrono::steady_clock::time_point window_{};
  std::array<int, static_cast<std::size_t>(event_type::kCount)> logged_{};
  std::array<int, static_cast<std::size_t>(event_type::kCount)> suppressed_{};
};

}  // namespace

daemon::daemon(daemon_config cfg, bool simulated_clock)
    : cfg_(std::move(cfg)), simulated_(simulated_clock) {
  std::error_code ec;
  std::filesystem::create_directories(cfg_.data_dir, ec);
  if (ec)
    throw std::runtime_error("data_dir: cannot create " + cfg_.data_dir.string() + ": " +
                             ec.message());
  if (simulated_clock) {
    clock_ = std::make_unique<manual_clock>(real_clock().now());
  } else {
    clock_ = std::make_unique<real_clock>();
  }
  raise_open_files(cfg_.max_connections);
  // The certificate and key are read now: a file that does not load stops the start.
  if (cfg_.tls.http)
    http_tls_ = std::make_shared<tls_server_context>(tls_files{cfg_.tls.cert, cfg_.tls.key, {}});
  if (cfg_.tls.feed) {
    feed_tls_ = std::make_shared<tls_server_context>(
        tls_files{cfg_.tls.cert, cfg_.tls.key, cfg_.tls.client_ca});
  }
  dead_letters_ =
      std::make_unique<dead_letter_file>(dead_letter_path().string(), cfg_.dead_letters);
  engine_options eo = cfg_.engine;
  if (eo.checkpoint_interval.count() > 0) eo.store_dir = (cfg_.data_dir / "store").string();
  eo.resume_clock = simulated_clock;  // the simulated time goes on where it was
  if (eo.countries.empty()) {
    auto countries = load_iso3166();
    if (!countries) throw std::runtime_error("countries: " + countries.error());
    eo.countries = std::move(*countries);
  }
  if (eo.rates) {
    // Visited networks -> countries for the roaming zones, read once (Debian's
    // mobile-broadband-provider-info), with the rate table's [mcc] overrides.
    auto nets = load_service_providers(kServiceProvidersFile, eo.countries);
    if (!nets) throw std::runtime_error("networks: " + nets.error());
    eo.networks = std::make_shared<const network_countries>(*nets, eo.rates->mcc);
    spdlog::info("rates: {} zones, {} volume tiers from {}; {} networks from {}",
                 eo.rates->zones.size(), eo.rates->tiers.size(),
                 cfg_.rates_file ? cfg_.rates_file->string() : std::string("?"),
                 eo.networks->networks(), kServiceProvidersFile);
  }
  engine_ = std::make_unique<engine>(std::move(eo), *clock_, *dead_letters_);
}

daemon::~daemon() { stop(); }

void daemon::load_products() {
  if (auto why = engine_->store_error()) {
    // Nothing can be made durable now: the products and SIMs the store holds are used as they
    // are, and the config's are applied at the next start that can write.
    spdlog::warn("products of the config not applied: the store cannot write ({})", *why);
    return;
  }
  for (const product_config& p : cfg_.products) {
    auto r = engine_->put_product(p.settings);
    if (!r) throw std::runtime_error("products: " + p.settings.id + ": " + r.error().message);
    if (!p.iccids_file) continue;
    std::ifstream in(*p.iccids_file);
    if (!in) throw std::runtime_error("products: cannot read " + p.iccids_file->string());
    std::stringstream ss;
    ss << in.rdbuf();
    iccid_list list = parse_iccid_list(ss.str());
    for (const auto& bad : list.invalid) {
      spdlog::warn("{}:{}: {} ({})", p.iccids_file->string(), bad.line, bad.reason, bad.value);
    }
    // At every start: SIMs the store knows (released ones too) are left as they are.
    import_options how;
    how.only_new = true;
    auto imported = engine_->import_sims(p.settings.id, list.ids, how);
    if (!imported)
      throw std::runtime_error("products: " + p.settings.id + ": " + imported.error().message);
    spdlog::info("product {}: {} SIMs imported, {} already present, {} refused, {} invalid lines",
                 p.settings.id, imported->imported, imported->already_present,
                 imported->refused.size(), list.invalid.size());
  }
}

void daemon::start() {
  if (started_) return;
  logger_listener_ = engine_->events().add_listener(event_logger(*engine_));
  const auto t0 = std::chrono::steady_clock::now();
  engine_->start();  // recovers the store first
  if (engine_->durable()) {
    engine_stats st = engine_->stats();
    std::size_t sims = 0;
    for (auto n : st.sims_by_state) sims += n;
    spdlog::info("recovered {} SIMs and {} events from {} in {:.3f} s", sims,
                 engine_->events().last_id(), (cfg_.data_dir / "store").string(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  // The sinks before the products: the start-up import's events are theirs too.
  outbound_ = std::make_unique<outbound::service>(*engine_, cfg_.sinks);
  outbound_->start();
  load_products();
  feeds_ = std::make_unique<feed_registry>(*engine_, cfg_.feeds);
  feed_server_options fo;
  fo.io_threads = cfg_.io_threads;
  fo.ack_interval = cfg_.ack_interval;
  fo.max_connections = cfg_.max_connections;
  fo.tls = feed_tls_;
  feed_server_ = std::make_unique<feed_server>(*engine_, *feeds_, *dead_letters_,
                                               endpoint_of("server.feed", cfg_.feed), fo);
  feed_server_->start();
  http_api_ = std::make_unique<http_api>(*engine_, cfg_.tokens, feeds_.get(), simulated_);
  http_api_->set_outbound(outbound_.get());
  http_api_->add_metrics([dl = dead_letters_.get()] { return dead_letter_metrics(*dl); });
  http_server_options ho;
  ho.nice = cfg_.http_nice;
  ho.max_long_polls = cfg_.max_long_polls;
  ho.max_connections = cfg_.max_connections;
  ho.tls = http_tls_;
  http_server_ =
      std::make_unique<http_server>(*http_api_, endpoint_of("server.http", cfg_.http), ho);
  http_api_->add_metrics(
      [this] { return connection_metrics(http_server_->gate(), feed_server_->gate()); });
  http_api_->add_metrics([this] { return feed_server_->write_metrics(); });
  if (cfg_.tls.any()) http_api_->add_metrics([this] { return tls_metrics(); });
  http_server_->start();
  http_api_->set_ready(true);
  started_ = true;
}

void daemon::stop() {
  if (!started_) return;
  started_ = false;
  if (http_api_) http_api_->set_ready(false);
  if (http_server_) http_server_->stop();
  if (feed_server_) feed_server_->stop();
  if (outbound_) outbound_->stop();  // its positions go into the last checkpoint
  engine_->stop();
  engine_->events().remove_listener(logger_listener_);
}

std::string daemon::reload_tls() {
  std::string problems;
  for (auto* ctx : {http_tls_.get(), feed_tls_.get()}) {
    if (ctx == nullptr) continue;
    if (auto why = ctx->reload()) problems = *why;
  }
  if (!cfg_.tls.any()) return problems;
  if (problems.empty()) {
    tls_reloads_.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("tls: certificate reloaded from {}", cfg_.tls.cert.string());
  } else {
    tls_reload_failures_.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("tls: reload failed, the ports keep the certificate they had: {}", problems);
  }
  return problems;
}

std::string daemon::tls_metrics() const {
  std::string out =
      "# HELP simcap_tls_handshake_failures_total Connections closed in their TLS handshake (not "
      "TLS, no or an untrusted client certificate, too slow).\n"
      "# TYPE simcap_tls_handshake_failures_total counter\n";
  if (http_tls_) {
    out += "simcap_tls_handshake_failures_total{port=\"http\"} " +
           std::to_string(http_server_->tls_refused()) + "\n";
  }
  if (feed_tls_) {
    out += "simcap_tls_handshake_failures_total{port=\"feed\"} " +
           std::to_string(feed_server_->tls_refused().load(std::memory_order_relaxed)) + "\n";
  }
  out +=
      "# HELP simcap_tls_reloads_total Certificate reloads (SIGHUP), by result.\n"
      "# TYPE simcap_tls_reloads_total counter\n"
      "simcap_tls_reloads_total{result=\"ok\"} " +
      std::to_string(tls_reloads_.load(std::memory_order_relaxed)) +
      "\nsimcap_tls_reloads_total{result=\"failed\"} " +
      std::to_string(tls_reload_failures_.load(std::memory_order_relaxed)) + "\n";
  return out;
}

std::uint16_t daemon::feed_port() const { return feed_server_->local_endpoint().port(); }

std::uint16_t daemon::http_port() const { return http_server_->local_endpoint().port(); }

namespace {
std::string address_of(const asio::ip::tcp::endpoint& ep) {
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}
}  // namespace

std::string daemon::http_address() const { return address_of(http_server_->local_endpoint()); }

std::string daemon::feed_address() const { return address_of(feed_server_->local_endpoint()); }

std::string daemon::stats_line() const {
  const engine_stats st = engine_->stats();
  const record_totals t = totals_of(st, feeds_.get());
  std::size_t depth = 0;
  for (auto d : st.queue_depth) depth += d;
  std::ostringstream os;
  os << "records counted=" << t.counted << " late=" << t.late << " duplicate=" << t.duplicates
     << " rejected=" << t.rejected
     << " | sims active=" << st.sims_by_state[static_cast<int>(sim_state::active)]
     << " paused=" << st.sims_by_state[static_cast<int>(sim_state::paused)]
     << " deactivated=" << st.sims_by_state[static_cast<int>(sim_state::deactivated)]
     << " | queue=" << depth;
  return os.str();
}

}  // namespace simcap
