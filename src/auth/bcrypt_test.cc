#include "auth/bcrypt.h"

#include "gtest/gtest.h"

namespace espy::auth {
namespace {

// Made with Python's crypt.crypt("s3cret", "$2y$04$abcdefghijklmnopqrstuu").
constexpr char k2y[] = "$2y$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";
constexpr char k2b[] = "$2b$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";
constexpr char k2a[] = "$2a$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG";
// The OpenBSD / John the Ripper test vector for "U*U".
constexpr char kVector[] = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

TEST(BcryptTest, VerifiesEachPrefix) {
  for (const char* hash : {k2y, k2b, k2a}) {
    EXPECT_TRUE(VerifyBcrypt(hash, "s3cret")) << hash;
    EXPECT_FALSE(VerifyBcrypt(hash, "s3cret ")) << hash;
    EXPECT_FALSE(VerifyBcrypt(hash, "")) << hash;
  }
  EXPECT_TRUE(VerifyBcrypt(kVector, "U*U"));
  EXPECT_FALSE(VerifyBcrypt(kVector, "U*V"));
}

TEST(BcryptTest, RefusesWhatIsNotBcrypt) {
  EXPECT_FALSE(VerifyBcrypt("", ""));
  // An MD5-crypt hash of "s3cret" must not be accepted by the bcrypt check.
  EXPECT_FALSE(VerifyBcrypt("$1$abcdefgh$0123456789abcdef", "s3cret"));
  EXPECT_FALSE(VerifyBcrypt(std::string(k2y).substr(0, 40), "s3cret"));
  EXPECT_FALSE(VerifyBcrypt(k2y, std::string("s3cret\0x", 8)));
}

TEST(BcryptTest, ChecksShapeAsPromtool) {
  EXPECT_TRUE(CheckBcryptHash(k2y).ok());
  EXPECT_TRUE(CheckBcryptHash(kVector).ok());
  // Go's bcrypt.Cost looks at the version, the cost and the length only.
  EXPECT_TRUE(CheckBcryptHash("$1$10$DPBcOnMTpZxn2.GbJRP6JeCXuPVTYfIF39/8.zKzl2QIEzWowYhXy").ok());
  EXPECT_FALSE(CheckBcryptHash("$3$10$DPBcOnMTpZxn2.GbJRP6JeCXuPVTYfIF39/8.zKzl2QIEzWowYhXy").ok());
  EXPECT_FALSE(
      CheckBcryptHash("$2y$03$DPBcOnMTpZxn2.GbJRP6JeCXuPVTYfIF39/8.zKzl2QIEzWowYhXy").ok());
  EXPECT_FALSE(
      CheckBcryptHash("$2y$32$DPBcOnMTpZxn2.GbJRP6JeCXuPVTYfIF39/8.zKzl2QIEzWowYhXy").ok());
  EXPECT_FALSE(
      CheckBcryptHash("x2y$10$DPBcOnMTpZxn2.GbJRP6JeCXuPVTYfIF39/8.zKzl2QIEzWowYhXy").ok());
  absl::Status s = CheckBcryptHash("abc");
  EXPECT_NE(std::string(s.message()).find("3 characters"), std::string_view::npos) << s;
}

}  // namespace
}  // namespace espy::auth
