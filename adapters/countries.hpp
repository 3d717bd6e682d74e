#pragma once
// Country codes from Debian's iso-codes package (ISO 3166-1), the list a product's or SIM's
// home country is checked against.
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

namespace simcap {

inline constexpr const char* kIso3166File = "/usr/share/iso-codes/json/iso_3166-1.json";

// The alpha-2 codes of the file, sorted; an error text when it cannot be read or holds none.
std::expected<std::vector<std::string>, std::string> load_iso3166(
    const std::filesystem::path& file = kIso3166File);

}  // namespace simcap
