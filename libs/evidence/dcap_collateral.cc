#include "evidence/dcap_collateral.h"

#include <cstdint>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "base/encoding.h"

namespace vouch::evidence {
namespace {

using nlohmann::json;

constexpr size_t kMaxDepth = 64;

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void SkipWs(std::string_view s, size_t* i) {
  while (*i < s.size() && IsWs(s[*i])) ++*i;
}

// At s[*i] == '"': advances past the closing quote. False if unterminated.
bool SkipString(std::string_view s, size_t* i) {
  ++*i;
  while (*i < s.size()) {
    char c = s[*i];
    if (c == '\\') {
      *i += 2;
      continue;
    }
    ++*i;
    if (c == '"') return true;
  }
  return false;
}

// Advances past one JSON value starting at s[*i] (no validation beyond balance).
bool SkipValue(std::string_view s, size_t* i) {
  if (*i >= s.size()) return false;
  char c = s[*i];
  if (c == '"') return SkipString(s, i);
  if (c == '{' || c == '[') {
    size_t depth = 0;
    while (*i < s.size()) {
      char d = s[*i];
      if (d == '"') {
        if (!SkipString(s, i)) return false;
        continue;
      }
      if (d == '{' || d == '[') {
        if (++depth > kMaxDepth) return false;
      } else if (d == '}' || d == ']') {
        if (depth == 0) return false;
        --depth;
        if (depth == 0) {
          ++*i;
          return true;
        }
      }
      ++*i;
    }
    return false;
  }
  size_t start = *i;
  while (*i < s.size() && !IsWs(s[*i]) && s[*i] != ',' && s[*i] != '}' && s[*i] != ']') ++*i;
  return *i > start;
}

Status Bad(std::string_view reason, std::string msg) { return InvalidArgument(std::move(msg), std::string(reason)); }

// Field readers: each returns false (and fills *err) if missing or of the wrong type.
struct Reader {
  std::string_view reason;
  std::string what;  // "TCB Info", "QE Identity"
  Status err;

  bool Fail(const std::string& m) {
    err = Bad(reason, what + ": " + m);
    return false;
  }
  bool Str(const json& o, const char* k, std::string* out) {
    auto it = o.find(k);
    if (it == o.end() || !it->is_string()) return Fail(std::string("missing or non-string \"") + k + "\"");
    *out = it->get<std::string>();
    return true;
  }
  bool Int(const json& o, const char* k, int64_t lo, int64_t hi, int64_t* out) {
    auto it = o.find(k);
    if (it == o.end() || !(it->is_number_integer() || it->is_number_unsigned())) {
      return Fail(std::string("missing or non-integer \"") + k + "\"");
    }
    int64_t v = it->is_number_unsigned() ? (it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                                                 ? INT64_MAX
                                                 : static_cast<int64_t>(it->get<uint64_t>()))
                                         : it->get<int64_t>();
    if (v < lo || v > hi) return Fail(std::string("\"") + k + "\" = " + std::to_string(v) + " out of range");
    *out = v;
    return true;
  }
  template <size_t N>
  bool Hex(const json& o, const char* k, std::array<uint8_t, N>* out) {
    std::string s;
    if (!Str(o, k, &s)) return false;
    auto b = HexDecode(s);
    if (!b.ok() || b->size() != N) {
      return Fail(std::string("\"") + k + "\" must be " + std::to_string(2 * N) + " hex digits");
    }
    for (size_t i = 0; i < N; ++i) (*out)[i] = (*b)[i];
    return true;
  }
  bool Time(const std::string& s, const char* k, TimePoint* out) {
    // TimePoint (nanoseconds since 1970 in 64 bits) ends in 2262; keep well inside it.
    int year = s.size() >= 4 ? 0 : -1;
    for (size_t i = 0; i < 4 && year >= 0; ++i) {
      year = (s[i] >= '0' && s[i] <= '9') ? year * 10 + (s[i] - '0') : -1;
    }
    if (year < 1970 || year > 2200) return Fail(std::string("\"") + k + "\" is out of range: " + s);
    auto t = ParseRfc3339(s);
    if (!t.ok()) return Fail(std::string("\"") + k + "\" is not an RFC 3339 time: " + s);
    *out = *t;
    return true;
  }
  bool Status_(const json& o, std::string* out) {
    if (!Str(o, "tcbStatus", out)) return false;
    if (!IsKnownTcbStatus(*out)) return Fail("unknown tcbStatus \"" + *out + "\"");
    return true;
  }
  bool Advisories(const json& o, std::vector<std::string>* out) {
    auto it = o.find("advisoryIDs");
    if (it == o.end()) return true;
    if (!it->is_array()) return Fail("\"advisoryIDs\" must be an array");
    for (const auto& a : *it) {
      if (!a.is_string()) return Fail("\"advisoryIDs\" must hold strings");
      out->push_back(a.get<std::string>());
    }
    return true;
  }
  bool IsvLevels(const json& o, std::vector<IsvSvnLevel>* out) {
    auto it = o.find("tcbLevels");
    if (it == o.end() || !it->is_array() || it->empty()) return Fail("\"tcbLevels\" must be a non-empty array");
    for (const auto& l : *it) {
      if (!l.is_object()) return Fail("a tcbLevel is not an object");
      auto tcb = l.find("tcb");
      if (tcb == l.end() || !tcb->is_object()) return Fail("a tcbLevel has no \"tcb\" object");
      IsvSvnLevel lv;
      int64_t svn = 0;
      if (!Int(*tcb, "isvsvn", 0, 0xFFFF, &svn)) return false;
      lv.isvsvn = static_cast<uint16_t>(svn);
      if (!Str(l, "tcbDate", &lv.tcb_date) || !Status_(l, &lv.tcb_status) || !Advisories(l, &lv.advisory_ids)) {
        return false;
      }
      out->push_back(std::move(lv));
    }
    return true;
  }
  bool SvnArray(const json& tcb, const char* k, std::array<uint8_t, 16>* out) {
    auto it = tcb.find(k);
    if (it == tcb.end() || !it->is_array() || it->size() != 16) {
      return Fail(std::string("\"") + k + "\" must be an array of 16 components");
    }
    for (size_t i = 0; i < 16; ++i) {
      const json& c = (*it)[i];
      if (!c.is_object()) return Fail(std::string("\"") + k + "\" component is not an object");
      int64_t svn = 0;
      if (!Int(c, "svn", 0, 255, &svn)) return false;
      (*out)[i] = static_cast<uint8_t>(svn);
    }
    return true;
  }
  bool Module(const json& o, bool with_levels, TdxModuleIdentity* m) {
    if (!o.is_object()) return Fail("TDX module entry is not an object");
    if (with_levels && !Str(o, "id", &m->id)) return false;
    if (!Hex(o, "mrsigner", &m->mrsigner) || !Hex(o, "attributes", &m->attributes) ||
        !Hex(o, "attributesMask", &m->attributes_mask)) {
      return false;
    }
    return !with_levels || IsvLevels(o, &m->tcb_levels);
  }
};

// Splits the document into (raw body text, parsed body, signature).
Status SplitSigned(std::string_view text, const char* body_key, std::string_view reason, const std::string& what,
                   std::string_view* raw, json* body, std::array<uint8_t, 64>* sig) {
  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return Bad(reason, what + " is not a JSON object");
  auto found = FindTopLevelJsonMember(text, body_key);
  if (!found.has_value()) {
    return Bad(reason, what + ": no single top-level \"" + body_key + "\" member");
  }
  *raw = *found;
  *body = json::parse(raw->begin(), raw->end(), nullptr, false);
  if (body->is_discarded() || !body->is_object()) return Bad(reason, what + ": \"" + body_key + "\" is not an object");
  auto s = doc.find("signature");
  if (s == doc.end() || !s->is_string()) return Bad(reason, what + ": missing \"signature\"");
  auto bytes = HexDecode(s->get<std::string>());
  if (!bytes.ok() || bytes->size() != 64) return Bad(reason, what + ": \"signature\" must be 128 hex digits");
  for (size_t i = 0; i < 64; ++i) (*sig)[i] = (*bytes)[i];
  return Status::Ok();
}

}  // namespace

bool IsKnownTcbStatus(std::string_view s) {
  static constexpr std::string_view kKnown[] = {"UpToDate",
                                                "SWHardeningNeeded",
                                                "ConfigurationNeeded",
                                                "ConfigurationAndSWHardeningNeeded",
                                                "OutOfDate",
                                                "OutOfDateConfigurationNeeded",
                                                "Revoked"};
  for (auto k : kKnown) {
    if (s == k) return true;
  }
  return false;
}

std::optional<std::string_view> FindTopLevelJsonMember(std::string_view s, std::string_view key) {
  size_t i = 0;
  SkipWs(s, &i);
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  ++i;
  std::optional<std::string_view> found;
  SkipWs(s, &i);
  if (i < s.size() && s[i] == '}') return std::nullopt;
  while (i < s.size()) {
    SkipWs(s, &i);
    if (i >= s.size() || s[i] != '"') return std::nullopt;
    size_t kstart = i + 1;
    if (!SkipString(s, &i)) return std::nullopt;
    std::string_view k = s.substr(kstart, i - 1 - kstart);
    SkipWs(s, &i);
    if (i >= s.size() || s[i] != ':') return std::nullopt;
    ++i;
    SkipWs(s, &i);
    size_t vstart = i;
    if (!SkipValue(s, &i)) return std::nullopt;
    if (k == key) {
      if (found.has_value()) return std::nullopt;  // duplicate member: ambiguous, reject
      found = s.substr(vstart, i - vstart);
    }
    SkipWs(s, &i);
    if (i >= s.size()) return std::nullopt;
    if (s[i] == '}') return found;
    if (s[i] != ',') return std::nullopt;
    ++i;
  }
  return std::nullopt;
}

Result<TcbInfo> ParseTcbInfo(std::string_view text) {
  TcbInfo info;
  std::string_view raw;
  json b;
  VOUCH_RETURN_IF_ERROR(SplitSigned(text, "tcbInfo", kMalformedTcbInfo, "TCB Info", &raw, &b, &info.signature));
  info.signed_body = std::string(raw);
  Reader r{kMalformedTcbInfo, "TCB Info", {}};
  int64_t v = 0;
  if (!r.Int(b, "version", 0, 1000, &v)) return r.err;
  if (v != 2 && v != 3) {
    return Bad(kUnsupportedTcbInfoVersion, "TCB Info version " + std::to_string(v) + ", expected 2 or 3");
  }
  info.version = static_cast<int>(v);
  if (info.version == 3) {
    if (!r.Str(b, "id", &info.id)) return r.err;
    if (info.id != "SGX" && info.id != "TDX") return Bad(kMalformedTcbInfo, "TCB Info id \"" + info.id + "\", expected SGX or TDX");
  }
  int64_t n = 0;
  if (!r.Str(b, "issueDate", &info.issue_date) || !r.Str(b, "nextUpdate", &info.next_update) ||
      !r.Time(info.issue_date, "issueDate", &info.issue_time) ||
      !r.Time(info.next_update, "nextUpdate", &info.next_update_time) || !r.Hex(b, "fmspc", &info.fmspc) ||
      !r.Hex(b, "pceId", &info.pce_id)) {
    return r.err;
  }
  if (!r.Int(b, "tcbType", 0, 0xFFFF, &n)) return r.err;
  info.tcb_type = static_cast<int>(n);
  if (!r.Int(b, "tcbEvaluationDataNumber", 0, INT64_MAX, &info.tcb_evaluation_data_number)) return r.err;
  if (info.is_tdx()) {
    auto m = b.find("tdxModule");
    if (m == b.end()) return Bad(kMalformedTcbInfo, "TDX TCB Info without \"tdxModule\"");
    TdxModuleIdentity mod;
    if (!r.Module(*m, false, &mod)) return r.err;
    info.tdx_module = std::move(mod);
    auto ids = b.find("tdxModuleIdentities");
    if (ids != b.end()) {
      if (!ids->is_array()) return Bad(kMalformedTcbInfo, "TCB Info: \"tdxModuleIdentities\" must be an array");
      for (const auto& e : *ids) {
        TdxModuleIdentity mi;
        if (!r.Module(e, true, &mi)) return r.err;
        info.tdx_module_identities.push_back(std::move(mi));
      }
    }
  }
  auto levels = b.find("tcbLevels");
  if (levels == b.end() || !levels->is_array() || levels->empty()) {
    return Bad(kMalformedTcbInfo, "TCB Info: \"tcbLevels\" must be a non-empty array");
  }
  for (const auto& l : *levels) {
    if (!l.is_object()) return Bad(kMalformedTcbInfo, "TCB Info: a tcbLevel is not an object");
    auto tcb = l.find("tcb");
    if (tcb == l.end() || !tcb->is_object()) return Bad(kMalformedTcbInfo, "TCB Info: a tcbLevel has no \"tcb\"");
    TcbLevel lv;
    if (info.version == 2) {
      for (int i = 0; i < 16; ++i) {
        char key[20];
        std::snprintf(key, sizeof key, "sgxtcbcomp%02dsvn", i + 1);
        if (!r.Int(*tcb, key, 0, 255, &n)) return r.err;
        lv.sgx_svns[static_cast<size_t>(i)] = static_cast<uint8_t>(n);
      }
    } else {
      if (!r.SvnArray(*tcb, "sgxtcbcomponents", &lv.sgx_svns)) return r.err;
      if (info.is_tdx()) {
        std::array<uint8_t, 16> tdx{};
        if (!r.SvnArray(*tcb, "tdxtcbcomponents", &tdx)) return r.err;
        lv.tdx_svns = tdx;
      }
    }
    if (!r.Int(*tcb, "pcesvn", 0, 0xFFFF, &n)) return r.err;
    lv.pcesvn = static_cast<uint16_t>(n);
    if (!r.Str(l, "tcbDate", &lv.tcb_date) || !r.Status_(l, &lv.tcb_status) || !r.Advisories(l, &lv.advisory_ids)) {
      return r.err;
    }
    info.tcb_levels.push_back(std::move(lv));
  }
  return info;
}

Result<EnclaveIdentity> ParseEnclaveIdentity(std::string_view text) {
  EnclaveIdentity id;
  std::string_view raw;
  json b;
  VOUCH_RETURN_IF_ERROR(
      SplitSigned(text, "enclaveIdentity", kMalformedQeIdentity, "QE Identity", &raw, &b, &id.signature));
  id.signed_body = std::string(raw);
  Reader r{kMalformedQeIdentity, "QE Identity", {}};
  int64_t v = 0;
  if (!r.Int(b, "version", 0, 1000, &v)) return r.err;
  if (v != 2) {
    return Bad(kUnsupportedQeIdentityVersion, "QE Identity version " + std::to_string(v) + ", expected 2");
  }
  id.version = 2;
  int64_t n = 0;
  if (!r.Str(b, "id", &id.id) || !r.Str(b, "issueDate", &id.issue_date) ||
      !r.Str(b, "nextUpdate", &id.next_update) || !r.Time(id.issue_date, "issueDate", &id.issue_time) ||
      !r.Time(id.next_update, "nextUpdate", &id.next_update_time) ||
      !r.Int(b, "tcbEvaluationDataNumber", 0, INT64_MAX, &id.tcb_evaluation_data_number) ||
      !r.Hex(b, "miscselect", &id.miscselect) || !r.Hex(b, "miscselectMask", &id.miscselect_mask) ||
      !r.Hex(b, "attributes", &id.attributes) || !r.Hex(b, "attributesMask", &id.attributes_mask) ||
      !r.Hex(b, "mrsigner", &id.mrsigner) || !r.Int(b, "isvprodid", 0, 0xFFFF, &n) ||
      !r.IsvLevels(b, &id.tcb_levels)) {
    return r.err;
  }
  if (id.id != "QE" && id.id != "TD_QE" && id.id != "QVE") {
    return Bad(kMalformedQeIdentity, "QE Identity id \"" + id.id + "\", expected QE, TD_QE or QVE");
  }
  id.isvprodid = static_cast<uint16_t>(n);
  return id;
}

}  // namespace vouch::evidence
