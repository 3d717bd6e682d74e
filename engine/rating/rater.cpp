#include <algorithm>

#include "simcap/rating.hpp"

// One SIM's charges in one period (SPEC §11): a prorated base, per zone the data within the
// limit in whole MB beyond what the base includes, the data over the limit to the byte, every
// rate less the product's volume discount, each line rounded half-up once.
namespace simcap {

namespace {
using u128 = unsigned __int128;

// num / den rounded half-up (num, den > 0 or num = 0).
micros round_div(u128 num, u128 den) { return static_cast<micros>((2 * num + den) / (2 * den)); }

constexpr u128 kWhole = 1'000'000;  // ppm
}  // namespace

rater::rater(rate_table table, std::uint64_t mb_bytes)
    : table_(std::move(table)), mb_bytes_(std::max<std::uint64_t>(mb_bytes, 1)) {
  by_country_.fill(unknown_zone());
  for (std::size_t z = 0; z < table_.zones.size(); ++z) {
    unknown_base_ = std::max(unknown_base_, table_.zones[z].base);
    for (const std::string& c : table_.zones[z].countries) {
      const country_code code = pack_country(c);
      const unsigned hi = (code >> 8) - 'A', lo = (code & 0xff) - 'A';
      if (hi < 26 && lo < 26) by_country_[hi * 26 + lo] = static_cast<int>(z);
    }
  }
  unknown_per_mb_ = table_.highest_per_mb();
}

std::string_view rater::zone_name(int zone) const noexcept {
  if (zone >= 0 && static_cast<std::size_t>(zone) < table_.zones.size())
    return table_.zones[static_cast<std::size_t>(zone)].id;
  return "unknown";
}

template <class Zone>
micros rater::charge(const rating_input& in, unsigned period_days, std::uint32_t discount_ppm,
                     bool pooled, unsigned& days_charged, micros& base, Zone&& zone) const {
  const int home = zone_of(in.home);
  const auto rates_of = [&](int z) {
    return static_cast<std::size_t>(z) < table_.zones.size()
               ? std::pair{table_.zones[static_cast<std::size_t>(z)].base,
                           table_.zones[static_cast<std::size_t>(z)].per_mb}
               : std::pair{unknown_base_, unknown_per_mb_};
  };
  const u128 keep = kWhole - std::min<u128>(discount_ppm, kWhole);
  period_days = std::max(period_days, 1u);
  days_charged = 0;
  base = 0;
  const bool charged = in.chargeable && !pooled;
  if (in.chargeable) {
    days_charged = period_days - std::min<unsigned>(in.charge_day, period_days - 1);
  }
  if (charged) {
    base = round_div(static_cast<u128>(rates_of(home).first) * days_charged * keep,
                     static_cast<u128>(period_days) * kWhole);
  }
  // Bytes by zone: the home country's within the limit are what the others do not account for.
  std::uint64_t accounted = 0;
  for (std::size_t i = 0; i < in.away_count; ++i) {
    accounted += in.away[i].within + in.away[i].over;
  }
  struct bucket {
    int zone;
    std::uint64_t within, over;
  };
  std::array<bucket, 8> small{};
  std::vector<bucket> many;
  std::size_t n = 0;
  auto add = [&](int z, std::uint64_t within, std::uint64_t over) {
    bucket* b = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      bucket& x = i < small.size() ? small[i] : many[i - small.size()];
      if (x.zone == z) b = &x;
    }
    if (b == nullptr) {
      if (n < small.size()) {
        b = &small[n];
      } else {
        many.push_back({});
        b = &many.back();
      }
      *b = bucket{z, 0, 0};
      ++n;
    }
    b->within += within;
    b->over += over;
  };
  add(home, in.usage > accounted ? in.usage - accounted : 0, 0);
  for (std::size_t i = 0; i < in.away_count; ++i) {
    add(in.away[i].country == in.home ? home : zone_of(in.away[i].country), in.away[i].within,
        in.away[i].over);
  }
  micros data = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bucket& b = i < small.size() ? small[i] : many[i - small.size()];
    micros within = 0, over = 0;
    if (charged) {
      const micros per_mb = rates_of(b.zone).second;
      const std::uint64_t free = b.zone == home && b.zone != unknown_zone()
                                     ? std::uint64_t{table_.included_mb} * mb_bytes_
                                     : 0;
      const std::uint64_t billable = b.within > free ? b.within - free : 0;
      const std::uint64_t mbs = billable / mb_bytes_ + (billable % mb_bytes_ != 0);
      within = round_div(static_cast<u128>(per_mb) * mbs * keep, kWhole);
      over = round_div(static_cast<u128>(per_mb) * b.over * keep,
                       static_cast<u128>(mb_bytes_) * kWhole);
    }
    data += within + over;
    zone(b.zone, b.zone == home, b.within, b.over, within, over);
  }
  return base + data;
}

sim_charges rater::rate(const rating_input& in, unsigned period_days, std::uint32_t discount_ppm,
                        bool pooled) const {
  sim_charges out;
  out.home_zone = zone_of(in.home);
  out.total =
      charge(in, period_days, discount_ppm, pooled, out.days_charged, out.base,
             [&](int z, bool home, std::uint64_t within, std::uint64_t over, micros cw, micros co) {
               out.zones.push_back({z, within, over, cw, co});
               out.data += cw + co;
               if (!home) {
                 out.roaming += cw + co;
                 out.bytes_roaming += within + over;
               }
             });
  std::sort(out.zones.begin() + 1, out.zones.end(),
            [](const zone_charge& a, const zone_charge& b) { return a.zone < b.zone; });
  return out;
}

micros rater::total(const rating_input& in, unsigned period_days, std::uint32_t discount_ppm,
                    bool pooled) const {
  unsigned days = 0;
  micros base = 0;
  return charge(in, period_days, discount_ppm, pooled, days, base,
                [](int, bool, std::uint64_t, std::uint64_t, micros, micros) {});
}

micros rater::pool_overage(country_code home, std::uint64_t bytes) const {
  const int z = zone_of(home);
  const micros per_mb = static_cast<std::size_t>(z) < table_.zones.size()
                            ? table_.zones[static_cast<std::size_t>(z)].per_mb
                            : unknown_per_mb_;
  return round_div(static_cast<u128>(per_mb) * bytes, mb_bytes_);
}

}  // namespace simcap
