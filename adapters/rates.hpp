#pragma once
// The rate table file ([billing] rates_file, SPEC §11): TOML with a currency (ISO 4217, from
// Debian's iso-codes), included_mb, [[zones]], [[volume_tiers]] and [mcc]. Every problem is
// named by its key, like the config's.
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "simcap/rating.hpp"

namespace simcap {

// `countries`: the ISO 3166-1 codes (sorted) zones and [mcc] may name; empty: any two capitals.
// `currencies`: the ISO 4217 codes (sorted); empty: any three capitals.
std::expected<rate_table, std::vector<std::string>> parse_rates(
    std::string_view text, const std::vector<std::string>& countries,
    const std::vector<std::string>& currencies);
std::expected<rate_table, std::vector<std::string>> load_rates(
    const std::filesystem::path& file, const std::vector<std::string>& countries,
    const std::vector<std::string>& currencies);

}  // namespace simcap
