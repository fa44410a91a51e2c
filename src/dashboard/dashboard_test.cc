#include "dashboard/dashboard.h"

#include <regex>
#include <string>

#include "dashboard/assets.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace espy::dashboard {
namespace {

namespace bhttp = boost::beast::http;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class DashboardTest : public ::testing::Test {
 protected:
  DashboardTest() { RegisterDashboard(router_); }

  http::Response Get(std::string target, std::string if_none_match = "",
                     bhttp::verb method = bhttp::verb::get) {
    http::Request req{method, target, 11};
    if (!if_none_match.empty()) req.set(bhttp::field::if_none_match, if_none_match);
    http::Response out;
    std::string route;
    router_.Dispatch(
        req, [&out](http::Response res) { out = std::move(res); }, &route);
    return out;
  }

  http::Router router_;
};

TEST_F(DashboardTest, ServesIndexThatRevalidates) {
  http::Response res = Get("/");
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(res[bhttp::field::cache_control], "no-cache");
  EXPECT_THAT(res.body(), StartsWith("<!doctype html>"));
  EXPECT_FALSE(res[bhttp::field::etag].empty());
}

TEST_F(DashboardTest, IndexRefersToHashedAssetsThatAreServedImmutable) {
  std::string html = Get("/").body();
  std::smatch m;
  for (std::string ext : {"js", "css"}) {
    std::regex re("/assets/app-[0-9a-f]{12}\\." + ext);
    ASSERT_TRUE(std::regex_search(html, m, re)) << ext;
    http::Response res = Get(m.str());
    EXPECT_EQ(res.result(), bhttp::status::ok) << m.str();
    EXPECT_THAT(std::string(res[bhttp::field::content_type]),
                StartsWith(ext == "js" ? "text/javascript" : "text/css"));
    EXPECT_EQ(res[bhttp::field::cache_control], "public, max-age=31536000, immutable");
    EXPECT_GT(res.body().size(), 1000u);
  }
}

TEST_F(DashboardTest, MatchingEtagAnswersNotModified) {
  std::string etag(Get("/")[bhttp::field::etag]);
  http::Response res = Get("/", etag);
  EXPECT_EQ(res.result(), bhttp::status::not_modified);
  EXPECT_TRUE(res.body().empty());
  EXPECT_EQ(Get("/", "\"other\"").result(), bhttp::status::ok);
}

TEST_F(DashboardTest, HeadHasLengthButNoBody) {
  http::Response res = Get("/", "", bhttp::verb::head);
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_TRUE(res.body().empty());
  EXPECT_NE(res[bhttp::field::content_length], "0");
}

TEST_F(DashboardTest, UnknownAssetIsNotFound) {
  http::Response res = Get("/assets/app-000000000000.js");
  EXPECT_EQ(res.result(), bhttp::status::not_found);
  EXPECT_THAT(res.body(), HasSubstr("reload"));
}

TEST_F(DashboardTest, StatusPageLoadsOnlyAssetsUnderStatus) {
  for (std::string path : {"/status", "/status/"}) {
    http::Response res = Get(path);
    EXPECT_EQ(res.result(), bhttp::status::ok) << path;
    EXPECT_EQ(res[bhttp::field::content_type], "text/html; charset=utf-8");
    EXPECT_EQ(res[bhttp::field::cache_control], "no-cache");
    EXPECT_THAT(res.body(), StartsWith("<!doctype html>"));
  }
  std::string html = Get("/status").body();
  EXPECT_NE(html, Get("/").body());
  // No link into the dashboard, and nothing loaded from outside /status.
  EXPECT_THAT(html, Not(HasSubstr("#/")));
  EXPECT_THAT(html, Not(HasSubstr("\"/assets/")));
  std::smatch m;
  for (std::string ext : {"js", "css"}) {
    std::regex re("/status/assets/status-[0-9a-f]{12}\\." + ext);
    ASSERT_TRUE(std::regex_search(html, m, re)) << ext;
    http::Response res = Get(m.str());
    EXPECT_EQ(res.result(), bhttp::status::ok) << m.str();
    EXPECT_THAT(std::string(res[bhttp::field::content_type]),
                StartsWith(ext == "js" ? "text/javascript" : "text/css"));
    EXPECT_EQ(res[bhttp::field::cache_control], "public, max-age=31536000, immutable");
    EXPECT_GT(res.body().size(), 1000u);
  }
}

TEST_F(DashboardTest, AssetPrefixesDoNotServePages) {
  EXPECT_EQ(Get("/status/assets/").result(), bhttp::status::not_found);
  EXPECT_EQ(Get("/assets/status").result(), bhttp::status::not_found);
  EXPECT_EQ(Get("/status/assets/nope.js").result(), bhttp::status::not_found);
}

}  // namespace
}  // namespace espy::dashboard
