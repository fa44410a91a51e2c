#include "http/auth_gate.h"

namespace espy::http {

namespace bhttp = boost::beast::http;

bool IsOpenPath(std::string_view path) {
  if (path == "/healthz" || path == "/readyz" || path == "/-/healthy" || path == "/-/ready" ||
      path == "/status" || path == "/status/" || path == "/status/probes") {
    return true;
  }
  // The status page's scripts and styles (the dashboard's are under /assets/).
  return path.starts_with("/status/assets/");
}

std::optional<Response> CheckCredentials(auth::Authenticator& auth, const Request& req) {
  if (!auth.required()) return std::nullopt;
  std::string_view target(req.target().data(), req.target().size());
  if (IsOpenPath(target.substr(0, target.find('?')))) return std::nullopt;
  auto header = req.find(bhttp::field::authorization);
  std::string_view value;
  if (header != req.end()) value = std::string_view(header->value().data(), header->value().size());
  if (auth.Check(value) == auth::Authenticator::Result::kOk) return std::nullopt;
  Response res = ErrorResponse(Status::unauthorized,
                               "unauthorized: a valid user and password "
                               "(HTTP basic auth) are required");
  res.set(bhttp::field::www_authenticate, "Basic realm=\"espy\"");
  return res;
}

void AddConfiguredHeaders(const auth::Authenticator& auth, Response* res) {
  for (const auto& [name, value] : auth.config()->headers) res->set(name, value);
}

}  // namespace espy::http
