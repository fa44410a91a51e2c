#include "auth/authenticator.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "auth/bcrypt.h"
#include "fmt/format.h"

namespace espy::auth {
namespace {

constexpr int kDefaultCost = 10;

// The cost of a checked bcrypt hash ("$2y$10$..." -> 10).
int CostOf(const std::string& hash) {
  size_t at = hash[2] == '$' ? 3 : 4;
  return (hash[at] - '0') * 10 + (hash[at + 1] - '0');
}

// A bcrypt hash of a random password at `cost`: what an unknown user's
// password is checked against, so that it takes as long as a known one's.
std::string MakeDummyHash(int cost) {
  unsigned char random[16];
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (RAND_bytes(random, sizeof(random)) != 1 ||
      crypt_gensalt_rn("$2y$", cost, reinterpret_cast<const char*>(random), sizeof(random), salt,
                       sizeof(salt)) == nullptr) {
    return "";
  }
  std::string password = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_r(password.c_str(), salt, data.get());
  return out == nullptr || out[0] == '*' ? "" : std::string(out);
}

std::string CacheKey(std::string_view user, std::string_view hash, std::string_view password) {
  // Lengths first, so ("ab", "c") and ("a", "bc") differ.
  std::string input;
  for (std::string_view part : {user, hash, password}) {
    uint64_t n = part.size();
    input.append(reinterpret_cast<const char*>(&n), sizeof(n));
    input.append(part);
  }
  std::string key(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         reinterpret_cast<unsigned char*>(key.data()));
  OPENSSL_cleanse(input.data(), input.size());
  return key;
}

}  // namespace

Authenticator::Authenticator(std::string path, size_t cache_entries)
    : path_(std::move(path)), cache_entries_(cache_entries) {}

Authenticator::Authenticator(WebConfig config, size_t cache_entries)
    : cache_entries_(cache_entries) {
  Install(std::move(config));
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Open(std::string path,
                                                                   size_t cache_entries) {
  std::unique_ptr<Authenticator> a(new Authenticator(std::move(path), cache_entries));
  if (absl::Status s = a->Reload(); !s.ok()) return s;
  return a;
}

absl::Status Authenticator::Reload() {
  if (path_.empty()) return absl::OkStatus();
  auto config = LoadWebConfig(path_);
  if (!config.ok()) return config.status();
  if (config->tls.enabled()) {
    return absl::UnimplementedError(
        fmt::format("{}: tls_server_config: Espy does not serve TLS yet; remove cert_file, "
                    "key_file, client_auth_type and client_ca_file, and put a TLS-terminating "
                    "proxy in front if you need TLS",
                    path_));
  }
  Install(*std::move(config));
  return absl::OkStatus();
}

void Authenticator::Install(WebConfig config) {
  auto state = std::make_shared<State>();
  int cost = config.users.empty() ? kDefaultCost : CostOf(config.users.front().second);
  // Only a bcrypt at the users' cost is worth a request's time.
  if (!config.users.empty()) state->dummy_hash = MakeDummyHash(cost);
  bool required = !config.users.empty();
  state->config = std::make_shared<const WebConfig>(std::move(config));
  absl::MutexLock lock(&mu_);
  state_ = std::move(state);
  required_.store(required, std::memory_order_relaxed);
}

std::shared_ptr<const Authenticator::State> Authenticator::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

std::shared_ptr<const WebConfig> Authenticator::config() const { return state()->config; }

size_t Authenticator::cached() const {
  absl::MutexLock lock(&mu_);
  return cache_.size();
}

Authenticator::Result Authenticator::Check(std::string_view authorization) {
  std::shared_ptr<const State> s = state();
  if (s->config->users.empty()) return Result::kOk;
  // The scheme is case-insensitive (RFC 7617).
  constexpr std::string_view kBasic = "basic ";
  if (authorization.size() <= kBasic.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kBasic.size()),
                              absl::string_view(kBasic.data(), kBasic.size()))) {
    missing_.fetch_add(1, std::memory_order_relaxed);
    return Result::kMissing;
  }
  std::string decoded;
  std::string_view encoded = authorization.substr(kBasic.size());
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  size_t colon = std::string::npos;
  if (absl::Base64Unescape(absl::string_view(encoded.data(), encoded.size()), &decoded))
    colon = decoded.find(':');
  std::string_view user, password;
  if (colon != std::string::npos) {
    user = std::string_view(decoded).substr(0, colon);
    password = std::string_view(decoded).substr(colon + 1);
  }
  const std::string* hash = nullptr;
  for (const auto& [name, h] : s->config->users) {
    if (colon != std::string::npos && name == user) hash = &h;
  }
  if (hash != nullptr) {
    std::string key = CacheKey(user, *hash, password);
    {
      absl::MutexLock lock(&mu_);
      if (cache_.contains(key)) return Result::kOk;
    }
    if (VerifyBcrypt(*hash, password)) {
      absl::MutexLock lock(&mu_);
      if (cache_.size() >= cache_entries_ && !cache_.empty()) cache_.erase(cache_.begin());
      if (cache_entries_ > 0) cache_.insert(std::move(key));
      return Result::kOk;
    }
  } else {
    // An unknown user (or undecodable credentials) pays what a wrong
    // password does.
    (void)VerifyBcrypt(s->dummy_hash, password);
  }
  wrong_.fetch_add(1, std::memory_order_relaxed);
  return Result::kWrong;
}

absl::Status CheckWebConfigFile(const std::string& path) { return LoadWebConfig(path).status(); }

}  // namespace espy::auth
