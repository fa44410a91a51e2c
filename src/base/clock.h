// Clock: where time comes from, so tests can drive it (FakeClock::Advance)
// instead of sleeping.
#pragma once

#include <atomic>
#include <cstdint>

namespace espy::base {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in milliseconds since the Unix epoch (UTC).
  virtual int64_t NowMillis() const = 0;
  // Monotonic time in nanoseconds from an arbitrary origin.
  virtual int64_t MonotonicNanos() const = 0;
};

// The real clock. Stateless; one shared instance.
class SystemClock final : public Clock {
 public:
  static SystemClock* Get();
  int64_t NowMillis() const override;
  int64_t MonotonicNanos() const override;
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_millis = 0) : millis_(now_millis) {}
  int64_t NowMillis() const override { return millis_.load(); }
  int64_t MonotonicNanos() const override { return millis_.load() * 1'000'000; }
  void Advance(int64_t millis) { millis_ += millis; }
  void Set(int64_t millis) { millis_ = millis; }

 private:
  std::atomic<int64_t> millis_;
};

}  // namespace espy::base
