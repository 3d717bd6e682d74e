#pragma once
// Names the calling thread (as top -H, ps -L and /proc/PID/task/*/comm show it; 15 chars at most).
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace simcap {

inline void set_thread_name(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

// Asks the scheduler for short time slices for the calling thread (Linux 6.6+ EEVDF: a task
// with a shorter slice gets an earlier deadline, so it runs soon after it wakes even when the
// cores are busy). For threads that answer queries and do little work each time they wake.
// Older kernels ignore the slice; nothing fails if the call is refused.
inline void prefer_short_slices(std::chrono::microseconds slice) {
  struct {
    std::uint32_t size;
    std::uint32_t policy;
    std::uint64_t flags;
    std::int32_t nice;
    std::uint32_t priority;
    std::uint64_t runtime, deadline, period;
  } attr{};
  attr.size = sizeof(attr);
  attr.policy = 0;  // SCHED_OTHER
  attr.runtime = static_cast<std::uint64_t>(slice.count()) * 1000;
  attr.nice = getpriority(PRIO_PROCESS, 0);  // keep the thread's nice value
  (void)syscall(SYS_sched_setattr, 0, &attr, 0);
}

// Sets the calling thread's nice value (on Linux, nice is per thread). A value below the
// current one needs CAP_SYS_NICE or a nice limit that allows it (RLIMIT_NICE, systemd's
// LimitNICE=); returns false when the kernel refuses.
inline bool set_nice(int nice) {
  if (getpriority(PRIO_PROCESS, 0) == nice) return true;
  return setpriority(PRIO_PROCESS, 0, nice) == 0;
}

// Background work (checkpoints): a lower CPU priority for the calling thread (nice +5 from its
// current value; raising nice needs no privilege).
inline void lower_priority() { (void)set_nice(getpriority(PRIO_PROCESS, 0) + 5); }

}  // namespace simcap
