#pragma once

#include <string_view>

#include "api/manager.h"
#include "http/metrics.h"
#include "http/router.h"

namespace vouch::api {

// Every route of the REST API, /healthz, /readyz, /metrics and /api/v1/openapi.json, wired to
// `manager`. `manager` and `metrics` must outlive the router. Handlers never throw.
http::Router BuildRouter(Manager& manager, http::Metrics* metrics);

// The OpenAPI 3 document (docs/api/openapi.json, embedded at build time).
std::string_view OpenApiDocument();

}  // namespace vouch::api
