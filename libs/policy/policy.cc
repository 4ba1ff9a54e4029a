#include "policy/policy.h"

#include <algorithm>
#include <cctype>

#include "attest/dcap_verifier.h"
#include "base/encoding.h"
#include "crypto/secret.h"

namespace vouch::policy {
namespace {

using attest::Platform;
using attest::Verdict;
using nlohmann::json;

Decision Reject(std::string_view reason, std::string message) { return Decision::Reject(reason, std::move(message)); }

Decision InvalidRule(std::string message) {
  Decision d;
  d.status = InvalidArgument("invalid measurement rule: " + std::move(message), std::string(kInvalidRule));
  return d;
}

// Lower-cases `hex` and checks it is exactly `digits` hex digits.
std::optional<std::string> NormalizeHex(std::string_view hex, size_t digits) {
  if (hex.size() != digits) return std::nullopt;
  std::string out(hex);
  for (char& c : out) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// measurements[key] as lower-case hex, or nullopt when absent or not a string.
std::optional<std::string> VerdictHex(const Verdict& v, std::string_view key) {
  auto it = v.measurements.find(key);
  if (it == v.measurements.end() || !it->is_string()) return std::nullopt;
  std::string s = it->get<std::string>();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::optional<int64_t> JsonInt(const json& obj, std::string_view key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

// The debug flag: measurements.debug, else details.debug; nullopt when the verdict does not say.
std::optional<bool> VerdictDebug(const Verdict& v) {
  for (const json* obj : {&v.measurements, &v.details}) {
    if (!obj->is_object()) continue;
    auto it = obj->find("debug");
    if (it != obj->end() && it->is_boolean()) return it->get<bool>();
  }
  return std::nullopt;
}

std::string Short(const std::string& hex) { return hex.size() > 16 ? hex.substr(0, 16) + "..." : hex; }

Decision CheckSgx(const Verdict& v, const SgxMeasurementRule& r) {
  std::optional<std::string> want_enclave, want_signer;
  if (!r.mrenclave && !r.mrsigner) return InvalidRule("an SGX rule needs mrenclave and/or mrsigner");
  if (r.mrenclave && !(want_enclave = NormalizeHex(*r.mrenclave, 64))) {
    return InvalidRule("mrenclave must be 64 hex digits");
  }
  if (r.mrsigner && !(want_signer = NormalizeHex(*r.mrsigner, 64))) {
    return InvalidRule("mrsigner must be 64 hex digits");
  }
  if (want_enclave) {
    auto got = VerdictHex(v, "mrenclave");
    if (!got) return Reject(kMeasurementNotAllowed, "the verdict has no mrenclave");
    if (*got != *want_enclave) {
      return Reject(kMeasurementNotAllowed, "mrenclave " + Short(*got) + " is not the allowed " + Short(*want_enclave));
    }
  }
  if (want_signer) {
    auto got = VerdictHex(v, "mrsigner");
    if (!got) return Reject(kMrsignerMismatch, "the verdict has no mrsigner");
    if (*got != *want_signer) {
      return Reject(kMrsignerMismatch, "mrsigner " + Short(*got) + " is not the allowed " + Short(*want_signer));
    }
  }
  if (r.isvprodid) {
    auto got = JsonInt(v.measurements, "isvprodid");
    if (!got || *got != *r.isvprodid) {
      return Reject(kIsvprodidMismatch, "isvprodid is " + (got ? std::to_string(*got) : std::string("absent")) +
                                            ", expected " + std::to_string(*r.isvprodid));
    }
  }
  if (r.min_isvsvn) {
    auto got = JsonInt(v.measurements, "isvsvn");
    if (!got || *got < *r.min_isvsvn) {
      return Reject(kIsvsvnTooLow, "isvsvn is " + (got ? std::to_string(*got) : std::string("absent")) +
                                       ", the minimum is " + std::to_string(*r.min_isvsvn));
    }
  }
  return Decision::Accept();
}

Decision CheckTdx(const Verdict& v, const TdxMeasurementRule& r) {
  auto want = NormalizeHex(r.mrtd, 96);
  if (!want) return InvalidRule("mrtd must be 96 hex digits");
  std::optional<std::string> want_rtmr[4];
  for (size_t i = 0; i < 4; ++i) {
    if (r.rtmr[i] && !(want_rtmr[i] = NormalizeHex(*r.rtmr[i], 96))) {
      return InvalidRule("rtmr" + std::to_string(i) + " must be 96 hex digits");
    }
  }
  auto got = VerdictHex(v, "mrtd");
  if (!got) return Reject(kMeasurementNotAllowed, "the verdict has no mrtd");
  if (*got != *want) return Reject(kMeasurementNotAllowed, "mrtd " + Short(*got) + " is not the allowed " + Short(*want));
  for (size_t i = 0; i < 4; ++i) {
    if (!want_rtmr[i]) continue;
    const std::string key = "rtmr" + std::to_string(i);
    auto g = VerdictHex(v, key);
    if (!g || *g != *want_rtmr[i]) {
      return Reject(kRtmrMismatch, key + " " + (g ? Short(*g) : std::string("absent")) + " is not the allowed " +
                                       Short(*want_rtmr[i]));
    }
  }
  return Decision::Accept();
}

Decision CheckSnp(const Verdict& v, const SnpMeasurementRule& r) {
  auto want = NormalizeHex(r.measurement, 96);
  if (!want) return InvalidRule("measurement must be 96 hex digits");
  std::optional<std::string> want_host;
  if (r.host_data && !(want_host = NormalizeHex(*r.host_data, 64))) return InvalidRule("host_data must be 64 hex digits");
  auto got = VerdictHex(v, "measurement");
  if (!got) return Reject(kMeasurementNotAllowed, "the verdict has no measurement");
  if (*got != *want) {
    return Reject(kMeasurementNotAllowed, "measurement " + Short(*got) + " is not the allowed " + Short(*want));
  }
  if (want_host) {
    auto g = VerdictHex(v, "host_data");
    if (!g || *g != *want_host) {
      return Reject(kHostDataMismatch, "host_data " + (g ? Short(*g) : std::string("absent")) + " is not the allowed " +
                                           Short(*want_host));
    }
  }
  if (r.vmpl) {
    auto g = JsonInt(v.measurements, "vmpl");
    if (!g || *g != *r.vmpl) {
      return Reject(kVmplMismatch, "vmpl is " + (g ? std::to_string(*g) : std::string("absent")) + ", expected " +
                                       std::to_string(*r.vmpl));
    }
  }
  if (r.min_guest_svn) {
    auto g = JsonInt(v.measurements, "guest_svn");
    if (!g || *g < *r.min_guest_svn) {
      return Reject(kGuestSvnTooLow, "guest_svn is " + (g ? std::to_string(*g) : std::string("absent")) +
                                         ", the minimum is " + std::to_string(*r.min_guest_svn));
    }
  }
  const SnpMinTcb& m = r.min_reported_tcb;
  const std::pair<const char*, const std::optional<uint8_t>*> components[] = {
      {"bootloader", &m.bootloader}, {"tee", &m.tee}, {"snp", &m.snp}, {"microcode", &m.microcode}, {"fmc", &m.fmc}};
  const json empty = json::object();
  auto tcb_it = v.measurements.find("reported_tcb");
  const json& tcb = (tcb_it != v.measurements.end() && tcb_it->is_object()) ? *tcb_it : empty;
  for (const auto& [name, min] : components) {
    if (!min->has_value()) continue;
    auto g = JsonInt(tcb, name);
    if (!g || *g < **min) {
      return Reject(kReportedTcbTooLow, std::string("reported_tcb.") + name + " is " +
                                            (g ? std::to_string(*g) : std::string("absent")) + ", the minimum is " +
                                            std::to_string(**min));
    }
  }
  return Decision::Accept();
}

}  // namespace

Decision Decision::Reject(std::string_view reason, std::string message) {
  Decision d;
  d.status = PermissionDenied(std::move(message), std::string(reason));
  return d;
}

Platform MeasurementRule::platform() const {
  if (std::holds_alternative<SgxMeasurementRule>(rule)) return Platform::kSgx;
  if (std::holds_alternative<TdxMeasurementRule>(rule)) return Platform::kTdx;
  return Platform::kSevSnp;
}

Decision EvaluatePlatform(const Verdict& verdict, const ZonePolicy& zone) {
  if (!verdict.genuine) {
    if (verdict.error && verdict.error->reason() == attest::kDcapSimNotAllowed) {
      // A verifier that does not trust the sim root at all (cluster joins without allow_sim).
      return Reject(kSimNotAllowed, "evidence comes from the insecure simulated TEE, which is not allowed here");
    }
    std::string why = verdict.error ? verdict.error->reason() + ": " + verdict.error->message() : "no reason given";
    return Reject(kNotGenuine, "evidence is not genuine (" + why.substr(0, 300) + ")");
  }
  if (verdict.insecure_sim && !zone.allow_sim) {
    return Reject(kSimNotAllowed, "evidence comes from the insecure simulated TEE and the zone does not allow sim");
  }
  auto parsed = ParseTcbStatus(verdict.tcb_status);
  if (!parsed.ok()) {
    return Reject(kTcbUnknown, "the verdict's TCB status '" + verdict.tcb_status + "' is not a known status");
  }
  const TcbStatus s = *parsed;
  const std::string name(TcbStatusName(s));
  if (s == TcbStatus::kRevoked) return Reject(kTcbRevoked, "the platform TCB is revoked");
  if (s == TcbStatus::kTcbLevelNotSupported) {
    return Reject(kTcbNotSupported, "the platform TCB level is not in the vendor's TCB info");
  }
  const std::string min_name(TcbStatusName(zone.min_tcb));
  if (TcbAtLeast(s, zone.min_tcb)) {
    Decision d = Decision::Accept();
    d.effective_tcb = s;
    return d;
  }
  const TcbStatus base = WithoutSwHardening(s);
  if (base == s || !TcbAtLeast(base, zone.min_tcb)) {
    return Reject(kTcbTooOld, "TCB status " + name + " is worse than the zone minimum " + min_name);
  }
  // s is SWHardeningNeeded / ConfigurationAndSWHardeningNeeded and would meet the minimum
  // once its advisories are mitigated: accept only if the zone tolerates every one of them.
  if (verdict.advisory_ids.empty()) {
    return Reject(kTcbTooOld, "TCB status " + name + " is worse than the zone minimum " + min_name +
                                  " and names no advisory that could be tolerated");
  }
  for (const std::string& id : verdict.advisory_ids) {
    if (std::find(zone.tolerated_advisories.begin(), zone.tolerated_advisories.end(), id) ==
        zone.tolerated_advisories.end()) {
      return Reject(kAdvisoryNotTolerated,
                    "TCB status " + name + " needs advisory " + id + " tolerated, and the zone does not tolerate it");
    }
  }
  Decision d = Decision::Accept();
  d.effective_tcb = base;
  d.tolerated = verdict.advisory_ids;
  return d;
}

Decision EvaluateMeasurement(const Verdict& verdict, const MeasurementRule& rule, const ZonePolicy& zone) {
  if (!verdict.genuine) return Reject(kNotGenuine, "evidence is not genuine");
  if (verdict.platform != rule.platform()) {
    return Reject(kPlatformMismatch, "evidence is " + std::string(attest::PlatformName(verdict.platform)) +
                                         ", the rule is for " + std::string(attest::PlatformName(rule.platform())));
  }
  // Validate the rule before judging the evidence, so a bad rule is reported as such.
  Decision valid = std::visit(
      [](const auto& r) -> Decision {
        using T = std::decay_t<decltype(r)>;
        Verdict probe;  // identity checks against an empty verdict only surface rule errors
        Decision d;
        if constexpr (std::is_same_v<T, SgxMeasurementRule>) d = CheckSgx(probe, r);
        if constexpr (std::is_same_v<T, TdxMeasurementRule>) d = CheckTdx(probe, r);
        if constexpr (std::is_same_v<T, SnpMeasurementRule>) d = CheckSnp(probe, r);
        return d.status.reason() == kInvalidRule ? d : Decision::Accept();
      },
      rule.rule);
  if (!valid.accepted()) return valid;
  if (!zone.allow_debug) {
    std::optional<bool> debug = VerdictDebug(verdict);
    if (!debug.has_value()) {
      return Reject(kDebugNotAllowed, "the verdict does not state the debug flag, and the zone refuses debug");
    }
    if (*debug) return Reject(kDebugNotAllowed, "the workload runs in debug mode, and the zone refuses debug");
  }
  return std::visit(
      [&verdict](const auto& r) -> Decision {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, SgxMeasurementRule>) {
          return CheckSgx(verdict, r);
        } else if constexpr (std::is_same_v<T, TdxMeasurementRule>) {
          return CheckTdx(verdict, r);
        } else {
          return CheckSnp(verdict, r);
        }
      },
      rule.rule);
}

Decision Evaluate(const Verdict& verdict, const MeasurementRule& rule, const ZonePolicy& zone) {
  Decision platform = EvaluatePlatform(verdict, zone);
  if (!platform.accepted()) return platform;
  Decision measurement = EvaluateMeasurement(verdict, rule, zone);
  if (!measurement.accepted()) return measurement;
  return platform;  // carries effective_tcb and the tolerated advisories
}

Decision CheckReportData(const Verdict& verdict, std::span<const uint8_t> expected) {
  const std::string want = HexEncode(expected);
  std::string got = verdict.report_data_hex.substr(0, want.size());
  std::transform(got.begin(), got.end(), got.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (want.empty() || got.size() != want.size() || !crypto::ConstantTimeEquals(got, want)) {
    return Reject(kReportDataMismatch, "the evidence's report data does not bind the key and nonce of this request");
  }
  return Decision::Accept();
}

Decision EvaluateIdentity(const Verdict& verdict, const std::vector<MeasurementRule>& rules, const ZonePolicy& zone,
                          std::string_view none_reason) {
  Decision platform = EvaluatePlatform(verdict, zone);
  if (!platform.accepted()) return platform;
  ZonePolicy strict = zone;
  strict.allow_debug = false;
  std::optional<bool> debug = VerdictDebug(verdict);
  if (!debug.has_value() || *debug) {
    return Reject(kDebugNotAllowed, debug.has_value() ? "the evidence comes from a debug enclave or VM, which is never accepted here"
                                                      : "the evidence does not state the debug flag");
  }
  std::string closest;
  for (const MeasurementRule& rule : rules) {
    Decision d = EvaluateMeasurement(verdict, rule, strict);
    if (d.accepted()) return platform;  // carries effective_tcb and the tolerated advisories
    if (d.status.reason() == kPlatformMismatch || d.status.reason() == kInvalidRule) continue;
    if (closest.empty()) closest = d.status.reason() + ": " + d.status.message();
  }
  std::string what;
  for (const char* key : {"mrenclave", "mrsigner", "mrtd", "measurement"}) {
    auto v = VerdictHex(verdict, key);
    if (v) what += std::string(what.empty() ? "" : ", ") + key + " " + Short(*v);
  }
  return Reject(none_reason, "the evidence's identity (" + (what.empty() ? std::string("none stated") : what) +
                                 ") is not one of the " + std::to_string(rules.size()) + " accepted here" +
                                 (closest.empty() ? std::string() : " (closest: " + closest + ")"));
}

Decision EvaluateNodeStanding(const Verdict& recorded, const ZonePolicy& zone) {
  Decision d = EvaluatePlatform(recorded, zone);
  if (d.accepted()) return d;
  return Reject(kNodeTcbNotAcceptable,
                "the node is no longer acceptable in its zone: " + d.status.reason() + ": " + d.status.message());
}

Decision EvaluateWorkload(const Verdict& workload, const std::vector<BuildRule>& builds, const ZonePolicy& zone,
                          size_t* chosen) {
  ZonePolicy lenient = zone;
  lenient.allow_debug = true;  // matching first; debug is judged against the chosen build below
  std::optional<size_t> first_match;
  std::optional<size_t> approved;
  std::string closest;
  for (size_t i = 0; i < builds.size(); ++i) {
    Decision d = EvaluateMeasurement(workload, builds[i].rule, lenient);
    if (!d.accepted()) {
      if (closest.empty()) closest = d.status.message();
      continue;
    }
    if (!first_match) first_match = i;
    if (builds[i].status == "approved") {
      approved = i;
      break;
    }
  }
  if (!first_match) {
    std::string what;
    for (const char* key : {"mrenclave", "mrsigner"}) {
      auto v = VerdictHex(workload, key);
      if (v) what += std::string(what.empty() ? "" : ", ") + key + " " + *v;
    }
    for (const char* key : {"isvprodid", "isvsvn"}) {
      auto v = JsonInt(workload.measurements, key);
      if (v) what += std::string(", ") + key + " " + std::to_string(*v);
    }
    return Reject(kMeasurementNotAllowed, "no build in this zone has " + what);
  }
  if (!approved) {
    const std::string& s = builds[*first_match].status;
    std::string_view code = s == "pending" ? kBuildPending : s == "denied" ? kBuildDenied : kBuildRevoked;
    return Reject(code, "the matching build is " + s + ", not approved");
  }
  std::optional<bool> debug = VerdictDebug(workload);
  if (debug.value_or(true) && !(zone.allow_debug && builds[*approved].debug)) {
    return Reject(kDebugNotAllowed, "the enclave runs in debug mode, which this zone or build does not allow");
  }
  if (chosen != nullptr) *chosen = *approved;
  return Decision::Accept();
}

namespace {

Result<std::string> RuleHex(const json& j, const char* key, size_t digits, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return InvalidArgument(std::string(key) + " is required", std::string(kInvalidRule));
    return std::string();
  }
  std::optional<std::string> hex = it->is_string() ? NormalizeHex(it->get<std::string>(), digits) : std::nullopt;
  if (!hex) return InvalidArgument(std::string(key) + " must be " + std::to_string(digits) + " hex digits", std::string(kInvalidRule));
  return *hex;
}

Result<std::optional<uint16_t>> RuleU16(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<uint16_t>();
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 65535) {
    return InvalidArgument(std::string(key) + " must be an integer 0..65535", std::string(kInvalidRule));
  }
  return std::optional<uint16_t>(static_cast<uint16_t>(it->get<int64_t>()));
}

}  // namespace

Result<MeasurementRule> ParseIdentityRule(const json& j) {
  auto bad = [](std::string m) { return InvalidArgument(std::move(m), std::string(kInvalidRule)); };
  if (!j.is_object()) return bad("an identity rule must be a JSON object");
  auto pit = j.find("platform");
  if (pit == j.end() || !pit->is_string()) return bad("platform must be \"sgx\", \"tdx\" or \"sev-snp\"");
  const std::string platform = pit->get<std::string>();
  std::vector<std::string> allowed;
  MeasurementRule out;
  if (platform == "sgx") {
    allowed = {"platform", "mrenclave", "mrsigner", "isvprodid", "min_isvsvn"};
    SgxMeasurementRule r;
    VOUCH_ASSIGN_OR_RETURN(std::string enclave, RuleHex(j, "mrenclave", 64, false));
    VOUCH_ASSIGN_OR_RETURN(std::string signer, RuleHex(j, "mrsigner", 64, false));
    VOUCH_ASSIGN_OR_RETURN(r.isvprodid, RuleU16(j, "isvprodid"));
    VOUCH_ASSIGN_OR_RETURN(r.min_isvsvn, RuleU16(j, "min_isvsvn"));
    if (!enclave.empty()) r.mrenclave = enclave;
    if (!signer.empty()) r.mrsigner = signer;
    if (enclave.empty() && (signer.empty() || !r.isvprodid || !r.min_isvsvn)) {
      return bad("an SGX identity is an exact mrenclave, or mrsigner with isvprodid and min_isvsvn");
    }
    out.rule = r;
  } else if (platform == "tdx") {
    allowed = {"platform", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"};
    TdxMeasurementRule r;
    VOUCH_ASSIGN_OR_RETURN(r.mrtd, RuleHex(j, "mrtd", 96, true));
    for (int i = 0; i < 4; ++i) {
      const std::string key = "rtmr" + std::to_string(i);
      VOUCH_ASSIGN_OR_RETURN(std::string v, RuleHex(j, key.c_str(), 96, false));
      if (!v.empty()) r.rtmr[i] = v;
    }
    out.rule = r;
  } else if (platform == "sev-snp") {
    allowed = {"platform", "measurement", "host_data"};
    SnpMeasurementRule r;
    VOUCH_ASSIGN_OR_RETURN(r.measurement, RuleHex(j, "measurement", 96, true));
    VOUCH_ASSIGN_OR_RETURN(std::string host, RuleHex(j, "host_data", 64, false));
    if (!host.empty()) r.host_data = host;
    out.rule = r;
  } else {
    return bad("platform must be \"sgx\", \"tdx\" or \"sev-snp\"");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      return bad("unknown field '" + it.key().substr(0, 40) + "' for platform " + platform);
    }
  }
  return out;
}

json IdentityRuleJson(const MeasurementRule& rule) {
  return std::visit(
      [](const auto& r) -> json {
        using T = std::decay_t<decltype(r)>;
        json j;
        if constexpr (std::is_same_v<T, SgxMeasurementRule>) {
          j["platform"] = "sgx";
          if (r.mrenclave) j["mrenclave"] = *r.mrenclave;
          if (r.mrsigner) j["mrsigner"] = *r.mrsigner;
          if (r.isvprodid) j["isvprodid"] = *r.isvprodid;
          if (r.min_isvsvn) j["min_isvsvn"] = *r.min_isvsvn;
        } else if constexpr (std::is_same_v<T, TdxMeasurementRule>) {
          j["platform"] = "tdx";
          j["mrtd"] = r.mrtd;
          for (int i = 0; i < 4; ++i) {
            if (r.rtmr[i]) j["rtmr" + std::to_string(i)] = *r.rtmr[i];
          }
        } else {
          j["platform"] = "sev-snp";
          j["measurement"] = r.measurement;
          if (r.host_data) j["host_data"] = *r.host_data;
        }
        return j;
      },
      rule.rule);
}

}  // namespace vouch::policy
