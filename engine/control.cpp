#include <algorithm>

#include "engine_impl.hpp"
#include "state/lifecycle.hpp"

// Control: products, imports and SIM changes. Every value is validated here, once (the config
// and the HTTP port call these checks too); a change is checkpointed before it is answered, and
// taken back when its checkpoint fails.
namespace simcap {

std::optional<control_error> make_durable(engine& e) {
  e.checkpoint();
  if (auto why = e.store_error())
    return control_error{control_errc::unavailable, "the change is not durable: " + *why, {}, {}};
  return std::nullopt;
}
std::optional<control_error> refuse_when_not_durable(const engine& e) {
  if (auto why = e.store_error()) {
    return control_error{
        control_errc::unavailable, "the store cannot write, nothing was changed: " + *why, {}, {}};
  }
  return std::nullopt;
}
std::optional<std::string> check_product_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxProductIdLength) return "must be 1-128 characters";
  return std::nullopt;
}

std::optional<std::string> check_mb_limit(std::uint64_t mb) {
  if (mb == 0 || mb > kMaxMbLimit) return "must be 1 to 100000000";
  return std::nullopt;
}

std::optional<std::string> check_alert_emails(const std::vector<std::string>& addresses) {
  if (addresses.size() > 16) return "at most 16 addresses";
  for (const std::string& a : addresses) {
    const auto at = a.find('@');
    if (a.size() > 254 || at == std::string::npos || at == 0 || at + 1 == a.size() ||
        a.find('@', at + 1) != std::string::npos || std::any_of(a.begin(), a.end(), [](char ch) {
          return ch <= ' ' || ch > '~' || ch == ',' || ch == '<' || ch == '>' || ch == '"';
        })) {
      return "must be e-mail addresses (local@domain), e.g. \"ops@example.com\"";
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_alert_thresholds(const std::vector<double>& t) {
  if (t.size() > 8) return "at most 8 alert thresholds";
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (!(t[i] > 0.0 && t[i] <= 10.0)) return "alert thresholds must be in (0, 10]";
    if (i > 0 && t[i] <= t[i - 1]) return "alert thresholds must be strictly increasing";
  }
  // They are kept in per mille: two that round to the same one would be one threshold.
  const auto permille = detail::to_permille(t);
  for (std::size_t i = 1; i < permille.size(); ++i) {
    if (permille[i] <= permille[i - 1]) return "alert thresholds must differ by at least 0.001";
  }
  if (!permille.empty() && permille.front() == 0) return "alert thresholds must be at least 0.001";
  return std::nullopt;
}

bool engine::valid_country(std::string_view code) const {
  if (code.size() != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z')
    return false;
  const auto& list = impl_->opts.countries;
  return list.empty() || std::find(list.begin(), list.end(), code) != list.end();
}

control_result<product_view> engine::put_product(const product_settings& s) {
  if (auto why = check_product_id(s.id))
    return std::unexpected(error(control_errc::bad_request, "product id " + *why));
  if (s.default_mb_limit) {
    if (auto why = check_mb_limit(*s.default_mb_limit)) {
      return std::unexpected(error(control_errc::bad_request, "default_mb_limit " + *why));
    }
  }
  if (s.alert_thresholds) {
    if (auto why = check_alert_thresholds(*s.alert_thresholds)) {
      return std::unexpected(error(control_errc::bad_request, *why));
    }
  }
  if (s.country && !valid_country(*s.country)) {
    return std::unexpected(error(control_errc::bad_request,
                                 "country must be an ISO 3166-1 alpha-2 code, e.g. \"US\""));
  }
  if (s.alert_emails) {
    if (auto why = check_alert_emails(*s.alert_emails))
      return std::unexpected(error(control_errc::bad_request, "alert_emails " + *why));
  }
  if (s.pool_mb && *s.pool_mb > 1'000'000'000) {
    return std::unexpected(error(control_errc::bad_request, "pool_mb must be from 0 to 10^9"));
  }
  if (s.pool_price && (*s.pool_price < 0 || *s.pool_price > 1'000'000'000'000'000)) {
    return std::unexpected(error(control_errc::bad_request, "pool_price is out of range"));
  }
  if (auto why = refuse_when_not_durable(*this)) return std::unexpected(*why);
  auto put = impl_->products.put(s);
  if (!put) return std::unexpected(put.error());
  const detail::product_info info = put->info;
  impl_->shards.call_all([&info](detail::shard& sh) { sh.learn_product(info); });
  if (auto err = make_durable(*this)) {
    const detail::product_info before = impl_->products.take_back(*put);
    impl_->shards.call_all([&before](detail::shard& sh) { sh.learn_product(before); });
    return std::unexpected(*err);
  }
  impl_->pools_changed(info, put->view.period_start);
  return put->view;
}

std::optional<product_view> engine::get_product(std::string_view id) const {
  return impl_->products.view(id);
}

std::vector<product_view> engine::products() const { return impl_->products.views(); }

control_result<import_result> engine::import_sims(std::string_view product,
                                                  std::span<const iccid> ids,
                                                  const import_options& how) {
  const sim_state initial = how.initial;
  if (!detail::import_state(initial)) {
    return std::unexpected(
        error(control_errc::bad_request, "imported SIMs start active, issued or factory_test"));
  }
  if (how.country && !valid_country(*how.country)) {
    return std::unexpected(error(control_errc::bad_request,
                                 "country must be an ISO 3166-1 alpha-2 code, e.g. \"US\""));
  }
  if (auto why = refuse_when_not_durable(*this)) return std::unexpected(*why);
  const auto found = impl_->products.info(product);
  if (!found) return std::unexpected(error(control_errc::unknown_product, "no such product"));
  const detail::product_info info = *found;
  // The SIMs keep their home country: a later change of the product's is for SIMs after.
  const std::string home = how.country.value_or(impl_->products.country_of(info.index));
  if (impl_->rates && impl_->rates->zone_of(pack_country(home)) == impl_->rates->unknown_zone()) {
    // (SPEC §11: a SIM is rated by its home zone)
    return std::unexpected(error(
        control_errc::bad_request,
        home.empty() ? "the product has no country: give it one that a zone of the rate table has"
                     : "country " + home + " is in no zone of the rate table"));
  }
  const std::uint8_t country = impl_->products.country_index(home);
  const unsigned n = shard_count();
  std::vector<std::vector<std::size_t>> by_shard(n);
  for (std::size_t i = 0; i < ids.size(); ++i) by_shard[shard_for(ids[i])].push_back(i);
  const unix_seconds now = impl_->clk.now();
  std::vector<impl::change> changes(n);
  auto outcomes = impl_->shards.call_all([&](detail::shard& sh) {
    sh.learn_product(info);
    impl::change& c = changes[sh.index()];
    const std::size_t events_before = sh.pending_event_count();
    std::vector<detail::import_outcome> out;
    out.reserve(by_shard[sh.index()].size());
    for (std::size_t i : by_shard[sh.index()]) {
      auto before = sh.undo_point_of(ids[i].key());
      out.push_back(sh.import_sim(ids[i].key(), info.index, initial, country,
                                  {how.only_new, how.transfer, how.keep_limit}, now));
      if (out.back() == detail::import_outcome::imported) c.points.push_back(std::move(before));
    }
    c.events = sh.pending_events_since(events_before);
    return out;
  });
  import_result r;
  for (unsigned s = 0; s < n; ++s) {
    for (std::size_t k = 0; k < by_shard[s].size(); ++k) {
      switch (outcomes[s][k]) {
        case detail::import_outcome::imported:
          r.imported++;
          break;
        case detail::import_outcome::transferred:
          r.transferred++;
          break;
        case detail::import_outcome::already_present:
          r.already_present++;
          break;
        case detail::import_outcome::other_product:
          r.refused.push_back({by_shard[s][k], ids[by_shard[s][k]], "belongs_to_other_product"});
          break;
      }
    }
  }
  std::sort(r.refused.begin(), r.refused.end(),
            [](const import_refusal& a, const import_refusal& b) { return a.index < b.index; });
  if (auto err = make_durable(*this)) {
    impl_->take_back(std::move(changes));
    return std::unexpected(*err);
  }
  return r;
}

control_result<sim_view> engine::update_sim(iccid id, const sim_update& u, std::string_view scope) {
  auto sc = impl_->scope_of(scope);
  if (!sc) return std::unexpected(sc.error());
  if (u.mb_limit) {
    if (auto why = check_mb_limit(*u.mb_limit))
      return std::unexpected(error(control_errc::bad_request, "mb_limit " + *why));
  }
  if (auto why = refuse_when_not_durable(*this)) return std::unexpected(*why);
  const unix_seconds now = impl_->clk.now();
  std::vector<impl::change> changes(shard_count());
  impl::change& c = changes[shard_for(id)];
  auto r = impl_->shards.call(shard_for(id), [&](detail::shard& sh) {
    c.points.push_back(sh.undo_point_of(id.key()));
    const std::size_t events_before = sh.pending_event_count();
    auto v = sh.update(id.key(), *sc, u, now);
    c.events = sh.pending_events_since(events_before);
    return v;
  });
  if (r) {
    if (auto err = make_durable(*this)) {
      impl_->take_back(std::move(changes));
      return std::unexpected(*err);
    }
    impl_->products.fill_country(*r);
  }
  return r;
}

}  // namespace simcap
