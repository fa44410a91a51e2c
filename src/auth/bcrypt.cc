#include "auth/bcrypt.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <charconv>
#include <cstring>
#include <memory>
#include <string>

#include "fmt/format.h"

namespace espy::auth {
namespace {

// "$2y$10$" + 53 characters: the shortest hash Go's bcrypt parses.
constexpr size_t kMinHashSize = 59;
constexpr int kMinCost = 4;
constexpr int kMaxCost = 31;

}  // namespace

absl::Status CheckBcryptHash(std::string_view hash) {
  if (hash.size() < kMinHashSize) {
    return absl::InvalidArgumentError(
        fmt::format("not a bcrypt hash: {} characters, want at least {} (make one with "
                    "htpasswd -nBC 10 USER)",
                    hash.size(), kMinHashSize));
  }
  if (hash[0] != '$') {
    return absl::InvalidArgumentError(
        fmt::format("not a bcrypt hash: starts with '{}', want '$'", hash[0]));
  }
  if (hash[1] > '2') {
    return absl::InvalidArgumentError(
        fmt::format("bcrypt version '{}' is newer than the newest known, '2'", hash[1]));
  }
  size_t cost_at = hash[2] == '$' ? 3 : 4;
  int cost = 0;
  std::string_view digits = hash.substr(cost_at, 2);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cost);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) {
    return absl::InvalidArgumentError(
        fmt::format("bcrypt cost \"{}\" is not a number", std::string(digits)));
  }
  if (cost < kMinCost || cost > kMaxCost) {
    return absl::InvalidArgumentError(
        fmt::format("bcrypt cost {} is outside {}..{}", cost, kMinCost, kMaxCost));
  }
  return absl::OkStatus();
}

bool VerifyBcrypt(std::string_view hash, std::string_view password) {
  if (hash.size() < 4 || hash.substr(0, 2) != "$2" || hash[3] != '$' ||
      (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y')) {
    return false;
  }
  // crypt_r takes C strings: a password with a NUL in it cannot be the one
  // hashed (htpasswd cannot make one either).
  if (password.find('\0') != std::string_view::npos) return false;
  std::string hash_z(hash), password_z(password);
  // crypt_data is ~32 KiB: on the heap, not a request thread's stack.
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_r(password_z.c_str(), hash_z.c_str(), data.get());
  // libxcrypt returns a string starting with '*' on failure.
  if (out == nullptr || out[0] == '*') return false;
  size_t n = std::strlen(out);
  return n == hash_z.size() && CRYPTO_memcmp(out, hash_z.data(), n) == 0;
}

}  // namespace espy::auth
