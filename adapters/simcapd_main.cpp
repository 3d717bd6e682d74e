// simcapd: usage ingest and data-limit enforcement for fleets of IoT SIM cards.
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "daemon.hpp"

int main(int argc, char** argv) {
  // Checkpoints and recovery move values of many megabytes: keep freed memory for reuse rather
  // than unmapping it and faulting fresh pages in for the next one.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // One malloc arena per core, not glibc's eight: each arena keeps the memory freed into it.
  // With ids (RocksDB's batches and memtables and the checkpoint's buffers, on several threads)
  // that was 80 MiB of RSS for nothing (bench/ingest_ab.sh on 2 cores: CPU per record 0.96x;
  // without ids 0.99x and 44 MiB less). MALLOC_ARENA_MAX in the environment decides when set.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr)
    mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
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
  // Test only: holds every checkpoint this long between taking the shards' cuts and writing them,
  // so that a crash test's kills land inside checkpoints.
  unsigned checkpoint_pause_ms = 0;
  app.add_option("--test-checkpoint-pause-ms", checkpoint_pause_ms)
      ->group("")
      ->check(CLI::Range(0u, 10000u));
  CLI11_PARSE(app, argc, argv);
  // Logs go to stderr; stdout carries only the "... listening on ..." lines.
  spdlog::set_default_logger(spdlog::stderr_color_mt("simcapd"));
  spdlog::set_level(spdlog::level::from_str(log_level));

  simcap::daemon_config cfg;
  if (!config_path.empty()) {
    auto loaded = simcap::load_config(config_path);
    if (!loaded) {
      for (const auto& e : loaded.error())
        std::fprintf(stderr, "simcapd: config error: %s\n", e.c_str());
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
  cfg.engine.test_checkpoint_pause = std::chrono::milliseconds(checkpoint_pause_ms);
  for (const auto& e : flag_errors) std::fprintf(stderr, "simcapd: %s\n", e.c_str());
  if (!flag_errors.empty()) return 2;

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);  // reloads the TLS certificate
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

    // The stats line every 10 s while it changes.
    std::mutex stats_mu;
    std::condition_variable stats_cv;
    bool done = false;
    std::thread stats([&] {
      std::string last;
      std::unique_lock lock(stats_mu);
      while (!stats_cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; })) {
        lock.unlock();
        std::string line = d.stats_line();
        if (line != last) spdlog::info("{}", line);
        last = std::move(line);
        lock.lock();
      }
    });
    int sig = 0;
    while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) d.reload_tls();
    spdlog::info("signal {}: stopping", sig);
    {
      std::lock_guard lock(stats_mu);
      done = true;
    }
    stats_cv.notify_all();
    stats.join();
    d.stop();
    spdlog::info("{}", d.stats_line());
    spdlog::info("stopped");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "simcapd: %s\n", e.what());
    return 1;
  }
  return 0;
}
