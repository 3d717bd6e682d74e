#pragma once
// Rating vocabulary (SPEC §11): money in integer micro-units, the rate table (currency, zones,
// volume tiers) and the visited network -> country table it rates roaming by.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace simcap {

// Micro-units of the rate table's currency (1 USD = 1,000,000).
using micros = std::int64_t;

// An ISO 3166-1 alpha-2 country as two bytes ('U' << 8 | 'S'); 0: no (or an unknown) country.
using country_code = std::uint16_t;
constexpr country_code pack_country(std::string_view c) noexcept {
  return c.size() == 2 ? static_cast<country_code>(static_cast<unsigned char>(c[0]) << 8 |
                                                   static_cast<unsigned char>(c[1]))
                       : 0;
}
inline std::string unpack_country(country_code c) {
  if (c == 0) return {};
  return std::string{static_cast<char>(c >> 8), static_cast<char>(c & 0xff)};
}

// Bytes a SIM used in one visited country in a period: within its data limit and over it (the
// part of each record past the limit when it was counted). Country 0: an unknown network.
struct country_bytes {
  country_code country = 0;
  std::uint64_t within = 0;
  std::uint64_t over = 0;
};

// Decimal text ("2.99", "0.000001", "10") to micro-units: digits with at most 6 decimals, not
// negative, at most 10^12 units; nullopt otherwise.
std::optional<micros> parse_money(std::string_view text) noexcept;
// Micro-units rounded half-up to cents, as text: 2990000 -> "2.99", 2995000 -> "3.00".
std::string money_amount(micros m);
// Micro-units as decimal text with 6 places: 2990000 -> "2.990000".
std::string money_text6(micros m);
// A discount ("0.10") to parts per million of the rate, below 1.
std::optional<std::uint32_t> parse_discount(std::string_view text) noexcept;

struct rate_zone {
  std::string id;
  micros base = 0;    // per chargeable SIM per period
  micros per_mb = 0;  // each additional MB
  std::vector<std::string> countries;
};

struct volume_tier {
  std::uint32_t min_sims = 0;
  std::uint32_t discount_ppm = 0;  // off base and per-MB rates
};

struct rate_table {
  std::string currency = "USD";
  std::uint32_t included_mb = 1;  // home-zone MB in the base rate
  std::vector<rate_zone> zones;
  std::vector<volume_tier> tiers;  // ascending min_sims
  // [mcc]: an MCC (3 digits) or MCC+MNC (5 or 6 digits) -> a country.
  std::vector<std::pair<std::string, std::string>> mcc;

  // The zone index of a country, or -1 when no zone has it.
  int zone_of_country(std::string_view country) const noexcept;
  // The highest per_mb of the table: the `unknown` zone's rate.
  micros highest_per_mb() const noexcept;
  // The discount of a product with this many chargeable SIMs (ppm).
  std::uint32_t discount_for(std::uint64_t chargeable_sims) const noexcept;
};

// A network of the data set: MCC (3 digits), MNC (2 or 3 digits), its country (alpha-2).
struct network_entry {
  std::string mcc, mnc, country;
};

// Visited network -> country: an exact MCC+MNC first, then the MCC alone; [mcc] overrides the
// data set (the longer match wins, an override before the data set at the same length). A
// network (or, for the MCC alone, an MCC) the data set lists under several countries and no
// override names has no country. Immutable once built; any thread.
class network_countries {
 public:
  network_countries() = default;
  network_countries(const std::vector<network_entry>& data,
                    const std::vector<std::pair<std::string, std::string>>& overrides);
  // mccmnc as the record parser keeps it: (digit count << 24) | value. Empty: no country.
  std::string_view country_of(std::uint32_t mccmnc) const noexcept;
  // The same as a country_code, from a table by MCC for the MCCs whose networks are all in one
  // country (the record path calls this once a record).
  country_code code_of(std::uint32_t mccmnc) const noexcept {
    const std::uint32_t digits = mccmnc >> 24;
    if (digits < 5 || digits > 6) return 0;
    const std::uint32_t mcc = (mccmnc & 0xffffff) / (digits == 6 ? 1000 : 100);
    const country_code c = by_mcc_code_[mcc];
    return c != kMixed ? c : pack_country(country_of(mccmnc));
  }
  std::size_t networks() const noexcept { return exact_.size(); }

  // (digit count << 24) | value of a 3- to 6-digit text; 0 when it is not one.
  static std::uint32_t key_of(std::string_view digits) noexcept;

 private:
  struct entry {
    std::uint32_t key;
    char country[2];  // "\0\0": several countries
  };
  static std::string_view lookup(const std::vector<entry>& v, std::uint32_t key, bool& found);
  std::vector<entry> exact_, by_mcc_, override_exact_, override_mcc_;  // sorted by key
  static constexpr country_code kMixed = 0xffff;                       // look the network up
  std::array<country_code, 1000> by_mcc_code_{};
};

}  // namespace simcap

namespace simcap {

// One SIM's usage in one period as rating reads it (SPEC §11).
struct rating_input {
  country_code home = 0;                // its home country (0: none known)
  bool chargeable = false;              // active or paused at some moment of the period
  std::uint8_t charge_day = 0;          // the day (0: the first) it first became chargeable in it
  std::uint64_t usage = 0;              // its bytes of the period, factory-test usage left out
  const country_bytes* away = nullptr;  // bytes kept by country: every country but the home
  std::size_t away_count = 0;           // one within the limit, and over it for any country
};

// A zone's part of a SIM's charges.
struct zone_charge {
  int zone = 0;  // rater::zone_name()
  std::uint64_t bytes_within = 0, bytes_over = 0;
  micros charge_within = 0, charge_over = 0;
};

// What one SIM costs in one period: each charge one line, rounded once.
struct sim_charges {
  int home_zone = 0;
  unsigned days_charged = 0;  // 0: not chargeable (then nothing is charged)
  micros base = 0;
  std::vector<zone_charge> zones;  // the home zone first, then the others by zone
  micros data = 0;                 // the zones' charges, within and over
  micros roaming = 0;              // the part of data charged outside the home zone
  std::uint64_t bytes_roaming = 0;
  micros total = 0;  // base + data
};

// Prices usage by a rate table; immutable, any thread.
class rater {
 public:
  rater(rate_table table, std::uint64_t mb_bytes);
  const rate_table& table() const noexcept { return table_; }
  std::uint64_t mb_bytes() const noexcept { return mb_bytes_; }
  // The zone of a country; unknown_zone() when no zone has it.
  int zone_of(country_code c) const noexcept {
    const unsigned hi = (c >> 8) - 'A', lo = (c & 0xff) - 'A';
    return hi < 26 && lo < 26 ? by_country_[hi * 26 + lo] : unknown_zone();
  }
  int unknown_zone() const noexcept { return static_cast<int>(table_.zones.size()); }
  std::string_view zone_name(int zone) const noexcept;
  // pooled: the SIM's product has a pool, which pays for its SIMs (they cost nothing here).
  sim_charges rate(const rating_input& in, unsigned period_days, std::uint32_t discount_ppm,
                   bool pooled) const;
  // rate(...).total without building the lines.
  micros total(const rating_input& in, unsigned period_days, std::uint32_t discount_ppm,
               bool pooled) const;
  // What bytes beyond a pool cost: the home zone's per_mb, prorated to the byte.
  micros pool_overage(country_code home, std::uint64_t bytes) const;

 private:
  template <class Zone>
  micros charge(const rating_input& in, unsigned period_days, std::uint32_t discount_ppm,
                bool pooled, unsigned& days_charged, micros& base, Zone&& zone) const;
  rate_table table_;
  std::uint64_t mb_bytes_;
  micros unknown_base_ = 0, unknown_per_mb_ = 0;
  std::array<int, 26 * 26> by_country_{};
};

}  // namespace simcap
