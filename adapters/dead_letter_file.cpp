#include "dead_letter_file.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "simcap/thread_name.hpp"

namespace simcap {

dead_letter_file::dead_letter_file(const std::string& path, dead_letter_file_options opts)
    : path_(path), opts_(opts) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw std::runtime_error("cannot open dead-letter log " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) == 0) size_ = static_cast<std::uint64_t>(st.st_size);
  writer_ = std::thread([this] {
    set_thread_name("deadletter");
    run();
  });
}

dead_letter_file::~dead_letter_file() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  writer_.join();
  if (fd_ >= 0) ::close(fd_);
}

void dead_letter_file::write(const dead_letter& d) {
  std::string line = to_json(d);
  line.push_back('\n');
  entries_.fetch_add(1, std::memory_order_relaxed);
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (pending_.size() + line.size() > opts_.buffer_bytes) {
      dropped_.fetch_add(1, std::memory_order_relaxed);  // the disk is not keeping up
      return;
    }
    pending_ += line;
    ++pending_lines_;
    wake = pending_.size() >= (64u << 10);
  }
  if (wake) wake_.notify_one();
}

void dead_letter_file::flush() {
  std::unique_lock lock(mu_);
  if (pending_.empty() && !writing_) return;
  const std::uint64_t ticket = ++asked_;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return done_ >= ticket || stop_; });
}

dead_letter_file::counters dead_letter_file::read_counters() const {
  return {entries_.load(std::memory_order_relaxed), bytes_.load(std::memory_order_relaxed),
          dropped_.load(std::memory_order_relaxed), rotations_.load(std::memory_order_relaxed)};
}

void dead_letter_file::run() {
  std::string chunk;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, opts_.flush_interval,
                   [&] { return stop_ || asked_ > done_ || pending_.size() >= (64u << 10); });
    const std::uint64_t ticket = asked_;
    const bool last = stop_;
    chunk.clear();
    chunk.swap(pending_);
    const std::uint64_t lines = std::exchange(pending_lines_, 0);
    writing_ = !chunk.empty();
    lock.unlock();
    if (!chunk.empty()) write_out(chunk, lines);
    lock.lock();
    writing_ = false;
    done_ = ticket;
    flushed_.notify_all();
    if (last) return;
  }
}

void dead_letter_file::write_out(const std::string& chunk, std::uint64_t lines) {
  std::string_view rest = chunk;
  while (!rest.empty()) {
    // What fits in the current file, cut after a line; the file rotates when not one line does.
    std::string_view part = rest;
    if (opts_.max_bytes != 0 && size_ + part.size() > opts_.max_bytes) {
      const std::uint64_t room = opts_.max_bytes > size_ ? opts_.max_bytes - size_ : 0;
      const std::size_t cut = room == 0 ? std::string_view::npos : rest.rfind('\n', room - 1);
      if (cut == std::string_view::npos) {
        if (size_ != 0) {
          rotate();
          continue;
        }
        part = rest.substr(0, rest.find('\n') + 1);  // one line over the size on its own
      } else {
        part = rest.substr(0, cut + 1);
      }
    }
    const std::size_t done = write_all(part);
    if (done < part.size()) {
      // What is left of the chunk is lost (a partial line may be on disk: the next write
      // starts on a new line).
      const int err = fd_ < 0 ? EBADF : errno;
      rest.remove_prefix(done);
      const auto lost = static_cast<std::uint64_t>(std::count(rest.begin(), rest.end(), '\n'));
      dropped_.fetch_add(std::min(lost, lines), std::memory_order_relaxed);
      if (!failing_) {
        spdlog::error("dead-letter log {}: write failed ({}); entries are dropped until it works",
                      path_, std::strerror(err));
      }
      failing_ = true;
      if (done != 0 && fd_ >= 0 && ::write(fd_, "\n", 1) == 1) ++size_;
      return;
    }
    rest.remove_prefix(part.size());
  }
  if (failing_) spdlog::info("dead-letter log {}: writing again", path_);
  failing_ = false;
}

std::size_t dead_letter_file::write_all(std::string_view part) {
  std::size_t off = 0;
  while (off < part.size()) {
    const ssize_t n = fd_ < 0 ? -1 : ::write(fd_, part.data() + off, part.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
    size_ += static_cast<std::uint64_t>(n);
    bytes_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
  }
  return off;
}

void dead_letter_file::rotate() {
  ::close(fd_);
  fd_ = -1;
  if (opts_.files == 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  } else {
    std::error_code ec;
    for (unsigned i = opts_.files; i > 1; --i) {
      std::filesystem::rename(path_ + "." + std::to_string(i - 1), path_ + "." + std::to_string(i),
                              ec);
    }
    std::filesystem::rename(path_, path_ + ".1", ec);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  size_ = 0;
  rotations_.fetch_add(1, std::memory_order_relaxed);
  if (fd_ < 0 && !failing_) {
    spdlog::error("dead-letter log {}: cannot open after rotating ({})", path_,
                  std::strerror(errno));
  }
}

}  // namespace simcap
