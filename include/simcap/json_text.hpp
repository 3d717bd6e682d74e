#pragma once
// Small helpers to write JSON text without a DOM, for hot or simple outputs (dead letters,
// feed replies). Invalid UTF-8 in the input is replaced by U+FFFD, so the output is valid JSON.
#include <string>
#include <string_view>

namespace simcap {

// Appends s as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

}  // namespace simcap
