#pragma once
// What the fuzz targets that drive a live engine share: an in-memory engine (two shards, no
// store) on a manual clock, with product acme and two of its SIMs.
#include <memory>
#include <vector>

#include "simcap/engine.hpp"

namespace simcap::fuzz {

class no_dead_letters final : public dead_letter_sink {
 public:
  void write(const dead_letter&) override {}
};

struct engine_world {
  static constexpr unix_seconds kNow = 1'763'800'000;
  // The SIMs of acme.
  static constexpr const char* kSims[] = {"89010000000000000018", "89010000000000000026"};

  engine_world() : clk(kNow) {
    engine_options o;
    o.shards = 2;
    eng = std::make_unique<engine>(o, clk, dl);
    eng->start();
    product_settings p;
    p.id = "acme";
    (void)eng->put_product(p);
    std::vector<iccid> ids;
    for (const char* t : kSims) {
      if (auto id = iccid::parse(t)) ids.push_back(*id);
    }
    (void)eng->import_sims("acme", ids);
  }
  manual_clock clk;
  no_dead_letters dl;
  std::unique_ptr<engine> eng;
};

}  // namespace simcap::fuzz
