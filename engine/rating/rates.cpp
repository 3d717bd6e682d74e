#include <algorithm>
#include <charconv>
#include <map>

#include "simcap/rating.hpp"

namespace simcap {

std::optional<micros> parse_money(std::string_view t) noexcept {
  const auto dot = t.find('.');
  const std::string_view whole = t.substr(0, dot);
  const std::string_view frac =
      dot == std::string_view::npos ? std::string_view() : t.substr(dot + 1);
  if (whole.empty() || whole.size() > 12 || frac.size() > 6 ||
      (dot != std::string_view::npos && frac.empty()))
    return std::nullopt;
  micros v = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  micros f = 0;
  for (std::size_t i = 0; i < 6; ++i) {
    const char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9') return std::nullopt;
    f = f * 10 + (c - '0');
  }
  return v * 1'000'000 + f;
}

std::string money_amount(micros m) {
  const bool neg = m < 0;
  const micros a = neg ? -m : m;
  const micros cents = (a + 5'000) / 10'000;
  std::string s;
  if (neg && cents != 0) s.push_back('-');
  s.append(std::to_string(cents / 100));
  s.push_back('.');
  const micros c = cents % 100;
  if (c < 10) s.push_back('0');
  s.append(std::to_string(c));
  return s;
}

std::string money_text6(micros m) {
  const bool neg = m < 0;
  const micros a = neg ? -m : m;
  const std::string frac = std::to_string(a % 1'000'000);
  std::string s;
  if (neg) s.push_back('-');
  s.append(std::to_string(a / 1'000'000));
  s.push_back('.');
  s.append(6 - frac.size(), '0');
  s.append(frac);
  return s;
}

std::optional<std::uint32_t> parse_discount(std::string_view t) noexcept {
  auto m = parse_money(t);
  if (!m || *m >= 1'000'000) return std::nullopt;
  return static_cast<std::uint32_t>(*m);
}

int rate_table::zone_of_country(std::string_view country) const noexcept {
  for (std::size_t z = 0; z < zones.size(); ++z) {
    if (std::find(zones[z].countries.begin(), zones[z].countries.end(), country) !=
        zones[z].countries.end())
      return static_cast<int>(z);
  }
  return -1;
}

micros rate_table::highest_per_mb() const noexcept {
  micros m = 0;
  for (const auto& z : zones) m = std::max(m, z.per_mb);
  return m;
}

std::uint32_t rate_table::discount_for(std::uint64_t chargeable_sims) const noexcept {
  std::uint32_t d = 0;
  for (const auto& t : tiers) {
    if (chargeable_sims >= t.min_sims) d = t.discount_ppm;
  }
  return d;
}

std::uint32_t network_countries::key_of(std::string_view digits) noexcept {
  if (digits.size() < 3 || digits.size() > 6) return 0;
  std::uint32_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return (static_cast<std::uint32_t>(digits.size()) << 24) | v;
}

namespace {
// Keys to one country each; a key seen with two countries keeps none.
template <class Entry>
std::vector<Entry> table_of(const std::map<std::uint32_t, std::string>& m) {
  std::vector<Entry> v;
  v.reserve(m.size());
  for (const auto& [k, c] : m) {
    Entry e{k, {'\0', '\0'}};
    if (c.size() == 2) {
      e.country[0] = c[0];
      e.country[1] = c[1];
    }
    v.push_back(e);
  }
  return v;
}
void add(std::map<std::uint32_t, std::string>& m, std::uint32_t key, const std::string& country) {
  auto [it, fresh] = m.emplace(key, country);
  if (!fresh && it->second != country) it->second.clear();  // several countries
}
}  // namespace

network_countries::network_countries(
    const std::vector<network_entry>& data,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::map<std::uint32_t, std::string> exact, mcc, oexact, omcc;
  for (const auto& n : data) {
    const std::uint32_t k = key_of(n.mcc + n.mnc), m = key_of(n.mcc);
    if (k == 0 || m == 0 || n.mcc.size() != 3) continue;
    add(exact, k, n.country);
    add(mcc, m, n.country);
  }
  for (const auto& [digits, country] : overrides) {
    const std::uint32_t k = key_of(digits);
    if (k == 0) continue;
    (digits.size() == 3 ? omcc : oexact)[k] = country;
  }
  exact_ = table_of<entry>(exact);
  by_mcc_ = table_of<entry>(mcc);
  override_exact_ = table_of<entry>(oexact);
  override_mcc_ = table_of<entry>(omcc);
  // By MCC: the country of a network the data set does not list; an MCC with a listed network
  // elsewhere (or of no country) is looked up network by network.
  for (std::uint32_t m = 0; m < by_mcc_code_.size(); ++m) {
    bool found = false;
    auto c = lookup(override_mcc_, (3u << 24) | m, found);
    if (!found) c = lookup(by_mcc_, (3u << 24) | m, found);
    by_mcc_code_[m] = pack_country(c);
  }
  for (const auto* v : {&exact_, &override_exact_}) {
    for (const entry& e : *v) {
      const std::uint32_t digits = e.key >> 24;
      const std::uint32_t m = (e.key & 0xffffff) / (digits == 6 ? 1000 : 100);
      if (m < by_mcc_code_.size() && by_mcc_code_[m] != pack_country(country_of(e.key))) {
        by_mcc_code_[m] = kMixed;
      }
    }
  }
}

std::string_view network_countries::lookup(const std::vector<entry>& v, std::uint32_t key,
                                           bool& found) {
  auto it = std::lower_bound(v.begin(), v.end(), key,
                             [](const entry& e, std::uint32_t k) { return e.key < k; });
  found = it != v.end() && it->key == key;
  if (!found || it->country[0] == '\0') return {};
  return std::string_view(it->country, 2);
}

std::string_view network_countries::country_of(std::uint32_t mccmnc) const noexcept {
  const std::uint32_t digits = mccmnc >> 24;
  if (digits < 5 || digits > 6) return {};
  std::uint32_t value = mccmnc & 0xffffff;
  const std::uint32_t mcc = (3u << 24) | (value / (digits == 6 ? 1000 : 100));
  bool found = false;
  if (auto c = lookup(override_exact_, mccmnc, found); found) return c;
  bool in_set = false;
  const auto exact = lookup(exact_, mccmnc, in_set);
  if (in_set && !exact.empty()) return exact;
  // Not in the data set, or there under several countries: an [mcc] override of its MCC names
  // it; else the data set's MCC (one country) does, unless the network itself was ambiguous.
  if (auto c = lookup(override_mcc_, mcc, found); found) return c;
  if (in_set) return {};
  if (auto c = lookup(by_mcc_, mcc, found); found) return c;
  return {};
}

}  // namespace simcap
