// Tests for WalWriter and Replay: round trips, segment rotation, torn tails,
// corruption in the middle of the log, hostile headers, and error reporting.
#include "storage/wal/wal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "encoding/coding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "storage/wal/wal_format.h"

namespace espy::storage::wal {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// A payload that differs per index and size, so misordered or mixed-up
// records are caught.
std::string Payload(int i, size_t size) {
  std::string s(size, '\0');
  for (size_t k = 0; k < size; ++k) s[k] = static_cast<char>('a' + (i * 7 + k) % 26);
  return s;
}

class WalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir();
    if (tmpl.empty() || tmpl.back() != '/') tmpl += '/';
    tmpl += "wal_test_XXXXXX";
    ASSERT_NE(nullptr, mkdtemp(tmpl.data())) << tmpl;
    root_ = tmpl;
    dir_ = root_ + "/wal";
    logger_ = std::make_shared<spdlog::logger>(
        "wal_test", std::make_shared<spdlog::sinks::ostream_sink_st>(log_));
    logger_->set_level(spdlog::level::debug);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<WalWriter> OpenWriter(
      uint64_t segment_bytes = 128ull << 20,
      uint64_t preallocate_bytes = WalOptions{}.preallocate_bytes) {
    WalOptions options;
    options.dir = dir_;
    options.segment_bytes = segment_bytes;
    options.preallocate_bytes = preallocate_bytes;
    options.logger = logger_;
    auto w = WalWriter::Open(options);
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? *std::move(w) : nullptr;
  }

  // Writes the records with a fresh writer and closes it after a Sync.
  void Write(const std::vector<std::string>& records, uint64_t segment_bytes = 128ull << 20) {
    auto w = OpenWriter(segment_bytes);
    ASSERT_NE(nullptr, w);
    for (const auto& r : records) ASSERT_TRUE(w->AddRecord(r).ok());
    ASSERT_TRUE(w->Sync().ok());
  }

  // Replays dir_, collecting payloads into *out; the log text lands in log_.
  ReplayStats Read(std::vector<std::string>* out) {
    out->clear();
    auto stats = Replay(espy::fs::Env::Default(), dir_, logger_, [&](std::string_view p) {
      out->emplace_back(p);
      return absl::OkStatus();
    });
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : ReplayStats{};
  }

  std::string SegmentPath(uint64_t n) const { return dir_ + "/" + SegmentFileName(n); }
  uint64_t FileSize(uint64_t n) const { return fs::file_size(SegmentPath(n)); }
  std::vector<uint64_t> Segments() const {
    auto s = ListSegments(espy::fs::Env::Default(), dir_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::vector<uint64_t>{};
  }

  void Truncate(uint64_t segment, uint64_t size) {
    ASSERT_EQ(0, truncate(SegmentPath(segment).c_str(), static_cast<off_t>(size)));
  }
  void XorByte(uint64_t segment, uint64_t offset, uint8_t mask = 0x01) {
    std::fstream f(SegmentPath(segment), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekg(static_cast<std::streamoff>(offset));
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ mask);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
  }
  void AppendBytes(uint64_t segment, const std::string& bytes) {
    std::ofstream f(SegmentPath(segment), std::ios::app | std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(f.good());
  }
  void WriteFile(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::trunc | std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(f.good());
  }

  std::string root_;
  std::string dir_;
  std::ostringstream log_;
  base::Logger logger_;
};

TEST_F(WalTest, RoundTripAcrossSegments) {
  std::vector<std::string> records;
  for (int i = 0; i < 300; ++i) records.push_back(Payload(i, static_cast<size_t>(i % 97)));
  records.push_back("");  // empty payloads are records too
  Write(records, /*segment_bytes=*/1000);
  ASSERT_GE(Segments().size(), 10u);
  const std::vector<uint64_t> segments = Segments();
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    EXPECT_LE(FileSize(segments[i]), 1000u) << segments[i];
  }

  std::vector<std::string> got;
  ReplayStats stats = Read(&got);
  EXPECT_EQ(records, got);
  EXPECT_EQ(Segments().size(), stats.segments);
  EXPECT_EQ(records.size(), stats.records);
  uint64_t bytes = 0;
  for (const auto& r : records) bytes += r.size();
  EXPECT_EQ(bytes, stats.bytes);
  EXPECT_EQ(0u, stats.corrupt_bytes_skipped);
  EXPECT_EQ(0u, stats.torn_bytes_truncated);
}

TEST_F(WalTest, WriterCountsBytesAndSyncsAndRotates) {
  auto w = OpenWriter(/*segment_bytes=*/100);
  ASSERT_NE(nullptr, w);
  EXPECT_EQ(1u, w->current_segment());
  ASSERT_TRUE(w->AddRecord(Payload(0, 50)).ok());
  EXPECT_EQ(0u, w->bytes_written());  // buffered, not yet handed to the OS
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(kHeaderBytes + 50, w->bytes_written());
  EXPECT_EQ(0u, w->syncs());
  ASSERT_TRUE(w->Sync().ok());
  EXPECT_EQ(1u, w->syncs());
  ASSERT_TRUE(w->AddRecord(Payload(1, 50)).ok());  // 59 + 59 > 100: rotates, syncing segment 1
  EXPECT_EQ(2u, w->current_segment());
  EXPECT_EQ(2u, w->syncs());
  ASSERT_TRUE(w->Flush().ok());
  EXPECT_EQ(2 * (kHeaderBytes + 50), w->bytes_written());
  EXPECT_EQ(kHeaderBytes + 50, FileSize(1));
  EXPECT_EQ(100u, FileSize(2));  // reserved up to the segment size while open
  w.reset();
  EXPECT_EQ(kHeaderBytes + 50, FileSize(2));
}

TEST_F(WalTest, DestructorWritesBufferedRecords) {
  {
    auto w = OpenWriter();
    ASSERT_NE(nullptr, w);
    ASSERT_TRUE(w->AddRecord("unflushed").ok());
  }
  std::vector<std::string> got;
  Read(&got);
  EXPECT_EQ(std::vector<std::string>{"unflushed"}, got);
}

TEST_F(WalTest, RecordEndingExactlyAtSegmentSizeStaysInSegment) {
  const uint64_t record = kHeaderBytes + 100;
  auto w = OpenWriter(/*segment_bytes=*/2 * record);
  ASSERT_NE(nullptr, w);
  ASSERT_TRUE(w->AddRecord(Payload(0, 100)).ok());
  ASSERT_TRUE(w->AddRecord(Payload(1, 100)).ok());  // ends exactly at segment_bytes
  EXPECT_EQ(1u, w->current_segment());
  ASSERT_TRUE(w->AddRecord(Payload(2, 100)).ok());  // one byte too many: next segment
  EXPECT_EQ(2u, w->current_segment());
  ASSERT_TRUE(w->AddRecord(Payload(3, 101)).ok());  // 109 + 110 > 218
  EXPECT_EQ(3u, w->current_segment());
  ASSERT_TRUE(w->AddRecord(Payload(4, 500)).ok());  // larger than a segment: gets its own
  EXPECT_EQ(4u, w->current_segment());
  ASSERT_TRUE(w->AddRecord(Payload(5, 1)).ok());
  EXPECT_EQ(5u, w->current_segment());
  ASSERT_TRUE(w->Sync().ok());
  w.reset();

  EXPECT_EQ(2 * record, FileSize(1));
  EXPECT_EQ(record, FileSize(2));
  EXPECT_EQ(kHeaderBytes + 500, FileSize(4));
  std::vector<std::string> got;
  Read(&got);
  EXPECT_EQ((std::vector<std::string>{Payload(0, 100), Payload(1, 100), Payload(2, 100),
                                      Payload(3, 101), Payload(4, 500), Payload(5, 1)}),
            got);
}

TEST_F(WalTest, LargeRecordsBypassTheBufferInOrder) {
  std::vector<std::string> records = {Payload(0, 10), Payload(1, 3 << 20), Payload(2, 10),
                                      Payload(3, (1 << 20) - 5), Payload(4, 700 << 10)};
  Write(records);
  std::vector<std::string> got;
  Read(&got);
  EXPECT_EQ(records, got);
}

TEST_F(WalTest, EmptyAndMissingDirsAreEmptyLogs) {
  std::vector<std::string> got;
  ReplayStats stats = Read(&got);  // dir_ does not exist yet
  EXPECT_EQ(0u, stats.segments);
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(fs::exists(dir_));  // replay creates nothing

  fs::create_directory(dir_);
  stats = Read(&got);
  EXPECT_EQ(0u, stats.segments);
  EXPECT_EQ(0u, stats.records);
}

TEST_F(WalTest, OpenCreatesNestedDirAndStartsAfterExistingSegments) {
  dir_ = root_ + "/a/b/wal";
  Write({"one"}, 100);
  EXPECT_EQ(std::vector<uint64_t>{1}, Segments());
  auto w = OpenWriter();
  ASSERT_NE(nullptr, w);
  EXPECT_EQ(2u, w->current_segment());
  w.reset();
  // Segment 2 stayed empty, so the next writer reuses it instead of leaving it behind.
  w = OpenWriter();
  ASSERT_NE(nullptr, w);
  EXPECT_EQ(2u, w->current_segment());
  ASSERT_TRUE(w->AddRecord("two").ok());
  w.reset();
  EXPECT_EQ((std::vector<uint64_t>{1, 2}), Segments());
  std::vector<std::string> got;
  Read(&got);
  EXPECT_EQ((std::vector<std::string>{"one", "two"}), got);
}

TEST_F(WalTest, StrayFilesAreIgnored) {
  Write({"a", "b"}, /*segment_bytes=*/10);  // one record per segment: 00000001, 00000002
  WriteFile(dir_ + "/README", "not a segment");
  WriteFile(dir_ + "/00000003.tmp", "garbage");
  WriteFile(dir_ + "/000000009", "garbage");  // 9 digits with a leading zero: not canonical
  WriteFile(dir_ + "/1234567", "garbage");    // too short
  fs::create_directory(dir_ + "/lost+found");
  EXPECT_EQ((std::vector<uint64_t>{1, 2}), Segments());
  std::vector<std::string> got;
  ReplayStats stats = Read(&got);
  EXPECT_EQ((std::vector<std::string>{"a", "b"}), got);
  EXPECT_EQ(2u, stats.segments);
  EXPECT_EQ(0u, stats.torn_bytes_truncated + stats.corrupt_bytes_skipped);
}

TEST_F(WalTest, SegmentsReplayInNumericOrder) {
  fs::create_directories(dir_);
  // 9-digit numbers sort after 8-digit ones numerically, not by name.
  Write({"first"});
  fs::rename(SegmentPath(1), SegmentPath(99999999));
  Write({"second"});
  EXPECT_EQ((std::vector<uint64_t>{99999999, 100000000}), Segments());
  EXPECT_EQ("100000000", SegmentFileName(100000000));
  std::vector<std::string> got;
  Read(&got);
  EXPECT_EQ((std::vector<std::string>{"first", "second"}), got);
}

// A crash can cut the last record anywhere: every cut loses only that record,
// the file is truncated back to the end of the previous one, and a new writer
// appends after it with nothing lost on the next replay.
TEST_F(WalTest, TornTailAtEveryOffsetOfLastRecord) {
  std::vector<std::string> records = {Payload(0, 30), Payload(1, 40), Payload(2, 50)};
  const uint64_t last_start = 2 * kHeaderBytes + 30 + 40;
  const uint64_t full = last_start + kHeaderBytes + 50;
  for (uint64_t cut = last_start; cut < full; ++cut) {
    SCOPED_TRACE(cut);
    fs::remove_all(dir_);
    Write({"older segment"}, /*segment_bytes=*/20);  // segment 1
    Write(records);                                  // segment 2
    Truncate(2, cut);
    log_.str("");

    std::vector<std::string> got;
    ReplayStats stats = Read(&got);
    EXPECT_EQ((std::vector<std::string>{"older segment", records[0], records[1]}), got);
    EXPECT_EQ(cut - last_start, stats.torn_bytes_truncated);
    EXPECT_EQ(0u, stats.corrupt_bytes_skipped);
    EXPECT_EQ(last_start, FileSize(2));
    if (cut > last_start) {
      EXPECT_THAT(log_.str(), HasSubstr("[warning]"));
      EXPECT_THAT(log_.str(), HasSubstr(fmt::format("segment=00000002 offset={}", last_start)));
    }

    Write({"after crash"});
    stats = Read(&got);
    EXPECT_EQ((std::vector<std::string>{"older segment", records[0], records[1], "after crash"}),
              got);
    EXPECT_EQ(0u, stats.torn_bytes_truncated + stats.corrupt_bytes_skipped);
  }
}

TEST_F(WalTest, TrailingZerosFromPreallocationAreTruncated) {
  Write({"a", "b"});
  const uint64_t size = FileSize(1);
  AppendBytes(1, std::string(4096, '\0'));
  std::vector<std::string> got;
  ReplayStats stats = Read(&got);
  EXPECT_EQ((std::vector<std::string>{"a", "b"}), got);
  EXPECT_EQ(4096u, stats.torn_bytes_truncated);
  EXPECT_EQ(size, FileSize(1));
  // The normal reserved tail, not a torn write: said at info, in words.
  EXPECT_THAT(log_.str(), HasSubstr("[info] msg=\"wal: dropped the unused preallocated tail"));
  EXPECT_THAT(log_.str(), Not(HasSubstr("[warning]")));
}

TEST_F(WalTest, OpenSegmentIsReservedAheadAndCutToItsRecordsOnClose) {
  auto w = OpenWriter(128ull << 20, /*preallocate_bytes=*/4096);
  ASSERT_NE(nullptr, w);
  uint64_t records = 0;
  for (int i = 0; i < 100; ++i) {
    std::string payload = Payload(i, 97);
    ASSERT_TRUE(w->AddRecord(payload).ok());
    records += kHeaderBytes + payload.size();
    ASSERT_TRUE(w->Sync().ok());
    // Each sync overwrites reserved zeros: the file is a whole number of
    // steps, never shorter than its records.
    EXPECT_EQ(0u, FileSize(1) % 4096) << i;
    EXPECT_GE(FileSize(1), records) << i;
    EXPECT_LT(FileSize(1), records + 4096) << i;
  }
  w.reset();
  EXPECT_EQ(records, FileSize(1));
  std::vector<std::string> got;
  ReplayStats stats = Read(&got);
  EXPECT_EQ(100u, got.size());
  EXPECT_EQ(0u, stats.torn_bytes_truncated + stats.corrupt_bytes_skipped);
}

TEST_F(WalTest, ReservationGrowsWithTheSegmentAndStaysASmallShareOfIt) {
  auto w = OpenWriter();  // the default 8 MiB cap
  ASSERT_NE(nullptr, w);
  uint64_t records = 0;
  uint64_t largest_step = 0, last_size = 0;
  for (int i = 0; i < 8000; ++i) {
    std::string payload = Payload(i, 1000);
    ASSERT_TRUE(w->AddRecord(payload).ok());
    records += kHeaderBytes + payload.size();
    ASSERT_TRUE(w->Sync().ok());
    const uint64_t size = FileSize(1);
    EXPECT_GE(size, records) << i;
    // Never more reserved than one step: 64 KiB or 1/32 of the records.
    EXPECT_LE(size - records,
              std::max(kMinPreallocateBytes, records / kPreallocateFraction + kMinPreallocateBytes))
        << i;
    if (size > last_size && last_size != 0) largest_step = std::max(largest_step, size - last_size);
    last_size = size;
  }
  // 8 MB of records: the step grew past the 64 KiB floor, and stayed far
  // below the 8 MiB cap.
  EXPECT_GT(largest_step, kMinPreallocateBytes);
  EXPECT_LT(largest_step, uint64_t{1} << 20);
  w.reset();
  EXPECT_EQ(records, FileSize(1));
}

TEST_F(WalTest, CrashWithReservedSpaceLosesNoSyncedRecord) {
  auto w = OpenWriter(128ull << 20, /*preallocate_bytes=*/1 << 16);
  ASSERT_NE(nullptr, w);
  ASSERT_TRUE(w->AddRecord("a").ok());
  ASSERT_TRUE(w->AddRecord("b").ok());
  ASSERT_TRUE(w->Sync().ok());
  // What a kill -9 leaves: the segment as synced, reserved zeros and all.
  const std::string crashed = root_ + "/crashed";
  fs::copy(dir_, crashed);
  w.reset();
  fs::remove_all(dir_);
  fs::rename(crashed, dir_);
  ASSERT_EQ(uint64_t{1} << 16, FileSize(1));

  std::vector<std::string> got;
  ReplayStats stats = Read(&got);
  EXPECT_EQ((std::vector<std::string>{"a", "b"}), got);
  EXPECT_EQ(2 * kHeaderBytes + 2, FileSize(1));
  EXPECT_EQ((uint64_t{1} << 16) - FileSize(1), stats.torn_bytes_truncated);
  EXPECT_THAT(log_.str(), HasSubstr("[info] msg=\"wal: dropped the unused preallocated tail"));
  EXPECT_THAT(log_.str(), Not(HasSubstr("[warning]")));
}

TEST_F(WalTest, FullSegmentsKeepNoReservedSpace) {
  // Five 200-byte records fill a segment to 1,000 bytes of its 1,100, all
  // of them reserved while it is open.
  auto w = OpenWriter(/*segment_bytes=*/1100, /*preallocate_bytes=*/4096);
  ASSERT_NE(nullptr, w);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(w->AddRecord(Payload(i, 191)).ok());
    ASSERT_TRUE(w->Sync().ok());
  }
  const std::vector<uint64_t> segments = Segments();
  ASSERT_GT(segments.size(), 3u);
  // Every segment but the open one ends at its last record, so a replay
  // after a crash now would find no zeros (no "corruption") before the last.
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    EXPECT_EQ(5 * (kHeaderBytes + 191), FileSize(segments[i])) << segments[i];
  }
}

TEST_F(WalTest, FlippedByteAnywhereInLastRecordTruncatesIt) {
  std::vector<std::string> records = {Payload(0, 20), Payload(1, 20)};
  const uint64_t last_start = kHeaderBytes + 20;
  for (uint64_t offset = last_start; offset < 2 * last_start; ++offset) {
    SCOPED_TRACE(offset);
    fs::remove_all(dir_);
    Write(records);
    XorByte(1, offset);
    std::vector<std::string> got;
    ReplayStats stats = Read(&got);
    EXPECT_EQ(std::vector<std::string>{records[0]}, got);
    EXPECT_EQ(last_start, stats.torn_bytes_truncated);
    EXPECT_EQ(last_start, FileSize(1));
  }
}

TEST_F(WalTest, FlippedByteInMiddleSegmentSkipsRestOfThatSegmentOnly) {
  const uint64_t record = kHeaderBytes + 10;
  // Three records per segment, segments 1..4.
  std::vector<std::string> records;
  for (int i = 0; i < 12; ++i) records.push_back(Payload(i, 10));
  Write(records, /*segment_bytes=*/3 * record);
  ASSERT_EQ((std::vector<uint64_t>{1, 2, 3, 4}), Segments());
  XorByte(2, record + kHeaderBytes + 3);  // payload of the 2nd record of segment 2

  std::vector<std::string> got;
  ReplayStats stats = Read(&got);
  std::vector<std::string> want(records.begin(), records.begin() + 4);  // seg 1 + first of seg 2
  want.insert(want.end(), records.begin() + 6, records.end());          // segments 3 and 4
  EXPECT_EQ(want, got);
  EXPECT_EQ(2 * record, stats.corrupt_bytes_skipped);
  EXPECT_EQ(0u, stats.torn_bytes_truncated);
  EXPECT_EQ(3 * record, FileSize(2));  // corruption is reported, never truncated away
  EXPECT_THAT(log_.str(), HasSubstr("[error]"));
  EXPECT_THAT(log_.str(), HasSubstr(fmt::format("segment=00000002 offset={}", record)));
  EXPECT_THAT(log_.str(), HasSubstr("checksum mismatch"));

  // Reported again on the next replay, with the same result: nothing was lost.
  log_.str("");
  stats = Read(&got);
  EXPECT_EQ(want, got);
  EXPECT_EQ(2 * record, stats.corrupt_bytes_skipped);
}

// A header claiming an enormous payload must neither allocate it nor read
// past the file, wherever it appears.
TEST_F(WalTest, HugeLengthHeaderIsRejectedWithoutAllocating) {
  for (uint32_t length : {uint32_t{0xffffffff}, static_cast<uint32_t>(kMaxRecordBytes),
                          static_cast<uint32_t>(kMaxRecordBytes + 1)}) {
    SCOPED_TRACE(length);
    fs::remove_all(dir_);
    Write({"a"}, /*segment_bytes=*/1);  // segment 1
    Write({"b"}, /*segment_bytes=*/1);  // segment 2
    std::string header(kHeaderBytes, '\0');
    encoding::EncodeFixed32(header.data() + kLengthOffset, length);
    header[kTypeOffset] = static_cast<char>(RecordType::kFull);
    AppendBytes(1, header + "tail bytes");
    AppendBytes(2, header + "tail bytes");
    log_.str("");

    std::vector<std::string> got;
    ReplayStats stats = Read(&got);
    EXPECT_EQ((std::vector<std::string>{"a", "b"}), got);
    EXPECT_EQ(kHeaderBytes + 10, stats.corrupt_bytes_skipped);
    EXPECT_EQ(kHeaderBytes + 10, stats.torn_bytes_truncated);
    EXPECT_THAT(log_.str(),
                HasSubstr(length > kMaxRecordBytes ? "exceeds the limit" : "truncated payload"));
  }
}

TEST_F(WalTest, UnknownRecordTypeIsCorruption) {
  Write({"a"}, 1);
  Write({"b"}, 1);
  XorByte(1, kTypeOffset, 0x80);
  std::vector<std::string> got;
  ReplayStats stats = Read(&got);
  EXPECT_EQ(std::vector<std::string>{"b"}, got);
  EXPECT_EQ(kHeaderBytes + 1, stats.corrupt_bytes_skipped);
  EXPECT_THAT(log_.str(), HasSubstr("bad record type 129"));
}

TEST_F(WalTest, ErrorFromCallbackStopsReplay) {
  Write({"a", "b", "c", "d"}, /*segment_bytes=*/25);  // two records per segment
  int calls = 0;
  auto stats = Replay(espy::fs::Env::Default(), dir_, logger_, [&](std::string_view p) {
    ++calls;
    if (p == "c") return absl::FailedPreconditionError("bad record c");
    return absl::OkStatus();
  });
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(absl::StatusCode::kFailedPrecondition, stats.status().code());
  EXPECT_EQ("bad record c", stats.status().message());
  EXPECT_EQ(3, calls);
}

TEST_F(WalTest, RandomGarbageNeverCrashesReplay) {
  std::mt19937 rng(42);
  for (int iter = 0; iter < 200; ++iter) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (uint64_t seg = 1; seg <= 3; ++seg) {
      std::string bytes(rng() % 300, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      // Sometimes a plausible header with a random length, to reach the CRC check.
      if (bytes.size() >= kHeaderBytes && rng() % 2) {
        encoding::EncodeFixed32(bytes.data() + kLengthOffset, rng() % 400);
        bytes[kTypeOffset] = static_cast<char>(RecordType::kFull);
      }
      WriteFile(SegmentPath(seg), bytes);
    }
    std::vector<std::string> got;
    const uint64_t last_size = FileSize(3);
    ReplayStats stats = Read(&got);
    EXPECT_EQ(3u, stats.segments);
    EXPECT_EQ(last_size - stats.torn_bytes_truncated, FileSize(3));
  }
}

TEST_F(WalTest, RejectsOversizedRecord) {
  auto w = OpenWriter();
  ASSERT_NE(nullptr, w);
  // Untouched anonymous memory costs nothing, so a real oversized view is cheap.
  const size_t size = kMaxRecordBytes + 1;
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(MAP_FAILED, p);
  absl::Status s = w->AddRecord(std::string_view(static_cast<const char*>(p), size));
  munmap(p, size);
  EXPECT_EQ(absl::StatusCode::kInvalidArgument, s.code());
  EXPECT_THAT(s.message(), HasSubstr("exceeds the limit"));
  EXPECT_TRUE(w->AddRecord("small").ok());  // not a sticky error
}

TEST_F(WalTest, OpenErrorNamesThePathAndCause) {
  WriteFile(root_ + "/file", "x");
  WalOptions options;
  options.dir = root_ + "/file/wal";
  auto w = WalWriter::Open(options);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr(root_ + "/file"));
  EXPECT_THAT(w.status().message(), HasSubstr("Not a directory"));

  auto stats = Replay(espy::fs::Env::Default(), root_ + "/file", logger_,
                      [](std::string_view) { return absl::OkStatus(); });
  ASSERT_FALSE(stats.ok());
  EXPECT_THAT(stats.status().message(), HasSubstr("Not a directory"));
}

// A write that fails (here: over RLIMIT_FSIZE) names the segment and errno,
// and the error sticks because the segment's contents are now unknown.
TEST_F(WalTest, WriteErrorNamesSegmentAndSticks) {
  auto w = OpenWriter();
  ASSERT_NE(nullptr, w);
  struct rlimit old_limit;
  ASSERT_EQ(0, getrlimit(RLIMIT_FSIZE, &old_limit));
  struct rlimit limit = old_limit;
  limit.rlim_cur = 100;
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &limit));
  ASSERT_TRUE(w->AddRecord(Payload(0, 500)).ok());
  absl::Status s = w->Flush();
  ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &old_limit));
  signal(SIGXFSZ, old_handler);

  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("write " + SegmentPath(1)));
  EXPECT_THAT(s.message(), HasSubstr("File too large"));
  EXPECT_EQ(s, w->AddRecord("x"));
  EXPECT_EQ(s, w->Sync());
}

TEST_F(WalTest, RemoveSegmentsBeforeKeepsLaterOnes) {
  Write({"a", "b", "c", "d"}, /*segment_bytes=*/1);
  ASSERT_EQ((std::vector<uint64_t>{1, 2, 3, 4}), Segments());
  ASSERT_TRUE(RemoveSegmentsBefore(espy::fs::Env::Default(), dir_, 3).ok());
  EXPECT_EQ((std::vector<uint64_t>{3, 4}), Segments());
  std::vector<std::string> got;
  Read(&got);
  EXPECT_EQ((std::vector<std::string>{"c", "d"}), got);
  EXPECT_TRUE(RemoveSegmentsBefore(espy::fs::Env::Default(), root_ + "/missing", 3).ok());
}

// The byte layout documented in docs/format/wal.md, pinned.
TEST_F(WalTest, RecordBytesMatchTheDocumentedFormat) {
  Write({"hi"});
  std::ifstream f(SegmentPath(1), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(std::string("\xe2\x7f\xaa\xc1"  // masked CRC-32C of the 7 bytes after it
                        "\x02\x00\x00\x00"  // length 2
                        "\x01"              // kFull
                        "hi",
                        11),
            bytes);
}

TEST(WalFormatTest, MaskRoundTripsAndChangesTheValue) {
  for (uint32_t crc : {0u, 1u, 0xdeadbeefu, 0xffffffffu}) {
    EXPECT_EQ(crc, UnmaskCrc(MaskCrc(crc)));
    EXPECT_NE(crc, MaskCrc(crc));
  }
  EXPECT_EQ("00000001", SegmentFileName(1));
  EXPECT_EQ("12345678", SegmentFileName(12345678));
}

TEST_F(WalTest, ReplayWithPositionsNamesSegmentAndOffsetOfEachRecord) {
  // Two segments: the third record does not fit in the first.
  Write({std::string(10, 'a'), std::string(20, 'b'), std::string(30, 'c')},
        kHeaderBytes * 2 + 10 + 20);
  std::vector<std::pair<uint64_t, uint64_t>> positions;
  std::vector<size_t> sizes;
  auto stats = ReplayWithPositions(espy::fs::Env::Default(), dir_, logger_,
                                   [&](std::string_view p, const RecordPosition& pos) {
                                     positions.emplace_back(pos.segment, pos.offset);
                                     sizes.push_back(p.size());
                                     return absl::OkStatus();
                                   });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ((std::vector<size_t>{10, 20, 30}), sizes);
  EXPECT_EQ((std::vector<std::pair<uint64_t, uint64_t>>{{1, 0}, {1, kHeaderBytes + 10}, {2, 0}}),
            positions);
}

}  // namespace
}  // namespace espy::storage::wal
