#pragma once
// Reads a list of ICCIDs, one per line (a .txt upload or a product's iccids_file). The first
// field of a line (up to white space, ',' or ';') is the ICCID; the rest of the line is ignored,
// as are blank lines and lines starting with '#'. Invalid values are reported by line.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "simcap/iccid.hpp"

namespace simcap {

struct iccid_list_error {
  std::size_t line;  // 1-based
  std::string value;
  std::string reason;
};

struct iccid_list {
  std::vector<iccid> ids;
  std::vector<iccid_list_error> invalid;
};

iccid_list parse_iccid_list(std::string_view text);

}  // namespace simcap
