#pragma once
// Where records that are not counted go (SPEC §7): JSON lines with time, feed, seq, reason,
// detail and the raw line (at most 4 KiB of it).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "simcap/reason.hpp"
#include "simcap/time.hpp"

namespace simcap {

inline constexpr std::size_t kMaxLineBytes = 4096;

struct dead_letter {
  unix_seconds time = 0;
  std::string_view feed;
  std::optional<std::uint64_t> seq;
  reject_reason reason = reject_reason::malformed_json;
  std::string_view detail;
  std::string_view raw;  // cut to kMaxLineBytes by the sink
};

class dead_letter_sink {
 public:
  virtual ~dead_letter_sink() = default;
  // Thread-safe; never blocks on the disk.
  virtual void write(const dead_letter& d) = 0;
  // Returns when what write() took so far is written out (or counted lost). The engine calls it
  // before a checkpoint's acks go out: an acked record that was rejected is in the log.
  virtual void flush() {}
};

// Formats one entry as a JSON object (no newline).
std::string to_json(const dead_letter& d);

}  // namespace simcap
