#pragma once
// The product catalog: every product's settings, its anniversary and current period, and the
// home countries SIMs refer to by index. It is the one owner of this; shards get a copy of
// each product (product_info) whenever it changes, and a checkpoint takes what changed.
//
// Thread-safe (one mutex, never held while waiting for a shard).
#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "catalog/product.hpp"
#include "simcap/engine.hpp"

namespace simcap::detail {

class store;
class write_batch;

class catalog {
 public:
  explicit catalog(const engine_options& opts) : opts_(opts) {}

  // ---- products
  struct put_result {
    product_info info;  // the shards' new copy
    product_view view;
    std::optional<product_settings> before;  // unset: the product is new
  };
  // Creates the product or changes the settings given (already validated by the engine).
  std::expected<put_result, control_error> put(const product_settings& s);
  // Takes back a put whose checkpoint failed: the settings as they were, or a new product left
  // nameless (its index unused). Returns the shards' copy.
  product_info take_back(const put_result& r);
  std::optional<std::uint16_t> index_of(std::string_view id) const;
  std::optional<product_view> view(std::string_view id) const;
  std::vector<product_view> views() const;
  std::string name(std::uint16_t index) const;
  std::optional<product_info> info(std::string_view id) const;
  // By index (index < size()).
  product_info info_at(std::uint16_t index) const;
  std::uint16_t size() const;
  // The product's home country ("" when it has none).
  std::string country_of(std::uint16_t index) const;
  // A SIM of a product without an anniversary was activated at `when`: the first report sets it
  // (and the first period). Returns the product's copy and whether this call set it.
  std::pair<product_info, bool> first_activation(std::uint16_t index, unix_seconds when);
  // Moves every product's current period up to `now`; returns the periods that closed.
  struct closed_span {
    std::uint16_t product;
    unix_seconds start, end;
  };
  std::vector<closed_span> close_periods(unix_seconds now);

  // ---- countries
  // The index of a country code (added when new); 0 for none.
  std::uint8_t country_index(std::string_view code);
  // The country of an index (0: none). Any thread.
  country_code country_at(std::uint8_t index) const;
  // Sets v.country from its index, or from its product's country. Any thread.
  void fill_country(sim_view& v) const;

  // ---- events the catalog makes (period_closed), for the next checkpoint
  void add_event(const event& e);

  // ---- durability
  // Writes the products and countries changed since the last cut into wb and hands over its
  // events.
  void cut(write_batch& wb, std::vector<event>& events);
  // Loads the catalog from the store (before the shards are recovered).
  void recover(const store& st);
  // A stored product record as recover() reads it (the shards' copy); throws
  // std::runtime_error when it is unreadable. For the checkpoint decoders' fuzz target.
  product_info decode_info(std::string_view v, std::uint16_t index) const {
    return decode(v, index).info;
  }
  // The products in the store, without loading them (re-sharding).
  std::vector<product_info> stored_products(const store& st) const;
  std::vector<product_info> infos() const;

 private:
  struct entry {
    product_settings settings;
    product_info info;
    unix_seconds period_start = 0;
    unix_seconds period_end = 0;
    bool dirty = true;  // not yet in a checkpoint
  };
  product_info apply_settings(entry& e);  // mu_ held
  product_view view_of(const entry& e) const;
  std::string encode(const entry& e) const;
  entry decode(std::string_view v, std::uint16_t index) const;

  const engine_options& opts_;
  mutable std::mutex mu_;
  std::vector<entry> products_;
  std::unordered_map<std::string, std::uint16_t> by_id_;
  std::vector<event> events_;
  // Home countries by the index SIM slots keep (0: none, the product's). Entries are added
  // under mu_ and never change; readers take the count first (acquire).
  std::array<std::array<char, 2>, 256> countries_{};
  std::atomic<unsigned> country_count_{1};
  bool countries_dirty_ = false;
};

// Alert thresholds (ratios of the limit) in per mille, as shards keep them.
std::vector<std::uint16_t> to_permille(const std::vector<double>& t);

}  // namespace simcap::detail
