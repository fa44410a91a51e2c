#include "storage/head/ref_table.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace espy::storage::head {
namespace {

TEST(RefTableTest, GetsWhatWasSetAcrossSegments) {
  RefTable<int> table;
  std::vector<int> values(5000);
  EXPECT_EQ(nullptr, table.Get(0));
  EXPECT_EQ(nullptr, table.Get(1));
  // Refs around the segment boundaries (1024, 3072) and beyond, set out of
  // order as WAL replay may.
  for (uint64_t ref : {1u, 1024u, 1025u, 3072u, 3073u, 4999u, 2u, 3071u}) {
    table.Set(ref, &values[ref]);
  }
  for (uint64_t ref = 1; ref < values.size(); ++ref) {
    bool set = ref == 1 || ref == 2 || ref == 1024 || ref == 1025 || ref == 3071 || ref == 3072 ||
               ref == 3073 || ref == 4999;
    EXPECT_EQ(set ? &values[ref] : nullptr, table.Get(ref)) << ref;
  }
  // Far refs: a segment of their own, or out of range.
  int far = 0;
  table.Set(uint64_t{1} << 20, &far);
  EXPECT_EQ(&far, table.Get(uint64_t{1} << 20));
  EXPECT_EQ(nullptr, table.Get((uint64_t{1} << 20) + 1));
  EXPECT_EQ(nullptr, table.Get(UINT64_MAX));
}

// A reader that learns a ref from the writer (here through an atomic, in
// the head through the postings' lock) finds the pointer set before it.
TEST(RefTableTest, ReadersSeeWhatTheWriterPublished) {
  RefTable<uint64_t> table;
  constexpr uint64_t kRefs = 50'000;
  std::vector<uint64_t> values(kRefs + 1);
  std::atomic<uint64_t> published{0};
  std::thread writer([&] {
    for (uint64_t ref = 1; ref <= kRefs; ++ref) {
      values[ref] = ref * 7;
      table.Set(ref, &values[ref]);
      published.store(ref, std::memory_order_release);
    }
  });
  uint64_t checked = 0;
  while (checked < kRefs) {
    uint64_t upto = published.load(std::memory_order_acquire);
    for (; checked < upto; ++checked) {
      const uint64_t* v = table.Get(checked + 1);
      ASSERT_NE(nullptr, v) << checked + 1;
      ASSERT_EQ((checked + 1) * 7, *v);
    }
  }
  writer.join();
}

}  // namespace
}  // namespace espy::storage::head
