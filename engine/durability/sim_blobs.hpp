#pragma once
// How SIM slots, closed-period lines and retired lines are encoded in the store's values
// (keys: keys.hpp). Blobs of slots are what a checkpoint writes for a shard's SIMs: deltas of the
// dirty ones and slices of a base of all of them.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
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

// A SIM in a blob: 0, key, then up, down, sms, open_day as varints (a record changed its
// usage, nothing else: most entries of a delta, about 17 bytes); 1 and the whole slot; or 2 and
// the key of a SIM removed (an import taken back).
constexpr std::size_t kMaxEntry = 1 + sizeof(sim_slot);
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
    }
    if (s.key != 0 && s.state == kErased) {
      *p_++ = 2;
      std::memcpy(p_, &s.key, sizeof s.key);
      p_ += sizeof s.key;
    } else if (all) {
      *p_++ = 1;
      std::memcpy(p_, &s, sizeof s);
      p_[offsetof(sim_slot, flags)] = static_cast<char>(s.flags & ~sim_slot::kFlagDirty);
      p_ += sizeof s;
    } else {
      *p_++ = 0;
      std::memcpy(p_, &s.key, sizeof s.key);
      p_ += sizeof s.key;
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
    if (!buf_.empty()) emit_(std::move(buf_));
    buf_ = std::string();
  }

 private:
  std::function<void(std::string&&)> emit_;
  std::string buf_;
  char* p_ = nullptr;
};

// Calls f(slot, all) for each entry; a short or unknown entry ends the blob.
template <class F>
void decode_slots(std::string_view blob, F&& f) {
  std::size_t at = 0;
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
