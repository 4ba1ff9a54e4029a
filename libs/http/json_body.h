#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vouch::http {

// Strict, uniform validation of JSON request bodies, so every handler rejects bad input the
// same way (docs/api.md): every error maps to 400 (InvalidArgument; OutOfRange for
// out_of_range) with reason
//   invalid_json   the body is not JSON, or not a JSON object, or nested deeper than 64 levels
//                  (checked before parsing: 1 MiB of "[[[[..." costs a scan, no parser state)
//   body_too_large the body exceeds kMaxBodyBytes (PayloadTooLarge: 413)
//   missing_field  a required key is absent (or null)
//   invalid_type   a key has the wrong JSON type
//   out_of_range   a number or array/string length is outside the allowed range
//   unknown_field  Finish() found a key that no accessor read
// Messages name the field and what was expected. Never throws. A JSON null counts as absent for
// the Optional* accessors. Not thread-safe.
//
//   VOUCH_ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body));
//   VOUCH_ASSIGN_OR_RETURN(std::string name, body.RequiredString("name"));
//   VOUCH_ASSIGN_OR_RETURN(auto ttl, body.OptionalInt("ttl_seconds", 60, 86400));
//   VOUCH_RETURN_IF_ERROR(body.Finish());
class JsonBody {
 public:
  static constexpr int64_t kMinInt = std::numeric_limits<int64_t>::min();
  static constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
  static constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();
  // Larger bodies are refused before parsing (413 body_too_large), whatever the server allows;
  // the server's own limit (ServerOptions::max_body_bytes) is the same by default.
  static constexpr size_t kMaxBodyBytes = 1 << 20;

  static Result<JsonBody> Parse(std::string_view body);
  // For a large body read without building it (e.g. a batch of heartbeats): the same checks and
  // answers as Parse (empty, too large, nested too deep, not JSON, not a JSON object), with the
  // parser's events handed to `sax` (nlohmann's SAX interface; its parse_error is not called,
  // and it should return true from every event: a false stops the parse as "not valid JSON").
  // Ok when the body is a JSON object; `sax` then saw all of it and does its own field checks.
  static Status ParseSax(std::string_view body, nlohmann::json_sax<nlohmann::json>* sax);
  // Wraps an already parsed value (e.g. a nested object); fails unless it is an object.
  // `path` prefixes field names in messages ("policy.min_tcb").
  static Result<JsonBody> FromJson(nlohmann::json value, std::string path = {});

  Result<std::string> RequiredString(std::string_view key, size_t max_len = kNoLimit);
  Result<std::optional<std::string>> OptionalString(std::string_view key,
                                                    size_t max_len = kNoLimit);
  Result<int64_t> RequiredInt(std::string_view key, int64_t min = kMinInt, int64_t max = kMaxInt);
  Result<std::optional<int64_t>> OptionalInt(std::string_view key, int64_t min = kMinInt,
                                             int64_t max = kMaxInt);
  Result<bool> RequiredBool(std::string_view key);
  Result<std::optional<bool>> OptionalBool(std::string_view key);
  Result<std::vector<std::string>> RequiredStringArray(std::string_view key,
                                                       size_t max_items = kNoLimit,
                                                       size_t max_len = kNoLimit);
  Result<std::optional<std::vector<std::string>>> OptionalStringArray(std::string_view key,
                                                                      size_t max_items = kNoLimit,
                                                                      size_t max_len = kNoLimit);
  // A nested object, validated with its own JsonBody (call Finish() on it too).
  Result<std::optional<JsonBody>> OptionalObject(std::string_view key);
  // Marks `key` as read without validating it and returns it (nullptr if absent).
  const nlohmann::json* Raw(std::string_view key);

  bool Has(std::string_view key) const;  // present and not null
  // InvalidArgument "unknown_field" naming the first key (in sorted order) no accessor read.
  Status Finish() const;

  const nlohmann::json& json() const { return json_; }

 private:
  JsonBody(nlohmann::json json, std::string path)
      : json_(std::move(json)), path_(std::move(path)) {}
  // The value for key (nullptr if absent or null), marking it as read.
  const nlohmann::json* Lookup(std::string_view key);
  std::string FieldName(std::string_view key) const;

  nlohmann::json json_;
  std::string path_;
  std::set<std::string, std::less<>> read_;
};

}  // namespace vouch::http
