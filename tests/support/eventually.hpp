#pragma once
// Waits for a condition with a deadline (tests never sleep as synchronisation).
#include <chrono>
#include <thread>

namespace simcap::testing {

template <class F>
bool eventually(F&& f, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

}  // namespace simcap::testing
