// The web dashboard at / and the public status page at /status: serves the
// embedded assets (the HTML pages revalidated by ETag on every load;
// content-hashed /assets/ and /status/assets/ files cached for a year). The
// status page's data comes from GET /status/probes (http/uptime_handler.h).
#pragma once

#include "http/router.h"

namespace espy::dashboard {

// Adds GET/HEAD /, /assets/*, /status (and /status/) and /status/assets/*.
void RegisterDashboard(http::Router& router);

}  // namespace espy::dashboard
