// simcapd: usage ingest and data-limit enforcement for fleets of IoT SIM cards.
#include <CLI/CLI.hpp>
#include <malloc.h>
#include <csignal>
#include <cstdio>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon.hpp"

int main(int argc, char** argv) {
  // Checkpoints and recovery move values of many megabytes: keep freed memory for reuse rather
  // than unmapping it and faulting fresh pages in for the next one.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{"simcapd: usage ingest and data-limit enforcement for IoT SIM fleets"};
  std::string config_path, data_dir, http, feed, clock_kind = "real", log_level = "info";
  std::optional<unsigned> shards;
  app.add_option("--config", config_path, "TOML config file")->check(CLI::ExistingFile);
  app.add_option("--data-dir", data_dir, "where state and the dead-letter log live");
  app.add_option("--http", http, "HTTP control port, ADDR:PORT (0: any free port)");
  app.add_option("--feed", feed, "feed port, ADDR:PORT (0: any free port)");
  app.add_option("--shards", shards, "shard count (default: one per core)");
  app.add_option("--clock", clock_kind, "real, or simulated (tests and demos)")
      ->check(CLI::IsMember({"real", "simulated"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  CLI11_PARSE(app, argc, argv);
  // Logs go to stderr; stdout carries only the "... listening on ..." lines.
  spdlog::set_default_logger(spdlog::stderr_color_mt("simcapd"));
  spdlog::set_level(spdlog::level::from_str(log_level));

  simcap::daemon_config cfg;
  if (!config_path.empty()) {
    auto loaded = simcap::load_config(config_path);
    if (!loaded) {
      for (const auto& e : loaded.error()) std::fprintf(stderr, "simcapd: config error: %s\n", e.c_str());
      return 2;
    }
    cfg = std::move(*loaded);
  }
  std::vector<std::string> flag_errors;
  if (!data_dir.empty()) cfg.data_dir = data_dir;
  if (!http.empty()) {
    if (!simcap::split_host_port(http)) flag_errors.push_back("--http: must be ADDR:PORT");
    cfg.http = http;
  }
  if (!feed.empty()) {
    if (!simcap::split_host_port(feed)) flag_errors.push_back("--feed: must be ADDR:PORT");
    cfg.feed = feed;
  }
  if (shards) {
    if (*shards > 256) flag_errors.push_back("--shards: must be 0 to 256");
    cfg.engine.shards = *shards;
  }
  for (const auto& e : flag_errors) std::fprintf(stderr, "simcapd: %s\n", e.c_str());
  if (!flag_errors.empty()) return 2;

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    simcap::daemon d(std::move(cfg), clock_kind == "simulated");
    d.start();
    std::printf("http listening on %s\n", d.http_address().c_str());
    std::printf("feed listening on %s\n", d.feed_address().c_str());
    std::fflush(stdout);
    spdlog::info("simcapd ready: {} shards, data dir {}, {} clock", d.eng().shard_count(),
                 d.config().data_dir.string(), clock_kind);

    std::atomic<bool> done{false};
    std::thread stats([&] {
      std::string last;
      while (!done.load()) {
        for (int i = 0; i < 100 && !done.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (done.load()) break;
        std::string line = d.stats_line();
        if (line != last) spdlog::info("{}", line);
        last = line;
      }
    });
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("signal {}: stopping", sig);
    d.stop();
    done.store(true);
    stats.join();
    spdlog::info("{}", d.stats_line());
    spdlog::info("stopped");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "simcapd: %s\n", e.what());
    return 1;
  }
  return 0;
}
