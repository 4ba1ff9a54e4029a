#pragma once

// The routes of `vouch sim pcs` (docs/cli.md, "vouch sim pcs"): Intel PCS API v4 (the GET side a
// PCCS also serves) and AMD KDS, answering from a Catalog with the vendors' paths, headers and
// status codes, plus sim-only control endpoints under /sim/v1/ for tests.
//
// PCS (every answer carries Request-ID; errors 400 carry Error-Code and Error-Message):
//   GET /sgx/certification/v4/tcb?fmspc=&[update=early|standard | tcbEvaluationDataNumber=N]
//   GET /tdx/certification/v4/tcb?...                     200 + TCB-Info-Issuer-Chain
//   GET /sgx/certification/v4/qe/identity?[update= | tcbEvaluationDataNumber=]
//   GET /tdx/certification/v4/qe/identity?...             200 + SGX-Enclave-Identity-Issuer-Chain
//   GET /sgx/certification/v4/pckcrl?ca=processor|platform[&encoding=pem|der]
//                                                         200 + SGX-PCK-CRL-Issuer-Chain
//   GET /sgx/certification/v4/rootcacrl                  the root CA CRL's DER in hex (as a PCCS)
//   GET /IntelSGXRootCA.der                              DER root CA CRL (Intel's distribution point)
//   GET /sgx/certification/v4/crl?uri=<CDP>              DER CRL for Intel's root CA CRL URL or a
//                                                        PCS pckcrl URL (PCCS API 3.1; else 400)
//   GET /{sgx|tdx}/certification/v4/tcbevaluationdatanumbers  + TCB-Evaluation-Data-Numbers-Issuer-Chain
//   404: unknown FMSPC / nothing of that kind; 400: malformed fmspc, ca, encoding, update, N, or
//   update together with tcbEvaluationDataNumber; 410: tcbEvaluationDataNumber below the
//   retired-below knob.
// KDS:
//   GET /vcek/v1/{Milan|Genoa|...}/{128 hex}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=
//   GET /vcek/v1/Turin/{16 hex}?fmcSPL=&blSPL=&teeSPL=&snpSPL=&ucodeSPL=   DER VCEK
//   GET /vcek/v1/{product}/cert_chain (PEM, ASK then ARK), /vcek/v1/{product}/crl (DER),
//   GET /vlek/v1/{product}/cert_chain (ASVK then ARK)
//   400: malformed hwid or SPL; 404: unknown product, chip or TCB; 429 + Retry-After (seconds)
//   when a client asks again within the KDS interval.
// Control (sim only, JSON; documented in docs/cli.md):
//   GET  /sim/v1/state                       knobs and per-route request counts
//   POST /sim/v1/clock      {"now": RFC3339|null}   the time that picks which version is served
//   POST /sim/v1/corrupt    {"next": N}             the next N collateral answers carry a broken signature
//   POST /sim/v1/fail       {"status": 5xx|0}       every PCS/KDS answer is this status (0: off)
//   POST /sim/v1/retired-below {"n": N|null}        410 for tcbEvaluationDataNumber < N
//   POST /sim/v1/kds-interval {"seconds": S}        the KDS rate limit (0: off)
//   POST /sim/v1/reset                               counts to zero, knobs to the start options
// The folders are re-read when their files change (Catalog::Fingerprint), so a test that rewrites
// a sim folder (e.g. `vouch sim tcb-recovery`) is served the new collateral.
//
// Thread safety: the routes may run on any number of server threads; state is behind a mutex.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "http/router.h"
#include "simpcs/catalog.h"

namespace vouch::simpcs {

struct Options {
  std::vector<std::string> dirs;
  // KDS: at most one request per client address per interval, else 429 (0: no limit).
  std::chrono::milliseconds kds_min_interval{0};
  // tcbEvaluationDataNumber below this: 410 Gone.
  std::optional<int64_t> retired_below;
  // Every collateral answer carries a broken signature.
  bool corrupt_all = false;
  // The time that picks which version is served, unless /sim/v1/clock sets one. Default: system.
  const Clock* clock = nullptr;
};

class Emulator {
 public:
  // Loads the folders (a malformed public file fails here).
  static Result<std::unique_ptr<Emulator>> Create(Options options);
  // Registers every route above on `router`.
  void AddRoutes(http::Router* router);
  // Requests answered so far per route name ("sgx_tcb", "vcek", ...) and status, "sgx_tcb 200".
  std::map<std::string, int64_t> Counts() const;
  std::shared_ptr<const Catalog> catalog() const;

 private:
  explicit Emulator(Options options, std::shared_ptr<const Catalog> catalog);
  struct Knobs {
    std::optional<TimePoint> now;
    int64_t corrupt_next = 0;
    unsigned fail_status = 0;
    std::optional<int64_t> retired_below;
    std::chrono::milliseconds kds_min_interval{0};
  };
  // The catalog, re-read if the folders changed.
  std::shared_ptr<const Catalog> Current();
  TimePoint Now();
  // Counts the answer, applies fail / corrupt knobs, adds Request-ID.
  http::Response Finish(const std::string& name, http::Response r, bool collateral);
  std::optional<http::Response> KdsThrottle(const http::Request& req);
  std::optional<int64_t> RetiredBelow();
  http::Response ServeSignedJson(const std::string& name, const std::vector<const SignedJson*>& found,
                                 std::optional<int64_t> number, const char* chain_header, std::string_view what);

  http::Response Tcb(http::Request& req, Tee tee);
  http::Response QeIdentity(http::Request& req, Tee tee);
  http::Response EvalNumbers(http::Request& req, Tee tee);
  http::Response PckCrl(http::Request& req);
  http::Response RootCrl(http::Request& req, bool hex);
  http::Response CrlByUri(http::Request& req);
  http::Response VcekCert(http::Request& req);
  http::Response AmdChain(http::Request& req, bool vlek);
  http::Response AmdCrl(http::Request& req);
  http::Response Control(http::Request& req, const std::string& what);

  const Options options_;
  mutable std::mutex mu_;
  std::shared_ptr<const Catalog> catalog_;
  std::string fingerprint_;
  Knobs knobs_;
  std::map<std::string, int64_t> counts_;
  std::map<std::string, std::chrono::steady_clock::time_point> kds_last_;  // client address -> last KDS answer
};

// What a PCCS `crl?uri=` names: "root" for https://*certificates.trustedservices.intel.com/
// IntelSGXRootCA.*, "processor"/"platform" for https://*api.trustedservices.intel.com/sgx/
// certification/vN/pckcrl?ca=...; nullopt for anything else (DCAP pccs crlController's rule).
std::optional<std::string> CrlUriTarget(std::string_view uri);

// Breaks the signature of a collateral body: the last hex digit of a signed JSON's "signature",
// the last byte of a DER CRL or certificate, a byte inside the first certificate of a PEM chain.
std::string CorruptSignature(std::string body);

}  // namespace vouch::simpcs
