// The web dashboard at /: serves the embedded assets (index.html revalidated
// by ETag on every load; content-hashed /assets/ files cached for a year).
#pragma once

#include "http/router.h"

namespace espy::web {

// Adds GET/HEAD / and /assets/*.
void RegisterDashboard(http::Router& router);

}  // namespace espy::web
