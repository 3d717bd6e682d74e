#pragma once
// simcapd's configuration: the TOML file of API.md, with flags applied on top by the main.
// load_config() collects every problem, each naming its key, and reports them together.
#include <chrono>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "dead_letter_file.hpp"
#include "simcap/engine.hpp"

namespace simcap {

struct token_config {
  std::string token;
  bool admin = false;
  std::string product;  // when not admin: the one product this token may see
};

struct feed_config {
  std::string name;
  std::string token;
  // Non-empty: the feed's client certificate (mutual TLS, [tls] client_ca) must carry this name
  // (its subject's common name or a DNS name among its subject alternative names).
  std::string cert_cn;
};

// [tls]: TLS 1.2 or later on the ports, with this certificate chain and key (PEM, reloaded on
// SIGHUP). client_ca: feeds must present a client certificate signed by it.
struct tls_config {
  std::filesystem::path cert, key, client_ca;
  bool http = false, feed = false;
  bool any() const noexcept { return http || feed; }
};

struct product_config {
  product_settings settings;
  std::optional<std::filesystem::path> iccids_file;  // resolved
};

// An outbound sink ([[sinks]], API.md "Outbound").
struct sink_config {
  enum class kind_t { carrier, webhook, email };
  std::string name;
  kind_t kind = kind_t::webhook;
  std::string url;                    // http:// or https://
  std::string secret;                 // empty: no Simcap-Signature
  std::vector<event_type> types;      // empty: the kind's default
  std::vector<std::string> products;  // empty: every product
  unsigned batch = 1;
  unsigned max_in_flight = 64;
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds retry_min{1000};
  std::chrono::milliseconds retry_max{300'000};
  bool start_oldest = false;  // start = "oldest"
  std::string ca_file;        // extra CA certificates for https (PEM), besides the system's
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request
  bool verify_tls = true;
  std::string smtp;  // email: the relay's HOST:PORT
  std::string from;  // email: the sender's address
};

struct daemon_config {
  std::string http = "127.0.0.1:7070";
  std::string feed = "127.0.0.1:7071";
  std::filesystem::path data_dir = "./data";
  unsigned io_threads = 1;
  int http_nice = -5;
  std::size_t max_long_polls = 256;      // GET /v1/events?wait= waiting at once
  std::size_t max_connections = 10'000;  // per port
  std::chrono::milliseconds ack_interval{200};
  dead_letter_file_options dead_letters;  // deadletter_max_bytes, deadletter_files
  tls_config tls;
  engine_options engine;
  std::optional<std::filesystem::path> rates_file;  // resolved, when [billing] names one
  std::vector<token_config> tokens;
  std::vector<feed_config> feeds;
  std::vector<product_config> products;
  std::vector<sink_config> sinks;
};

// Problems are "key: reason" strings.
std::expected<daemon_config, std::vector<std::string>> load_config(
    const std::filesystem::path& file);
std::expected<daemon_config, std::vector<std::string>> parse_config(
    std::string_view toml_text, const std::filesystem::path& base_dir);

// "127.0.0.1:7070" -> host and port; nullopt when malformed.
std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view s);

}  // namespace simcap
