#include "simcap/iccid_list.hpp"

namespace simcap {

iccid_list parse_iccid_list(std::string_view text) {
  iccid_list out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    std::size_t b = line.find_first_not_of(" \t\r\xEF\xBB\xBF");
    if (b == std::string_view::npos || line[b] == '#') continue;
    line = line.substr(b);
    std::string_view field = line.substr(0, line.find_first_of(" \t\r,;"));
    if (field.size() >= 2 && (field.front() == '"' || field.front() == '\'') &&
        field.back() == field.front()) {
      field = field.substr(1, field.size() - 2);
    }
    auto id = iccid::parse(field);
    if (id) {
      out.ids.push_back(*id);
    } else {
      out.invalid.push_back(
          {line_no, std::string(field.substr(0, 64)), std::string(describe(id.error()))});
    }
  }
  return out;
}

}  // namespace simcap
