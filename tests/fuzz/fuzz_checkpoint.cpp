// libFuzzer: the checkpoint decoders over any bytes, as a damaged or foreign store would hand
// them: SIM blobs, closed and retired lines, rating entries, product records and the record-id
// window's key. The first
// byte picks the decoder. A decoder may refuse (product records throw), never crash, and what
// it accepts encodes again to a value it reads back the same.
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "catalog/catalog.hpp"
#include "durability/id_window.hpp"
#include "durability/sim_blobs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace simcap;
  using namespace simcap::detail;
  if (size == 0 || size > (1u << 20)) return 0;
  const std::string_view v(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      std::size_t n = 0;
      decode_slots(v, [&](const sim_slot&, bool) { ++n; });
      if (n > v.size()) __builtin_trap();  // every entry takes at least one byte
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
