#pragma once
// Where records that are not counted go (SPEC §7): JSON lines with time, feed, seq, reason,
// detail and the raw line (at most 4 KiB of it).
#include <cstdint>
#include <optional>
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
  // Thread-safe; the entry is written before write() returns.
  virtual void write(const dead_letter& d) = 0;
};

}  // namespace simcap

#include <cstdio>
#include <mutex>
#include <string>

namespace simcap {

// The dead-letter log as a JSON-lines file, appended to and flushed on every entry.
class dead_letter_file final : public dead_letter_sink {
 public:
  // Opens (creating) the file for appending; throws std::runtime_error when it cannot.
  explicit dead_letter_file(const std::string& path);
  ~dead_letter_file() override;
  void write(const dead_letter& d) override;
  std::uint64_t written() const;

 private:
  mutable std::mutex mu_;
  std::FILE* f_ = nullptr;
  std::uint64_t written_ = 0;
};

// Formats one entry as a JSON object (no newline).
std::string to_json(const dead_letter& d);

}  // namespace simcap
