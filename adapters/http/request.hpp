#pragma once
// The parts of a request the routes read: its target (path segments and query), its caller
// (the token's owner) and an import body in any of its four forms.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config.hpp"
#include "http/http_api.hpp"
#include "simcap/iccid_list.hpp"

namespace simcap::web {

struct target {
  std::vector<std::string> segs;
  std::multimap<std::string, std::string> params;
  std::optional<std::string> param(const std::string& k) const {
    auto it = params.find(k);
    if (it == params.end()) return std::nullopt;
    return it->second;
  }
};

std::optional<target> parse_target(std::string_view t);

struct caller {
  bool admin = false;
  std::string product;  // when not admin
  bool may_see(std::string_view p) const { return admin || product == p; }
  std::string scope() const { return admin ? std::string() : product; }
};

// The token's owner: Authorization: Bearer, else ?access_token=; nullopt for no or an unknown
// token.
std::optional<caller> find_caller(const std::vector<token_config>& tokens, const http_request& req,
                                  const target& t);

// The ICCIDs of an import body: JSON {"sims":[...]}, a form with sims[], a .txt file as the
// plain body, or a multipart form whose field "file" is that file. Line numbers are 1-based
// positions in the list (JSON, form) or lines of the file.
struct import_body {
  std::vector<iccid> ids;
  std::vector<iccid_list_error> invalid;
  std::optional<sim_state> state;
  std::optional<std::string> country;
  bool transfer = false;  // JSON only (SPEC §11 "Transfer")
  bool keep_limit = false;
};

std::variant<import_body, http_response> read_import(const http_request& req);

// application/x-www-form-urlencoded pairs, decoded.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body);

}  // namespace simcap::web
