#include "auth/authenticator.h"

#include <fstream>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace espy::auth {
namespace {

// Made with Python's crypt.crypt("s3cret", "$2y$04$abcdefghijklmnopqrstuu").
constexpr char kHash[] = "$2y$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";
// crypt.crypt("pässwörd:x", "$2b$05$abcdefghijklmnopqrstuu"): UTF-8 and a colon.
constexpr char kHash2[] = "$2b$05$abcdefghijklmnopqrstuuMnx7/uomeWPgc6sFISGL1IzhnMaomwa";

std::string Basic(std::string_view user, std::string_view password) {
  return "Basic " + absl::Base64Escape(std::string(user) + ":" + std::string(password));
}

WebConfig Users() {
  WebConfig c;
  c.users = {{"alice", kHash}, {"bob", kHash2}};
  return c;
}

using R = Authenticator::Result;

TEST(AuthenticatorTest, NoUsersLetsEverythingThrough) {
  Authenticator a(WebConfig{});
  EXPECT_FALSE(a.required());
  EXPECT_EQ(a.Check(""), R::kOk);
}

TEST(AuthenticatorTest, ChecksCredentials) {
  Authenticator a(Users());
  EXPECT_TRUE(a.required());
  EXPECT_EQ(a.Check(Basic("alice", "s3cret")), R::kOk);
  EXPECT_EQ(a.Check("basic " + absl::Base64Escape("alice:s3cret")), R::kOk);
  EXPECT_EQ(a.Check(Basic("bob", "pässwörd:x")), R::kOk);
  EXPECT_EQ(a.Check(Basic("alice", "wrong")), R::kWrong);
  EXPECT_EQ(a.Check(Basic("bob", "s3cret")), R::kWrong);
  EXPECT_EQ(a.Check(Basic("mallory", "s3cret")), R::kWrong);
  EXPECT_EQ(a.Check(Basic("Alice", "s3cret")), R::kWrong);
  EXPECT_EQ(a.Check("Basic !!!"), R::kWrong);
  EXPECT_EQ(a.Check("Basic " + absl::Base64Escape("alice")), R::kWrong);
  EXPECT_EQ(a.Check(""), R::kMissing);
  EXPECT_EQ(a.Check("Bearer abc"), R::kMissing);
  EXPECT_EQ(a.wrong(), 6u);
  EXPECT_EQ(a.missing(), 2u);
}

TEST(AuthenticatorTest, CachesOnlySuccessesAndStaysBounded) {
  Authenticator a(Users(), /*cache_entries=*/1);
  EXPECT_EQ(a.Check(Basic("alice", "wrong")), R::kWrong);
  EXPECT_EQ(a.cached(), 0u);
  EXPECT_EQ(a.Check(Basic("alice", "s3cret")), R::kOk);
  EXPECT_EQ(a.cached(), 1u);
  EXPECT_EQ(a.Check(Basic("alice", "s3cret")), R::kOk);
  EXPECT_EQ(a.Check(Basic("bob", "pässwörd:x")), R::kOk);
  EXPECT_EQ(a.cached(), 1u);
  // A cached success never lets a different password through.
  EXPECT_EQ(a.Check(Basic("bob", "pässwörd:y")), R::kWrong);
}

class FileTest : public ::testing::Test {
 protected:
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  // One file per test: ctest runs the tests of this binary in parallel.
  std::string path_ = ::testing::TempDir() + "/web_config_test_" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yml";
};

TEST_F(FileTest, ReloadKeepsRunningConfigOnError) {
  Write(std::string("basic_auth_users:\n  alice: '") + kHash + "'\n");
  auto a = Authenticator::Open(path_);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->Check(Basic("alice", "s3cret")), R::kOk);
  Write("basic_auth_users:\n  alice: nope\n");
  absl::Status s = (*a)->Reload();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("basic_auth_users: user \"alice\""),
            std::string_view::npos)
      << s;
  EXPECT_EQ((*a)->Check(Basic("alice", "s3cret")), R::kOk);
  Write(std::string("basic_auth_users:\n  carol: '") + kHash + "'\n");
  ASSERT_TRUE((*a)->Reload().ok());
  EXPECT_EQ((*a)->Check(Basic("alice", "s3cret")), R::kWrong);
  EXPECT_EQ((*a)->Check(Basic("carol", "s3cret")), R::kOk);
  Write("");
  ASSERT_TRUE((*a)->Reload().ok());
  EXPECT_FALSE((*a)->required());
}

TEST_F(FileTest, ServingRefusesTls) {
  const std::string dir = ESPY_AUTH_TESTDATA;
  Write("tls_server_config:\n  cert_file: " + dir + "/server.crt\n  key_file: " + dir +
        "/server.key\n");
  // Valid as a file (promtool and `espy check web-config` take it)...
  ASSERT_TRUE(CheckWebConfigFile(path_).ok()) << CheckWebConfigFile(path_);
  // ...but not served over plain HTTP in its stead.
  auto a = Authenticator::Open(path_);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(std::string(a.status().message()).find("does not serve TLS yet"),
            std::string_view::npos)
      << a.status();
}

}  // namespace
}  // namespace espy::auth
