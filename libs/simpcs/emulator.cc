#include "simpcs/emulator.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "crypto/ossl.h"
#include "crypto/random.h"
#include "crypto/x509.h"

namespace vouch::simpcs {
namespace {

using json = nlohmann::json;

// Error-Code values of Intel PCS (TEE-SERVICES.md §1.1).
constexpr char kInvalidRequestSyntax[] = "InvalidRequestSyntax";

http::Response PcsError(unsigned status, std::string_view code, std::string_view message) {
  http::Response r;
  r.status = status;
  r.content_type = "";
  if (!code.empty()) r.AddHeader("Error-Code", std::string(code));
  r.AddHeader("Error-Message", std::string(message));
  return r;
}

http::Response Bytes(std::string body, std::string content_type) {
  http::Response r;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

const std::string* Param(const http::Request& req, const char* name) {
  auto it = req.query.find(name);
  return it == req.query.end() ? nullptr : &it->second;
}

// Decimal 0..max, digits only ("02" allowed).
std::optional<int64_t> Decimal(const std::string& s, int64_t max) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  int64_t v = 0;
  for (unsigned char c : s) {
    if (!std::isdigit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

// Validates update / tcbEvaluationDataNumber (PCS: one or the other). Sets *number if given.
std::optional<http::Response> CheckUpdateParams(const http::Request& req, std::optional<int64_t>* number) {
  const std::string* update = Param(req, "update");
  const std::string* n = Param(req, "tcbEvaluationDataNumber");
  if (update != nullptr && n != nullptr) {
    return PcsError(400, kInvalidRequestSyntax, "update and tcbEvaluationDataNumber must not be used together");
  }
  if (update != nullptr && *update != "early" && *update != "standard") {
    return PcsError(400, kInvalidRequestSyntax, "update must be early or standard");
  }
  if (n != nullptr) {
    auto v = Decimal(*n, 0x7fffffff);
    if (!v) return PcsError(400, kInvalidRequestSyntax, "tcbEvaluationDataNumber must be a non-negative integer");
    *number = *v;
  }
  return std::nullopt;
}

std::string ClientHost(const std::string& remote) {
  size_t colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

}  // namespace

std::string CorruptSignature(std::string body) {
  if (body.empty()) return body;
  size_t sig = body.rfind("\"signature\"");
  if (sig != std::string::npos && body.front() == '{') {
    size_t open = body.find('"', body.find(':', sig) + 1);
    size_t close = open == std::string::npos ? std::string::npos : body.find('"', open + 1);
    if (close != std::string::npos && close > open + 1) {
      char& c = body[close - 1];
      c = c == '0' ? '1' : '0';
      return body;
    }
  }
  if (body.find("-----BEGIN CERTIFICATE-----") != std::string::npos) {
    auto certs = crypto::CertsFromPem(body);
    if (certs.ok() && !certs->empty()) {
      std::string out;
      for (size_t i = 0; i < certs->size(); ++i) {
        auto der = crypto::CertToDer((*certs)[i].get());
        if (!der.ok()) return body;
        if (i == 0) der->back() ^= 0x01;
        std::string b64 = Base64Encode(*der), pem = "-----BEGIN CERTIFICATE-----\n";
        for (size_t o = 0; o < b64.size(); o += 64) pem += b64.substr(o, 64) + "\n";
        out += pem + "-----END CERTIFICATE-----\n";
      }
      return out;
    }
  }
  body.back() = static_cast<char>(body.back() ^ 0x01);
  return body;
}

Emulator::Emulator(Options options, std::shared_ptr<const Catalog> catalog)
    : options_(std::move(options)), catalog_(std::move(catalog)) {
  fingerprint_ = Catalog::Fingerprint(options_.dirs);
  knobs_.retired_below = options_.retired_below;
  knobs_.kds_min_interval = options_.kds_min_interval;
}

Result<std::unique_ptr<Emulator>> Emulator::Create(Options options) {
  if (options.dirs.empty()) return InvalidArgument("at least one --serve DIR is needed", "invalid_argument");
  VOUCH_ASSIGN_OR_RETURN(auto catalog, Catalog::Load(options.dirs));
  return std::unique_ptr<Emulator>(new Emulator(std::move(options), std::move(catalog)));
}

std::shared_ptr<const Catalog> Emulator::catalog() const {
  std::lock_guard<std::mutex> lock(mu_);
  return catalog_;
}

std::map<std::string, int64_t> Emulator::Counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

std::shared_ptr<const Catalog> Emulator::Current() {
  std::string fp = Catalog::Fingerprint(options_.dirs);
  std::lock_guard<std::mutex> lock(mu_);
  if (fp != fingerprint_) {
    // A folder being rewritten may be half-written: keep the last good catalog until it loads.
    auto fresh = Catalog::Load(options_.dirs);
    if (fresh.ok()) {
      catalog_ = *fresh;
      fingerprint_ = fp;
    }
  }
  return catalog_;
}

TimePoint Emulator::Now() {
  std::lock_guard<std::mutex> lock(mu_);
  if (knobs_.now) return *knobs_.now;
  return options_.clock != nullptr ? options_.clock->Now() : SystemClock::Get().Now();
}

http::Response Emulator::Finish(const std::string& name, http::Response r, bool collateral) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (knobs_.fail_status != 0) {
      r = PcsError(knobs_.fail_status, "", "the emulator is failing on purpose (/sim/v1/fail)");
    } else if (collateral && r.status == 200 && (options_.corrupt_all || knobs_.corrupt_next > 0)) {
      if (knobs_.corrupt_next > 0) --knobs_.corrupt_next;
      r.body = CorruptSignature(std::move(r.body));
    }
    ++counts_[name + " " + std::to_string(r.status)];
  }
  r.AddHeader("Request-ID", HexEncode(crypto::RandomBytes(16)));
  return r;
}

std::optional<http::Response> Emulator::KdsThrottle(const http::Request& req) {
  std::lock_guard<std::mutex> lock(mu_);
  if (knobs_.kds_min_interval.count() <= 0) return std::nullopt;
  auto now = std::chrono::steady_clock::now();
  std::string host = ClientHost(req.remote_address);
  auto it = kds_last_.find(host);
  if (it != kds_last_.end() && now - it->second < knobs_.kds_min_interval) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(knobs_.kds_min_interval - (now - it->second));
    http::Response r = http::Response::Text("Too Many Requests\n", "text/plain", 429);
    r.AddHeader("Retry-After", std::to_string((left.count() + 999) / 1000));
    return r;
  }
  kds_last_[host] = now;
  return std::nullopt;
}

std::optional<int64_t> Emulator::RetiredBelow() {
  std::lock_guard<std::mutex> lock(mu_);
  return knobs_.retired_below;
}

http::Response Emulator::ServeSignedJson(const std::string& name, const std::vector<const SignedJson*>& found,
                                         std::optional<int64_t> number, const char* chain_header,
                                         std::string_view what) {
  if (number) {
    auto retired = RetiredBelow();
    if (retired && *number < *retired) {
      return Finish(name, PcsError(410, "", std::string(what) + " for this tcbEvaluationDataNumber is no longer available"),
                    false);
    }
  }
  const SignedJson* pick = PickAt(found, Now());
  if (pick == nullptr) return Finish(name, PcsError(404, "", std::string(what) + " not found"), false);
  http::Response r = Bytes(pick->body, "application/json");
  if (!pick->issuer_chain_pem.empty()) r.AddHeader(chain_header, UrlEncodeComponent(pick->issuer_chain_pem));
  return Finish(name, std::move(r), true);
}

http::Response Emulator::Tcb(http::Request& req, Tee tee) {
  const std::string name = std::string(TeeName(tee)) + "_tcb";
  const std::string* fmspc = Param(req, "fmspc");
  if (fmspc == nullptr || fmspc->size() != 12 || !IsHex(*fmspc)) {
    return Finish(name, PcsError(400, kInvalidRequestSyntax, "fmspc must be 12 hex digits"), false);
  }
  std::optional<int64_t> number;
  if (auto bad = CheckUpdateParams(req, &number)) return Finish(name, std::move(*bad), false);
  auto cat = Current();
  std::vector<const SignedJson*> found;
  for (const auto& t : cat->tcb_infos) {
    if (t.tee == tee && t.fmspc == Lower(*fmspc) && (!number || t.tcb_evaluation_data_number == *number)) {
      found.push_back(&t);
    }
  }
  return ServeSignedJson(name, found, number, "TCB-Info-Issuer-Chain", "TCB Info");
}

http::Response Emulator::QeIdentity(http::Request& req, Tee tee) {
  const std::string name = std::string(TeeName(tee)) + "_qe_identity";
  std::optional<int64_t> number;
  if (auto bad = CheckUpdateParams(req, &number)) return Finish(name, std::move(*bad), false);
  auto cat = Current();
  std::vector<const SignedJson*> found;
  for (const auto& t : cat->qe_identities) {
    if (t.tee == tee && (!number || t.tcb_evaluation_data_number == *number)) found.push_back(&t);
  }
  return ServeSignedJson(name, found, number, "SGX-Enclave-Identity-Issuer-Chain", "QE Identity");
}

http::Response Emulator::EvalNumbers(http::Request& /*req*/, Tee tee) {
  const std::string name = std::string(TeeName(tee)) + "_tcbevaluationdatanumbers";
  auto cat = Current();
  std::vector<const SignedJson*> found;
  for (const auto& t : cat->evaluation_numbers) {
    if (t.tee == tee) found.push_back(&t);
  }
  return ServeSignedJson(name, found, std::nullopt, "TCB-Evaluation-Data-Numbers-Issuer-Chain",
                         "TCB evaluation data numbers");
}

http::Response Emulator::PckCrl(http::Request& req) {
  const std::string name = "pckcrl";
  const std::string* ca = Param(req, "ca");
  std::string ca_l = ca == nullptr ? "" : Lower(*ca);
  if (ca_l != "processor" && ca_l != "platform") {
    return Finish(name, PcsError(400, kInvalidRequestSyntax, "ca must be processor or platform"), false);
  }
  const std::string* enc = Param(req, "encoding");
  std::string enc_l = enc == nullptr ? "pem" : Lower(*enc);
  if (enc_l != "pem" && enc_l != "der") {
    return Finish(name, PcsError(400, kInvalidRequestSyntax, "encoding must be pem or der"), false);
  }
  auto cat = Current();
  std::vector<const Crl*> found;
  for (const auto& c : cat->pck_crls) {
    if (c.ca == ca_l) found.push_back(&c);
  }
  const Crl* pick = PickAt(found, Now());
  if (pick == nullptr) return Finish(name, PcsError(404, "", "no PCK CRL for this CA"), false);
  http::Response r = enc_l == "der" ? Bytes(pick->der, "application/pkix-crl") : Bytes(pick->pem, "application/x-pem-file");
  if (!pick->issuer_chain_pem.empty()) r.AddHeader("SGX-PCK-CRL-Issuer-Chain", UrlEncodeComponent(pick->issuer_chain_pem));
  return Finish(name, std::move(r), true);
}

http::Response Emulator::RootCrl(http::Request& /*req*/, bool hex) {
  const std::string name = hex ? "rootcacrl" : "root_ca_crl_cdp";
  auto cat = Current();
  std::vector<const Crl*> found;
  for (const auto& c : cat->root_crls) found.push_back(&c);
  const Crl* pick = PickAt(found, Now());
  if (pick == nullptr) return Finish(name, PcsError(404, "", "no root CA CRL"), false);
  // A PCCS answers rootcacrl with the DER in hex (DCAP pccs rootcacrlService, "backward
  // compatibility"); the CRL distribution point serves DER.
  if (hex) return Finish(name, Bytes(HexEncode(AsBytes(pick->der)), "text/plain"), true);
  return Finish(name, Bytes(pick->der, "application/pkix-crl"), true);
}

std::optional<std::string> CrlUriTarget(std::string_view uri) {
  static constexpr std::string_view kHttps = "https://";
  if (uri.size() > 2048 || uri.substr(0, kHttps.size()) != kHttps) return std::nullopt;
  uri.remove_prefix(kHttps.size());
  size_t slash = uri.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string host = Lower(std::string(uri.substr(0, slash)));
  std::string_view path = uri.substr(slash);
  auto host_ok = std::all_of(host.begin(), host.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.'; });
  auto ends_with = [&host](std::string_view suffix) {
    return host.size() >= suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (!host_ok) return std::nullopt;
  if (ends_with("certificates.trustedservices.intel.com") && path.rfind("/IntelSGXRootCA.", 0) == 0) return "root";
  static constexpr std::string_view kPck = "/sgx/certification/v";
  if (ends_with("api.trustedservices.intel.com") && path.substr(0, kPck.size()) == kPck) {
    std::string rest = Lower(std::string(path.substr(kPck.size())));
    size_t q = rest.find("/pckcrl?");
    if (q == std::string::npos || q == 0 || !std::all_of(rest.begin(), rest.begin() + static_cast<long>(q), ::isdigit)) {
      return std::nullopt;
    }
    for (const char* ca : {"processor", "platform"}) {
      if (rest.find(std::string("ca=") + ca, q) != std::string::npos) return std::string(ca);
    }
  }
  return std::nullopt;
}

http::Response Emulator::CrlByUri(http::Request& req) {
  const std::string name = "crl";
  const std::string* uri = Param(req, "uri");
  auto target = uri == nullptr ? std::nullopt : CrlUriTarget(*uri);
  if (!target) {
    return Finish(name, PcsError(400, kInvalidRequestSyntax, "uri must be Intel's root CA CRL or a PCS pckcrl URL"), false);
  }
  auto cat = Current();
  std::vector<const Crl*> found;
  for (const auto& c : *target == "root" ? cat->root_crls : cat->pck_crls) {
    if (*target == "root" || c.ca == *target) found.push_back(&c);
  }
  const Crl* pick = PickAt(found, Now());
  if (pick == nullptr) return Finish(name, PcsError(404, "", "no such CRL"), false);
  return Finish(name, Bytes(pick->der, "application/pkix-crl"), true);
}

http::Response Emulator::VcekCert(http::Request& req) {
  const std::string name = "vcek";
  if (auto t = KdsThrottle(req)) return Finish(name, std::move(*t), false);
  const std::string& product = req.path_params["product"];
  const std::string hwid = Lower(req.path_params["hwid"]);
  const bool turin = product == "Turin";
  const size_t want_len = turin ? 16 : 128;
  if (hwid.size() != want_len || !IsHex(hwid)) {
    return Finish(name,
                  http::Response::Text("hwid must be " + std::to_string(want_len) + " hex digits for " + product + "\n",
                                       "text/plain", 400),
                  false);
  }
  std::vector<std::string> names = {"blSPL", "teeSPL", "snpSPL", "ucodeSPL"};
  if (turin) names.insert(names.begin(), "fmcSPL");
  std::map<std::string, uint8_t> spl;
  for (const auto& n : names) {
    const std::string* v = Param(req, n.c_str());
    auto d = v == nullptr ? std::nullopt : Decimal(*v, 255);
    if (!d) return Finish(name, http::Response::Text(n + " must be a decimal 0..255\n", "text/plain", 400), false);
    spl[n] = static_cast<uint8_t>(*d);
  }
  auto cat = Current();
  bool chip_known = false;
  for (const auto& v : cat->vceks) {
    if (v.product != product || v.hwid_hex != hwid) continue;
    chip_known = true;
    if (v.bl == spl["blSPL"] && v.tee == spl["teeSPL"] && v.snp == spl["snpSPL"] && v.ucode == spl["ucodeSPL"] &&
        (!turin || v.fmc.value_or(0) == spl["fmcSPL"])) {
      return Finish(name, Bytes(v.der, "application/pkix-cert"), true);
    }
  }
  return Finish(name,
                http::Response::Text(chip_known ? "no VCEK for this TCB\n" : "unknown chip\n", "text/plain", 404),
                false);
}

http::Response Emulator::AmdChain(http::Request& req, bool vlek) {
  const std::string name = vlek ? "vlek_cert_chain" : "vcek_cert_chain";
  if (auto t = KdsThrottle(req)) return Finish(name, std::move(*t), false);
  const std::string& product = req.path_params["product"];
  auto cat = Current();
  for (const auto& p : cat->amd_products) {
    const std::string& pem = vlek ? p.vlek_chain_pem : p.vcek_chain_pem;
    if (p.product == product && !pem.empty()) return Finish(name, Bytes(pem, "application/x-pem-file"), true);
  }
  return Finish(name, http::Response::Text("unknown product\n", "text/plain", 404), false);
}

http::Response Emulator::AmdCrl(http::Request& req) {
  const std::string name = "vcek_crl";
  if (auto t = KdsThrottle(req)) return Finish(name, std::move(*t), false);
  const std::string& product = req.path_params["product"];
  auto cat = Current();
  for (const auto& p : cat->amd_products) {
    if (p.product == product && !p.crl_der.empty()) return Finish(name, Bytes(p.crl_der, "application/pkix-crl"), true);
  }
  return Finish(name, http::Response::Text("no CRL for this product\n", "text/plain", 404), false);
}

http::Response Emulator::Control(http::Request& req, const std::string& what) {
  json body = json::object();
  if (req.method == "POST" && !req.body.empty()) {
    body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return http::Response::Error(400, "invalid_json", "the body must be a JSON object");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (what == "clock") {
    auto it = body.find("now");
    if (it == body.end() || it->is_null()) {
      knobs_.now.reset();
    } else if (!it->is_string() || !ParseRfc3339(it->get<std::string>()).ok()) {
      return http::Response::Error(400, "invalid_time", "now must be an RFC 3339 time or null");
    } else {
      knobs_.now = *ParseRfc3339(it->get<std::string>());
    }
  } else if (what == "corrupt") {
    auto it = body.find("next");
    if (it == body.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
      return http::Response::Error(400, "invalid_argument", "next must be a non-negative integer");
    }
    knobs_.corrupt_next = it->get<int64_t>();
  } else if (what == "fail") {
    auto it = body.find("status");
    if (it == body.end() || !it->is_number_integer() ||
        (it->get<int64_t>() != 0 && (it->get<int64_t>() < 400 || it->get<int64_t>() > 599))) {
      return http::Response::Error(400, "invalid_argument", "status must be 0 or 400..599");
    }
    knobs_.fail_status = static_cast<unsigned>(it->get<int64_t>());
  } else if (what == "retired-below") {
    auto it = body.find("n");
    if (it == body.end() || it->is_null()) {
      knobs_.retired_below.reset();
    } else if (!it->is_number_integer()) {
      return http::Response::Error(400, "invalid_argument", "n must be an integer or null");
    } else {
      knobs_.retired_below = it->get<int64_t>();
    }
  } else if (what == "kds-interval") {
    auto it = body.find("seconds");
    if (it == body.end() || !it->is_number() || it->get<double>() < 0) {
      return http::Response::Error(400, "invalid_argument", "seconds must be a non-negative number");
    }
    knobs_.kds_min_interval = std::chrono::milliseconds(static_cast<int64_t>(it->get<double>() * 1000));
    kds_last_.clear();
  } else if (what == "reset") {
    knobs_ = Knobs{};
    knobs_.retired_below = options_.retired_below;
    knobs_.kds_min_interval = options_.kds_min_interval;
    counts_.clear();
    kds_last_.clear();
  }
  json state = {{"now", knobs_.now ? json(FormatRfc3339(*knobs_.now)) : json(nullptr)},
                {"corrupt_next", knobs_.corrupt_next},
                {"corrupt_all", options_.corrupt_all},
                {"fail_status", knobs_.fail_status},
                {"retired_below", knobs_.retired_below ? json(*knobs_.retired_below) : json(nullptr)},
                {"kds_interval_seconds", static_cast<double>(knobs_.kds_min_interval.count()) / 1000.0},
                {"counts", counts_},
                {"serving",
                 {{"tcb_infos", catalog_->tcb_infos.size()},
                  {"qe_identities", catalog_->qe_identities.size()},
                  {"pck_crls", catalog_->pck_crls.size()},
                  {"root_crls", catalog_->root_crls.size()},
                  {"vceks", catalog_->vceks.size()},
                  {"amd_products", catalog_->amd_products.size()}}}};
  return http::Response::Json(state);
}

void Emulator::AddRoutes(http::Router* router) {
  for (Tee tee : {Tee::kSgx, Tee::kTdx}) {
    const std::string base = "/" + std::string(TeeName(tee)) + "/certification/v4";
    router->Add("GET", base + "/tcb", [this, tee](http::Request& r) { return Tcb(r, tee); });
    router->Add("GET", base + "/qe/identity", [this, tee](http::Request& r) { return QeIdentity(r, tee); });
    router->Add("GET", base + "/tcbevaluationdatanumbers", [this, tee](http::Request& r) { return EvalNumbers(r, tee); });
  }
  router->Add("GET", "/sgx/certification/v4/pckcrl", [this](http::Request& r) { return PckCrl(r); });
  router->Add("GET", "/sgx/certification/v4/rootcacrl", [this](http::Request& r) { return RootCrl(r, true); });
  router->Add("GET", "/sgx/certification/v4/crl", [this](http::Request& r) { return CrlByUri(r); });
  router->Add("GET", "/IntelSGXRootCA.der", [this](http::Request& r) { return RootCrl(r, false); });
  router->Add("GET", "/vcek/v1/{product}/cert_chain", [this](http::Request& r) { return AmdChain(r, false); });
  router->Add("GET", "/vcek/v1/{product}/crl", [this](http::Request& r) { return AmdCrl(r); });
  router->Add("GET", "/vcek/v1/{product}/{hwid}", [this](http::Request& r) { return VcekCert(r); });
  router->Add("GET", "/vlek/v1/{product}/cert_chain", [this](http::Request& r) { return AmdChain(r, true); });
  router->Add("GET", "/sim/v1/state", [this](http::Request& r) { return Control(r, "state"); });
  for (const char* what : {"clock", "corrupt", "fail", "retired-below", "kds-interval", "reset"}) {
    router->Add("POST", std::string("/sim/v1/") + what, [this, w = std::string(what)](http::Request& r) {
      return Control(r, w);
    });
  }
}

}  // namespace vouch::simpcs
