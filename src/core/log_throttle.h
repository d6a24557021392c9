#pragma once
// Lets a warning that can repeat many times a second (an accept loop out of
// file descriptors) through at most once per interval, with the number of
// occurrences it stands for, so that logs stay readable and small.
//
//   if (auto n = throttle.admit()) spdlog::warn("accept failed ({} times): ...", n);
//
// Thread-safety: none; one loop owns a throttle.

#include <chrono>
#include <cstdint>

namespace horizon {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogThrottle(Clock::duration interval) : interval_(interval) {}

  // 0: do not log this occurrence. Otherwise log it, as this many
  // occurrences (itself and those held back since the last one logged).
  std::uint64_t admit(Clock::time_point now = Clock::now()) {
    ++held_;
    if (logged_once_ && now - last_ < interval_) return 0;
    logged_once_ = true;
    last_ = now;
    const std::uint64_t n = held_;
    held_ = 0;
    return n;
  }

 private:
  Clock::duration interval_;
  Clock::time_point last_{};
  bool logged_once_ = false;
  std::uint64_t held_ = 0;
};

}  // namespace horizon
