#pragma once
// Codes from Debian's iso-codes package: countries (ISO 3166-1), the list a product's or SIM's
// home country and the rate table's zones are checked against, and currencies (ISO 4217).
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

namespace simcap {

inline constexpr const char* kIso3166File = "/usr/share/iso-codes/json/iso_3166-1.json";
inline constexpr const char* kIso4217File = "/usr/share/iso-codes/json/iso_4217.json";

// The alpha-2 codes of the file, sorted; an error text when it cannot be read or holds none.
std::expected<std::vector<std::string>, std::string> load_iso3166(
    const std::filesystem::path& file = kIso3166File);
// The alpha-3 currency codes of the file, sorted.
std::expected<std::vector<std::string>, std::string> load_iso4217(
    const std::filesystem::path& file = kIso4217File);

}  // namespace simcap
