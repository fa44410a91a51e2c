#include "auth/web_config.h"

#include "gtest/gtest.h"

namespace espy::auth {
namespace {

constexpr char kHash[] = "$2y$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";

absl::StatusOr<WebConfig> Parse(const std::string& text) {
  return ParseWebConfig(text, "web.yml", ".");
}

TEST(WebConfigTest, EmptyFileIsNoAuth) {
  auto c = Parse("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->users.empty());
  EXPECT_TRUE(c->http2);
  EXPECT_FALSE(c->tls.enabled());
}

TEST(WebConfigTest, ParsesUsersAndHeaders) {
  auto c = Parse(std::string("basic_auth_users:\n  alice: '") + kHash + "'\n  bob: '" + kHash +
                 "'\nhttp_server_config:\n  http2: false\n  headers:\n"
                 "    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=3600\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->users.size(), 2u);
  EXPECT_EQ(c->users[0].first, "alice");
  EXPECT_EQ(c->users[1].second, kHash);
  EXPECT_FALSE(c->http2);
  ASSERT_EQ(c->headers.size(), 2u);
  EXPECT_EQ(c->headers[1].first, "Strict-Transport-Security");
  EXPECT_EQ(c->headers[1].second, "max-age=3600");
}

TEST(WebConfigTest, VersionsAloneDoNotTurnTlsOn) {
  auto c = Parse(
      "tls_server_config:\n  min_version: TLS13\n  cipher_suites: "
      "[TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->tls.enabled());
  EXPECT_EQ(c->tls.min_version, "TLS13");
}

void ExpectError(const std::string& text, std::string_view want) {
  auto c = Parse(text);
  ASSERT_FALSE(c.ok()) << text;
  EXPECT_NE(std::string(c.status().message()).find(want), std::string_view::npos)
      << "got: " << c.status().message() << "\nwant: " << want;
}

TEST(WebConfigTest, RefusesWithClearMessages) {
  ExpectError("foo: 1\n", "web.yml:1: unknown key \"foo\"");
  ExpectError("basic_auth_users:\n  a: abc\n", "web.yml:2: basic_auth_users: user \"a\"");
  ExpectError(std::string("basic_auth_users:\n  a: '") + kHash + "'\n  a: '" + kHash + "'\n",
              "key \"a\" given twice");
  ExpectError("basic_auth_users: [a]\n", "basic_auth_users: want a mapping");
  ExpectError("http_server_config:\n  headers:\n    X-Foo: 1\n", "header \"X-Foo\" cannot be set");
  ExpectError("http_server_config:\n  headers:\n    x-frame-options: deny\n",
              "header \"x-frame-options\" cannot be set");
  ExpectError("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
              "want \"deny\" or \"sameorigin\"");
  ExpectError("http_server_config:\n  http2: maybe\n", "http2: want true or false");
  ExpectError("tls_server_config:\n  min_version: TLS14\n", "unknown TLS version \"TLS14\"");
  ExpectError("tls_server_config:\n  key_file: k.pem\n", "missing cert_file");
  ExpectError("tls_server_config:\n  cert_file: c.pem\n", "missing key_file");
  ExpectError("tls_server_config:\n  cert_file: /nonexistent/c.pem\n  key_file: k.pem\n",
              "cert_file /nonexistent/c.pem");
  ExpectError("tls_server_config:\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
              "unknown cipher \"TLS_RSA_WITH_RC4_128_SHA\"");
  ExpectError("basic_auth_users: [\n", "not valid YAML");
}

}  // namespace
}  // namespace espy::auth
