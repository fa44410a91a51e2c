// The server's one authentication check: which paths stay open, and the
// 401 every other path gets without valid credentials when the web config
// file has basic_auth_users.
#pragma once

#include <optional>
#include <string_view>

#include "auth/authenticator.h"
#include "http/types.h"

namespace espy::http {

// Health and readiness (for load balancers and orchestrators) and the
// public status page with its data stay open to everyone.
bool IsOpenPath(std::string_view path);

// A 401 answer for `req`, or nullopt when it may go on. The body is the
// same for a missing, wrong or unknown credential. Thread-safe.
std::optional<Response> CheckCredentials(auth::Authenticator& auth, const Request& req);

// Adds the web config file's http_server_config.headers to `res`.
void AddConfiguredHeaders(const auth::Authenticator& auth, Response* res);

}  // namespace espy::http
