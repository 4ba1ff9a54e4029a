#pragma once

// The body of POST /api/v1/heartbeats (docs/api.md; docs/agent.md "Heartbeats"), read in one
// pass of the JSON parser's events (http::JsonBody::ParseSax) straight into Heartbeats, without
// building the batch as a JSON document first (BENCHMARKS.md, "Scale (issue 16)": the document
// of a batch of 100, and destroying it, cost vouchd more than the heartbeats' MACs). The answers
// are those of parsing the document and checking its fields: the same checks, the same first
// error (fields in key order, a repeated key's last value counts, heartbeats in array order),
// the same codes and messages. A body of the shape agents send (plain strings, plain integers,
// "heartbeats" and "node") is read by a scanner of its own, without the parser; any other body,
// and every body with an error, by the parser's events. Used by the route and by the floor
// (bench/hbfloor_bench.cc).

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/manager.h"
#include "base/result.h"

namespace vouch::api {

struct HeartbeatBatch {
  std::vector<Heartbeat> heartbeats;                   // at most 5000
  nlohmann::json node_info = nlohmann::json::object();  // "node": an object of at most 4 KiB
  nlohmann::json refusals = nlohmann::json::array();    // "refusals": at most 100, each checked
};

// InvalidArgument: invalid_json (JsonBody::Parse's answers), invalid_heartbeats (not an array,
// more than 5000), invalid_heartbeat (not {instance_id, seq, timestamp, status, signature|mac},
// or malformed: instance id, seq < 1, base64, a MAC not 32 bytes, a signature over 256 bytes, a
// status over 16 bytes), invalid_info, invalid_refusals, unknown_field; PayloadTooLarge.
Result<HeartbeatBatch> ParseHeartbeatBatch(std::string_view body);

}  // namespace vouch::api
