#pragma once
// One parsed usage record (CDR) as it travels from a feed session to a shard. Plain data,
// 64 bytes, copied in bulk.
#include <cstdint>
#include <string_view>

#include "simcap/time.hpp"

namespace simcap {

struct usage_record {
  std::uint64_t sim = 0;          // iccid::key()
  unix_seconds event_time = 0;    // end time, or start time when there is no end
  std::uint64_t up = 0;           // bytes uplink
  std::uint64_t down = 0;         // bytes downlink
  std::uint64_t id_hash = 0;      // hash of the carrier's record id; 0 when the record has none
  std::uint64_t seq = 0;          // feed sequence number
  std::uint32_t mccmnc = 0;       // visited network: (digit count << 24) | value; 0 when absent
  std::uint32_t sms = 0;          // SMS count
  std::uint32_t line_offset = 0;  // where the raw line sits in its batch's text
  std::uint32_t line_length = 0;
};
static_assert(sizeof(usage_record) == 64);

// usage_record::id_hash of a carrier's record id: FNV-1a, finished with murmur3's mixer; never
// 0 (0 means "no id").
inline std::uint64_t record_id_hash(std::string_view id) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h | 1;
}

}  // namespace simcap
