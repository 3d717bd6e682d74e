// libFuzzer: an HTTP request, as the server hands it over after framing, through the API's
// routing, token checks and handlers, against a live in-memory engine (two shards, a product
// with SIMs). Input: the method, the target and the content type on the first three lines,
// the body after; the first byte picks the token (admin, the product's, none).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_world.hpp"
#include "http/http_api.hpp"

namespace {

using namespace simcap;

struct world : fuzz::engine_world {
  world()
      : api(std::make_unique<http_api>(
            *eng,
            std::vector<token_config>{{"admin-token", true, ""}, {"acme-token", false, "acme"}},
            nullptr, false)) {
    api->set_ready(true);
  }
  std::unique_ptr<http_api> api;
};

std::string_view take_line(std::string_view& s) {
  const auto nl = s.find('\n');
  std::string_view line = s.substr(0, nl);
  s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static world w;
  if (size == 0 || size > (64u << 10)) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  http_request req;
  req.method = std::string(take_line(in));
  req.target = std::string(take_line(in));
  req.content_type = std::string(take_line(in));
  req.body = std::string(in);
  static const char* const tokens[] = {"Bearer admin-token", "Bearer acme-token", ""};
  req.authorization = tokens[data[0] % 3];
  const http_response r = w.api->handle(req);
  if (r.status < 100 || r.status > 599) __builtin_trap();
  if (r.status >= 400 && r.content_type == "application/json" &&
      r.body.find("\"error\"") == std::string::npos) {
    __builtin_trap();  // every error answer names its code
  }
  return 0;
}
