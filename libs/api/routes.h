#pragma once

#include <string_view>

#include "api/manager.h"
#include "http/metrics.h"
#include "http/router.h"

namespace vouch::api {

// Limits on the routes a caller reaches without credentials (login, node nonce and
// provisioning, cluster nonce and join): one token bucket per source IP address shared by them,
// answering 429 "rate_limited" with Retry-After when empty. rate <= 0 disables the limit.
struct RouterOptions {
  double unauth_rate_per_second = 10;
  double unauth_burst = 100;
  size_t unauth_max_sources = 100000;  // buckets held (least recently used dropped first)
};

// Every route of the REST API, /healthz, /readyz, /metrics and /api/v1/openapi.json, wired to
// `manager`. `manager` and `metrics` must outlive the router. Handlers never throw.
http::Router BuildRouter(Manager& manager, http::Metrics* metrics, const RouterOptions& options = {});

// The OpenAPI 3 document (docs/api/openapi.json, embedded at build time).
std::string_view OpenApiDocument();

}  // namespace vouch::api
