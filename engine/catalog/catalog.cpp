#include "catalog/catalog.hpp"

#include <cmath>
#include <stdexcept>

#include "catalog/calendar.hpp"
#include "durability/codec.hpp"
#include "durability/keys.hpp"
#include "durability/store.hpp"

namespace simcap::detail {

std::vector<std::uint16_t> to_permille(const std::vector<double>& t) {
  std::vector<std::uint16_t> out;
  for (double v : t) out.push_back(static_cast<std::uint16_t>(std::lround(v * 1000)));
  return out;
}

// ---------------------------------------------------------------- products

product_info catalog::apply_settings(entry& e) {
  e.info.id = e.settings.id;
  e.info.default_mb_limit = e.settings.default_mb_limit.value_or(opts_.default_mb_limit);
  e.info.thresholds = to_permille(e.settings.alert_thresholds.value_or(opts_.alert_thresholds));
  e.info.pool_bytes = e.settings.pool_mb.value_or(0) * opts_.mb_bytes;
  e.info.pool_pause = e.settings.pool_action.value_or(pool_action::overage) == pool_action::pause;
  e.info.version++;
  e.dirty = true;
  return e.info;
}

product_view catalog::view_of(const entry& e) const {
  product_view v;
  v.id = e.settings.id;
  v.default_mb_limit = e.info.default_mb_limit;
  v.alert_thresholds = e.settings.alert_thresholds.value_or(opts_.alert_thresholds);
  v.country = e.settings.country.value_or("");
  v.alert_emails = e.settings.alert_emails.value_or(std::vector<std::string>{});
  v.pool_mb = e.settings.pool_mb.value_or(0);
  v.pool_action = e.settings.pool_action.value_or(pool_action::overage);
  v.pool_price = e.settings.pool_price.value_or(0);
  v.anniversary_day = e.info.anniversary_day;
  v.first_period_start = e.info.first_period_start;
  v.period_start = e.period_start;
  v.period_end = e.period_end;
  return v;
}

std::expected<catalog::put_result, control_error> catalog::put(const product_settings& s) {
  std::lock_guard lock(mu_);
  put_result r;
  auto it = by_id_.find(s.id);
  if (it != by_id_.end()) r.before = products_[it->second].settings;
  if (it == by_id_.end()) {
    if (products_.size() >= 0xffff) {
      return std::unexpected(control_error{control_errc::bad_request, "too many products", {}, {}});
    }
    auto idx = static_cast<std::uint16_t>(products_.size());
    by_id_.emplace(s.id, idx);
    products_.emplace_back();
    products_.back().info.index = idx;
    products_.back().settings.id = s.id;
    it = by_id_.find(s.id);
  }
  entry& e = products_[it->second];
  if (s.default_mb_limit) e.settings.default_mb_limit = s.default_mb_limit;
  if (s.alert_thresholds) e.settings.alert_thresholds = s.alert_thresholds;
  if (s.country) e.settings.country = s.country;
  if (s.alert_emails) e.settings.alert_emails = s.alert_emails;
  if (s.pool_mb) e.settings.pool_mb = s.pool_mb;
  if (s.pool_action) e.settings.pool_action = s.pool_action;
  if (s.pool_price) e.settings.pool_price = s.pool_price;
  r.info = apply_settings(e);
  r.view = view_of(e);
  return r;
}

product_info catalog::take_back(const put_result& r) {
  std::lock_guard lock(mu_);
  entry& e = products_[r.info.index];
  if (r.before) {
    e.settings = *r.before;
  } else {
    by_id_.erase(e.settings.id);
    e.settings.id.clear();
  }
  return apply_settings(e);
}

std::optional<std::uint16_t> catalog::index_of(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<product_view> catalog::view(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return std::nullopt;
  return view_of(products_[it->second]);
}

std::vector<product_view> catalog::views() const {
  std::lock_guard lock(mu_);
  std::vector<product_view> out;
  for (const entry& e : products_) out.push_back(view_of(e));
  return out;
}

std::string catalog::name(std::uint16_t index) const {
  std::lock_guard lock(mu_);
  return index < products_.size() ? products_[index].settings.id : std::string();
}

std::optional<product_info> catalog::info(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return std::nullopt;
  return products_[it->second].info;
}

product_info catalog::info_at(std::uint16_t index) const {
  std::lock_guard lock(mu_);
  return index < products_.size() ? products_[index].info : product_info{};
}

std::uint16_t catalog::size() const {
  std::lock_guard lock(mu_);
  return static_cast<std::uint16_t>(products_.size());
}

std::string catalog::country_of(std::uint16_t index) const {
  std::lock_guard lock(mu_);
  return index < products_.size() ? products_[index].settings.country.value_or("") : std::string();
}

std::vector<product_info> catalog::infos() const {
  std::lock_guard lock(mu_);
  std::vector<product_info> out;
  for (const entry& e : products_) out.push_back(e.info);
  return out;
}

std::pair<product_info, bool> catalog::first_activation(std::uint16_t index, unix_seconds when) {
  std::lock_guard lock(mu_);
  entry& e = products_[index];
  if (e.info.anniversary_day != 0) return {e.info, false};
  e.info.anniversary_day = civil_of(when).day;
  e.info.first_period_start = day_start(when);
  e.info.version++;
  e.period_start = e.info.first_period_start;
  e.period_end = billing::next_period_start(e.info.anniversary_day, e.period_start);
  e.dirty = true;
  return {e.info, true};
}

std::vector<catalog::closed_span> catalog::close_periods(unix_seconds now) {
  std::lock_guard lock(mu_);
  std::vector<closed_span> closed;
  for (std::size_t i = 0; i < products_.size(); ++i) {
    entry& e = products_[i];
    if (e.info.anniversary_day == 0) continue;
    while (e.period_end <= now) {
      closed.push_back({static_cast<std::uint16_t>(i), e.period_start, e.period_end});
      e.period_start = e.period_end;
      e.period_end = billing::next_period_start(e.info.anniversary_day, e.period_start);
      e.dirty = true;
    }
  }
  return closed;
}

// ---------------------------------------------------------------- countries

std::uint8_t catalog::country_index(std::string_view code) {
  // (past 255 countries, which ISO 3166-1 does not have, a SIM takes its product's)
  if (code.size() != 2) return 0;
  std::lock_guard lock(mu_);
  const unsigned n = country_count_.load(std::memory_order_relaxed);
  for (unsigned i = 1; i < n; ++i) {
    if (countries_[i][0] == code[0] && countries_[i][1] == code[1])
      return static_cast<std::uint8_t>(i);
  }
  if (n >= countries_.size()) return 0;
  countries_[n] = {code[0], code[1]};
  country_count_.store(n + 1, std::memory_order_release);
  countries_dirty_ = true;
  return static_cast<std::uint8_t>(n);
}

country_code catalog::country_at(std::uint8_t index) const {
  if (index == 0 || index >= country_count_.load(std::memory_order_acquire)) return 0;
  return pack_country(std::string_view(countries_[index].data(), 2));
}

void catalog::fill_country(sim_view& v) const {
  if (v.country_index != 0 && v.country_index < country_count_.load(std::memory_order_acquire)) {
    v.country.assign(countries_[v.country_index].data(), 2);
    return;
  }
  std::lock_guard lock(mu_);
  auto it = by_id_.find(v.product);
  v.country =
      it == by_id_.end() ? std::string() : products_[it->second].settings.country.value_or("");
}

void catalog::add_event(const event& e) {
  std::lock_guard lock(mu_);
  events_.push_back(e);
}

// ---------------------------------------------------------------- durability

std::string catalog::encode(const entry& e) const {
  writer w;
  w.text(e.settings.id);
  w.put(static_cast<std::uint8_t>(e.settings.default_mb_limit.has_value()))
      .put(e.settings.default_mb_limit.value_or(0));
  w.put(static_cast<std::uint8_t>(e.settings.alert_thresholds.has_value()));
  const auto& th =
      e.settings.alert_thresholds ? *e.settings.alert_thresholds : std::vector<double>{};
  w.put(static_cast<std::uint32_t>(th.size()));
  for (double t : th) w.put(t);
  w.put(static_cast<std::uint8_t>(e.settings.country.has_value()))
      .text(e.settings.country.value_or(""));
  w.put(static_cast<std::uint32_t>(e.info.anniversary_day))
      .put(e.info.first_period_start)
      .put(e.info.version);
  w.put(e.period_start).put(e.period_end);
  // Added later: absent in older stores.
  const auto& emails = e.settings.alert_emails;
  w.put(static_cast<std::uint8_t>(emails.has_value()))
      .put(static_cast<std::uint32_t>(emails ? emails->size() : 0));
  if (emails) {
    for (const std::string& a : *emails) w.text(a);
  }
  // Pools, added later still.
  w.put(static_cast<std::uint8_t>(e.settings.pool_mb.has_value()))
      .put(e.settings.pool_mb.value_or(0))
      .put(static_cast<std::uint8_t>(e.settings.pool_action.has_value()))
      .put(static_cast<std::uint8_t>(e.settings.pool_action.value_or(pool_action::overage)))
      .put(static_cast<std::uint8_t>(e.settings.pool_price.has_value()))
      .put(e.settings.pool_price.value_or(0));
  return std::move(w.str());
}

catalog::entry catalog::decode(std::string_view v, std::uint16_t index) const {
  reader r(v);
  entry e;
  e.settings.id = r.text();
  bool has_limit = r.get<std::uint8_t>() != 0;
  auto limit = r.get<std::uint32_t>();
  if (has_limit) e.settings.default_mb_limit = limit;
  bool has_th = r.get<std::uint8_t>() != 0;
  std::vector<double> th(std::min<std::uint32_t>(
      r.get<std::uint32_t>(), static_cast<std::uint32_t>(r.left() / sizeof(double))));
  for (double& t : th) t = r.get<double>();
  if (has_th) e.settings.alert_thresholds = th;
  bool has_country = r.get<std::uint8_t>() != 0;
  std::string country = r.text();
  if (has_country) e.settings.country = country;
  e.info.index = index;
  e.info.id = e.settings.id;
  e.info.default_mb_limit = e.settings.default_mb_limit.value_or(opts_.default_mb_limit);
  e.info.thresholds = to_permille(e.settings.alert_thresholds.value_or(opts_.alert_thresholds));
  e.info.anniversary_day = r.get<std::uint32_t>();
  e.info.first_period_start = r.get<unix_seconds>();
  e.info.version = r.get<std::uint64_t>();
  e.period_start = r.get<unix_seconds>();
  e.period_end = r.get<unix_seconds>();
  if (r.ok && r.left() > 0) {
    const bool has_emails = r.get<std::uint8_t>() != 0;
    std::vector<std::string> emails(std::min<std::uint32_t>(r.get<std::uint32_t>(), 16));
    for (std::string& a : emails) a = r.text();
    if (has_emails) e.settings.alert_emails = std::move(emails);
  }
  if (r.ok && r.left() > 0) {
    const bool has_mb = r.get<std::uint8_t>() != 0;
    const auto mb = r.get<std::uint64_t>();
    const bool has_action = r.get<std::uint8_t>() != 0;
    const auto action = static_cast<pool_action>(r.get<std::uint8_t>() != 0);
    const bool has_price = r.get<std::uint8_t>() != 0;
    const auto price = r.get<micros>();
    if (has_mb) e.settings.pool_mb = mb;
    if (has_action) e.settings.pool_action = action;
    if (has_price) e.settings.pool_price = price;
  }
  e.info.pool_bytes = e.settings.pool_mb.value_or(0) * opts_.mb_bytes;
  e.info.pool_pause = e.settings.pool_action.value_or(pool_action::overage) == pool_action::pause;
  e.dirty = false;
  if (!r.ok) throw std::runtime_error("store: product " + std::to_string(index) + " is unreadable");
  return e;
}

void catalog::cut(write_batch& wb, std::vector<event>& events) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < products_.size(); ++i) {
    if (!products_[i].dirty) continue;
    products_[i].dirty = false;
    wb.put(key_of(key_kind::product).be(static_cast<std::uint16_t>(i)).str(), encode(products_[i]));
  }
  for (event& e : events_) events.push_back(e);
  events_.clear();
  if (countries_dirty_) {
    countries_dirty_ = false;
    std::string codes;
    for (unsigned i = 1; i < country_count_.load(); ++i) codes.append(countries_[i].data(), 2);
    wb.put(key_of(key_kind::countries).str(), codes);
  }
}

void catalog::recover(const store& st) {
  std::lock_guard lock(mu_);
  std::string codes;
  if (st.get(key_of(key_kind::countries).str(), codes)) {
    for (std::size_t at = 0; at + 2 <= codes.size() && at / 2 + 1 < countries_.size(); at += 2) {
      countries_[at / 2 + 1] = {codes[at], codes[at + 1]};
    }
    country_count_.store(static_cast<unsigned>(std::min(codes.size() / 2 + 1, countries_.size())));
  }
  st.scan(key_of(key_kind::product).str(), [&](std::string_view k, std::string_view v) {
    auto idx = read_be<std::uint16_t>(k, 1);
    if (idx != products_.size()) throw std::runtime_error("store: products are not dense");
    products_.push_back(decode(v, idx));
    if (!products_.back().settings.id.empty()) by_id_.emplace(products_.back().settings.id, idx);
    return true;
  });
}

std::vector<product_info> catalog::stored_products(const store& st) const {
  std::vector<product_info> out;
  st.scan(key_of(key_kind::product).str(), [&](std::string_view k, std::string_view v) {
    out.push_back(decode(v, read_be<std::uint16_t>(k, 1)).info);
    return true;
  });
  return out;
}

}  // namespace simcap::detail
