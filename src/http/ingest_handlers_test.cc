#include "http/ingest_handlers.h"

#include <snappy.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/sample_pager.h"

namespace espy::http {
namespace {

namespace bhttp = boost::beast::http;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kNow = 1'700'000'000'000;

std::string Gzip(std::string_view text) {
  z_stream zs{};
  EXPECT_EQ(Z_OK,
            deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY));
  std::string out(deflateBound(&zs, text.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(Z_STREAM_END, deflate(&zs, Z_FINISH));
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Snappy(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

class IngestHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("espy-ingest-handlers-{}-{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    storage::DbOptions db_options;
    db_options.dir = dir_.string();
    db_options.fsync = storage::wal::FsyncPolicy::kNever;
    auto db = storage::Db::Open(db_options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    metrics_ = std::make_unique<SelfMetrics>(db_.get());
    ApiOptions api;
    api.db = db_.get();
    api.metrics = metrics_.get();
    api.clock = &clock_;
    IngestHandlerOptions options;
    options.max_decoded_bytes = 4096;
    RegisterIngestHandlers(router_, api, options);
  }
  void TearDown() override {
    db_->Close();
    std::filesystem::remove_all(dir_);
  }

  // Dispatches one request and waits for its reply (which may come from
  // the commit thread).
  Response Send(bhttp::verb method, std::string target, std::string body,
                std::vector<std::pair<bhttp::field, std::string>> headers = {}) {
    Request req{method, target, 11};
    for (auto& [f, v] : headers) req.set(f, v);
    req.body() = std::move(body);
    req.prepare_payload();
    std::promise<Response> promise;
    std::string route;
    router_.Dispatch(
        req, [&promise](Response res) { promise.set_value(std::move(res)); }, &route);
    return promise.get_future().get();
  }
  Response Influx(std::string target, std::string body,
                  std::vector<std::pair<bhttp::field, std::string>> headers = {}) {
    return Send(bhttp::verb::post, std::move(target), std::move(body), std::move(headers));
  }
  Response RemoteWrite(const std::string& raw_or_body, bool compress = true,
                       std::string content_type = "application/x-protobuf",
                       std::string encoding = "snappy") {
    return Send(
        bhttp::verb::post, "/api/v1/write", compress ? Snappy(raw_or_body) : raw_or_body,
        {{bhttp::field::content_type, content_type}, {bhttp::field::content_encoding, encoding}});
  }

  // Every stored sample as "series ts value", in storage order.
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

  std::string Metrics() { return metrics_->Render(); }

  std::filesystem::path dir_;
  base::FakeClock clock_{kNow};
  std::unique_ptr<storage::Db> db_;
  std::unique_ptr<SelfMetrics> metrics_;
  Router router_;
};

TEST_F(IngestHandlersTest, InfluxV1WritesAndAnswers204) {
  Response res = Influx("/write?db=telegraf&rp=autogen&precision=s",
                        "cpu,host=a usage_user=1.5,usage_system=2i 1700000000\n"
                        "mem,host=a value=42 1700000001\n");
  EXPECT_EQ(Status::no_content, res.result());
  EXPECT_EQ("", res.body());
  EXPECT_THAT(Stored(), ElementsAre("cpu_usage_system{host=\"a\"} 1700000000000 2",
                                    "cpu_usage_user{host=\"a\"} 1700000000000 1.5",
                                    "mem{host=\"a\"} 1700000001000 42"));
  EXPECT_THAT(Metrics(), HasSubstr("espy_samples_ingested_total{protocol=\"influx\"} 3"));
}

TEST_F(IngestHandlersTest, InfluxDefaultPrecisionIsNanosecondsAndMissingTsIsNow) {
  EXPECT_EQ(Status::no_content, Influx("/write", "a v=1 1700000000123456789\nb v=2\n").result());
  EXPECT_THAT(Stored(), ElementsAre("a_v{} 1700000000123 1", fmt::format("b_v{{}} {} 2", kNow)));
}

TEST_F(IngestHandlersTest, InfluxEscapes) {
  EXPECT_EQ(Status::no_content, Influx("/api/v2/write?bucket=b&org=o&precision=ms",
                                       "my\\ meas,tag\\,k=v\\=1\\ x f\\ 1=3u 1700000000000\n")
                                    .result());
  EXPECT_THAT(Stored(), ElementsAre("my meas_f 1{tag,k=\"v=1 x\"} 1700000000000 3"));
}

TEST_F(IngestHandlersTest, InfluxBadLineNamesLineAndFieldAndStoresNothing) {
  Response res = Influx("/write?db=x", "ok v=1\nweather,loc=us temp=\"hot\"\n");
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("\"error\":\"unable to parse line 2 'weather,loc=us "
                                    "temp=\\\"hot\\\"': field \\\"temp\\\": "));
  EXPECT_THAT(res.body(), HasSubstr("\"line\":2,\"field\":\"temp\""));
  EXPECT_THAT(Stored(), ElementsAre());
  EXPECT_THAT(Metrics(), HasSubstr("espy_ingest_rejected_batches_total{protocol=\"influx\"} 1"));
}

TEST_F(IngestHandlersTest, InfluxV2ErrorHasCodeAndMessage) {
  Response res = Influx("/api/v2/write?bucket=b", "cpu\n");
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("{\"code\":\"invalid\",\"message\":\"unable to parse line 1 "
                                    "'cpu': "));
}

TEST_F(IngestHandlersTest, InfluxNonUtf8LineIsQuotedEscaped) {
  Response res = Influx("/write", "m\xff v=x\n");
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("'m\\\\xff v=x'"));
}

TEST_F(IngestHandlersTest, InfluxBadPrecisionIs400) {
  Response res = Influx("/write?precision=days", "a v=1\n");
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("\"field\":\"precision\""));
  // 2.x has no minutes or hours.
  res = Influx("/api/v2/write?precision=h", "a v=1\n");
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("want ns, us, ms or s, got \\\"h\\\""));
  // 1.x does.
  EXPECT_EQ(Status::no_content, Influx("/write?precision=h", "a v=1 472222\n").result());
  EXPECT_THAT(Stored(), ElementsAre("a_v{} 1699999200000 1"));
}

TEST_F(IngestHandlersTest, InfluxGzipBody) {
  Response res = Influx("/write?precision=s", Gzip("a v=1 1700000000\n"),
                        {{bhttp::field::content_encoding, "gzip"}});
  EXPECT_EQ(Status::no_content, res.result()) << res.body();
  EXPECT_THAT(Stored(), ElementsAre("a_v{} 1700000000000 1"));
}

TEST_F(IngestHandlersTest, InfluxConcatenatedGzipMembers) {
  Response res =
      Influx("/write?precision=s", Gzip("a v=1 1700000000\n") + Gzip("b v=2 1700000000\n"),
             {{bhttp::field::content_encoding, "gzip"}});
  EXPECT_EQ(Status::no_content, res.result()) << res.body();
  EXPECT_THAT(Stored(), ElementsAre("a_v{} 1700000000000 1", "b_v{} 1700000000000 2"));
}

TEST_F(IngestHandlersTest, InfluxGzipBombIs413) {
  // 100 KB of zeros compress to ~100 bytes; the test limit is 4 KiB.
  Response res =
      Influx("/write", Gzip(std::string(100'000, '0')), {{bhttp::field::content_encoding, "gzip"}});
  EXPECT_EQ(Status::payload_too_large, res.result());
  EXPECT_THAT(res.body(), HasSubstr("inflates to more than 4096 bytes"));
}

TEST_F(IngestHandlersTest, InfluxCorruptOrTruncatedGzipIs400) {
  std::string gz = Gzip("a v=1\n");
  Response res =
      Influx("/write", gz.substr(0, gz.size() - 6), {{bhttp::field::content_encoding, "gzip"}});
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("gzip body ends early"));
  res = Influx("/write", "not gzip at all", {{bhttp::field::content_encoding, "gzip"}});
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("gzip body is corrupt"));
  EXPECT_THAT(Stored(), ElementsAre());
}

TEST_F(IngestHandlersTest, InfluxUnknownEncodingIs415) {
  Response res = Influx("/write", "a v=1\n", {{bhttp::field::content_encoding, "br"}});
  EXPECT_EQ(Status::unsupported_media_type, res.result());
  EXPECT_THAT(res.body(), HasSubstr("Content-Encoding \\\"br\\\" is not accepted"));
}

TEST_F(IngestHandlersTest, InfluxPlainBodyOverLimitIs413) {
  EXPECT_EQ(Status::payload_too_large, Influx("/write", std::string(5000, '#')).result());
}

TEST_F(IngestHandlersTest, InfluxEmptyBodyIs204) {
  EXPECT_EQ(Status::no_content, Influx("/write", "").result());
}

TEST_F(IngestHandlersTest, PingAnswers204) {
  EXPECT_EQ(Status::no_content, Send(bhttp::verb::get, "/ping", "").result());
}

// A prometheus.WriteRequest encoded by hand (the generated classes cannot be
// included beside prometheus-cpp, whose namespace they share).
void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutBytes(int field, std::string_view bytes, std::string* out) {
  PutVarint(static_cast<uint64_t>(field) << 3 | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes);
}
std::string Label(std::string_view name, std::string_view value) {
  std::string out;
  PutBytes(1, name, &out);
  PutBytes(2, value, &out);
  return out;
}
std::string SampleProto(double value, int64_t ts) {
  std::string out;
  out.push_back(0x09);  // field 1, fixed64
  char bytes[8];
  std::memcpy(bytes, &value, 8);
  out.append(bytes, 8);
  PutVarint(2 << 3, &out);  // field 2, varint
  PutVarint(static_cast<uint64_t>(ts), &out);
  return out;
}
std::string Series(const std::vector<std::string>& labels,
                   const std::vector<std::string>& samples) {
  std::string out;
  for (const std::string& l : labels) PutBytes(1, l, &out);
  for (const std::string& s : samples) PutBytes(2, s, &out);
  return out;
}
std::string WriteRequest(const std::vector<std::string>& series) {
  std::string out;
  for (const std::string& s : series) PutBytes(1, s, &out);
  return out;
}

std::string TwoSeries(std::string_view second_name_label = "__name__") {
  return WriteRequest({Series({Label("__name__", "up"), Label("job", "node")},
                              {SampleProto(1, kNow - 1000), SampleProto(0, kNow)}),
                       Series({Label(second_name_label, "temp")}, {SampleProto(-3.5, kNow)})});
}

TEST_F(IngestHandlersTest, RemoteWriteStoresSamplesAndAnswers204) {
  Response res = RemoteWrite(TwoSeries());
  EXPECT_EQ(Status::no_content, res.result()) << res.body();
  EXPECT_THAT(Stored(), ElementsAre(fmt::format("temp{{}} {} -3.5", kNow),
                                    fmt::format("up{{job=\"node\"}} {} 1", kNow - 1000),
                                    fmt::format("up{{job=\"node\"}} {} 0", kNow)));
  EXPECT_THAT(Metrics(), HasSubstr("espy_samples_ingested_total{protocol=\"remote_write\"} 3"));
}

TEST_F(IngestHandlersTest, RemoteWriteWithVersionedContentTypeIsAccepted) {
  Response res =
      RemoteWrite(TwoSeries(), true, "application/x-protobuf;proto=prometheus.WriteRequest");
  EXPECT_EQ(Status::no_content, res.result()) << res.body();
}

TEST_F(IngestHandlersTest, RemoteWriteNotSnappyIs400WithMessage) {
  Response res = RemoteWrite("definitely not snappy", false);
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("\"error\":\""));
  EXPECT_THAT(res.body(), HasSubstr("snappy"));
  EXPECT_THAT(Metrics(),
              HasSubstr("espy_ingest_rejected_batches_total{protocol=\"remote_write\"} 1"));
}

TEST_F(IngestHandlersTest, RemoteWriteBadProtobufIs400) {
  Response res = RemoteWrite("\x0a\x7f\x01");
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(Stored(), ElementsAre());
}

TEST_F(IngestHandlersTest, RemoteWriteSeriesWithoutNameIs400NamingTheSeries) {
  Response res = RemoteWrite(TwoSeries("job"));
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("\"item\":1"));
  EXPECT_THAT(Stored(), ElementsAre());
}

TEST_F(IngestHandlersTest, RemoteWriteOverDecodedLimitIs400) {
  Response res =
      RemoteWrite(WriteRequest({Series({Label("__name__", std::string(5000, 'a'))}, {})}));
  EXPECT_EQ(Status::bad_request, res.result());
  EXPECT_THAT(res.body(), HasSubstr("4096"));
}

TEST_F(IngestHandlersTest, RemoteWriteOtherEncodingsAndTypesAre415) {
  std::string raw = TwoSeries();
  EXPECT_EQ(Status::unsupported_media_type,
            RemoteWrite(raw, true, "application/x-protobuf", "zstd").result());
  EXPECT_EQ(Status::unsupported_media_type, RemoteWrite(raw, true, "application/json").result());
  EXPECT_EQ(Status::unsupported_media_type,
            RemoteWrite(raw, true, "application/x-protobuf;proto=io.prometheus.write.v2.Request")
                .result());
  EXPECT_THAT(Stored(), ElementsAre());
}

TEST_F(IngestHandlersTest, WriteEndpointsTakeOnlyPost) {
  EXPECT_EQ(Status::method_not_allowed, Send(bhttp::verb::get, "/write", "").result());
  EXPECT_EQ(Status::method_not_allowed, Send(bhttp::verb::get, "/api/v1/write", "").result());
}

TEST(GunzipTest, EmptyInputIsTruncated) {
  absl::StatusOr<std::string> out = Gunzip("", 100);
  EXPECT_FALSE(out.ok());
}

}  // namespace
}  // namespace espy::http
