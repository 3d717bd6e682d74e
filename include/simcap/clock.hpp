#pragma once
// The one clock the engine reads time from. The real clock is the default; tests and demos use
// a manual clock that stands still and moves only forward when told.
#include <atomic>
#include <chrono>

#include "simcap/time.hpp"

namespace simcap {

class clock {
 public:
  virtual ~clock() = default;
  // Current time in Unix seconds. Safe to call from any thread.
  virtual unix_seconds now() const noexcept = 0;
  // True for a clock that only moves when advance_to() is called.
  virtual bool is_manual() const noexcept { return false; }
};

class real_clock final : public clock {
 public:
  unix_seconds now() const noexcept override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class manual_clock final : public clock {
 public:
  explicit manual_clock(unix_seconds start) : now_(start) {}
  unix_seconds now() const noexcept override { return now_.load(std::memory_order_acquire); }
  bool is_manual() const noexcept override { return true; }
  // Moves the clock to t. Returns false (and leaves it) when t is in the past.
  bool advance_to(unix_seconds t) noexcept {
    unix_seconds cur = now_.load(std::memory_order_acquire);
    while (t >= cur) {
      if (now_.compare_exchange_weak(cur, t, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  void advance(std::chrono::seconds d) noexcept { now_.fetch_add(d.count()); }
  // Puts the clock at t, backwards too: only before anything reads it (a restart resuming the
  // time stored with the state).
  void set(unix_seconds t) noexcept { now_.store(t, std::memory_order_release); }

 private:
  std::atomic<unix_seconds> now_;
};

}  // namespace simcap
