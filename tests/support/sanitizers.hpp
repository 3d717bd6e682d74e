#pragma once
// Whether this build runs under a sanitizer (scripts/sanitize.sh). Their shadow memory and
// ASan's quarantine of freed blocks (256 MiB) are resident too, so a bound on the process's RSS
// says nothing there: tests check such bounds in the plain build only, and the bounds of the
// code itself (bytes pending, bytes taken) in every build.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SIMCAP_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SIMCAP_TEST_SANITIZED 1
#endif
#endif

namespace simcap::testing {
#ifdef SIMCAP_TEST_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
}  // namespace simcap::testing
