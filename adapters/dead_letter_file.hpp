#pragma once
// The dead-letter log on disk: buffered, rotated JSON-lines files.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "simcap/dead_letter.hpp"

namespace simcap {

struct dead_letter_file_options {
  // The file rotates when it would pass max_bytes: file.1 ... file.<files> keep the older ones
  // (files = 0: the file starts again empty).
  std::uint64_t max_bytes = 100u << 20;
  unsigned files = 5;
  // What waits in memory for the writer thread; beyond it entries are dropped (and counted)
  // rather than blocking ingest.
  std::size_t buffer_bytes = 4u << 20;
  std::chrono::milliseconds flush_interval{100};
};

// The dead-letter log as JSON-lines files. write() appends to a memory buffer; a writer thread
// writes it out (one write a flush, at least every flush_interval) and rotates the files. A
// failed write (a full disk) drops what it held, counted and logged once, and never blocks
// write().
class dead_letter_file final : public dead_letter_sink {
 public:
  // Opens (creating) the file for appending; throws std::runtime_error when it cannot.
  explicit dead_letter_file(const std::string& path, dead_letter_file_options opts = {});
  ~dead_letter_file() override;
  void write(const dead_letter& d) override;
  // Writes out what is buffered now and returns when it is written (or dropped).
  void flush() override;
  struct counters {
    std::uint64_t entries = 0;        // handed to write()
    std::uint64_t bytes_written = 0;  // to the files
    std::uint64_t dropped = 0;        // entries lost: buffer full or a failed write
    std::uint64_t rotations = 0;
  };
  counters read_counters() const;
  std::uint64_t written() const { return read_counters().entries; }

 private:
  void run();
  // Writer thread: writes out `chunk` (`lines` entries), rotating first when it would pass
  // the size.
  void write_out(const std::string& chunk, std::uint64_t lines);
  // Writes part to the current file; returns how much of it went (less: a write failed).
  std::size_t write_all(std::string_view part);
  void rotate();

  const std::string path_;
  const dead_letter_file_options opts_;
  int fd_ = -1;
  std::uint64_t size_ = 0;  // of the current file (writer thread)
  bool failing_ = false;    // the last write failed (logged once until one succeeds)
  mutable std::mutex mu_;
  std::condition_variable wake_, flushed_;
  std::string pending_;
  std::uint64_t pending_lines_ = 0;
  std::uint64_t asked_ = 0, done_ = 0;  // flush() generations
  bool writing_ = false;                // the writer holds a chunk
  bool stop_ = false;
  std::atomic<std::uint64_t> entries_{0}, bytes_{0}, dropped_{0}, rotations_{0};
  std::thread writer_;
};

}  // namespace simcap
