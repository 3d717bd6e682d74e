#include "countries.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>

namespace simcap {

namespace {

// The `code` fields (of `size` characters) of the `list` array of an iso-codes JSON file.
std::expected<std::vector<std::string>, std::string> load_iso_codes(
    const std::filesystem::path& file, const char* list_name, const char* code_name,
    std::size_t size) {
  std::ifstream in(file);
  if (!in) return std::unexpected("cannot read " + file.string() + " (Debian package iso-codes)");
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(ss.str(), ec);
  const boost::json::array* list = nullptr;
  if (!ec && doc.is_object()) {
    if (const auto* v = doc.as_object().if_contains(list_name)) list = v->if_array();
  }
  if (list == nullptr)
    return std::unexpected(file.string() + " is not the iso-codes ISO " + list_name + " list");
  std::vector<std::string> codes;
  for (const auto& entry : *list) {
    const auto* o = entry.if_object();
    const auto* code = o != nullptr ? o->if_contains(code_name) : nullptr;
    if (code != nullptr && code->is_string() && code->as_string().size() == size) {
      codes.emplace_back(code->as_string());
    }
  }
  if (codes.empty()) return std::unexpected(file.string() + " lists no codes");
  std::sort(codes.begin(), codes.end());
  return codes;
}

}  // namespace

std::expected<std::vector<std::string>, std::string> load_iso3166(
    const std::filesystem::path& file) {
  return load_iso_codes(file, "3166-1", "alpha_2", 2);
}

std::expected<std::vector<std::string>, std::string> load_iso4217(
    const std::filesystem::path& file) {
  return load_iso_codes(file, "4217", "alpha_3", 3);
}

}  // namespace simcap
