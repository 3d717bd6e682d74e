#pragma once
// simcapd's configuration: the TOML file of API.md, with flags applied on top by the main.
// load_config() collects every problem, each naming its key, and reports them together.
#include <chrono>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

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
};

struct product_config {
  product_settings settings;
  std::optional<std::filesystem::path> iccids_file;  // resolved
};

struct daemon_config {
  std::string http = "127.0.0.1:7070";
  std::string feed = "127.0.0.1:7071";
  std::filesystem::path data_dir = "./data";
  unsigned io_threads = 1;
  int http_nice = -5;
  std::size_t max_long_polls = 256;  // GET /v1/events?wait= waiting at once
  std::chrono::milliseconds ack_interval{200};
  engine_options engine;
  std::vector<token_config> tokens;
  std::vector<feed_config> feeds;
  std::vector<product_config> products;
};

// Problems are "key: reason" strings.
std::expected<daemon_config, std::vector<std::string>> load_config(
    const std::filesystem::path& file);
std::expected<daemon_config, std::vector<std::string>> parse_config(
    std::string_view toml_text, const std::filesystem::path& base_dir);

// "127.0.0.1:7070" -> host and port; nullopt when malformed.
std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view s);

}  // namespace simcap
