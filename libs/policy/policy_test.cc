#include "policy/policy.h"

#include <gtest/gtest.h>

#include "attest/dcap_verifier.h"

#include <string>
#include <vector>

namespace vouch::policy {
namespace {

using attest::Platform;
using attest::Verdict;

const std::string kEnclave(64, 'a');
const std::string kSigner(64, 'b');
const std::string kMrtd(96, 'c');
const std::string kRtmr(96, 'd');
const std::string kSnpMeasurement(96, 'e');
const std::string kHostData(64, 'f');

std::string Reason(const Decision& d) { return d.accepted() ? "accept" : d.status.reason(); }

Verdict Genuine(Platform p, const std::string& tcb, std::vector<std::string> advisories = {}) {
  Verdict v;
  v.platform = p;
  v.genuine = true;
  v.tcb_status = tcb;
  v.advisory_ids = std::move(advisories);
  v.measurements["debug"] = false;
  return v;
}

Verdict Sgx() {
  Verdict v = Genuine(Platform::kSgx, "UpToDate");
  v.measurements["mrenclave"] = kEnclave;
  v.measurements["mrsigner"] = kSigner;
  v.measurements["isvprodid"] = 7;
  v.measurements["isvsvn"] = 3;
  return v;
}

Verdict Tdx() {
  Verdict v = Genuine(Platform::kTdx, "UpToDate");
  v.measurements["mrtd"] = kMrtd;
  for (int i = 0; i < 4; ++i) v.measurements["rtmr" + std::to_string(i)] = kRtmr;
  return v;
}

Verdict Snp() {
  Verdict v = Genuine(Platform::kSevSnp, "UpToDate");
  v.measurements["measurement"] = kSnpMeasurement;
  v.measurements["host_data"] = kHostData;
  v.measurements["vmpl"] = 0;
  v.measurements["guest_svn"] = 4;
  v.measurements["reported_tcb"] = {{"bootloader", 3}, {"tee", 0}, {"snp", 8}, {"microcode", 115}};
  return v;
}

// ---- TcbStatus ---------------------------------------------------------------------------

TEST(TcbStatus, ParsesAndFormatsEveryQvlName) {
  const char* names[] = {"UpToDate",
                         "SWHardeningNeeded",
                         "ConfigurationNeeded",
                         "ConfigurationAndSWHardeningNeeded",
                         "TDRelaunchAdvised",
                         "TDRelaunchAdvisedConfigurationNeeded",
                         "OutOfDate",
                         "OutOfDateConfigurationNeeded",
                         "Revoked",
                         "TcbLevelNotSupported"};
  int rank = 0;
  for (const char* n : names) {
    auto s = ParseTcbStatus(n);
    ASSERT_TRUE(s.ok()) << n;
    EXPECT_EQ(TcbStatusName(*s), n);
    EXPECT_EQ(TcbRank(*s), rank++) << n;  // declared order is the ranking, best first
  }
  for (const char* bad : {"", "uptodate", "UpToDate ", "OK", "Up To Date"}) {
    auto s = ParseTcbStatus(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().reason(), "invalid_tcb_status");
  }
}

TEST(TcbStatus, OrderingAndHardeningReduction) {
  EXPECT_TRUE(TcbAtLeast(TcbStatus::kUpToDate, TcbStatus::kUpToDate));
  EXPECT_TRUE(TcbAtLeast(TcbStatus::kUpToDate, TcbStatus::kOutOfDate));
  EXPECT_FALSE(TcbAtLeast(TcbStatus::kSWHardeningNeeded, TcbStatus::kUpToDate));
  EXPECT_TRUE(TcbAtLeast(TcbStatus::kSWHardeningNeeded, TcbStatus::kConfigurationNeeded));
  EXPECT_FALSE(TcbAtLeast(TcbStatus::kOutOfDate, TcbStatus::kTDRelaunchAdvisedConfigurationNeeded));
  EXPECT_TRUE(TcbNeverAcceptable(TcbStatus::kRevoked));
  EXPECT_TRUE(TcbNeverAcceptable(TcbStatus::kTcbLevelNotSupported));
  EXPECT_FALSE(TcbNeverAcceptable(TcbStatus::kOutOfDateConfigurationNeeded));
  EXPECT_EQ(WithoutSwHardening(TcbStatus::kSWHardeningNeeded), TcbStatus::kUpToDate);
  EXPECT_EQ(WithoutSwHardening(TcbStatus::kConfigurationAndSWHardeningNeeded), TcbStatus::kConfigurationNeeded);
  EXPECT_EQ(WithoutSwHardening(TcbStatus::kOutOfDate), TcbStatus::kOutOfDate);
}

// ---- EvaluatePlatform: (status, advisories, min_tcb, tolerated) -> outcome -------------------

struct PlatformCase {
  const char* status;
  std::vector<std::string> advisories;
  TcbStatus min_tcb;
  std::vector<std::string> tolerated;
  const char* expect;            // "accept" or a reason code
  const char* effective = nullptr;  // when accepted
};

TEST(EvaluatePlatform, TcbAndAdvisoryTable) {
  using S = TcbStatus;
  const std::vector<std::string> sa615 = {"INTEL-SA-00615"};
  const std::vector<std::string> two = {"INTEL-SA-00615", "INTEL-SA-00657"};
  const PlatformCase cases[] = {
      {"UpToDate", {}, S::kUpToDate, {}, "accept", "UpToDate"},
      {"UpToDate", {}, S::kOutOfDate, {}, "accept", "UpToDate"},
      // Worse than the minimum, nothing to tolerate.
      {"SWHardeningNeeded", {}, S::kUpToDate, {}, "tcb_too_old"},
      {"SWHardeningNeeded", sa615, S::kUpToDate, {}, "advisory_not_tolerated"},
      {"SWHardeningNeeded", sa615, S::kUpToDate, sa615, "accept", "UpToDate"},
      {"SWHardeningNeeded", two, S::kUpToDate, sa615, "advisory_not_tolerated"},
      {"SWHardeningNeeded", two, S::kUpToDate, two, "accept", "UpToDate"},
      {"SWHardeningNeeded", two, S::kUpToDate, {"INTEL-SA-00657", "INTEL-SA-00615", "X"}, "accept", "UpToDate"},
      // At or above the minimum: accepted outright, advisories not judged.
      {"SWHardeningNeeded", two, S::kSWHardeningNeeded, {}, "accept", "SWHardeningNeeded"},
      {"ConfigurationNeeded", {}, S::kUpToDate, {}, "tcb_too_old"},
      {"ConfigurationNeeded", sa615, S::kUpToDate, sa615, "tcb_too_old"},  // not a hardening status
      {"ConfigurationNeeded", {}, S::kConfigurationNeeded, {}, "accept", "ConfigurationNeeded"},
      {"ConfigurationAndSWHardeningNeeded", sa615, S::kUpToDate, sa615, "tcb_too_old"},  // still ConfigurationNeeded
      {"ConfigurationAndSWHardeningNeeded", sa615, S::kConfigurationNeeded, sa615, "accept", "ConfigurationNeeded"},
      {"ConfigurationAndSWHardeningNeeded", sa615, S::kConfigurationNeeded, {}, "advisory_not_tolerated"},
      {"ConfigurationAndSWHardeningNeeded", {}, S::kConfigurationNeeded, {}, "tcb_too_old"},
      {"ConfigurationAndSWHardeningNeeded", sa615, S::kSWHardeningNeeded, sa615, "tcb_too_old"},
      {"ConfigurationAndSWHardeningNeeded", {}, S::kConfigurationAndSWHardeningNeeded, {}, "accept",
       "ConfigurationAndSWHardeningNeeded"},
      {"TDRelaunchAdvised", {}, S::kConfigurationAndSWHardeningNeeded, {}, "tcb_too_old"},
      {"TDRelaunchAdvised", {}, S::kTDRelaunchAdvised, {}, "accept", "TDRelaunchAdvised"},
      {"TDRelaunchAdvisedConfigurationNeeded", {}, S::kTDRelaunchAdvised, {}, "tcb_too_old"},
      {"OutOfDate", sa615, S::kUpToDate, sa615, "tcb_too_old"},
      {"OutOfDate", {}, S::kSWHardeningNeeded, {}, "tcb_too_old"},
      {"OutOfDate", {}, S::kOutOfDate, {}, "accept", "OutOfDate"},
      {"OutOfDateConfigurationNeeded", {}, S::kOutOfDate, {}, "tcb_too_old"},
      {"OutOfDateConfigurationNeeded", {}, S::kOutOfDateConfigurationNeeded, {}, "accept",
       "OutOfDateConfigurationNeeded"},
      // Never acceptable, whatever the minimum.
      {"Revoked", {}, S::kOutOfDateConfigurationNeeded, {}, "tcb_revoked"},
      {"Revoked", {}, S::kRevoked, {}, "tcb_revoked"},
      {"TcbLevelNotSupported", {}, S::kTcbLevelNotSupported, {}, "tcb_not_supported"},
      {"TcbLevelNotSupported", {}, S::kUpToDate, {}, "tcb_not_supported"},
      // Genuine but no / an unknown status: fail closed.
      {"", {}, S::kOutOfDateConfigurationNeeded, {}, "tcb_unknown"},
      {"Fine", {}, S::kOutOfDateConfigurationNeeded, {}, "tcb_unknown"},
  };
  for (const PlatformCase& c : cases) {
    ZonePolicy zone;
    zone.min_tcb = c.min_tcb;
    zone.tolerated_advisories = c.tolerated;
    Decision d = EvaluatePlatform(Genuine(Platform::kSgx, c.status, c.advisories), zone);
    const std::string label = std::string(c.status) + " min=" + std::string(TcbStatusName(c.min_tcb)) + " adv=" +
                              std::to_string(c.advisories.size()) + " tol=" + std::to_string(c.tolerated.size());
    EXPECT_EQ(Reason(d), c.expect) << label << ": " << d.status.message();
    if (d.accepted()) {
      ASSERT_TRUE(d.effective_tcb.has_value()) << label;
      EXPECT_EQ(TcbStatusName(*d.effective_tcb), c.effective) << label;
    } else {
      EXPECT_EQ(d.status.code(), StatusCode::kPermissionDenied) << label;
      EXPECT_FALSE(d.status.message().empty()) << label;
    }
  }
}

TEST(EvaluatePlatform, ToleratedAdvisoriesAreReported) {
  ZonePolicy zone;
  zone.tolerated_advisories = {"INTEL-SA-00615"};
  Decision d = EvaluatePlatform(Genuine(Platform::kSgx, "SWHardeningNeeded", {"INTEL-SA-00615"}), zone);
  ASSERT_TRUE(d.accepted());
  EXPECT_EQ(d.tolerated, std::vector<std::string>{"INTEL-SA-00615"});
  Decision up = EvaluatePlatform(Genuine(Platform::kSgx, "UpToDate"), zone);
  EXPECT_TRUE(up.tolerated.empty());
}

TEST(EvaluatePlatform, NotGenuineAndSim) {
  ZonePolicy zone;
  zone.min_tcb = TcbStatus::kOutOfDate;
  Verdict bad = Genuine(Platform::kSevSnp, "");
  bad.genuine = false;
  bad.error = Status(StatusCode::kPermissionDenied, "bad signature", "snp_invalid_signature");
  Decision d = EvaluatePlatform(bad, zone);
  EXPECT_EQ(Reason(d), "evidence_not_genuine");
  EXPECT_NE(d.status.message().find("snp_invalid_signature"), std::string::npos);
  // A not-genuine verdict is refused even if it claims a good status.
  bad.tcb_status = "UpToDate";
  EXPECT_EQ(Reason(EvaluatePlatform(bad, zone)), "evidence_not_genuine");

  Verdict sim = Genuine(Platform::kSgx, "UpToDate");
  sim.insecure_sim = true;
  EXPECT_EQ(Reason(EvaluatePlatform(sim, zone)), "sim_not_allowed");
  zone.allow_sim = true;
  EXPECT_EQ(Reason(EvaluatePlatform(sim, zone)), "accept");
  sim.tcb_status = "Revoked";
  EXPECT_EQ(Reason(EvaluatePlatform(sim, zone)), "tcb_revoked");  // sim still gets TCB rules
}

// ---- EvaluateMeasurement -------------------------------------------------------------------

struct MeasurementCase {
  const char* name;
  Verdict verdict;
  MeasurementRule rule;
  bool allow_debug;
  const char* expect;
};

SgxMeasurementRule SgxRule() { return {kEnclave, kSigner, 7, 3}; }
TdxMeasurementRule TdxRule() {
  TdxMeasurementRule r;
  r.mrtd = kMrtd;
  return r;
}
SnpMeasurementRule SnpRule() {
  SnpMeasurementRule r;
  r.measurement = kSnpMeasurement;
  return r;
}

std::vector<MeasurementCase> MeasurementCases() {
  std::vector<MeasurementCase> cases;
  auto add = [&](const char* name, Verdict v, MeasurementRule r, bool allow_debug, const char* expect) {
    cases.push_back({name, std::move(v), std::move(r), allow_debug, expect});
  };
  // SGX.
  add("sgx exact", Sgx(), {SgxRule()}, false, "accept");
  add("sgx upper-case rule hex", Sgx(), {SgxMeasurementRule{std::string(64, 'A'), std::nullopt, {}, {}}}, false,
      "accept");
  add("sgx mrsigner only", Sgx(), {SgxMeasurementRule{std::nullopt, kSigner, 7, 1}}, false, "accept");
  add("sgx mrenclave only", Sgx(), {SgxMeasurementRule{kEnclave, std::nullopt, {}, {}}}, false, "accept");
  add("sgx other mrenclave", Sgx(), {SgxMeasurementRule{std::string(64, '0'), kSigner, 7, 3}}, false,
      "measurement_not_allowed");
  add("sgx other mrsigner", Sgx(), {SgxMeasurementRule{kEnclave, std::string(64, '0'), 7, 3}}, false,
      "mrsigner_mismatch");
  add("sgx other isvprodid", Sgx(), {SgxMeasurementRule{kEnclave, kSigner, 8, 3}}, false, "isvprodid_mismatch");
  add("sgx isvsvn equal", Sgx(), {SgxMeasurementRule{kEnclave, kSigner, 7, 3}}, false, "accept");
  add("sgx isvsvn too low", Sgx(), {SgxMeasurementRule{kEnclave, kSigner, 7, 4}}, false, "isvsvn_too_low");
  add("sgx no identity in rule", Sgx(), {SgxMeasurementRule{std::nullopt, std::nullopt, 7, 3}}, false,
      "invalid_rule");
  add("sgx short hex", Sgx(), {SgxMeasurementRule{"abcd", std::nullopt, {}, {}}}, false, "invalid_rule");
  add("sgx non-hex", Sgx(), {SgxMeasurementRule{std::string(63, 'a') + "g", std::nullopt, {}, {}}}, false,
      "invalid_rule");
  {
    Verdict d = Sgx();
    d.measurements["debug"] = true;
    add("sgx debug refused", d, {SgxRule()}, false, "debug_not_allowed");
    add("sgx debug allowed", d, {SgxRule()}, true, "accept");
    Verdict dd = Sgx();
    dd.measurements.erase("debug");
    dd.details["debug"] = true;
    add("sgx debug in details", dd, {SgxRule()}, false, "debug_not_allowed");
    Verdict nd = Sgx();
    nd.measurements.erase("debug");
    add("sgx debug flag unknown", nd, {SgxRule()}, false, "debug_not_allowed");
    add("sgx debug flag unknown, allowed", nd, {SgxRule()}, true, "accept");
    Verdict no_svn = Sgx();
    no_svn.measurements.erase("isvsvn");
    add("sgx verdict lacks isvsvn", no_svn, {SgxRule()}, false, "isvsvn_too_low");
    Verdict str_prod = Sgx();
    str_prod.measurements["isvprodid"] = "7";
    add("sgx isvprodid of the wrong type", str_prod, {SgxRule()}, false, "isvprodid_mismatch");
  }
  add("sgx rule on tdx evidence", Tdx(), {SgxRule()}, false, "platform_mismatch");
  // TDX.
  add("tdx mrtd", Tdx(), {TdxRule()}, false, "accept");
  {
    TdxMeasurementRule r = TdxRule();
    r.rtmr[0] = kRtmr;
    r.rtmr[3] = kRtmr;
    add("tdx rtmr0+3", Tdx(), {r}, false, "accept");
    r.rtmr[2] = std::string(96, '0');
    add("tdx rtmr2 differs", Tdx(), {r}, false, "rtmr_mismatch");
    TdxMeasurementRule m = TdxRule();
    m.mrtd = std::string(96, '1');
    add("tdx other mrtd", Tdx(), {m}, false, "measurement_not_allowed");
    TdxMeasurementRule bad = TdxRule();
    bad.rtmr[1] = "zz";
    add("tdx bad rtmr hex", Tdx(), {bad}, false, "invalid_rule");
    Verdict d = Tdx();
    d.measurements["debug"] = true;
    add("tdx debug refused", d, {TdxRule()}, false, "debug_not_allowed");
  }
  // SNP.
  add("snp measurement", Snp(), {SnpRule()}, false, "accept");
  {
    SnpMeasurementRule r = SnpRule();
    r.host_data = kHostData;
    r.vmpl = 0;
    r.min_guest_svn = 4;
    r.min_reported_tcb = {3, 0, 8, 115, std::nullopt};
    add("snp everything equal", Snp(), {r}, false, "accept");
    SnpMeasurementRule h = r;
    h.host_data = std::string(64, '0');
    add("snp host_data differs", Snp(), {h}, false, "host_data_mismatch");
    SnpMeasurementRule vm = r;
    vm.vmpl = 1;
    add("snp vmpl differs", Snp(), {vm}, false, "vmpl_mismatch");
    SnpMeasurementRule g = r;
    g.min_guest_svn = 5;
    add("snp guest_svn too low", Snp(), {g}, false, "guest_svn_too_low");
    const char* names[] = {"bootloader", "tee", "snp", "microcode"};
    for (int i = 0; i < 4; ++i) {
      SnpMeasurementRule t = r;
      std::optional<uint8_t>* fields[] = {&t.min_reported_tcb.bootloader, &t.min_reported_tcb.tee,
                                          &t.min_reported_tcb.snp, &t.min_reported_tcb.microcode};
      *fields[i] = static_cast<uint8_t>(**fields[i] + 1);
      cases.push_back({names[i], Snp(), {t}, false, "reported_tcb_too_low"});
    }
    SnpMeasurementRule f = r;
    f.min_reported_tcb.fmc = 0;
    add("snp fmc required but absent (not Turin)", Snp(), {f}, false, "reported_tcb_too_low");
    Verdict turin = Snp();
    turin.measurements["reported_tcb"]["fmc"] = 2;
    f.min_reported_tcb.fmc = 2;
    add("snp fmc present", turin, {f}, false, "accept");
    SnpMeasurementRule m = SnpRule();
    m.measurement = std::string(96, '9');
    add("snp other measurement", Snp(), {m}, false, "measurement_not_allowed");
    SnpMeasurementRule bad = SnpRule();
    bad.measurement = kSnpMeasurement.substr(2);
    add("snp bad measurement hex", Snp(), {bad}, false, "invalid_rule");
    Verdict d = Snp();
    d.measurements["debug"] = true;
    add("snp debug refused", d, {SnpRule()}, false, "debug_not_allowed");
    add("snp debug allowed", d, {SnpRule()}, true, "accept");
    Verdict missing = Snp();
    missing.measurements.erase("measurement");
    add("snp verdict lacks measurement", missing, {SnpRule()}, false, "measurement_not_allowed");
  }
  add("snp rule on sgx evidence", Sgx(), {SnpRule()}, false, "platform_mismatch");
  {
    Verdict ng = Snp();
    ng.genuine = false;
    add("not genuine", ng, {SnpRule()}, true, "evidence_not_genuine");
  }
  return cases;
}

TEST(EvaluateMeasurement, Table) {
  for (const MeasurementCase& c : MeasurementCases()) {
    ZonePolicy zone;
    zone.allow_debug = c.allow_debug;
    Decision d = EvaluateMeasurement(c.verdict, c.rule, zone);
    EXPECT_EQ(Reason(d), c.expect) << c.name << ": " << d.status.message();
    if (!d.accepted()) {
      EXPECT_EQ(d.status.code(), std::string(c.expect) == "invalid_rule" ? StatusCode::kInvalidArgument
                                                                          : StatusCode::kPermissionDenied)
          << c.name;
    }
  }
}

TEST(Evaluate, PlatformFirstThenMeasurement) {
  ZonePolicy zone;
  Verdict old = Sgx();
  old.tcb_status = "OutOfDate";
  old.measurements["mrenclave"] = std::string(64, '0');
  EXPECT_EQ(Reason(Evaluate(old, {SgxRule()}, zone)), "tcb_too_old");
  old.tcb_status = "UpToDate";
  EXPECT_EQ(Reason(Evaluate(old, {SgxRule()}, zone)), "measurement_not_allowed");
  Verdict hard = Sgx();
  hard.tcb_status = "SWHardeningNeeded";
  hard.advisory_ids = {"INTEL-SA-00615"};
  zone.tolerated_advisories = {"INTEL-SA-00615"};
  Decision d = Evaluate(hard, {SgxRule()}, zone);
  ASSERT_TRUE(d.accepted()) << d.status.message();
  EXPECT_EQ(d.effective_tcb, TcbStatus::kUpToDate);
  EXPECT_EQ(d.tolerated, hard.advisory_ids);
}

TEST(MeasurementRule, PlatformOfEachKind) {
  EXPECT_EQ(MeasurementRule{SgxRule()}.platform(), Platform::kSgx);
  EXPECT_EQ(MeasurementRule{TdxRule()}.platform(), Platform::kTdx);
  EXPECT_EQ(MeasurementRule{SnpRule()}.platform(), Platform::kSevSnp);
}


// ---- node identities, cluster identities, report data, workloads ---------------------------

MeasurementRule SgxEnclaveRule(const std::string& enclave) {
  SgxMeasurementRule r;
  r.mrenclave = enclave;
  return MeasurementRule{r};
}

TEST(EvaluateIdentity, AcceptsOnlyListedIdentitiesAndNeverDebug) {
  ZonePolicy zone;
  const std::vector<MeasurementRule> rules = {SgxEnclaveRule(std::string(64, '1')), SgxEnclaveRule(kEnclave)};
  EXPECT_EQ(Reason(EvaluateIdentity(Sgx(), rules, zone, kNodeIdentityNotAllowed)), "accept");
  // Not listed: the caller's code, whatever rule came closest.
  EXPECT_EQ(Reason(EvaluateIdentity(Sgx(), {SgxEnclaveRule(std::string(64, '1'))}, zone, kNodeIdentityNotAllowed)),
            "node_identity_not_allowed");
  EXPECT_EQ(Reason(EvaluateIdentity(Sgx(), {}, zone, kMeasurementNotAllowed)), "measurement_not_allowed");
  // A signer rule: signer, product and minimum SVN.
  SgxMeasurementRule by_signer;
  by_signer.mrsigner = kSigner;
  by_signer.isvprodid = 7;
  by_signer.min_isvsvn = 3;
  EXPECT_EQ(Reason(EvaluateIdentity(Sgx(), {MeasurementRule{by_signer}}, zone, kNodeIdentityNotAllowed)), "accept");
  by_signer.min_isvsvn = 4;
  EXPECT_EQ(Reason(EvaluateIdentity(Sgx(), {MeasurementRule{by_signer}}, zone, kNodeIdentityNotAllowed)),
            "node_identity_not_allowed");
  // Debug: refused even where the zone allows debug workloads, and when the verdict is silent.
  zone.allow_debug = true;
  Verdict debug = Sgx();
  debug.measurements["debug"] = true;
  EXPECT_EQ(Reason(EvaluateIdentity(debug, rules, zone, kNodeIdentityNotAllowed)), "debug_not_allowed");
  Verdict silent = Sgx();
  silent.measurements.erase("debug");
  EXPECT_EQ(Reason(EvaluateIdentity(silent, rules, zone, kNodeIdentityNotAllowed)), "debug_not_allowed");
  // The platform comes first: not genuine, sim, TCB.
  Verdict fake = Sgx();
  fake.genuine = false;
  EXPECT_EQ(Reason(EvaluateIdentity(fake, rules, zone, kNodeIdentityNotAllowed)), "evidence_not_genuine");
  Verdict sim = Sgx();
  sim.insecure_sim = true;
  EXPECT_EQ(Reason(EvaluateIdentity(sim, rules, zone, kNodeIdentityNotAllowed)), "sim_not_allowed");
  Verdict old = Sgx();
  old.tcb_status = "OutOfDate";
  EXPECT_EQ(Reason(EvaluateIdentity(old, rules, zone, kNodeIdentityNotAllowed)), "tcb_too_old");
  // Other platforms: TDX by MRTD (+ RTMRs), SNP by MEASUREMENT (+ HOST_DATA).
  TdxMeasurementRule tdx;
  tdx.mrtd = kMrtd;
  tdx.rtmr[2] = kRtmr;
  EXPECT_EQ(Reason(EvaluateIdentity(Tdx(), {MeasurementRule{tdx}}, zone, kNodeIdentityNotAllowed)), "accept");
  tdx.rtmr[2] = std::string(96, '0');
  EXPECT_EQ(Reason(EvaluateIdentity(Tdx(), {MeasurementRule{tdx}}, zone, kNodeIdentityNotAllowed)),
            "node_identity_not_allowed");
  SnpMeasurementRule snp;
  snp.measurement = kSnpMeasurement;
  snp.host_data = kHostData;
  EXPECT_EQ(Reason(EvaluateIdentity(Snp(), {MeasurementRule{snp}}, zone, kNodeIdentityNotAllowed)), "accept");
  // A rule for another platform never matches.
  EXPECT_EQ(Reason(EvaluateIdentity(Snp(), rules, zone, kNodeIdentityNotAllowed)), "node_identity_not_allowed");
}

TEST(EvaluateIdentity, VerifierRefusingSimIsSimNotAllowed) {
  Verdict v;
  v.genuine = false;
  v.error = PermissionDenied("sim root not trusted", std::string(attest::kDcapSimNotAllowed));
  EXPECT_EQ(Reason(EvaluatePlatform(v, ZonePolicy{})), "sim_not_allowed");
}

TEST(CheckReportData, ComparesThePrefix) {
  Verdict v = Sgx();
  std::vector<uint8_t> want(32, 0xab);
  v.report_data_hex = std::string(64, 'a') + std::string(64, '0');
  EXPECT_EQ(Reason(CheckReportData(v, want)), "report_data_mismatch");
  v.report_data_hex = std::string(32, 'a') + std::string(32, 'b');
  EXPECT_EQ(Reason(CheckReportData(v, want)), "report_data_mismatch");
  v.report_data_hex.clear();
  for (int i = 0; i < 32; ++i) v.report_data_hex += "AB";  // case-insensitive
  v.report_data_hex += std::string(64, '0');
  EXPECT_EQ(Reason(CheckReportData(v, want)), "accept");
  v.report_data_hex = "abab";
  EXPECT_EQ(Reason(CheckReportData(v, want)), "report_data_mismatch");
  EXPECT_EQ(Reason(CheckReportData(v, {})), "report_data_mismatch");
}

TEST(EvaluateWorkload, BuildsApprovalAndDebug) {
  ZonePolicy zone;
  SgxMeasurementRule exact;
  exact.mrenclave = kEnclave;
  exact.mrsigner = kSigner;
  exact.isvprodid = 7;
  exact.min_isvsvn = 3;
  SgxMeasurementRule other = exact;
  other.mrenclave = std::string(64, '9');
  size_t chosen = 99;
  EXPECT_EQ(Reason(EvaluateWorkload(Sgx(), {}, zone, &chosen)), "measurement_not_allowed");
  EXPECT_EQ(Reason(EvaluateWorkload(Sgx(), {{MeasurementRule{other}, "approved", false}}, zone, &chosen)),
            "measurement_not_allowed");
  EXPECT_EQ(Reason(EvaluateWorkload(Sgx(), {{MeasurementRule{exact}, "pending", false}}, zone, &chosen)), "build_pending");
  EXPECT_EQ(Reason(EvaluateWorkload(Sgx(), {{MeasurementRule{exact}, "revoked", false}}, zone, &chosen)), "build_revoked");
  EXPECT_EQ(Reason(EvaluateWorkload(Sgx(), {{MeasurementRule{exact}, "denied", false}}, zone, &chosen)), "build_denied");
  EXPECT_EQ(Reason(EvaluateWorkload(Sgx(),
                                    {{MeasurementRule{other}, "approved", false},
                                     {MeasurementRule{exact}, "revoked", false},
                                     {MeasurementRule{exact}, "approved", false}},
                                    zone, &chosen)),
            "accept");
  EXPECT_EQ(chosen, 2u);
  // Debug needs both the zone and the build to allow it.
  Verdict debug = Sgx();
  debug.measurements["debug"] = true;
  std::vector<BuildRule> debug_build = {{MeasurementRule{exact}, "approved", true}};
  EXPECT_EQ(Reason(EvaluateWorkload(debug, debug_build, zone, &chosen)), "debug_not_allowed");
  zone.allow_debug = true;
  EXPECT_EQ(Reason(EvaluateWorkload(debug, debug_build, zone, &chosen)), "accept");
  EXPECT_EQ(Reason(EvaluateWorkload(debug, {{MeasurementRule{exact}, "approved", false}}, zone, &chosen)),
            "debug_not_allowed");
}

TEST(EvaluateNodeStanding, WrapsThePlatformReason) {
  ZonePolicy zone;
  Verdict v = Sgx();
  EXPECT_EQ(Reason(EvaluateNodeStanding(v, zone)), "accept");
  v.tcb_status = "OutOfDate";
  Decision d = EvaluateNodeStanding(v, zone);
  EXPECT_EQ(Reason(d), "node_tcb_not_acceptable");
  EXPECT_NE(d.status.message().find("tcb_too_old"), std::string::npos) << d.status.message();
}

TEST(IdentityRules, ParseAndPrintRoundTrip) {
  const nlohmann::json good[] = {
      {{"platform", "sgx"}, {"mrenclave", std::string(64, 'A')}},
      {{"platform", "sgx"}, {"mrsigner", kSigner}, {"isvprodid", 1}, {"min_isvsvn", 0}},
      {{"platform", "tdx"}, {"mrtd", kMrtd}, {"rtmr1", kRtmr}},
      {{"platform", "sev-snp"}, {"measurement", kSnpMeasurement}, {"host_data", kHostData}},
  };
  for (const auto& j : good) {
    auto r = ParseIdentityRule(j);
    ASSERT_TRUE(r.ok()) << j.dump() << ": " << r.status().message();
    nlohmann::json back = IdentityRuleJson(*r);
    auto again = ParseIdentityRule(back);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(IdentityRuleJson(*again), back);
  }
  EXPECT_EQ(IdentityRuleJson(*ParseIdentityRule(good[0]))["mrenclave"], std::string(64, 'a'));  // lower-cased
  const nlohmann::json bad[] = {
      nullptr,
      nlohmann::json::array(),
      {{"platform", "sgx"}},
      {{"platform", "sgx"}, {"mrsigner", kSigner}},  // a signer needs product and minimum SVN
      {{"platform", "sgx"}, {"mrenclave", "zz"}},
      {{"platform", "sgx"}, {"mrenclave", kEnclave}, {"debug", true}},  // unknown field
      {{"platform", "sgx"}, {"mrsigner", kSigner}, {"isvprodid", 70000}, {"min_isvsvn", 0}},
      {{"platform", "tdx"}},
      {{"platform", "tdx"}, {"mrtd", kEnclave}},
      {{"platform", "sev-snp"}, {"measurement", kSnpMeasurement}, {"host_data", "00"}},
      {{"platform", "nitro"}, {"pcr0", kMrtd}},
  };
  for (const auto& j : bad) {
    auto r = ParseIdentityRule(j);
    EXPECT_FALSE(r.ok()) << j.dump();
    if (!r.ok()) {
      EXPECT_EQ(r.status().reason(), "invalid_rule") << j.dump();
    }
  }
}

}  // namespace
}  // namespace vouch::policy
