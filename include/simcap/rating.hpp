#pragma once
// Rating vocabulary (SPEC §11): money in integer micro-units, the rate table (currency, zones,
// volume tiers) and the visited network -> country table it rates roaming by.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace simcap {

// Micro-units of the rate table's currency (1 USD = 1,000,000).
using micros = std::int64_t;

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
};

}  // namespace simcap
