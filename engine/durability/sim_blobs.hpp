#pragma once
// How SIM slots, closed-period lines and retired lines are encoded in the store's values
// (keys: keys.hpp). Blobs of slots are what a checkpoint writes for a shard's SIMs: deltas of the
// dirty ones and slices of a base of all of them.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <string_view>

#include "durability/codec.hpp"
#include "simcap/engine.hpp"
#include "state/sim_table.hpp"

namespace simcap::detail {

// Big values (SIM and event blobs) are cut at about this size.
inline constexpr std::size_t kBlobBytes = 256 << 10;
// A checkpoint writes at least this much of a base under way (bytes of slots).
inline constexpr std::uint64_t kMinBaseSlice = 1 << 20;

inline char* put_varint(char* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
inline bool get_varint(std::string_view s, std::size_t& at, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; at < s.size() && shift < 64; shift += 7) {
    auto b = static_cast<unsigned char>(s[at++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Signed values as varints: 0, -1, 1, -2, ... as 0, 1, 2, 3, ...
inline std::uint64_t zigzag(std::int64_t v) noexcept {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline std::int64_t unzigzag(std::uint64_t v) noexcept {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// A blob of SIMs: a marker byte (kBlobFormat), then one entry each. An entry begins with a
// varint of (key XOR the entry before's key) << 2 | kind (the first XORs with 0): keys are
// ICCIDs, a fleet's come in ranges, so this takes about three bytes where the key took eight.
// A key whose XOR does not fit in 62 bits is written as the varint 3, the key (8 bytes) and the
// kind (a byte). Kinds: 0, a record changed the SIM's usage and nothing else (most entries of a
// delta, about 12 bytes): up, down, sms, open_day as varints; 1, the whole slot, field by field
// (30 to 40 bytes: three times as their difference from updated_at; the dirty flags are not
// kept); 2, the SIM was removed (an import taken back).
// Blobs written before this format have no marker: their entries are a kind byte (0, 1 or 2),
// the key (8 bytes), then up, down, sms, open_day as varints (0), the slot's 64 bytes as they
// were in memory (1) or nothing (2). They are read as they are, never written again.
inline constexpr char kBlobFormat = 3;
// The most an entry takes.
constexpr std::size_t kMaxEntry = 1 + 8 + 1 + 3 * 10 + 6 * 5 + 3 + 6;
// What a slot weighs in a base slice's budget (a whole slot as blobs first stored it).
constexpr std::size_t kSlotWeight = 1 + sizeof(sim_slot);
// Marks a slot handed to blob_writer::add as a removal (not a state any SIM has).
constexpr std::uint8_t kErased = 0xff;

// Fills blobs of about kBlobBytes through a pointer (the cut runs between record batches: it
// has to be quick).
class blob_writer {
 public:
  explicit blob_writer(std::function<void(std::string&&)> emit) : emit_(std::move(emit)) {}
  ~blob_writer() { flush(); }
  void add(const sim_slot& s, bool all) {
    if (buf_.empty()) {
      buf_.resize_and_overwrite(kBlobBytes + kMaxEntry,
                                [](char*, std::size_t n) { return n; });  // no zero fill
      p_ = buf_.data();
      *p_++ = kBlobFormat;
      prev_ = 0;
    }
    const std::uint64_t kind = s.key != 0 && s.state == kErased ? 2 : all ? 1 : 0;
    const std::uint64_t x = s.key ^ prev_;
    prev_ = s.key;
    if (x >> 62 == 0) {
      p_ = put_varint(p_, x << 2 | kind);
    } else {
      p_ = put_varint(p_, 3);
      std::memcpy(p_, &s.key, sizeof s.key);
      p_ += sizeof s.key;
      *p_++ = static_cast<char>(kind);
    }
    if (kind == 1) {
      for (std::uint64_t v : {s.up, s.down, s.next_action}) p_ = put_varint(p_, v);
      for (std::uint32_t v : {s.mb_limit, s.sms, s.updated_at}) p_ = put_varint(p_, v);
      for (std::uint32_t t : {s.first_activated, s.last_activated, s.state_since}) {
        p_ = put_varint(p_, zigzag(std::int64_t{t} - s.updated_at));
      }
      p_ = put_varint(p_, s.product);
      for (std::uint8_t v :
           {s.state, s.reason, s.alerts_fired,
            static_cast<std::uint8_t>(s.flags & ~sim_slot::kFlagDirty), s.open_day, s.country}) {
        *p_++ = static_cast<char>(v);
      }
    } else if (kind == 0) {
      p_ = put_varint(p_, s.up);
      p_ = put_varint(p_, s.down);
      p_ = put_varint(p_, s.sms);
      p_ = put_varint(p_, s.open_day);
    }
    if (static_cast<std::size_t>(p_ - buf_.data()) >= kBlobBytes) flush();
  }
  void flush() {
    if (buf_.empty()) return;
    buf_.resize(static_cast<std::size_t>(p_ - buf_.data()));
    if (buf_.size() > 1) emit_(std::move(buf_));
    buf_ = std::string();
  }

 private:
  std::function<void(std::string&&)> emit_;
  std::string buf_;
  char* p_ = nullptr;
  std::uint64_t prev_ = 0;
};

namespace blob_detail {
// A varint that fits in T, or false.
template <class T>
bool get_as(std::string_view blob, std::size_t& at, T& out) {
  std::uint64_t v = 0;
  if (!get_varint(blob, at, v) || v > std::numeric_limits<T>::max()) return false;
  out = static_cast<T>(v);
  return true;
}
// A time stored as its difference from `from`.
inline bool get_time(std::string_view blob, std::size_t& at, std::uint32_t from,
                     std::uint32_t& out) {
  std::uint64_t v = 0;
  // A difference of two 32-bit times takes at most 33 bits as a zigzag (larger: not one).
  if (!get_varint(blob, at, v) || v >> 33 != 0) return false;
  const std::int64_t t = std::int64_t{from} + unzigzag(v);
  if (t < 0 || t > std::int64_t{std::numeric_limits<std::uint32_t>::max()}) return false;
  out = static_cast<std::uint32_t>(t);
  return true;
}
}  // namespace blob_detail

// Calls f(slot, all) for each entry (a removal: all, and state kErased); a short or unknown
// entry ends the blob.
template <class F>
void decode_slots(std::string_view blob, F&& f) {
  using blob_detail::get_as;
  using blob_detail::get_time;
  if (blob.empty()) return;
  std::size_t at = 0;
  if (blob[0] == kBlobFormat) {
    at = 1;
    std::uint64_t prev = 0;
    while (at < blob.size()) {
      std::uint64_t head = 0;
      if (!get_varint(blob, at, head)) return;
      sim_slot s{};
      std::uint64_t kind = head & 3;
      if (head == 3) {
        if (at + sizeof s.key + 1 > blob.size()) return;
        std::memcpy(&s.key, blob.data() + at, sizeof s.key);
        at += sizeof s.key;
        kind = static_cast<unsigned char>(blob[at++]);
      } else {
        s.key = prev ^ (head >> 2);
      }
      prev = s.key;
      if (kind == 2) {
        s.state = kErased;
        f(s, true);
      } else if (kind == 1) {
        if (!get_as(blob, at, s.up) || !get_as(blob, at, s.down) ||
            !get_as(blob, at, s.next_action) || !get_as(blob, at, s.mb_limit) ||
            !get_as(blob, at, s.sms) || !get_as(blob, at, s.updated_at) ||
            !get_time(blob, at, s.updated_at, s.first_activated) ||
            !get_time(blob, at, s.updated_at, s.last_activated) ||
            !get_time(blob, at, s.updated_at, s.state_since) || !get_as(blob, at, s.product) ||
            at + 6 > blob.size()) {
          return;
        }
        for (std::uint8_t* b :
             {&s.state, &s.reason, &s.alerts_fired, &s.flags, &s.open_day, &s.country}) {
          *b = static_cast<std::uint8_t>(blob[at++]);
        }
        f(s, true);
      } else if (kind == 0) {
        if (!get_as(blob, at, s.up) || !get_as(blob, at, s.down) || !get_as(blob, at, s.sms) ||
            !get_as(blob, at, s.open_day)) {
          return;
        }
        f(s, false);
      } else {
        return;
      }
    }
    return;
  }
  // A blob written before the marker.
  while (at < blob.size()) {
    const char kind = blob[at++];
    sim_slot s{};
    if (kind == 1) {
      if (at + sizeof s > blob.size()) return;
      std::memcpy(static_cast<void*>(&s), blob.data() + at, sizeof s);
      at += sizeof s;
      f(s, true);
      continue;
    }
    if ((kind != 0 && kind != 2) || at + sizeof s.key > blob.size()) return;
    std::memcpy(&s.key, blob.data() + at, sizeof s.key);
    at += sizeof s.key;
    if (kind == 2) {
      s.state = kErased;
      f(s, true);
      continue;
    }
    std::uint64_t sms = 0, day = 0;
    if (!get_varint(blob, at, s.up) || !get_varint(blob, at, s.down) ||
        !get_varint(blob, at, sms) || !get_varint(blob, at, day)) {
      return;
    }
    s.sms = static_cast<std::uint32_t>(sms);
    s.open_day = static_cast<std::uint8_t>(day);
    f(s, false);
  }
}

// Bytes by visited country (closed_line::away): a count, then country, within, over each.
inline void put_away(writer& w, const std::vector<country_bytes>& away) {
  w.put(static_cast<std::uint32_t>(away.size()));
  for (const country_bytes& b : away) w.put(b.country).put(b.within).put(b.over);
}
inline std::vector<country_bytes> get_away(reader& r) {
  std::vector<country_bytes> away;
  const auto n = r.get<std::uint32_t>();
  for (std::uint32_t i = 0; i < n && r.left() >= 18; ++i) {
    country_bytes b;
    b.country = r.get<country_code>();
    b.within = r.get<std::uint64_t>();
    b.over = r.get<std::uint64_t>();
    away.push_back(b);
  }
  return away;
}

// A SIM's line of a closed period, or a retired line ('L' and 'R' values). Stores written
// before rating end after `chargeable`.
inline std::string line_value(const closed_line& l) {
  writer w;
  w.put(l.bytes_up).put(l.bytes_down).put(l.sms).put(static_cast<std::uint8_t>(l.chargeable));
  w.put(l.charge_day).put(static_cast<std::uint8_t>(l.transferred_out)).put(l.country);
  put_away(w, l.away);
  return std::move(w.str());
}
inline closed_line line_of(std::uint64_t sim, std::string_view v) {
  reader r(v);
  closed_line l;
  l.sim = sim;
  l.bytes_up = r.get<std::uint64_t>();
  l.bytes_down = r.get<std::uint64_t>();
  l.sms = r.get<decltype(l.sms)>();
  l.chargeable = r.get<std::uint8_t>() != 0;
  if (r.left() == 0) return l;
  l.charge_day = r.get<std::uint8_t>();
  l.transferred_out = r.get<std::uint8_t>() != 0;
  l.country = r.get<country_code>();
  l.away = get_away(r);
  return l;
}

// A SIM's rating entry of its product's current period ('U' values).
inline std::string rating_value(std::uint8_t charge_day, const std::vector<country_bytes>& away) {
  writer w;
  w.put(charge_day);
  put_away(w, away);
  return std::move(w.str());
}

}  // namespace simcap::detail
