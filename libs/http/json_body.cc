#include "http/json_body.h"

#include <fmt/format.h>

#include "http/limits.h"

namespace vouch::http {
namespace {

constexpr int kMaxDepth = 64;

// Rejects nesting deeper than kMaxDepth before parsing, so hostile input cannot make the parser
// or the destructor use unbounded memory or stack. Skips string contents.
bool DepthWithinLimit(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

const char* TypeName(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

Status InvalidType(const std::string& field, std::string_view expected,
                   const nlohmann::json& seen) {
  return InvalidArgument(
      fmt::format("field '{}' must be {}, got {}", field, expected, TypeName(seen)),
      "invalid_type");
}

Status Missing(const std::string& field) {
  return InvalidArgument(fmt::format("field '{}' is required", field), "missing_field");
}

Status Range(std::string message) { return OutOfRange(std::move(message), "out_of_range"); }

Status CheckText(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return InvalidArgument("request body is empty; expected a JSON object", "invalid_json");
  }
  if (body.size() > JsonBody::kMaxBodyBytes) {
    return PayloadTooLarge(fmt::format("request body exceeds {} bytes", JsonBody::kMaxBodyBytes), std::string(kBodyTooLarge));
  }
  if (!DepthWithinLimit(body)) {
    return InvalidArgument(fmt::format("JSON nested deeper than {} levels", kMaxDepth),
                           "invalid_json");
  }
  return Status::Ok();
}

// Forwards every event to `inner` and notes the type of the top-level value (its first event).
class TopLevelSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit TopLevelSax(nlohmann::json_sax<nlohmann::json>* inner) : inner_(inner) {}
  // The type name TypeName() gives, of the first value; "" until there is one.
  const char* top() const { return top_; }

  bool null() override { return Note("null") && inner_->null(); }
  bool boolean(bool v) override { return Note("a boolean") && inner_->boolean(v); }
  bool number_integer(number_integer_t v) override { return Note("an integer") && inner_->number_integer(v); }
  bool number_unsigned(number_unsigned_t v) override { return Note("an integer") && inner_->number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) override {
    return Note("a number") && inner_->number_float(v, s);
  }
  bool string(string_t& v) override { return Note("a string") && inner_->string(v); }
  bool binary(binary_t& v) override { return Note("an unsupported value") && inner_->binary(v); }
  bool start_object(std::size_t n) override { return Note("an object") && inner_->start_object(n); }
  bool key(string_t& v) override { return inner_->key(v); }
  bool end_object() override { return inner_->end_object(); }
  bool start_array(std::size_t n) override { return Note("an array") && inner_->start_array(n); }
  bool end_array() override { return inner_->end_array(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool Note(const char* type) {
    if (*top_ == '\0') top_ = type;
    return true;
  }
  nlohmann::json_sax<nlohmann::json>* inner_;
  const char* top_ = "";
};

}  // namespace

Status JsonBody::ParseSax(std::string_view body, nlohmann::json_sax<nlohmann::json>* sax) {
  VOUCH_RETURN_IF_ERROR(CheckText(body));
  TopLevelSax top(sax);
  // As Parse: strict (nothing after the value), no comments.
  if (!nlohmann::json::sax_parse(body.begin(), body.end(), &top, nlohmann::json::input_format_t::json,
                                 /*strict=*/true, /*ignore_comments=*/false)) {
    return InvalidArgument("request body is not valid JSON", "invalid_json");
  }
  if (std::string_view(top.top()) != "an object") {
    return InvalidArgument(fmt::format("request body must be a JSON object, got {}", top.top()),
                           "invalid_json");
  }
  return Status::Ok();
}

Result<JsonBody> JsonBody::Parse(std::string_view body) {
  VOUCH_RETURN_IF_ERROR(CheckText(body));
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgument("request body is not valid JSON", "invalid_json");
  }
  if (!j.is_object()) {
    return InvalidArgument(fmt::format("request body must be a JSON object, got {}", TypeName(j)),
                           "invalid_json");
  }
  return JsonBody(std::move(j), {});
}

Result<JsonBody> JsonBody::FromJson(nlohmann::json value, std::string path) {
  if (!value.is_object()) {
    return InvalidType(path.empty() ? std::string("body") : path, "an object", value);
  }
  return JsonBody(std::move(value), std::move(path));
}

std::string JsonBody::FieldName(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

const nlohmann::json* JsonBody::Lookup(std::string_view key) {
  read_.insert(std::string(key));
  auto it = json_.find(key);
  if (it == json_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonBody::Has(std::string_view key) const {
  auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

const nlohmann::json* JsonBody::Raw(std::string_view key) { return Lookup(key); }

Result<std::optional<std::string>> JsonBody::OptionalString(std::string_view key, size_t max_len) {
  const nlohmann::json* v = Lookup(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return InvalidType(FieldName(key), "a string", *v);
  const std::string& s = v->get_ref<const std::string&>();
  if (s.size() > max_len) {
    return Range(fmt::format("field '{}' is {} bytes long, at most {} allowed", FieldName(key),
                             s.size(), max_len));
  }
  return std::optional<std::string>(s);
}

Result<std::string> JsonBody::RequiredString(std::string_view key, size_t max_len) {
  VOUCH_ASSIGN_OR_RETURN(std::optional<std::string> v, OptionalString(key, max_len));
  if (!v) return Missing(FieldName(key));
  return std::move(*v);
}

Result<std::optional<int64_t>> JsonBody::OptionalInt(std::string_view key, int64_t min,
                                                     int64_t max) {
  const nlohmann::json* v = Lookup(key);
  if (v == nullptr) return std::optional<int64_t>();
  int64_t n = 0;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(kMaxInt)) {
      return Range(
          fmt::format("field '{}' must be between {} and {}, got {}", FieldName(key), min, max, u));
    }
    n = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    n = v->get<int64_t>();
  } else {
    return InvalidType(FieldName(key), "an integer", *v);
  }
  if (n < min || n > max) {
    return Range(
        fmt::format("field '{}' must be between {} and {}, got {}", FieldName(key), min, max, n));
  }
  return std::optional<int64_t>(n);
}

Result<int64_t> JsonBody::RequiredInt(std::string_view key, int64_t min, int64_t max) {
  VOUCH_ASSIGN_OR_RETURN(std::optional<int64_t> v, OptionalInt(key, min, max));
  if (!v) return Missing(FieldName(key));
  return *v;
}

Result<std::optional<bool>> JsonBody::OptionalBool(std::string_view key) {
  const nlohmann::json* v = Lookup(key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return InvalidType(FieldName(key), "a boolean", *v);
  return std::optional<bool>(v->get<bool>());
}

Result<bool> JsonBody::RequiredBool(std::string_view key) {
  VOUCH_ASSIGN_OR_RETURN(std::optional<bool> v, OptionalBool(key));
  if (!v) return Missing(FieldName(key));
  return *v;
}

Result<std::optional<std::vector<std::string>>> JsonBody::OptionalStringArray(std::string_view key,
                                                                              size_t max_items,
                                                                              size_t max_len) {
  using Out = std::optional<std::vector<std::string>>;
  const nlohmann::json* v = Lookup(key);
  if (v == nullptr) return Out();
  if (!v->is_array()) return InvalidType(FieldName(key), "an array of strings", *v);
  if (v->size() > max_items) {
    return Range(fmt::format("field '{}' has {} items, at most {} allowed", FieldName(key),
                             v->size(), max_items));
  }
  std::vector<std::string> out;
  out.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const nlohmann::json& item = (*v)[i];
    std::string name = fmt::format("{}[{}]", FieldName(key), i);
    if (!item.is_string()) return InvalidType(name, "a string", item);
    const std::string& s = item.get_ref<const std::string&>();
    if (s.size() > max_len) {
      return Range(
          fmt::format("field '{}' is {} bytes long, at most {} allowed", name, s.size(), max_len));
    }
    out.push_back(s);
  }
  return Out(std::move(out));
}

Result<std::vector<std::string>> JsonBody::RequiredStringArray(std::string_view key,
                                                               size_t max_items, size_t max_len) {
  VOUCH_ASSIGN_OR_RETURN(auto v, OptionalStringArray(key, max_items, max_len));
  if (!v) return Missing(FieldName(key));
  return std::move(*v);
}

Result<std::optional<JsonBody>> JsonBody::OptionalObject(std::string_view key) {
  const nlohmann::json* v = Lookup(key);
  if (v == nullptr) return std::optional<JsonBody>();
  if (!v->is_object()) return InvalidType(FieldName(key), "an object", *v);
  return std::optional<JsonBody>(JsonBody(*v, FieldName(key)));
}

Status JsonBody::Finish() const {
  for (const auto& [key, value] : json_.items()) {
    if (read_.find(key) == read_.end()) {
      return InvalidArgument(fmt::format("unknown field '{}'", FieldName(key)), "unknown_field");
    }
  }
  return Status::Ok();
}

}  // namespace vouch::http
