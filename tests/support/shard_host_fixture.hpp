#pragma once
// A shard_host for tests that drive one shard without an engine: a single product whose first
// activation sets its anniversary.
#include "engine_fixture.hpp"
#include "shard/shard.hpp"

namespace simcap::detail::testing_host {

class host final : public shard_host {
 public:
  product_info info;
  product_info first_activation(std::uint16_t, unix_seconds when) override {
    if (info.anniversary_day == 0) {
      info.anniversary_day = civil_of(when).day;
      info.first_period_start = day_start(when);
      info.version++;
    }
    return info;
  }
  std::string feed_name(std::uint32_t) const override { return "test"; }
  country_code country_at(std::uint8_t) const override { return 0; }
};

}  // namespace simcap::detail::testing_host
