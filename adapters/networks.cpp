#include "networks.hpp"

#include <expat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>

namespace simcap {

namespace {

struct parse_state {
  std::string country;
  std::vector<network_entry> out;
};

const char* attribute(const XML_Char** attrs, const char* name) {
  for (int i = 0; attrs[i] != nullptr; i += 2) {
    if (std::strcmp(attrs[i], name) == 0) return attrs[i + 1];
  }
  return nullptr;
}

bool digits(const char* s, std::size_t min, std::size_t max) {
  const std::size_t n = std::strlen(s);
  return n >= min && n <= max &&
         std::all_of(s, s + n, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

void on_start(void* data, const XML_Char* name, const XML_Char** attrs) {
  auto& st = *static_cast<parse_state*>(data);
  if (std::strcmp(name, "country") == 0) {
    const char* code = attribute(attrs, "code");
    st.country.clear();
    if (code != nullptr && std::strlen(code) == 2) {
      for (const char* c = code; *c != '\0'; ++c)
        st.country.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(*c))));
    }
  } else if (std::strcmp(name, "network-id") == 0 && !st.country.empty()) {
    const char* mcc = attribute(attrs, "mcc");
    const char* mnc = attribute(attrs, "mnc");
    if (mcc != nullptr && mnc != nullptr && digits(mcc, 3, 3) && digits(mnc, 2, 3))
      st.out.push_back({mcc, mnc, st.country});
  }
}

}  // namespace

std::expected<std::vector<network_entry>, std::string> load_service_providers(
    const std::filesystem::path& file, const std::vector<std::string>& countries) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::unexpected("cannot read " + file.string());
  std::unique_ptr<std::remove_pointer_t<XML_Parser>, decltype(&XML_ParserFree)> p(
      XML_ParserCreate("UTF-8"), &XML_ParserFree);
  if (!p) return std::unexpected("out of memory");
  parse_state st;
  XML_SetUserData(p.get(), &st);
  XML_SetStartElementHandler(p.get(), on_start);
  char buf[64 * 1024];
  for (;;) {
    in.read(buf, sizeof buf);
    const auto n = static_cast<int>(in.gcount());
    const bool last = n < static_cast<int>(sizeof buf);
    if (XML_Parse(p.get(), buf, n, last ? 1 : 0) == XML_STATUS_ERROR) {
      return std::unexpected(file.string() + " line " +
                             std::to_string(XML_GetCurrentLineNumber(p.get())) + ": " +
                             XML_ErrorString(XML_GetErrorCode(p.get())));
    }
    if (last) break;
  }
  if (!countries.empty()) {
    std::erase_if(st.out, [&](const network_entry& e) {
      return !std::binary_search(countries.begin(), countries.end(), e.country);
    });
  }
  if (st.out.empty()) return std::unexpected(file.string() + " lists no networks");
  return std::move(st.out);
}

}  // namespace simcap
