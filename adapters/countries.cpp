#include "countries.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>

namespace simcap {

std::expected<std::vector<std::string>, std::string> load_iso3166(
    const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::unexpected("cannot read " + file.string() + " (Debian package iso-codes)");
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(ss.str(), ec);
  const boost::json::array* list = nullptr;
  if (!ec && doc.is_object()) {
    if (const auto* v = doc.as_object().if_contains("3166-1")) list = v->if_array();
  }
  if (list == nullptr)
    return std::unexpected(file.string() + " is not the iso-codes ISO 3166-1 list");
  std::vector<std::string> codes;
  for (const auto& entry : *list) {
    const auto* o = entry.if_object();
    const auto* code = o != nullptr ? o->if_contains("alpha_2") : nullptr;
    if (code != nullptr && code->is_string() && code->as_string().size() == 2) {
      codes.emplace_back(code->as_string());
    }
  }
  if (codes.empty()) return std::unexpected(file.string() + " lists no countries");
  std::sort(codes.begin(), codes.end());
  return codes;
}

}  // namespace simcap
