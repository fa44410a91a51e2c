// Authenticator: the running web config (reloadable) and the basic-auth
// check against its users, with a cache of verified credentials so bcrypt's
// cost is paid once per (user, password), not on every request.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/web_config.h"

namespace espy::auth {

// Thread-safe.
class Authenticator {
 public:
  // Verified credentials remembered; when full, one is forgotten per new one.
  static constexpr size_t kDefaultCacheEntries = 1024;

  // Loads `path` for serving: a file that turns TLS on is refused, as Espy
  // does not serve TLS yet (never silently plain HTTP instead).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Open(
      std::string path, size_t cache_entries = kDefaultCacheEntries);
  // From an already parsed config; Reload() then has no file to read.
  explicit Authenticator(WebConfig config, size_t cache_entries = kDefaultCacheEntries);

  // Re-reads the file; on an error the running config stays and the error
  // is returned.
  absl::Status Reload();

  // The config in force (never null).
  std::shared_ptr<const WebConfig> config() const;
  // True when the config has users, so requests need credentials.
  bool required() const { return required_.load(std::memory_order_relaxed); }

  enum class Result { kOk, kMissing, kWrong };
  // Checks an Authorization header value ("Basic base64(user:password)").
  // An unknown user costs a bcrypt against a dummy hash, as a wrong
  // password does, so the two cannot be told apart by time. Counts failures.
  Result Check(std::string_view authorization);

  uint64_t missing() const { return missing_.load(std::memory_order_relaxed); }
  uint64_t wrong() const { return wrong_.load(std::memory_order_relaxed); }
  size_t cached() const;

 private:
  struct State {
    std::shared_ptr<const WebConfig> config;
    std::string dummy_hash;  // bcrypt of a random password, at the users' cost
  };
  void Install(WebConfig config);
  std::shared_ptr<const State> state() const;

  const std::string path_;
  const size_t cache_entries_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const State> state_ ABSL_GUARDED_BY(mu_);
  // SHA-256 of (user, stored hash, password) of credentials that verified;
  // the stored hash is in the key, so a reload that changes it misses.
  absl::flat_hash_set<std::string> cache_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> required_{false};
  std::atomic<uint64_t> missing_{0};
  std::atomic<uint64_t> wrong_{0};

  Authenticator(std::string path, size_t cache_entries);
};

// Loads `path` as `espy check web-config` does: validates it in full
// (TLS settings included), without the refusal of TLS serving.
absl::Status CheckWebConfigFile(const std::string& path);

}  // namespace espy::auth
