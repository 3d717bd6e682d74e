#pragma once
// Visited networks -> countries from Debian's mobile-broadband-provider-info
// (serviceproviders.xml, read with expat): every <network-id mcc mnc> under its <country code>.
// Countries the ISO 3166-1 list does not have (the data set's "XK") are left out, so their
// networks rate as `unknown`.
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

#include "simcap/rating.hpp"

namespace simcap {

inline constexpr const char* kServiceProvidersFile =
    "/usr/share/mobile-broadband-provider-info/serviceproviders.xml";

// The networks of the file (countries in upper case); an error text when it cannot be read or
// parsed. `countries` (sorted alpha-2 codes; empty: any) filters them.
std::expected<std::vector<network_entry>, std::string> load_service_providers(
    const std::filesystem::path& file, const std::vector<std::string>& countries);

}  // namespace simcap
