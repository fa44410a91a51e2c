#include "graphite/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/sample_pager.h"
#include "storage/db.h"

namespace espy::graphite {
namespace {

using ::testing::ElementsAre;

constexpr int64_t kNow = 1'700'000'000'000;
constexpr absl::Duration kDeadline = absl::Seconds(30);

// A blocking client socket on 127.0.0.1.
class Client {
 public:
  Client(int type, uint16_t port) : fd_(socket(AF_INET, type, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(0, connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
  }
  ~Client() { close(fd_); }
  void Send(std::string_view data) {
    ASSERT_EQ(static_cast<ssize_t>(data.size()), send(fd_, data.data(), data.size(), 0));
  }
  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }
  // Blocks until the server closes the connection; true if it did.
  bool ReadsEof() {
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_;
};

class ListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("espy-graphite-{}-{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    OpenDb(storage::DbOptions{});
    options_.port = 0;
    options_.clock = &clock_;
    options_.on_committed = [this](uint64_t n) {
      absl::MutexLock lock(&mu_);
      committed_ += n;
    };
    options_.on_bad_lines = [this](uint64_t n) {
      absl::MutexLock lock(&mu_);
      bad_ += n;
    };
    options_.on_failed = [this](uint64_t n) {
      absl::MutexLock lock(&mu_);
      failed_ += n;
    };
  }
  void TearDown() override {
    ReleaseCommits();
    if (listener_) listener_->Stop();
    db_->Close();
    std::filesystem::remove_all(dir_);
  }

  // (Re)opens the Db in dir_ (emptied) with `db_options`, without fsync.
  void OpenDb(storage::DbOptions db_options) {
    if (db_) db_->Close();
    std::filesystem::remove_all(dir_);
    db_options.dir = dir_.string();
    db_options.fsync = storage::wal::FsyncPolicy::kNever;
    auto db = storage::Db::Open(db_options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    // Records every committed batch; while commits are held, the commit
    // thread waits here, so the batch's commit stays in flight.
    db_->SetCommitListener(
        [this](const model::SampleBatch& batch, const std::vector<model::SeriesRef>&) {
          absl::MutexLock lock(&gate_mu_);
          batch_samples_.push_back(batch.samples.size());
          batch_series_.push_back(batch.series.size());
          held_ = hold_;
          gate_mu_.Await(absl::Condition(
              +[](bool* hold) { return !*hold; }, &hold_));
          held_ = false;
        });
  }

  // Makes the next commit wait (in flight) until ReleaseCommits.
  void HoldCommits() {
    absl::MutexLock lock(&gate_mu_);
    hold_ = true;
  }
  // Waits until a commit is being held.
  void WaitUntilHeld() {
    absl::MutexLock lock(&gate_mu_);
    EXPECT_TRUE(gate_mu_.AwaitWithTimeout(absl::Condition(&held_), kDeadline));
  }
  void ReleaseCommits() {
    absl::MutexLock lock(&gate_mu_);
    hold_ = false;
  }
  // Samples and series table sizes of the batches committed so far.
  std::vector<size_t> BatchSamples() {
    absl::MutexLock lock(&gate_mu_);
    return batch_samples_;
  }
  std::vector<size_t> BatchSeries() {
    absl::MutexLock lock(&gate_mu_);
    return batch_series_;
  }

  uint16_t StartListener() {
    listener_ = std::make_unique<Listener>(options_, db_.get());
    absl::Status s = listener_->Start();
    EXPECT_TRUE(s.ok()) << s;
    return listener_->port();
  }

  // Waits until at least `samples` are committed and `bad` lines counted.
  void WaitFor(uint64_t samples, uint64_t bad = 0) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return committed_ >= samples && bad_ >= bad;
    };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&done), kDeadline))
        << "committed " << committed_ << " of " << samples << ", bad " << bad_ << " of " << bad;
  }

  std::vector<std::string> Stored() {
    auto querier = *db_->Querier(INT64_MIN, INT64_MAX);
    query::Page page = *query::ReadPage(*querier, query::PageRequest{});
    std::vector<std::string> out;
    for (const query::PagePoint& p : page.points) {
      out.push_back(fmt::format("{} {} {}", p.labels->ToString(), p.sample.ts, p.sample.value));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::filesystem::path dir_;
  base::FakeClock clock_{kNow};
  std::unique_ptr<storage::Db> db_;
  ListenerOptions options_;
  std::unique_ptr<Listener> listener_;
  absl::Mutex mu_;
  uint64_t committed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bad_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex gate_mu_;
  bool hold_ ABSL_GUARDED_BY(gate_mu_) = false;
  bool held_ ABSL_GUARDED_BY(gate_mu_) = false;
  std::vector<size_t> batch_samples_ ABSL_GUARDED_BY(gate_mu_);
  std::vector<size_t> batch_series_ ABSL_GUARDED_BY(gate_mu_);
};

TEST_F(ListenerTest, LinesSplitAcrossWritesAreJoined) {
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("a.b 1 1700000000\nc.d 2 17");
  client.Send("00000000\ne.f 3");
  client.Send(" 1700000000\n");
  WaitFor(3);
  EXPECT_THAT(Stored(), ElementsAre("a.b{} 1700000000000 1", "c.d{} 1700000000000 2",
                                    "e.f{} 1700000000000 3"));
}

TEST_F(ListenerTest, BadLinesAreCountedAndSkippedWithoutDroppingTheConnection) {
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("no value here\ngood 1 1700000000\nalso.bad x 1700000000\n");
  WaitFor(1, 2);
  client.Send("later 2 1700000000\n");
  WaitFor(2, 2);
  EXPECT_THAT(Stored(), ElementsAre("good{} 1700000000000 1", "later{} 1700000000000 2"));
}

TEST_F(ListenerTest, TagsBecomeLabelsAndMissingTimestampIsNow) {
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("cpu.load;host=web1;dc=eu 0.5\nmem -2 -1\n");
  WaitFor(2);
  EXPECT_THAT(Stored(), ElementsAre(fmt::format("cpu.load{{dc=\"eu\",host=\"web1\"}} {} 0.5", kNow),
                                    fmt::format("mem{{}} {} -2", kNow)));
}

TEST_F(ListenerTest, PartialLastLineIsParsedAtEndOfStream) {
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("x 1 1700000000\ny 2 1700000000");
  client.ShutdownWrite();
  EXPECT_TRUE(client.ReadsEof());
  WaitFor(2);
  EXPECT_THAT(Stored(), ElementsAre("x{} 1700000000000 1", "y{} 1700000000000 2"));
}

TEST_F(ListenerTest, BadLinesAreCountedOnceWhenTheStreamEnds) {
  options_.max_line_bytes = 32;
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send(std::string(40, 'x') + "\nbad\ny 2 1700000000");
  client.ShutdownWrite();
  EXPECT_TRUE(client.ReadsEof());  // the server closes after its last commit
  WaitFor(1, 2);
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(2u, bad_);
  EXPECT_EQ(1u, committed_);
}

TEST_F(ListenerTest, OverlongLineIsSkippedAndTheNextKept) {
  options_.max_line_bytes = 32;
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send(std::string(20, 'a'));
  client.Send(std::string(40, 'b') + " 1 1700000000\nok 1 1700000000\n");
  WaitFor(1, 1);
  EXPECT_THAT(Stored(), ElementsAre("ok{} 1700000000000 1"));
}

TEST_F(ListenerTest, UdpDatagramsAreBatches) {
  uint16_t port = StartListener();
  Client client(SOCK_DGRAM, port);
  client.Send("u.x 5 1700000000\nbad\nv.y 6 1700000000");
  client.Send("w.z 7 1700000000\n");
  WaitFor(3, 1);
  EXPECT_THAT(Stored(), ElementsAre("u.x{} 1700000000000 5", "v.y{} 1700000000000 6",
                                    "w.z{} 1700000000000 7"));
}

TEST_F(ListenerTest, ManyConnectionsAtOnce) {
  uint16_t port = StartListener();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<Client>(SOCK_STREAM, port));
  }
  for (int i = 0; i < 20; ++i) clients[i]->Send(fmt::format("m;conn=c{} {} 1700000000\n", i, i));
  WaitFor(20);
  EXPECT_EQ(20u, Stored().size());
}

TEST_F(ListenerTest, StopClosesIdleConnectionsAndIsIdempotent) {
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("x 1 1700000000\n");
  WaitFor(1);
  listener_->Stop();
  EXPECT_TRUE(client.ReadsEof());
  listener_->Stop();
  EXPECT_THAT(Stored(), ElementsAre("x{} 1700000000000 1"));
}

TEST_F(ListenerTest, StopWithNoConnectionsClosesThePort) {
  uint16_t port = StartListener();
  listener_->Stop();
  // Nothing listens any more: a connection is refused (an acceptor left open
  // would take it into its backlog)...
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  EXPECT_EQ(rc, -1);
  EXPECT_EQ(err, ECONNREFUSED);
  // ...and the port, TCP and UDP, can be bound again.
  ListenerOptions again = options_;
  again.port = port;
  Listener second(again, db_.get());
  EXPECT_TRUE(second.Start().ok());
  second.Stop();
  listener_->Stop();  // a second Stop does nothing
}

TEST_F(ListenerTest, PortInUseIsAnErrorNamingTheAddress) {
  uint16_t port = StartListener();
  ListenerOptions other = options_;
  other.port = port;
  Listener second(other, db_.get());
  absl::Status s = second.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(fmt::format("127.0.0.1:{}", port)));
}

TEST_F(ListenerTest, RefusedBatchIsCountedAsFailed) {
  uint16_t port = StartListener();
  db_->Close();  // every later commit is refused
  Client client(SOCK_STREAM, port);
  client.Send("x 1 1700000000\n");
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return failed_ >= 1; };
  EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&done), kDeadline));
}

TEST_F(ListenerTest, RefusedBatchDoesNotStopTheConnection) {
  storage::DbOptions db_options;
  db_options.max_series = 1;  // a batch with a second series fails whole
  OpenDb(db_options);
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("a 1 1700000000\n");
  WaitFor(1);
  client.Send("b 1 1700000000\n");
  {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return failed_ >= 1; };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&done), kDeadline));
  }
  client.Send("a 2 1700000010\n");
  WaitFor(2);
  EXPECT_THAT(Stored(), ElementsAre("a{} 1700000000000 1", "a{} 1700000010000 2"));
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(1u, failed_);
}

// Each write ends in a bad line: once all of them are counted, every line
// before them has been parsed.
TEST_F(ListenerTest, WritesArrivingDuringACommitBecomeTheNextBatch) {
  HoldCommits();
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("first 0 1700000000\n");
  WaitUntilHeld();
  for (int i = 0; i < 200; ++i) {
    client.Send(fmt::format("s;k=v{} {} 1700000000\nbad\n", i % 7, i));
  }
  WaitFor(0, 200);
  ReleaseCommits();
  WaitFor(201, 200);
  EXPECT_THAT(BatchSamples(), ElementsAre(1, 200));
  EXPECT_THAT(BatchSeries(), ElementsAre(1, 7));  // each series once per batch
  std::vector<std::string> stored = Stored();
  ASSERT_EQ(8u, stored.size());
  EXPECT_EQ("first{} 1700000000000 0", stored[0]);
  // Within the batch the later write to a series and timestamp wins.
  EXPECT_EQ("s{k=\"v0\"} 1700000000000 196", stored[1]);
  EXPECT_EQ("s{k=\"v6\"} 1700000000000 195", stored[7]);
}

TEST_F(ListenerTest, SeriesFoundInTheCacheAreMergedByRefAcrossReads) {
  ingest::SeriesCache cache(1 << 20);
  options_.series_cache = &cache;
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  for (int i = 0; i < 7; ++i) client.Send(fmt::format("s;k=v{} 0 1700000000\n", i));
  WaitFor(7);
  HoldCommits();
  client.Send("first 0 1700000000\n");
  WaitUntilHeld();
  // One read each (a bad line is counted when its read is parsed): the
  // first finds the series in the head and caches them, the others hit.
  for (int i = 0; i < 21; ++i) {
    client.Send(fmt::format("s;k=v{} {} 1700000010\nbad\n", i % 7, i));
    WaitFor(7, i + 1);
  }
  ReleaseCommits();
  WaitFor(7 + 1 + 21, 21);
  EXPECT_EQ(BatchSeries().back(), 7u);  // each series once, given by ref
  EXPECT_GE(cache.stats().hits, 7u * 2);
  EXPECT_EQ(7u, cache.stats().entries);
  std::vector<std::string> stored = Stored();
  ASSERT_EQ(15u, stored.size());
  EXPECT_EQ("s{k=\"v0\"} 1700000010000 14", stored[2]);
  EXPECT_EQ("s{k=\"v6\"} 1700000010000 20", stored[14]);
}

TEST_F(ListenerTest, ManySmallWritesAreAllCommittedInOrder) {
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  constexpr int kLines = 5000;
  for (int i = 0; i < kLines; i += 5) {
    std::string chunk;
    for (int j = i; j < i + 5; ++j) {
      chunk += fmt::format("m;k=v{} {} {}\n", j % 10, j, 1700000000 + j / 1000);
    }
    client.Send(chunk);
  }
  client.ShutdownWrite();
  EXPECT_TRUE(client.ReadsEof());  // closed after the last commit
  WaitFor(kLines);
  std::vector<size_t> batches = BatchSamples();
  EXPECT_LE(batches.size(), static_cast<size_t>(kLines / 5));
  // Five timestamps per series; at each, the last of its 100 writes wins.
  std::vector<std::string> stored = Stored();
  ASSERT_EQ(50u, stored.size());
  EXPECT_EQ("m{k=\"v0\"} 1700000000000 990", stored[0]);
  EXPECT_EQ("m{k=\"v0\"} 1700000004000 4990", stored[4]);
  EXPECT_EQ("m{k=\"v9\"} 1700000004000 4999", stored[49]);
}

TEST_F(ListenerTest, FullPendingBatchIsCappedAndNothingIsLost) {
  options_.max_batch_bytes = 100;
  options_.read_buffer_bytes = 64;
  HoldCommits();
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("first 0 1700000000\n");
  WaitUntilHeld();
  std::string data;
  for (int i = 0; i < 300; ++i) data += fmt::format("c {} {}\n", i, 1700000000 + i);
  client.Send(data);  // 16-17 bytes a line
  ReleaseCommits();
  WaitFor(301);
  // A batch stops growing at the first read that takes it to the cap: under
  // 100 bytes, plus one read (64 bytes and the partial line carried over,
  // under 17), of lines of 15 to 17 bytes.
  for (size_t n : BatchSamples()) EXPECT_LE(n, 180u / 15u);
  std::vector<std::string> stored = Stored();
  ASSERT_EQ(301u, stored.size());
  EXPECT_EQ("c{} 1700000000000 0", stored[0]);
  EXPECT_EQ("c{} 1700000299000 299", stored[299]);
}

TEST_F(ListenerTest, StopCommitsEverythingAlreadyRead) {
  HoldCommits();
  uint16_t port = StartListener();
  Client client(SOCK_STREAM, port);
  client.Send("first 0 1700000000\n");
  WaitUntilHeld();
  for (int i = 0; i < 50; ++i) client.Send(fmt::format("s {} {}\nbad\n", i, 1700000000 + i));
  WaitFor(0, 50);  // read and parsed, waiting for the commit in flight
  std::thread stopper([&] { listener_->Stop(); });
  ReleaseCommits();
  stopper.join();
  EXPECT_TRUE(client.ReadsEof());
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(51u, committed_);
}

}  // namespace
}  // namespace espy::graphite
