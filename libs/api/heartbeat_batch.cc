// The heartbeat batch body, read from the parser's events (api/heartbeat_batch.h).
#include "api/heartbeat_batch.h"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "api/reasons.h"
#include "base/encoding.h"
#include "http/json_body.h"
#include "workload/heartbeat_mac.h"
#include "workload/wire.h"

namespace vouch::api {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxHeartbeats = 5000;

// Builds a JSON value from events, as nlohmann's own DOM parser does (a repeated key's last value
// counts). For "node" and "refusals", which the route checks as documents.
class DomBuilder {
 public:
  void Reset(json* root) {
    root_ = root;
    *root_ = nullptr;
    stack_.clear();
  }
  void Scalar(json v) { *Slot() = std::move(v); }
  void Start(json container) {
    json* s = Slot();
    *s = std::move(container);
    stack_.push_back(s);
  }
  void End() { stack_.pop_back(); }
  void Key(std::string k) { key_ = std::move(k); }
  bool done() const { return stack_.empty(); }

 private:
  json* Slot() {
    if (stack_.empty()) return root_;
    json* top = stack_.back();
    if (top->is_array()) {
      top->push_back(nullptr);
      return &top->back();
    }
    return &(*top)[key_];
  }
  json* root_ = nullptr;
  std::vector<json*> stack_;  // the open containers; an array's elements are appended only while
                              // no element of it is open, so these pointers stay valid
  std::string key_;
};

// One heartbeat object's fields as the parser hands them over; the last value of a repeated key counts.
struct Fields {
  enum Key { kInstanceId, kSeq, kTimestamp, kStatus, kMac, kSignature, kKeys };
  std::array<bool, kKeys> present{};
  std::array<bool, kKeys> typed{};  // the (last) value has the type the field needs
  bool other = false;               // a key none of these
  std::string instance_id, status, mac, signature;
  int64_t seq = 0, timestamp = 0;

  void Reset() {
    present.fill(false);
    typed.fill(false);
    other = false;
  }
};

enum class TopKey { kHeartbeats, kNode, kRefusals, kOther };

class BatchSax final : public nlohmann::json_sax<json> {
 public:
  explicit BatchSax(HeartbeatBatch* out) : out_(out) {}

  // The route's field checks, in key order (as a document's keys are visited); the first error.
  Status Check() {
    for (const auto& [k, kind] : keys_) {
      switch (kind) {
        case TopKey::kHeartbeats:
          if (!hb_error_.ok()) return hb_error_;
          break;
        case TopKey::kNode:
          if (!out_->node_info.is_object() || out_->node_info.dump().size() > 4096) {
            return InvalidArgument("node must be an object of at most 4 KiB", std::string(kInvalidInfo));
          }
          break;
        case TopKey::kRefusals:
          VOUCH_RETURN_IF_ERROR(CheckRefusals(out_->refusals));
          break;
        case TopKey::kOther:
          return InvalidArgument("unknown field '" + k.substr(0, 64) + "'", std::string(kUnknownField));
      }
    }
    if (!keys_.count("node")) out_->node_info = json::object();
    if (!keys_.count("refusals")) out_->refusals = json::array();
    return Status::Ok();
  }

  bool null() override {
    StartDom();
    if (dom_) return Dom([&] { dom_b_.Scalar(nullptr); });
    return Value(Kind::kNull);
  }
  bool boolean(bool v) override {
    StartDom();
    if (dom_) return Dom([&] { dom_b_.Scalar(v); });
    return Value(Kind::kBool);
  }
  bool number_integer(number_integer_t v) override {
    StartDom();
    if (dom_) return Dom([&] { dom_b_.Scalar(v); });
    int_ = v;
    return Value(Kind::kInt);
  }
  bool number_unsigned(number_unsigned_t v) override {
    StartDom();
    if (dom_) return Dom([&] { dom_b_.Scalar(v); });
    int_ = static_cast<int64_t>(v);  // as json::get<int64_t>() converts it
    return Value(Kind::kInt);
  }
  bool number_float(number_float_t v, const string_t&) override {
    StartDom();
    if (dom_) return Dom([&] { dom_b_.Scalar(v); });
    return Value(Kind::kFloat);
  }
  bool string(string_t& v) override {
    StartDom();
    if (dom_) return Dom([&] { dom_b_.Scalar(std::move(v)); });
    str_ = &v;
    return Value(Kind::kString);
  }
  bool binary(binary_t&) override { return false; }  // never produced by JSON text
  bool start_object(std::size_t) override {
    if (skip_ > 0) return ++skip_, true;
    StartDom();
    if (dom_) {
      ++dom_depth_;
      return Dom([&] { dom_b_.Start(json::object()); });
    }
    return Value(Kind::kObject);
  }
  bool start_array(std::size_t) override {
    if (skip_ > 0) return ++skip_, true;
    StartDom();
    if (dom_) {
      ++dom_depth_;
      return Dom([&] { dom_b_.Start(json::array()); });
    }
    return Value(Kind::kArray);
  }
  bool key(string_t& k) override {
    if (skip_ > 0) return true;
    if (dom_) {
      dom_b_.Key(std::move(k));
      return true;
    }
    if (level_ == Level::kTop) {
      TopKey kind = k == "heartbeats" ? TopKey::kHeartbeats
                    : k == "node"     ? TopKey::kNode
                    : k == "refusals" ? TopKey::kRefusals
                                      : TopKey::kOther;
      keys_[k] = kind;
      top_key_ = kind;
    } else if (level_ == Level::kHeartbeat) {
      field_ = k == "instance_id" ? Fields::kInstanceId
               : k == "seq"       ? Fields::kSeq
               : k == "timestamp" ? Fields::kTimestamp
               : k == "status"    ? Fields::kStatus
               : k == "mac"       ? Fields::kMac
               : k == "signature" ? Fields::kSignature
                                  : Fields::kKeys;
    }
    return true;
  }
  bool end_object() override {
    if (skip_ > 0) return --skip_, true;
    if (dom_) {
      --dom_depth_;
      return Dom([&] { dom_b_.End(); });
    }
    if (level_ == Level::kHeartbeat) {
      EndHeartbeat();
      level_ = Level::kHeartbeats;
    } else if (level_ == Level::kTop) {
      level_ = Level::kDone;
    }
    return true;
  }
  bool end_array() override {
    if (skip_ > 0) return --skip_, true;
    if (dom_) {
      --dom_depth_;
      return Dom([&] { dom_b_.End(); });
    }
    if (level_ == Level::kHeartbeats) {
      if (count_ > kMaxHeartbeats) HeartbeatsInvalid();
      level_ = Level::kTop;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  enum class Kind { kNull, kBool, kInt, kFloat, kString, kObject, kArray };
  enum class Level { kStart, kTop, kHeartbeats, kHeartbeat, kDone };

  // The value of "node" or "refusals" begins: its events build that document.
  void StartDom() {
    if (skip_ > 0 || dom_ || level_ != Level::kTop) return;
    if (top_key_ != TopKey::kNode && top_key_ != TopKey::kRefusals) return;
    dom_b_.Reset(top_key_ == TopKey::kNode ? &out_->node_info : &out_->refusals);
    dom_ = true;
    dom_depth_ = 0;
  }

  template <class F>
  bool Dom(F&& f) {
    f();
    if (dom_depth_ == 0) dom_ = false;  // the value is complete
    return true;
  }

  void HeartbeatsInvalid() {
    hb_error_ = InvalidArgument("heartbeats must be an array of at most 5000", std::string(kInvalidHeartbeats));
    out_->heartbeats.clear();
  }
  void HeartbeatInvalid(std::string_view message) {
    if (hb_error_.ok()) hb_error_ = InvalidArgument(std::string(message), std::string(kInvalidHeartbeat));
  }

  // A value (a scalar or the start of a container) where the current level expects one.
  bool Value(Kind kind) {
    if (skip_ > 0) return true;  // a scalar inside a skipped container
    const bool container = kind == Kind::kObject || kind == Kind::kArray;
    switch (level_) {
      case Level::kStart:  // the top-level value (ParseSax answers for one that is not an object)
        if (kind == Kind::kObject) {
          level_ = Level::kTop;
        } else if (container) {
          skip_ = 1;
        }
        return true;
      case Level::kTop:
        switch (top_key_) {
          case TopKey::kHeartbeats:  // this value counts, not an earlier one under the same key
            out_->heartbeats.clear();
            hb_error_ = Status::Ok();
            count_ = 0;
            if (kind == Kind::kArray) {
              level_ = Level::kHeartbeats;
            } else {
              HeartbeatsInvalid();
              if (container) skip_ = 1;
            }
            return true;
          case TopKey::kNode:
          case TopKey::kRefusals:
            return true;  // StartDom took it
          case TopKey::kOther:
            if (container) skip_ = 1;
            return true;
        }
        return true;
      case Level::kHeartbeats:
        ++count_;
        if (!hb_error_.ok() || count_ > kMaxHeartbeats) {
          if (container) skip_ = 1;
          return true;
        }
        if (kind == Kind::kObject) {
          level_ = Level::kHeartbeat;
          f_.Reset();
        } else {
          HeartbeatInvalid(kShapeMessage);
          if (container) skip_ = 1;
        }
        return true;
      case Level::kHeartbeat: {
        if (field_ == Fields::kKeys) {
          f_.other = true;
          if (container) skip_ = 1;
          return true;
        }
        f_.present[field_] = true;
        bool typed = false;
        switch (field_) {
          case Fields::kSeq:
            typed = kind == Kind::kInt;
            if (typed) f_.seq = int_;
            break;
          case Fields::kTimestamp:
            typed = kind == Kind::kInt;
            if (typed) f_.timestamp = int_;
            break;
          default:
            typed = kind == Kind::kString;
            if (typed) {
              std::string& dst = field_ == Fields::kInstanceId ? f_.instance_id
                                 : field_ == Fields::kStatus   ? f_.status
                                 : field_ == Fields::kMac      ? f_.mac
                                                               : f_.signature;
              dst = std::move(*str_);
            }
        }
        f_.typed[field_] = typed;
        if (container) skip_ = 1;
        return true;
      }
      case Level::kDone:
        return true;
    }
    return true;
  }

  // The route's checks of one heartbeat object, then the heartbeat.
  void EndHeartbeat() {
    if (!hb_error_.ok()) return;
    // Authenticated by exactly one of "signature" (ECDSA) or "mac" (HMAC-SHA256 under the
    // instance's heartbeat key, 32 bytes; docs/formats/heartbeat-key.md).
    const bool has_mac = f_.present[Fields::kMac];
    const Fields::Key auth = has_mac ? Fields::kMac : Fields::kSignature;
    size_t keys = f_.other ? 1 : 0;
    for (bool p : f_.present) keys += p ? 1 : 0;
    for (Fields::Key k : {Fields::kInstanceId, Fields::kSeq, Fields::kTimestamp, Fields::kStatus, auth}) {
      if (!f_.present[k] || !f_.typed[k]) return HeartbeatInvalid(kShapeMessage);
    }
    if (keys != 5) return HeartbeatInvalid(kShapeMessage);
    auto sig = Base64Decode(has_mac ? f_.mac : f_.signature);
    if (!workload::IsValidWireId(f_.instance_id) || f_.seq < 1 || !sig.ok() || sig->size() > 256 ||
        (has_mac && sig->size() != workload::kHeartbeatMacSize) || f_.status.size() > 16) {
      return HeartbeatInvalid("malformed heartbeat");
    }
    Heartbeat& hb = out_->heartbeats.emplace_back();
    hb.instance_id = std::move(f_.instance_id);
    hb.seq = f_.seq;
    hb.timestamp = f_.timestamp;
    hb.status = std::move(f_.status);
    (has_mac ? hb.mac : hb.signature) = std::move(*sig);
  }

  static Status CheckRefusals(const json& v) {
    // Local refusals of the agent, to be audited (docs/agent.md).
    if (!v.is_array() || v.size() > 100) {
      return InvalidArgument("refusals must be an array of at most 100", std::string(kInvalidRefusals));
    }
    for (const auto& ref : v) {
      bool valid = ref.is_object() && ref.contains("code") && ref["code"].is_string() && ref.contains("at") &&
                   ref["at"].is_number_integer();
      if (!valid) return InvalidArgument("each refusal is {at, code, message?, mrenclave?}", std::string(kInvalidRefusals));
      for (const auto& [rk, rv] : ref.items()) {
        if (rk == "code") {
          const std::string c = rv.get<std::string>();
          valid = valid && !c.empty() && c.size() <= 64 &&
                  std::all_of(c.begin(), c.end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || ch == '_'; });
        } else if (rk == "mrenclave") {
          valid = valid && rv.is_string() && rv.get<std::string>().size() == 64 && HexDecode(rv.get<std::string>()).ok();
        } else if (rk == "message") {
          valid = valid && rv.is_string() && rv.get<std::string>().size() <= 300;
        } else if (rk != "at") {
          valid = false;
        }
      }
      if (!valid) return InvalidArgument("each refusal is {at, code, message?, mrenclave?}", std::string(kInvalidRefusals));
    }
    return Status::Ok();
  }

  static constexpr std::string_view kShapeMessage = "each heartbeat is {instance_id, seq, timestamp, status, signature|mac}";

  HeartbeatBatch* out_;
  Level level_ = Level::kStart;
  int skip_ = 0;  // > 0: inside a container whose content does not matter, this deep
  // "node" or "refusals": the value's events go to dom_b_ until it is complete.
  bool dom_ = false;
  int dom_depth_ = 0;
  DomBuilder dom_b_;
  std::map<std::string, TopKey> keys_;  // the top-level keys, in the order a document visits them
  TopKey top_key_ = TopKey::kOther;
  size_t count_ = 0;                    // elements of the current "heartbeats" array
  Status hb_error_ = Status::Ok();      // the first error of the current "heartbeats" value
  Fields f_;
  Fields::Key field_ = Fields::kKeys;
  int64_t int_ = 0;
  string_t* str_ = nullptr;
};

// The common case without the general parser: a body of the shape agents send (compact or not),
// every string plain printable ASCII (no escapes), every number a plain integer of at most 18
// digits, keys "heartbeats" (each heartbeat exactly its five fields) and "node" at most once each,
// every check passing. Anything else (an error included) returns false, and the general reading
// below answers; so this never accepts a body that one refuses, and gives the same heartbeats.
class FastBatch {
 public:
  explicit FastBatch(std::string_view body) : p_(body.data()), end_(body.data() + body.size()) {}

  bool Parse(HeartbeatBatch* out) {
    bool seen_heartbeats = false, seen_node = false;
    Ws();
    if (!Eat('{')) return false;
    Ws();
    if (Peek() == '}') return false;  // {}: rare, the general reading does it
    for (;;) {
      std::string_view key;
      if (!String(&key)) return false;
      Ws();
      if (!Eat(':')) return false;
      Ws();
      if (key == "heartbeats" && !seen_heartbeats) {
        seen_heartbeats = true;
        if (!Heartbeats(&out->heartbeats)) return false;
      } else if (key == "node" && !seen_node) {
        seen_node = true;
        const char* start = p_;
        if (!SkipValue(0)) return false;
        json node = json::parse(start, p_, nullptr, /*allow_exceptions=*/false);
        if (node.is_discarded() || !node.is_object() || node.dump().size() > 4096) return false;
        out->node_info = std::move(node);
      } else {
        return false;  // refusals, a repeated or unknown key: the general reading
      }
      Ws();
      if (Eat(',')) {
        Ws();
        continue;
      }
      if (!Eat('}')) return false;
      break;
    }
    Ws();
    return p_ == end_;
  }

 private:
  char Peek() const { return p_ < end_ ? *p_ : '\0'; }
  bool Eat(char c) {
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  void Ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  // A string of printable ASCII without escapes.
  bool String(std::string_view* out) {
    if (!Eat('"')) return false;
    const char* start = p_;
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        *out = std::string_view(start, static_cast<size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c < 0x20 || c >= 0x7f || c == '\\') return false;
      ++p_;
    }
    return false;
  }
  // -?(0|[1-9][0-9]{0,17}) not followed by a fraction or an exponent.
  bool Integer(int64_t* out) {
    const bool neg = Eat('-');
    const char* start = p_;
    int64_t v = 0;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') {
      if (p_ - start >= 18) return false;  // 19 digits or more: the general reading (no overflow here)
      v = v * 10 + (*p_++ - '0');
    }
    const size_t digits = static_cast<size_t>(p_ - start);
    if (digits == 0 || (digits > 1 && *start == '0')) return false;
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    *out = neg ? -v : v;
    return true;
  }
  // Any JSON value's extent (checked again by the parser it is handed to). At most 60 deep: with
  // the batch object and "node" that stays within JsonBody's 64 levels, so that check need not
  // run here (a deeper body goes to the general reading, which makes it).
  bool SkipValue(int depth) {
    if (depth > 60) return false;
    const char c = Peek();
    if (c == '"') {
      ++p_;
      while (p_ < end_ && *p_ != '"') {
        if (*p_ == '\\' && p_ + 1 < end_) ++p_;
        ++p_;
      }
      return Eat('"');
    }
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++p_;
      Ws();
      if (Eat(close)) return true;
      for (;;) {
        if (c == '{') {
          if (!SkipValue(depth + 1)) return false;  // the key
          Ws();
          if (!Eat(':')) return false;
          Ws();
        }
        if (!SkipValue(depth + 1)) return false;
        Ws();
        if (Eat(',')) {
          Ws();
          continue;
        }
        return Eat(close);
      }
    }
    // A number or a literal: up to the next delimiter.
    const char* start = p_;
    while (p_ < end_ && *p_ != ',' && *p_ != '}' && *p_ != ']' && *p_ != ' ' && *p_ != '\t' && *p_ != '\n' &&
           *p_ != '\r')
      ++p_;
    return p_ > start;
  }
  bool Heartbeats(std::vector<Heartbeat>* out) {
    if (!Eat('[')) return false;
    Ws();
    if (Eat(']')) return true;
    for (;;) {
      if (out->size() >= kMaxHeartbeats || !OneHeartbeat(&out->emplace_back())) return false;
      Ws();
      if (Eat(',')) {
        Ws();
        continue;
      }
      return Eat(']');
    }
  }
  bool OneHeartbeat(Heartbeat* hb) {
    if (!Eat('{')) return false;
    unsigned seen = 0;  // bits: instance_id, seq, timestamp, status, mac, signature
    std::string_view id, status, auth;
    for (int n = 0; n < 5; ++n) {
      Ws();
      std::string_view key;
      if (!String(&key)) return false;
      Ws();
      if (!Eat(':')) return false;
      Ws();
      unsigned bit = 0;
      bool ok = false;
      if (key == "instance_id") {
        bit = 1;
        ok = String(&id);
      } else if (key == "seq") {
        bit = 2;
        ok = Integer(&hb->seq);
      } else if (key == "timestamp") {
        bit = 4;
        ok = Integer(&hb->timestamp);
      } else if (key == "status") {
        bit = 8;
        ok = String(&status);
      } else if (key == "mac" || key == "signature") {
        bit = key == "mac" ? 16 : 32;
        ok = String(&auth);
      }
      if (!ok || (seen & bit) != 0) return false;
      seen |= bit;
      Ws();
      if (!Eat(n < 4 ? ',' : '}')) return false;
    }
    if ((seen & 15) != 15) return false;  // five distinct keys: the four and exactly one of mac, signature
    const bool has_mac = (seen & 16) != 0;
    auto sig = Base64Decode(auth);
    if (!workload::IsValidWireId(id) || hb->seq < 1 || !sig.ok() || sig->size() > 256 ||
        (has_mac && sig->size() != workload::kHeartbeatMacSize) || status.size() > 16) {
      return false;
    }
    hb->instance_id = std::string(id);
    hb->status = std::string(status);
    (has_mac ? hb->mac : hb->signature) = std::move(*sig);
    return true;
  }

  const char* p_;
  const char* end_;
};

}  // namespace

Result<HeartbeatBatch> ParseHeartbeatBatch(std::string_view body) {
  HeartbeatBatch out;
  if (body.size() <= http::JsonBody::kMaxBodyBytes && FastBatch(body).Parse(&out)) return out;
  out = HeartbeatBatch();
  BatchSax sax(&out);
  VOUCH_RETURN_IF_ERROR(http::JsonBody::ParseSax(body, &sax));
  VOUCH_RETURN_IF_ERROR(sax.Check());
  return out;
}

}  // namespace vouch::api
