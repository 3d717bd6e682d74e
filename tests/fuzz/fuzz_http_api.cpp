// libFuzzer: an HTTP request, as the server hands it over after framing, through the API's
// routing, token checks and handlers, against a live in-memory engine (two shards, a product
// with SIMs). Input: the method, the target and the content type on the first three lines,
// the body after; the first byte picks the token (admin, the product's, none).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/http_api.hpp"
#include "simcap/engine.hpp"

namespace {

using namespace simcap;

class no_dead_letters final : public dead_letter_sink {
 public:
  void write(const dead_letter&) override {}
};

struct world {
  world() : clk(1'763'800'000) {
    engine_options o;
    o.shards = 2;
    eng = std::make_unique<engine>(o, clk, dl);
    eng->start();
    product_settings p;
    p.id = "acme";
    (void)eng->put_product(p);
    std::vector<iccid> ids;
    for (const char* t : {"89010000000000000018", "89010000000000000026"}) {
      if (auto id = iccid::parse(t)) ids.push_back(*id);
    }
    (void)eng->import_sims("acme", ids);
    api = std::make_unique<http_api>(
        *eng, std::vector<token_config>{{"admin-token", true, ""}, {"acme-token", false, "acme"}},
        nullptr, false);
    api->set_ready(true);
  }
  manual_clock clk;
  no_dead_letters dl;
  std::unique_ptr<engine> eng;
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
