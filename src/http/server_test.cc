#include "http/server.h"

#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/read.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "gtest/gtest.h"

namespace espy::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// The body a streaming handler writes: `pieces` pieces of `size` bytes,
// each filled with its own letter.
std::string Piece(int i, size_t size) { return std::string(size, static_cast<char>('a' + i % 26)); }
std::string Body(int pieces, size_t size) {
  std::string out;
  for (int i = 0; i < pieces; ++i) out += Piece(i, size);
  return out;
}

class ServerStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // /stream?pieces=N&size=B: written from a thread of its own, as a query
    // pool would; /inline writes on the connection's thread.
    router_.Add(
        "/stream", {bhttp::verb::get, bhttp::verb::head}, [this](const Request& req, Reply reply) {
          // Not a structured binding: clang 14 (the thread-safety check)
          // cannot capture one.
          std::pair<int, size_t> shape = Shape(req);
          std::lock_guard lock(mu_);
          producers_.emplace_back(
              [this, reply, shape] { Produce(reply, shape.first, shape.second, /*finish=*/true); });
        });
    router_.Add("/inline", {bhttp::verb::get}, [this](const Request& req, Reply reply) {
      auto [pieces, size] = Shape(req);
      Produce(reply, pieces, size, /*finish=*/false);  // the writer's end finishes it
    });
    router_.Add("/whole", {bhttp::verb::get}, [](const Request&, Reply reply) {
      reply(MakeResponse(Status::ok, "whole", "text/plain"));
    });
    ServerOptions options;
    options.port = 0;
    options.threads = 1;
    // Longer than any test: a producer that stops must stop because the
    // client left, not because a write timed out.
    options.io_timeout = std::chrono::minutes(10);
    server_ = std::make_unique<Server>(options, router_);
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    server_->Shutdown();
    std::lock_guard lock(mu_);
    for (auto& t : producers_) t.join();
  }

  static std::pair<int, size_t> Shape(const Request& req) {
    std::string target(req.target());
    int pieces = 0;
    size_t size = 0;
    EXPECT_EQ(2, sscanf(target.c_str(), "%*[^?]?pieces=%d&size=%zu", &pieces, &size)) << target;
    return {pieces, size};
  }

  // Writes the pieces; records how many Writes succeeded.
  void Produce(const Reply& reply, int pieces, size_t size, bool finish) {
    std::unique_ptr<BodyWriter> body = reply.Stream(MakeResponse(Status::ok, "", "text/plain"));
    // An empty piece adds nothing (as a chunk it would end the body).
    EXPECT_TRUE(body->Write(""));
    int written = 0;
    while (written < pieces && body->Write(Piece(written, size))) ++written;
    if (finish) {
      body->Finish();
      EXPECT_FALSE(body->Write("late"));
    }
    body.reset();
    written_.set_value(written);
  }

  tcp::socket Connect() {
    tcp::socket socket(ioc_);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
    return socket;
  }

  bhttp::response<bhttp::string_body> Get(tcp::socket& socket, beast::flat_buffer& buffer,
                                          const std::string& target, int version = 11) {
    bhttp::request<bhttp::empty_body> req(bhttp::verb::get, target, version);
    req.set(bhttp::field::host, "127.0.0.1");
    bhttp::write(socket, req);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1 << 30);
    bhttp::read(socket, buffer, parser);
    return parser.release();
  }

  net::io_context ioc_;
  Router router_;
  std::unique_ptr<Server> server_;
  std::mutex mu_;
  std::vector<std::thread> producers_;
  std::promise<int> written_;
};

TEST_F(ServerStreamTest, SendsPiecesAsChunksThenServesTheNextRequest) {
  tcp::socket socket = Connect();
  beast::flat_buffer buffer;
  auto res = Get(socket, buffer, "/stream?pieces=40&size=300000");
  EXPECT_EQ(200, res.result_int());
  EXPECT_TRUE(res.chunked());
  EXPECT_TRUE(res.keep_alive());
  EXPECT_EQ("text/plain", res[bhttp::field::content_type]);
  EXPECT_EQ(Body(40, 300000), res.body());
  EXPECT_EQ(40, written_.get_future().get());
  // The connection is ready for the next request.
  auto next = Get(socket, buffer, "/whole");
  EXPECT_EQ("whole", next.body());
}

TEST_F(ServerStreamTest, StreamsToHttp10UntilTheConnectionCloses) {
  tcp::socket socket = Connect();
  beast::flat_buffer buffer;
  auto res = Get(socket, buffer, "/stream?pieces=3&size=1000", /*version=*/10);
  EXPECT_EQ(10, res.version());
  EXPECT_FALSE(res.chunked());
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(Body(3, 1000), res.body());
  char byte;
  beast::error_code ec;
  net::read(socket, net::buffer(&byte, 1), ec);
  EXPECT_EQ(net::error::eof, ec);
}

TEST_F(ServerStreamTest, HeadGetsTheHeaderWithoutTheBody) {
  tcp::socket socket = Connect();
  beast::flat_buffer buffer;
  bhttp::request<bhttp::empty_body> req(bhttp::verb::head, "/stream?pieces=3&size=1000", 11);
  req.set(bhttp::field::host, "127.0.0.1");
  bhttp::write(socket, req);
  bhttp::response_parser<bhttp::empty_body> parser;
  parser.skip(true);  // a response to HEAD has no body, whatever its header says
  bhttp::read(socket, buffer, parser);
  EXPECT_EQ(200, parser.get().result_int());
  EXPECT_TRUE(parser.get().chunked());
  EXPECT_EQ(3, written_.get_future().get());
  // Nothing else came: the next response on the connection is the next
  // request's.
  EXPECT_EQ("whole", Get(socket, buffer, "/whole").body());
}

TEST_F(ServerStreamTest, ProducerOnTheConnectionThreadDoesNotWaitForItself) {
  // 20 MB queued before the first byte can go out: more than a producer on
  // another thread may queue, so this would hang if the writer waited.
  tcp::socket socket = Connect();
  beast::flat_buffer buffer;
  auto res = Get(socket, buffer, "/inline?pieces=20&size=1000000");
  EXPECT_TRUE(res.chunked());
  EXPECT_EQ(Body(20, 1000000), res.body());
}

TEST_F(ServerStreamTest, ProducerStopsWhenTheClientGoesAway) {
  // Far more than socket buffers and the write queue hold: the producer
  // must block, then learn that the client left.
  std::future<int> written = written_.get_future();
  {
    tcp::socket socket = Connect();
    bhttp::request<bhttp::empty_body> req(bhttp::verb::get, "/stream?pieces=100000&size=1000000",
                                          11);
    req.set(bhttp::field::host, "127.0.0.1");
    bhttp::write(socket, req);
    char first[64];
    net::read(socket, net::buffer(first));                 // the response has begun
    socket.set_option(net::socket_base::linger(true, 0));  // RST: drop what is unread
  }
  int n = written.get();
  EXPECT_LT(n, 100000);
  // The server still answers.
  tcp::socket socket = Connect();
  beast::flat_buffer buffer;
  EXPECT_EQ("whole", Get(socket, buffer, "/whole").body());
}

// A body over the limit is refused before any handler runs; the 413 must
// still be reported under the route the request was sent to, as every other
// answer of that route is.
TEST(ServerBodyLimitTest, A413IsReportedUnderItsRoute) {
  Router router;
  router.Add("/v1/metrics", {bhttp::verb::post},
             [](const Request&, Reply reply) { reply(MakeResponse(Status::accepted, "{}")); });
  std::promise<std::pair<std::string, int>> observed;
  ServerOptions options;
  options.port = 0;
  options.threads = 1;
  options.max_body_bytes = 16;
  options.on_response = [&observed](std::string_view route, int status, double) {
    observed.set_value({std::string(route), status});
  };
  Server server(options, router);
  ASSERT_TRUE(server.Start().ok());
  net::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
  bhttp::request<bhttp::string_body> req(bhttp::verb::post, "/v1/metrics?x=1", 11);
  req.set(bhttp::field::host, "127.0.0.1");
  req.body() = std::string(64, ' ');
  req.prepare_payload();
  bhttp::write(socket, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(socket, buffer, res);
  EXPECT_EQ(413, res.result_int());
  EXPECT_EQ((std::pair<std::string, int>{"/v1/metrics", 413}), observed.get_future().get());
  server.Shutdown();
}

TEST(ReplyTest, WithoutAConnectionStreamCollectsTheBodyIntoOneResponse) {
  Response got;
  int calls = 0;
  Reply reply([&](Response res) {
    got = std::move(res);
    ++calls;
  });
  {
    std::unique_ptr<BodyWriter> body = reply.Stream(MakeResponse(Status::ok, "ignored"));
    EXPECT_TRUE(body->Write("ab"));
    EXPECT_TRUE(body->Write("cd"));
    EXPECT_EQ(0, calls);
  }  // the end of the writer ends the body
  EXPECT_EQ(1, calls);
  EXPECT_EQ("abcd", got.body());
  EXPECT_EQ("4", got[bhttp::field::content_length]);
  EXPECT_EQ("application/json", got[bhttp::field::content_type]);
  {
    std::unique_ptr<BodyWriter> body = reply.Stream(MakeResponse(Status::ok, ""));
    body->Finish();
    EXPECT_EQ(2, calls);
    EXPECT_FALSE(body->Write("late"));
  }
  EXPECT_EQ(2, calls);
}

}  // namespace
}  // namespace espy::http
