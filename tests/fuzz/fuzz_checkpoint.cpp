// libFuzzer: the checkpoint decoders over any bytes, as a damaged or foreign store would hand
// them: SIM blobs, closed and retired lines, rating entries, product records and the record-id
// window's key. The first
// byte picks the decoder. A decoder may refuse (product records throw), never crash, and what
// it accepts encodes again to a value it reads back the same.
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.hpp"
#include "durability/id_window.hpp"
#include "durability/sim_blobs.hpp"

namespace {
// Entries a shard loads the same way: a removal is its key; usage is up, down, sms and open_day;
// a whole slot is every field but the dirty flags.
bool same_entry(const std::pair<simcap::detail::sim_slot, bool>& a,
                const std::pair<simcap::detail::sim_slot, bool>& b) {
  using simcap::detail::kErased;
  using simcap::detail::sim_slot;
  const auto& [x, x_all] = a;
  const auto& [y, y_all] = b;
  if (x_all != y_all || x.key != y.key) return false;
  if (!x_all) {
    return x.up == y.up && x.down == y.down && x.sms == y.sms && x.open_day == y.open_day;
  }
  if (x.key != 0 && x.state == kErased) return y.state == kErased;
  sim_slot xs = x, ys = y;
  xs.flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
  ys.flags &= static_cast<std::uint8_t>(~sim_slot::kFlagDirty);
  return std::memcmp(&xs, &ys, sizeof xs) == 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace simcap;
  using namespace simcap::detail;
  if (size == 0 || size > (1u << 20)) return 0;
  const std::string_view v(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      std::vector<std::pair<sim_slot, bool>> got;
      decode_slots(v, [&](const sim_slot& s, bool all) { got.emplace_back(s, all); });
      if (got.size() > v.size()) __builtin_trap();  // every entry takes at least one byte
      // What was read, written in today's format, reads back the same.
      std::vector<std::pair<sim_slot, bool>> again;
      {
        blob_writer w([&](std::string&& blob) {
          decode_slots(blob, [&](const sim_slot& s, bool all) { again.emplace_back(s, all); });
        });
        for (const auto& [s, all] : got) w.add(s, all);
      }
      if (again.size() != got.size()) __builtin_trap();
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (!same_entry(got[i], again[i])) __builtin_trap();
      }
      break;
    }
    case 1: {
      const closed_line l = line_of(42, v);
      const closed_line again = line_of(42, line_value(l));
      if (again.bytes_up != l.bytes_up || again.bytes_down != l.bytes_down || again.sms != l.sms ||
          again.chargeable != l.chargeable || again.away.size() != l.away.size()) {
        __builtin_trap();
      }
      break;
    }
    case 2: {
      reader r(v);
      r.get<std::uint8_t>();
      const auto away = get_away(r);
      if (away.size() * 18 > v.size()) __builtin_trap();
      break;
    }
    case 4: {
      const auto key = id_window::decode_key(v);
      if (key && key->groups.size() * 44 + 12 != v.size()) __builtin_trap();
      break;
    }
    default: {
      static const engine_options opts;
      static const catalog cat(opts);
      try {
        const product_info info = cat.decode_info(v, 3);
        if (info.index != 3) __builtin_trap();
      } catch (const std::runtime_error&) {
        // unreadable: refused, as recovery refuses it
      }
      break;
    }
  }
  return 0;
}
