// bcrypt password hashes, as htpasswd -B and the Prometheus web config write
// them ("$2y$10$" + 22 characters of salt + 31 of hash), checked with
// libcrypt's crypt_r.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace espy::auth {

// Checks that `hash` is shaped as a bcrypt hash the way the Prometheus
// exporter-toolkit checks it (Go's bcrypt.Cost): at least 59 bytes, "$",
// a major version no newer than 2, an optional minor letter, "$", a cost
// from 4 to 31. The salt and digest are not examined, as there.
absl::Status CheckBcryptHash(std::string_view hash);

// True when `password` hashes to `hash`. Only "$2a$", "$2b$" and "$2y$"
// hashes can match. Takes bcrypt's whole cost (tens of milliseconds at cost
// 10); the final comparison is constant-time. Thread-safe.
bool VerifyBcrypt(std::string_view hash, std::string_view password);

}  // namespace espy::auth
