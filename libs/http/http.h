#pragma once

// Umbrella header for the HTTP library.
#include "http/json_body.h"
#include "http/limits.h"
#include "http/message.h"
#include "http/metrics.h"
#include "http/router.h"
#include "http/server.h"
