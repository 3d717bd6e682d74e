#include "rates.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "toml_reader.hpp"

namespace simcap {

namespace {

bool known(const std::vector<std::string>& list, const std::string& code, std::size_t size) {
  if (code.size() != size ||
      !std::all_of(code.begin(), code.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
    return false;
  return list.empty() || std::binary_search(list.begin(), list.end(), code);
}

std::optional<micros> money(toml_reader& rd, const toml::table& t, const std::string& prefix,
                            const char* key, bool required) {
  auto s = rd.get<std::string>(t, prefix, key);
  if (!s) {
    if (required && !t.contains(key))
      rd.error(prefix + key, "is required (decimal text, e.g. \"2.99\")");
    return std::nullopt;
  }
  auto m = parse_money(*s);
  if (!m) rd.error(prefix + key, "must be decimal text with at most 6 decimals, e.g. \"2.99\"");
  return m;
}

}  // namespace

std::expected<rate_table, std::vector<std::string>> parse_rates(
    std::string_view text, const std::vector<std::string>& countries,
    const std::vector<std::string>& currencies) {
  std::vector<std::string> errors;
  toml::table root;
  if (auto why = parse_toml(text, "rates", root)) return std::unexpected(std::vector{*why});
  toml_reader rd(errors);
  const std::string top = "rates.";
  rd.only(root, top, {"currency", "included_mb", "zones", "volume_tiers", "mcc"});
  rate_table rt;
  if (auto c = rd.get<std::string>(root, top, "currency")) {
    if (!known(currencies, *c, 3))
      rd.error(top + "currency", "must be an ISO 4217 code, e.g. \"USD\"");
    else
      rt.currency = *c;
  } else if (!root.contains("currency")) {
    rd.error(top + "currency", "is required, e.g. \"USD\"");
  }
  if (auto n = rd.number(root, top, "included_mb", 0, 1'000'000, "0 to 1000000"))
    rt.included_mb = static_cast<std::uint32_t>(*n);
  std::set<std::string> zone_ids, zoned;
  for (auto& [prefix, t] : rd.tables(root, top, "zones")) {
    rd.only(*t, prefix, {"id", "base", "per_mb", "countries"});
    rate_zone z;
    auto id = rd.get<std::string>(*t, prefix, "id");
    if (!id || id->empty() || id->size() > 32)
      rd.error(prefix + "id", "is required: 1 to 32 characters");
    else if (*id == "unknown")
      rd.error(prefix + "id", "\"unknown\" is the zone of networks in no zone");
    else if (!zone_ids.insert(*id).second)
      rd.error(prefix + "id", "duplicate zone id");
    z.id = id.value_or("");
    z.base = money(rd, *t, prefix, "base", true).value_or(0);
    z.per_mb = money(rd, *t, prefix, "per_mb", true).value_or(0);
    if (auto cs = rd.strings(*t, prefix, "countries", "ISO 3166-1 alpha-2 codes")) {
      for (const std::string& c : *cs) {
        if (!known(countries, c, 2))
          rd.error(prefix + "countries", "\"" + c + "\" is not an ISO 3166-1 alpha-2 code");
        else if (!zoned.insert(c).second)
          rd.error(prefix + "countries", "\"" + c + "\" is in another zone already");
        else
          z.countries.push_back(c);
      }
    } else if (!t->contains("countries")) {
      rd.error(prefix + "countries", "is required");
    }
    rt.zones.push_back(std::move(z));
  }
  if (rt.zones.empty() && !root.contains("zones"))
    rd.error(top + "zones", "at least one [[zones]] is required");
  for (auto& [prefix, t] : rd.tables(root, top, "volume_tiers")) {
    rd.only(*t, prefix, {"min_sims", "discount"});
    volume_tier v;
    if (auto n = rd.number(*t, prefix, "min_sims", 1, 100'000'000, "1 to 100000000"))
      v.min_sims = static_cast<std::uint32_t>(*n);
    else if (!t->contains("min_sims"))
      rd.error(prefix + "min_sims", "is required");
    if (!rt.tiers.empty() && v.min_sims != 0 && v.min_sims <= rt.tiers.back().min_sims)
      rd.error(prefix + "min_sims", "must be above the previous tier's");
    if (auto d = rd.get<std::string>(*t, prefix, "discount")) {
      if (auto ppm = parse_discount(*d))
        v.discount_ppm = *ppm;
      else
        rd.error(prefix + "discount",
                 "must be decimal text from \"0\" to below \"1\", e.g. \"0.10\"");
    } else if (!t->contains("discount")) {
      rd.error(prefix + "discount", "is required");
    }
    rt.tiers.push_back(v);
  }
  if (const toml::node* n = root.get("mcc")) {
    const toml::table* m = n->as_table();
    if (m == nullptr)
      rd.error(top + "mcc", "must be a table of \"MCC\" or \"MCCMNC\" = \"country\"");
    for (auto it = m ? m->begin() : toml::table::const_iterator{}; m && it != m->end(); ++it) {
      const std::string key(it->first.str());
      const auto v = it->second.value<std::string>();
      if (network_countries::key_of(key) == 0 || key.size() == 4)
        rd.error(top + "mcc." + key, "keys are an MCC (3 digits) or an MCC+MNC (5 or 6 digits)");
      else if (!v || !known(countries, *v, 2))
        rd.error(top + "mcc." + key, "must be an ISO 3166-1 alpha-2 code");
      else
        rt.mcc.emplace_back(key, *v);
    }
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return rt;
}

std::expected<rate_table, std::vector<std::string>> load_rates(
    const std::filesystem::path& file, const std::vector<std::string>& countries,
    const std::vector<std::string>& currencies) {
  std::ifstream in(file);
  if (!in) return std::unexpected(std::vector<std::string>{"rates: cannot read " + file.string()});
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_rates(ss.str(), countries, currencies);
}

}  // namespace simcap
