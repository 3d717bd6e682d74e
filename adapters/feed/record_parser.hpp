#pragma once
// Parses JSON-lines usage records (SPEC §5) with simdjson On-Demand. One parser per I/O thread:
// it keeps simdjson's buffers between calls. A text of many lines is parsed in one
// iterate_many pass; a line that breaks that pass (malformed JSON, a record spread over lines)
// sends the rest of that text through a line-by-line pass, so one bad line never takes a good
// one with it. A reject carries the record's seq only when the line parsed as a JSON object
// with a valid seq: nothing else may move a feed's watermark.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "simcap/dead_letter.hpp"
#include "simcap/reason.hpp"
#include "simcap/record.hpp"

namespace simcap {

struct parse_reject {
  std::optional<std::uint64_t> seq;
  reject_reason reason;
  std::string_view detail;
  std::uint32_t line_offset;
  std::uint32_t line_length;
};

class parse_sink {
 public:
  virtual ~parse_sink() = default;
  virtual void record(const usage_record& r) = 0;
  virtual void reject(const parse_reject& r) = 0;
};

struct parse_options {
  bool require_seq = true;                      // feed sessions: every record carries seq
  std::int64_t future_skew = 300;               // seconds a record may be ahead of the clock
  std::uint64_t max_record_bytes = 1ULL << 40;  // up + down above it is bad_value
};

class record_parser {
 public:
  explicit record_parser(parse_options o = {}) : opts_(o) {}
  // A parser kept per thread serves sessions of different settings: each sets its own.
  void set_options(const parse_options& o) noexcept { opts_ = o; }

  // Parses the complete lines in text[begin, end): `end` is just after a '\n' (or the end of
  // the data); at least simdjson::SIMDJSON_PADDING bytes after `end` must be readable. Record
  // line offsets are relative to `text`. `now` is the engine clock for future_time checks.
  void parse(const char* text, std::size_t begin, std::size_t end, unix_seconds now,
             parse_sink& sink);

  // Parses one line (no newline) into r; on failure returns the reason and sets detail.
  std::optional<reject_reason> parse_line(const char* line, std::size_t len, std::size_t capacity,
                                          unix_seconds now, usage_record& r,
                                          std::string_view& detail);

 private:
  std::size_t fast_pass(const char* text, std::size_t begin, std::size_t end, unix_seconds now,
                        parse_sink& sink);
  void line_pass(const char* text, std::size_t begin, std::size_t end, unix_seconds now,
                 parse_sink& sink);
  // Returns false on a JSON syntax error (the caller decides what that means).
  bool parse_object(simdjson::ondemand::object obj, unix_seconds now, usage_record& r,
                    std::optional<reject_reason>& why, std::string_view& detail);
  void emit_reject(parse_sink& sink, std::string_view line, std::uint32_t off, reject_reason why,
                   std::string_view detail, std::uint64_t seq = 0);

  parse_options opts_;
  simdjson::ondemand::parser many_;
  simdjson::ondemand::parser single_;
};

}  // namespace simcap
