// RefTable: pointers by series ref, read without a lock. The head's readers
// (queries, the pager, the commit thread) look series up by ref far more
// often than series are created, so a lookup must not take the lock that
// creation holds.
//
// Slots live in segments that never move: segment k holds kFirstSegment << k
// slots, so the table grows by doubling without copying, and a reader needs
// two acquire loads. Refs start at 1.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "base/check.h"

namespace espy::storage::head {

// Thread-safe for any number of readers and one writer at a time (the
// caller serializes Set). T is not owned.
template <typename T>
class RefTable {
 public:
  RefTable() = default;
  ~RefTable() {
    for (auto& s : segments_) delete[] s.load(std::memory_order_relaxed);
  }
  RefTable(const RefTable&) = delete;
  RefTable& operator=(const RefTable&) = delete;

  // The pointer set for `ref`, or null (never set, or ref 0). Whatever the
  // writer did before Set(ref, ...) is visible to a reader that sees it.
  T* Get(uint64_t ref) const {
    if (ref == 0) return nullptr;
    const Position p = Locate(ref - 1);
    if (p.segment >= kSegments) return nullptr;
    const std::atomic<T*>* slots = segments_[p.segment].load(std::memory_order_acquire);
    return slots == nullptr ? nullptr : slots[p.offset].load(std::memory_order_acquire);
  }

  // REQUIRES: ref != 0; writers serialized by the caller.
  void Set(uint64_t ref, T* value) {
    ESPY_CHECK(ref != 0) << "ref 0";
    const Position p = Locate(ref - 1);
    ESPY_CHECK(p.segment < kSegments) << "ref " << ref << " out of range";
    std::atomic<T*>* slots = segments_[p.segment].load(std::memory_order_relaxed);
    if (slots == nullptr) {
      slots = new std::atomic<T*>[kFirstSegment << p.segment]();
      segments_[p.segment].store(slots, std::memory_order_release);
    }
    slots[p.offset].store(value, std::memory_order_release);
  }

 private:
  static constexpr uint64_t kFirstSegment = 1024;
  // 1024 * (2^40 - 1) refs: more than a head could hold.
  static constexpr size_t kSegments = 40;

  struct Position {
    size_t segment;
    uint64_t offset;
  };
  // Segment k holds indexes [kFirstSegment * (2^k - 1), kFirstSegment * (2^(k+1) - 1)).
  static Position Locate(uint64_t index) {
    const uint64_t x = index / kFirstSegment + 1;
    const size_t k = static_cast<size_t>(std::bit_width(x) - 1);
    return {k, index - kFirstSegment * ((uint64_t{1} << k) - 1)};
  }

  std::array<std::atomic<std::atomic<T*>*>, kSegments> segments_{};
};

}  // namespace espy::storage::head
