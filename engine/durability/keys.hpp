#pragma once
// The store's keys: the first byte is the kind, then big-endian numbers (so a kind's keys sort
// by them). One enumerator a kind; the layout of each is below.
//
// clang-format off
//   meta         M                                        checkpoint number, shard count, clock time, store format
//   product      P product(u16)                           a product of the catalog
//   events       E id(u64)                                a checkpoint's events (56 bytes each), from this id on
//   event_index  I s sim(u64) id(u64)                     the event (56 bytes), by SIM
//                I p product(u16) id(u64)                 ... by product
//                I t type(u8) id(u64)                     ... by type
//                I q product(u16) type(u8) id(u64)        ... by product and type
//                I w                                      the highest id indexed
//   countries    N                                        the country list (2 letters each; SIMs keep an index of it)
//   base_gen     G shard(u16)                             the shard's last complete base (its generation)
//   base         B shard(u16) gen(u64) n(u32)             slice n of a base: every SIM of the slice
//   delta        Z shard(u16) checkpoint(u64) n(u32)      the SIMs a checkpoint changed (usage only, or whole)
//   day          Y shard(u16) product(u16) sim(u64) day(u32)  bytes of one closed day of the SIM's current period
//   hourly       H shard(u16) product(u16)                the shard's period and hourly usage of a product
//   closed       C shard(u16) product(u16) start(u64)     a closed period's header in the shard
//   line         L shard(u16) product(u16) start(u64) sim(u64)  one SIM's line of a closed period
//   retired      R shard(u16) product(u16) sim(u64)       a released and re-imported SIM's earlier life
//                                                         in the product's current period
//   rating       U shard(u16) product(u16) sim(u64)       a SIM's first chargeable day and bytes by
//                                                         country in the product's current period
//   ids          D shard(u16) newest(u64) checkpoint(u64) record-id fingerprints added in a checkpoint (read
//                                                         from stores of earlier versions, no longer written)
//   id_log       Q shard(u16) checkpoint(u64)             record ids (and event times) a checkpoint added to the window's table
//   id_tier      T shard(u16)                             the record-id window's groups (moved ids)
//   id_group     V shard(u16) group(u64) chunk(u32) part(u64)  record ids a move added to a group
//                                                         (in the store's record-id column family)
//   watermark    W shard(u16) feed name                   the feed's highest seq applied by the shard
//   side         X name                                   side state (the outbound sinks' positions)
// clang-format on
#include <array>
#include <cstdint>
#include <string_view>

#include "durability/codec.hpp"

namespace simcap::detail {

enum class key_kind : char {
  meta = 'M',
  product = 'P',
  events = 'E',
  event_index = 'I',
  countries = 'N',
  base_gen = 'G',
  base = 'B',
  delta = 'Z',
  day = 'Y',
  hourly = 'H',
  closed = 'C',
  line = 'L',
  retired = 'R',
  rating = 'U',
  ids = 'D',
  id_log = 'Q',
  id_tier = 'T',
  id_group = 'V',
  watermark = 'W',
  side = 'X',
};

// The kinds whose keys begin with a shard number (what re-sharding rewrites).
inline constexpr std::array kShardKinds{
    key_kind::base_gen, key_kind::base,    key_kind::delta,    key_kind::day,      key_kind::hourly,
    key_kind::closed,   key_kind::line,    key_kind::retired,  key_kind::rating,   key_kind::ids,
    key_kind::id_log,   key_kind::id_tier, key_kind::id_group, key_kind::watermark};

inline key_builder key_of(key_kind kind) { return key_builder(static_cast<char>(kind)); }
// A key of one of kShardKinds: kind, then the shard.
inline key_builder shard_key(key_kind kind, unsigned shard) {
  key_builder k = key_of(kind);
  k.be(static_cast<std::uint16_t>(shard));
  return k;
}
// Where the fields after a shard key's kind and shard begin.
inline constexpr std::size_t kShardKeyPrefix = 3;

// The layout of the values, in the meta key since format 2 (stores before it have none: 1).
// 2: SIM blobs in their compact form (sim_blobs.hpp). A store of a later format is refused.
inline constexpr std::uint32_t kStoreFormat = 2;

}  // namespace simcap::detail
