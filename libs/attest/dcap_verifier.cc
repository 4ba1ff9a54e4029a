#include "attest/dcap_verifier.h"

#include <algorithm>
#include <vector>

#include "attest/intel_root.h"
#include "attest/pck_extension.h"
#include "attest/signed_by.h"
#include "attest/sim_vendor.h"
#include "base/byte_reader.h"
#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/dcap_quote.h"

namespace vouch::attest {

using evidence::DcapQuote;
using evidence::EnclaveIdentity;
using evidence::IsvSvnLevel;
using evidence::TcbInfo;
using evidence::TcbLevel;

namespace {

constexpr size_t kMaxCachedChains = 4096;
constexpr char kNotSupported[] = "TcbLevelNotSupported";

// The kind of a verification failure, as the SEV-SNP verifier's (snp_verifier.cc CodeFor): evidence
// that does not parse is InvalidArgument (400), collateral this side lacks or cannot read is
// FailedPrecondition (409), and every other failure is a refusal of the evidence, PermissionDenied
// (403, docs/agent.md "Refusal codes").
StatusCode CodeFor(std::string_view code) {
  if (code == kDcapMalformedQuote || code == kDcapUnsupportedQuoteFormat) return StatusCode::kInvalidArgument;
  if (code == kDcapMissingCollateral || code == kDcapMalformedCollateral) return StatusCode::kFailedPrecondition;
  return StatusCode::kPermissionDenied;
}

Status Err(std::string_view code, std::string message) {
  return Status(CodeFor(code), std::move(message), std::string(code));
}

std::vector<uint8_t> Der(X509* cert) {
  auto der = crypto::CertToDer(cert);
  return der.ok() ? std::move(*der) : std::vector<uint8_t>{};
}

bool SameCert(X509* a, X509* b) {
  if (a == nullptr || b == nullptr) return false;
  auto da = Der(a);
  return !da.empty() && da == Der(b);
}

bool Contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

bool Revoked(X509_CRL* crl, X509* cert) {
  X509_REVOKED* entry = nullptr;
  int r = X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(cert));
  crypto::DrainOpensslErrors();
  return r == 1;
}

struct Window {
  TimePoint not_before = TimePoint::min();
  TimePoint not_after = TimePoint::max();
  void Narrow(TimePoint nb, TimePoint na) {
    not_before = std::max(not_before, nb);
    not_after = std::min(not_after, na);
  }
  void AddCert(X509* c) { Narrow(crypto::NotBefore(c), crypto::NotAfter(c)); }
  bool Contains(TimePoint t) const { return t >= not_before && t <= not_after; }
};

Window CrlWindow(X509_CRL* crl) {
  Window w;
  const ASN1_TIME* last = X509_CRL_get0_lastUpdate(crl);
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
  w.Narrow(last ? crypto::Asn1TimeToTimePoint(last) : TimePoint::max(),
           next ? crypto::Asn1TimeToTimePoint(next) : TimePoint::min());
  return w;
}

std::string Fmt(TimePoint t) {
  if (t == TimePoint::min() || t == TimePoint::max()) return "(unbounded)";
  return FormatRfc3339(t);
}

// Result of the time-independent checks of a signed collateral document (TCB Info or QE
// Identity): TCB Signing chain trusted, signing certificate not revoked, signature valid.
struct SignedDocState {
  bool present = false;
  Status status;         // first failure, ok if none
  Window cert_window;    // signing certificate and root validity
  Window doc_window;     // issueDate .. nextUpdate
};

// The outcome of the time-independent checks on one PCK chain.
struct PckChainInfo {
  Status status;  // structural / trust failure
  std::vector<crypto::X509Ptr> certs;  // leaf, CA, root
  PckSgxExtension ext;
  Window cert_window;
  // CRL-based results (only when both CRLs are present).
  bool crls_present = false;
  Status crl_status;  // signature / issuer mismatch / revocation
  Window crl_window;
  std::string ca_kind;  // "platform" | "processor" | ""
};

// TCB level matching (ATTESTATION-FORMATS.md §5 step 4.9).
bool SgxLevelMatches(const TcbLevel& l, const PckSgxExtension& ext) {
  for (size_t i = 0; i < 16; ++i) {
    if (ext.comp_svns[i] < l.sgx_svns[i]) return false;
  }
  return ext.pcesvn >= l.pcesvn;
}

bool TdxLevelMatches(const TcbLevel& l, const evidence::TdReport& td) {
  if (!l.tdx_svns.has_value()) return false;
  size_t first = td.tee_tcb_svn[1] > 0 ? 2 : 0;
  for (size_t i = first; i < 16; ++i) {
    if (td.tee_tcb_svn[i] < (*l.tdx_svns)[i]) return false;
  }
  return true;
}

// First level (descending isvsvn) with isvsvn <= svn.
const IsvSvnLevel* MatchIsvSvn(const std::vector<IsvSvnLevel>& levels, uint16_t svn) {
  std::vector<const IsvSvnLevel*> sorted;
  for (const auto& l : levels) sorted.push_back(&l);
  std::stable_sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->isvsvn > b->isvsvn; });
  for (const auto* l : sorted) {
    if (l->isvsvn <= svn) return l;
  }
  return nullptr;
}

// Reduces an identity level status to what convergence distinguishes.
std::string IdentityStatus(const IsvSvnLevel* l) {
  if (l == nullptr) return kNotSupported;
  if (l->tcb_status == "UpToDate" || l->tcb_status == "Revoked") return l->tcb_status;
  return "OutOfDate";
}

void AddAdvisories(const std::vector<std::string>& ids, std::vector<std::string>* out) {
  for (const auto& a : ids) {
    if (std::find(out->begin(), out->end(), a) == out->end()) out->push_back(a);
  }
}

bool MaskedEqual(std::span<const uint8_t> value, std::span<const uint8_t> mask, std::span<const uint8_t> expected) {
  if (value.size() != mask.size() || value.size() != expected.size()) return false;
  for (size_t i = 0; i < value.size(); ++i) {
    if ((value[i] & mask[i]) != expected[i]) return false;
  }
  return true;
}

void FillMeasurements(const DcapQuote& q, Verdict* v) {
  nlohmann::json& m = v->measurements;
  if (q.sgx_report.has_value()) {
    const auto& b = *q.sgx_report;
    m["mrenclave"] = HexEncode(b.mr_enclave);
    m["mrsigner"] = HexEncode(b.mr_signer);
    m["isvprodid"] = b.isv_prod_id;
    m["isvsvn"] = b.isv_svn;
    m["debug"] = b.debug();
    m["attributes"] = HexEncode(b.AttributesBytes());
    m["miscselect"] = b.misc_select;
    m["configsvn"] = b.config_svn;
    m["configid"] = HexEncode(b.config_id);
    m["isvfamilyid"] = HexEncode(b.isv_family_id);
    m["isvextprodid"] = HexEncode(b.isv_ext_prod_id);
    m["cpusvn"] = HexEncode(b.cpu_svn);
  } else if (q.td_report.has_value()) {
    const auto& t = *q.td_report;
    m["mrtd"] = HexEncode(t.mr_td);
    for (size_t i = 0; i < 4; ++i) m["rtmr" + std::to_string(i)] = HexEncode(t.rtmr[i]);
    m["mrsignerseam"] = HexEncode(t.mr_signer_seam);
    m["mrseam"] = HexEncode(t.mr_seam);
    m["mrconfigid"] = HexEncode(t.mr_config_id);
    m["mrowner"] = HexEncode(t.mr_owner);
    m["mrownerconfig"] = HexEncode(t.mr_owner_config);
    m["td_attributes"] = HexEncode(t.td_attributes);
    m["seam_attributes"] = HexEncode(t.seam_attributes);
    m["xfam"] = HexEncode(t.xfam);
    m["tee_tcb_svn"] = HexEncode(t.tee_tcb_svn);
    m["debug"] = t.debug();
    if (t.v15) {
      m["tee_tcb_svn2"] = HexEncode(t.tee_tcb_svn2);
      m["mrservicetd"] = HexEncode(t.mr_servicetd);
    }
  }
  v->report_data_hex = HexEncode(q.report_data());
  v->details["quote_version"] = q.header.version;
  v->details["qe_isvsvn"] = q.qe_report.isv_svn;
}

// What one quote's verification has established so far, handed from step to step.
struct QuoteChecks {
  std::vector<std::string> missing;                     // collateral files not given
  std::shared_ptr<const PckChainInfo> chain;            // step 1
  const evidence::TdxModuleIdentity* module = nullptr;  // step 4.4 (TDX with TCB Info)
  const IsvSvnLevel* qe_level = nullptr;                // step 4.7 (with QE Identity)
  std::string qe_status;                                // step 4.7, as convergence sees it
  std::string tcb_status;                               // steps 4.9 - 4.11 (with TCB Info)
  std::vector<std::string> advisories;                  // steps 4.9 - 4.11
};

// `v` as a failed verdict: not genuine, no TCB status or advisories, `s` as the error and the
// step that failed in details.failed_step.
Verdict Failed(Verdict v, const Status& s, const char* step) {
  v.genuine = false;
  v.tcb_status.clear();
  v.advisory_ids.clear();
  v.error = s;
  v.details["failed_step"] = step;
  return v;
}

}  // namespace

struct DcapVerifier::Impl {
  std::shared_ptr<const DcapCollateral> collateral;
  crypto::X509Ptr root;  // the trust anchor in use
  std::vector<uint8_t> root_der;
  bool sim = false;
  Status trust_status;  // non-ok: every verification fails with it (e.g. sim root without allow_sim)
  std::string trust_name;

  // Root CRL (time-independent part).
  Status root_crl_status;
  Window root_crl_window;

  SignedDocState tcb_info;
  SignedDocState qe_identity;

  mutable std::mutex mu;
  mutable std::unordered_map<std::string, std::shared_ptr<const PckChainInfo>> chains;
  // Decoded attestation keys (a QE keeps its key across many quotes); keyed by the raw x || y.
  mutable std::unordered_map<std::string, std::shared_ptr<EVP_PKEY>> att_keys;

  Result<std::shared_ptr<EVP_PKEY>> AttestationKey(std::span<const uint8_t, 64> raw) const;

  void CheckRootCrl();
  Status CheckTcbSignChain(Window* window) const;
  SignedDocState CheckSignedDoc(const std::string& body, const std::array<uint8_t, 64>& sig, TimePoint issue,
                                TimePoint next, const char* what) const;
  std::shared_ptr<const PckChainInfo> Chain(std::span<const uint8_t> pem_or_empty) const;
  std::shared_ptr<const PckChainInfo> BuildChain(std::vector<crypto::X509Ptr> certs, Status parse_status) const;
  Verdict Verify(std::span<const uint8_t> quote, TimePoint at) const;

  // The steps of Verify (defined below, in QVL's order). Each returns its first failure, ok when
  // the step passed, and records what it learned in the verdict's details and in `c`.
  Result<DcapQuote> ParseQuote(std::span<const uint8_t> bytes, Verdict* v) const;
  Status CheckPckChain(const DcapQuote& q, TimePoint at, Verdict* v, QuoteChecks* c) const;
  Status CheckSignedDocAt(const SignedDocState& s, const char* file, const char* what, TimePoint at,
                          QuoteChecks* c) const;
  Status CheckTcbInfoFitsQuote(const DcapQuote& q, const PckSgxExtension& ext, Verdict* v) const;
  Status CheckTdxModule(const DcapQuote& q, Verdict* v, QuoteChecks* c) const;
  Status CheckQeReportSignature(const DcapQuote& q, const PckChainInfo& chain) const;
  Status CheckAttestationKeyBinding(const DcapQuote& q) const;
  Status CheckQeIdentity(const DcapQuote& q, Verdict* v, QuoteChecks* c) const;
  Status CheckQuoteSignature(const DcapQuote& q) const;
  void MatchTcbLevel(const DcapQuote& q, const PckSgxExtension& ext, Verdict* v, QuoteChecks* c) const;
  Verdict AssembleVerdict(Verdict v, QuoteChecks c) const;
};

void DcapVerifier::Impl::CheckRootCrl() {
  X509_CRL* crl = collateral->root_crl();
  if (crl == nullptr) return;
  root_crl_window = CrlWindow(crl);
  if (!CrlSignedBy(crl, root.get())) {
    root_crl_status = Err(kDcapInvalidCollateralSignature, "root CA CRL is not signed by the trusted root");
  }
}

Status DcapVerifier::Impl::CheckTcbSignChain(Window* window) const {
  const auto& chain = collateral->tcb_sign_chain();
  if (chain.size() != 2) {
    return Err(kDcapChainUntrusted,
               "TCB Signing chain has " + std::to_string(chain.size()) + " certificates, expected 2 (signing, root)");
  }
  X509* signing = chain[0].get();
  X509* chain_root = chain[1].get();
  if (Der(chain_root) != root_der) {
    return Err(kDcapChainUntrusted, "TCB Signing chain does not end in the trusted root (" + trust_name + ")");
  }
  if (!Contains(crypto::SubjectCommonName(signing), "SGX TCB Signing")) {
    return Err(kDcapChainUntrusted, "TCB Signing certificate CN \"" + crypto::SubjectCommonName(signing) +
                                        "\" does not name an SGX TCB Signing certificate");
  }
  if (!SignedBy(signing, root.get())) {
    return Err(kDcapInvalidCertSignature, "TCB Signing certificate is not signed by the trusted root");
  }
  if (collateral->root_crl() != nullptr && root_crl_status.ok() && Revoked(collateral->root_crl(), signing)) {
    return Err(kDcapCertRevoked, "TCB Signing certificate is revoked by the root CA CRL");
  }
  window->AddCert(signing);
  window->AddCert(root.get());
  return Status::Ok();
}

SignedDocState DcapVerifier::Impl::CheckSignedDoc(const std::string& body, const std::array<uint8_t, 64>& sig,
                                                  TimePoint issue, TimePoint next, const char* what) const {
  SignedDocState s;
  s.present = true;
  s.doc_window.Narrow(issue, next);
  if (collateral->tcb_sign_chain().empty()) {
    s.status = Err(kDcapMissingCollateral, std::string("no TCB Signing chain to verify the ") + what);
    return s;
  }
  s.status = CheckTcbSignChain(&s.cert_window);
  if (!s.status.ok()) return s;
  EVP_PKEY* key = X509_get0_pubkey(collateral->tcb_sign_chain()[0].get());
  if (key == nullptr || !crypto::VerifyEcdsaRaw(key, AsBytes(body), sig)) {
    s.status = Err(kDcapInvalidCollateralSignature, std::string(what) + " signature does not verify with the TCB Signing key");
  }
  return s;
}

std::shared_ptr<const PckChainInfo> DcapVerifier::Impl::BuildChain(std::vector<crypto::X509Ptr> certs,
                                                                    Status parse_status) const {
  auto info = std::make_shared<PckChainInfo>();
  info->certs = std::move(certs);
  if (!parse_status.ok()) {
    info->status = Err(kDcapMalformedPckChain, "PCK certificate chain: " + parse_status.message());
    return info;
  }
  if (info->certs.size() != 3) {
    info->status = Err(kDcapMalformedPckChain, "PCK certificate chain has " + std::to_string(info->certs.size()) +
                                                   " certificates, expected 3 (PCK, PCK CA, root)");
    return info;
  }
  X509* leaf = info->certs[0].get();
  X509* ca = info->certs[1].get();
  X509* chain_root = info->certs[2].get();
  std::string leaf_cn = crypto::SubjectCommonName(leaf);
  std::string ca_cn = crypto::SubjectCommonName(ca);
  if (!Contains(leaf_cn, "SGX PCK Certificate")) {
    info->status = Err(kDcapMalformedPckChain, "PCK certificate CN \"" + leaf_cn + "\" is not an SGX PCK Certificate");
    return info;
  }
  if (!Contains(ca_cn, "CA")) {
    info->status = Err(kDcapMalformedPckChain, "PCK CA CN \"" + ca_cn + "\" does not name a CA");
    return info;
  }
  info->ca_kind = Contains(ca_cn, "Platform") ? "platform" : Contains(ca_cn, "Processor") ? "processor" : "";
  // The root must be the trust anchor, byte for byte (QVL compares the root's signature; the
  // whole DER is stricter).
  if (Der(chain_root) != root_der) {
    info->status = Err(kDcapChainUntrusted, "PCK certificate chain does not end in the trusted root (" + trust_name + ")");
    return info;
  }
  if (X509_check_ca(ca) < 1) {
    info->status = Err(kDcapMalformedPckChain, "PCK CA certificate is not a CA");
    return info;
  }
  if (!SignedBy(ca, root.get()) ||
      X509_NAME_cmp(X509_get_issuer_name(ca), X509_get_subject_name(root.get())) != 0) {
    info->status = Err(kDcapInvalidCertSignature, "PCK CA certificate is not signed by the trusted root");
    return info;
  }
  if (!SignedBy(leaf, ca) || X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca)) != 0) {
    info->status = Err(kDcapInvalidCertSignature, "PCK certificate is not signed by the PCK CA");
    return info;
  }
  auto ext = ParsePckSgxExtension(leaf);
  if (!ext.ok()) {
    info->status = Err(kDcapMalformedPckExtension, ext.status().message());
    return info;
  }
  info->ext = *ext;
  info->cert_window.AddCert(leaf);
  info->cert_window.AddCert(ca);
  info->cert_window.AddCert(root.get());

  X509_CRL* root_crl = collateral->root_crl();
  X509_CRL* pck_crl = collateral->pck_crl();
  if (root_crl != nullptr && pck_crl != nullptr) {
    info->crls_present = true;
    info->crl_window = root_crl_window;
    Window pw = CrlWindow(pck_crl);
    info->crl_window.Narrow(pw.not_before, pw.not_after);
    if (!root_crl_status.ok()) {
      info->crl_status = root_crl_status;
    } else if (X509_NAME_cmp(X509_CRL_get_issuer(pck_crl), X509_get_subject_name(ca)) != 0) {
      info->crl_status = Err(kDcapCrlMismatch, "PCK CRL issuer " + crypto::NameToString(X509_CRL_get_issuer(pck_crl)) +
                                                   " is not the PCK's issuer " + crypto::NameToString(X509_get_subject_name(ca)));
    } else if (!CrlSignedBy(pck_crl, ca)) {
      info->crl_status = Err(kDcapInvalidCollateralSignature, "PCK CRL is not signed by the PCK CA");
    } else if (Revoked(root_crl, ca)) {
      info->crl_status = Err(kDcapPckRevoked, "PCK CA certificate is revoked by the root CA CRL");
    } else if (Revoked(pck_crl, leaf)) {
      info->crl_status = Err(kDcapPckRevoked, "PCK certificate serial " + crypto::SerialHex(leaf) + " is revoked");
    }
  }
  return info;
}

std::shared_ptr<const PckChainInfo> DcapVerifier::Impl::Chain(std::span<const uint8_t> pem) const {
  auto digest = crypto::Sha256(pem);
  std::string key(digest.begin(), digest.end());
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = chains.find(key);
    if (it != chains.end()) return it->second;
  }
  std::shared_ptr<const PckChainInfo> info;
  auto certs = crypto::CertsFromPem(ToString(pem));
  if (certs.ok()) {
    info = BuildChain(std::move(*certs), Status::Ok());
  } else {
    info = BuildChain({}, certs.status());
  }
  std::lock_guard<std::mutex> lock(mu);
  if (chains.size() >= kMaxCachedChains) chains.clear();
  chains.emplace(key, info);
  return info;
}

Result<std::shared_ptr<EVP_PKEY>> DcapVerifier::Impl::AttestationKey(std::span<const uint8_t, 64> raw) const {
  std::string key(raw.begin(), raw.end());
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = att_keys.find(key);
    if (it != att_keys.end()) return it->second;
  }
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr pkey, crypto::EcPublicKeyFromRaw(raw, NID_X9_62_prime256v1));
  std::shared_ptr<EVP_PKEY> shared(pkey.release(), EVP_PKEY_free);
  std::lock_guard<std::mutex> lock(mu);
  if (att_keys.size() >= kMaxCachedChains) att_keys.clear();
  att_keys.emplace(std::move(key), shared);
  return shared;
}

// ---- Verify, step by step ----
//
// Verify runs the steps of Intel QVL's quote verification (ATTESTATION-FORMATS.md §5, QVL's
// numbering) in QVL's order; the first failing step decides the verdict's error and its
// details.failed_step. The time-independent halves of steps 1-3 were done at Create (root CRL,
// TCB Signing chain, collateral signatures) or are cached per PCK chain (BuildChain); the steps
// below add the checks at `at` and everything that depends on the quote.

// Step 4.1: parse. evidence::ParseDcapQuote checks every size and offset, the version (3, 4 or
// 5), attestation key type, TEE type, QE vendor and the certification data layout
// (docs/formats/sgx-quote.md, tdx-quote.md); any failure is malformed_quote.
Result<DcapQuote> DcapVerifier::Impl::ParseQuote(std::span<const uint8_t> bytes, Verdict* v) const {
  auto parsed = evidence::ParseDcapQuote(bytes);
  if (!parsed.ok()) {
    v->details["parse_error"] = parsed.status().reason();
    return Err(kDcapMalformedQuote, parsed.status().reason() + ": " + parsed.status().message());
  }
  v->platform = parsed->is_tdx() ? Platform::kTdx : Platform::kSgx;
  FillMeasurements(*parsed, v);
  return parsed;
}

// Step 1 (sgxAttestationVerifyPCKCertificate) and step 4.2: the PCK chain from the quote's
// certification data (or the folder's pckCert.pem + pckSignChain.pem): 3 certificates ending in
// the trusted root, signatures, PCK SGX extension, root and PCK CRLs (issuer, signature,
// revocation; cached per chain by BuildChain), then the certificate and CRL validity at `at`.
// Absent CRLs do not fail the step: they are recorded as missing collateral.
Status DcapVerifier::Impl::CheckPckChain(const DcapQuote& q, TimePoint at, Verdict* v, QuoteChecks* c) const {
  if (q.cert_data.type == static_cast<uint16_t>(evidence::CertDataType::kPckChain)) {
    c->chain = Chain(q.cert_data.data);
  } else if (!collateral->pck_chain_pem().empty()) {
    c->chain = Chain(AsBytes(collateral->pck_chain_pem()));
  } else {
    return Err(kDcapMissingCollateral, "the quote carries certification data type " + std::to_string(q.cert_data.type) +
                                           ", not a PCK chain, and no pckCert.pem/pckSignChain.pem was given");
  }
  const PckChainInfo& chain = *c->chain;
  if (!chain.status.ok()) return chain.status;
  const PckSgxExtension& ext = chain.ext;
  v->details["fmspc"] = HexEncode(ext.fmspc);
  v->details["pce_id"] = HexEncode(ext.pce_id);
  v->details["pcesvn"] = ext.pcesvn;
  v->details["pck_comp_svns"] = std::vector<int>(ext.comp_svns.begin(), ext.comp_svns.end());
  v->details["sgx_type"] = static_cast<int>(ext.sgx_type);
  if (!chain.ca_kind.empty()) v->details["pck_ca"] = chain.ca_kind;
  if (!chain.crls_present) {
    if (collateral->root_crl() == nullptr) c->missing.push_back(kRootCaCrlFile);
    if (collateral->pck_crl() == nullptr) c->missing.push_back(kPckCrlFile);
  } else if (!chain.crl_status.ok()) {
    return chain.crl_status;
  }
  if (!chain.cert_window.Contains(at)) {
    return Err(kDcapCollateralExpired, "PCK certificate chain is valid " + Fmt(chain.cert_window.not_before) + " .. " +
                                           Fmt(chain.cert_window.not_after) + ", not at " + Fmt(at));
  }
  if (chain.crls_present && !chain.crl_window.Contains(at)) {
    return Err(kDcapCrlExpired, "CRLs are valid " + Fmt(chain.crl_window.not_before) + " .. " +
                                    Fmt(chain.crl_window.not_after) + ", not at " + Fmt(at));
  }
  return Status::Ok();
}

// Steps 2 (sgxAttestationVerifyTCBInfo) and 3 (sgxAttestationVerifyEnclaveIdentity) at `at`:
// the signature over the document and its TCB Signing chain were checked at Create
// (CheckSignedDoc); here the outcome is applied and the TCB Signing chain, root CRL and the
// document's issueDate .. nextUpdate must cover `at`. An absent document (or TCB Signing chain)
// is recorded as missing collateral.
Status DcapVerifier::Impl::CheckSignedDocAt(const SignedDocState& s, const char* file, const char* what, TimePoint at,
                                            QuoteChecks* c) const {
  if (!s.present) {
    c->missing.push_back(file);
    return Status::Ok();
  }
  if (!s.status.ok()) {
    if (s.status.reason() == kDcapMissingCollateral) {
      c->missing.push_back(kTcbSignChainFile);
      return Status::Ok();
    }
    return s.status;
  }
  if (!s.cert_window.Contains(at)) {
    return Err(kDcapCollateralExpired, std::string("TCB Signing chain for the ") + what + " is valid " +
                                           Fmt(s.cert_window.not_before) + " .. " + Fmt(s.cert_window.not_after) +
                                           ", not at " + Fmt(at));
  }
  if (collateral->root_crl() != nullptr && !root_crl_window.Contains(at)) {
    return Err(kDcapCrlExpired, "root CA CRL is valid " + Fmt(root_crl_window.not_before) + " .. " +
                                    Fmt(root_crl_window.not_after) + ", not at " + Fmt(at));
  }
  if (!s.doc_window.Contains(at)) {
    return Err(kDcapCollateralExpired, std::string(what) + " is valid " + Fmt(s.doc_window.not_before) + " .. " +
                                           Fmt(s.doc_window.not_after) + ", not at " + Fmt(at));
  }
  return Status::Ok();
}

// Step 4.3: the TCB Info fits the quote: v3 id "TDX" for a TDX quote, "SGX" (or v2) for SGX;
// FMSPC and PCE-ID equal the PCK extension's (STATUS_TCB_INFO_MISMATCH).
Status DcapVerifier::Impl::CheckTcbInfoFitsQuote(const DcapQuote& q, const PckSgxExtension& ext, Verdict* v) const {
  const std::optional<TcbInfo>& info = collateral->tcb_info();
  if (!info.has_value()) return Status::Ok();
  bool type_ok = q.is_tdx() ? (info->version == 3 && info->id == "TDX")
                            : (info->version == 2 || (info->version == 3 && info->id == "SGX"));
  if (!type_ok) {
    return Err(kDcapTcbInfoMismatch, "TCB Info (version " + std::to_string(info->version) + ", id \"" + info->id +
                                         "\") does not fit a " + std::string(q.is_tdx() ? "TDX" : "SGX") + " quote");
  }
  if (info->fmspc != ext.fmspc) {
    return Err(kDcapTcbInfoMismatch,
               "TCB Info FMSPC " + HexEncode(info->fmspc) + " differs from the PCK's " + HexEncode(ext.fmspc));
  }
  if (info->pce_id != ext.pce_id) {
    return Err(kDcapTcbInfoMismatch,
               "TCB Info PCE-ID " + HexEncode(info->pce_id) + " differs from the PCK's " + HexEncode(ext.pce_id));
  }
  v->details["tcb_evaluation_data_number"] = info->tcb_evaluation_data_number;
  v->details["tcb_info_next_update"] = info->next_update;
  return Status::Ok();
}

// Step 4.4 (TDX only): the TDX module identity: "TDX_%02X" of tee_tcb_svn[1] from
// tdxModuleIdentities when that byte is set, else tdxModule; MRSIGNERSEAM equal to its mrsigner,
// SEAMATTRIBUTES all zero and matching (STATUS_TDX_MODULE_MISMATCH).
Status DcapVerifier::Impl::CheckTdxModule(const DcapQuote& q, Verdict* v, QuoteChecks* c) const {
  const std::optional<TcbInfo>& info = collateral->tcb_info();
  if (!q.is_tdx() || !info.has_value()) return Status::Ok();
  const auto& td = *q.td_report;
  const evidence::TdxModuleIdentity* module = nullptr;
  if (td.tee_tcb_svn[1] > 0) {
    char id[16];
    std::snprintf(id, sizeof id, "TDX_%02X", td.tee_tcb_svn[1]);
    for (const auto& m : info->tdx_module_identities) {
      if (m.id == id) module = &m;
    }
    if (module == nullptr) return Err(kDcapTdxModuleMismatch, std::string("TCB Info has no TDX module identity ") + id);
    v->details["tdx_module_id"] = id;
  } else {
    module = info->tdx_module.has_value() ? &*info->tdx_module : nullptr;
    if (module == nullptr) return Err(kDcapTdxModuleMismatch, "TCB Info has no tdxModule");
  }
  c->module = module;
  if (td.mr_signer_seam != module->mrsigner) {
    return Err(kDcapTdxModuleMismatch, "MRSIGNERSEAM " + HexEncode(td.mr_signer_seam) +
                                           " differs from the TDX module's " + HexEncode(module->mrsigner));
  }
  bool zero = std::all_of(td.seam_attributes.begin(), td.seam_attributes.end(), [](uint8_t b) { return b == 0; });
  if (!zero || !MaskedEqual(td.seam_attributes, module->attributes_mask, module->attributes)) {
    return Err(kDcapTdxModuleMismatch,
               "SEAMATTRIBUTES " + HexEncode(td.seam_attributes) + " do not match the TDX module identity");
  }
  return Status::Ok();
}

// Step 4.5: the QE report is signed by the PCK key (STATUS_INVALID_QE_REPORT_SIGNATURE).
Status DcapVerifier::Impl::CheckQeReportSignature(const DcapQuote& q, const PckChainInfo& chain) const {
  EVP_PKEY* pck_key = X509_get0_pubkey(chain.certs[0].get());
  if (pck_key == nullptr || !crypto::VerifyEcdsaRaw(pck_key, q.qe_report.raw, q.qe_report_signature)) {
    return Err(kDcapInvalidQeReportSignature, "QE report signature does not verify with the PCK key");
  }
  return Status::Ok();
}

// Step 4.6: the QE report data binds the attestation key: SHA-256(attestation key || QE auth
// data) followed by 32 zero bytes (STATUS_INVALID_QE_REPORT_DATA).
Status DcapVerifier::Impl::CheckAttestationKeyBinding(const DcapQuote& q) const {
  std::vector<uint8_t> bound(q.attestation_key.begin(), q.attestation_key.end());
  bound.insert(bound.end(), q.qe_auth_data.begin(), q.qe_auth_data.end());
  auto h = crypto::Sha256(bound);
  bool ok = std::equal(h.begin(), h.end(), q.qe_report.report_data.begin());
  ok = ok && std::all_of(q.qe_report.report_data.begin() + 32, q.qe_report.report_data.end(),
                         [](uint8_t b) { return b == 0; });
  if (!ok) {
    return Err(kDcapInvalidQeReportData,
               "QE report data is not SHA-256(attestation key || QE auth data) followed by zeros");
  }
  return Status::Ok();
}

// Step 4.7: the QE matches the QE Identity (id QE / TD_QE, masked MISCSELECT and ATTRIBUTES,
// MRSIGNER, ISVPRODID; STATUS_QE_IDENTITY_MISMATCH); its TCB status is that of the first level
// (descending isvsvn) at or below the QE's isvsvn, kept for convergence in step 4.11.
Status DcapVerifier::Impl::CheckQeIdentity(const DcapQuote& q, Verdict* v, QuoteChecks* c) const {
  const std::optional<EnclaveIdentity>& qe_id = collateral->qe_identity();
  if (!qe_id.has_value()) return Status::Ok();
  const char* want = q.is_tdx() ? "TD_QE" : "QE";
  if (qe_id->id != want) {
    return Err(kDcapQeIdentityMismatch, "QE Identity id \"" + qe_id->id + "\", expected \"" + want + "\"");
  }
  std::array<uint8_t, 4> misc{};
  for (size_t i = 0; i < 4; ++i) misc[i] = static_cast<uint8_t>(q.qe_report.misc_select >> (8 * i));
  if (!MaskedEqual(misc, qe_id->miscselect_mask, qe_id->miscselect)) {
    return Err(kDcapQeIdentityMismatch, "QE MISCSELECT does not match the QE Identity");
  }
  if (!MaskedEqual(q.qe_report.AttributesBytes(), qe_id->attributes_mask, qe_id->attributes)) {
    return Err(kDcapQeIdentityMismatch, "QE ATTRIBUTES do not match the QE Identity");
  }
  if (q.qe_report.mr_signer != qe_id->mrsigner) {
    return Err(kDcapQeIdentityMismatch, "QE MRSIGNER " + HexEncode(q.qe_report.mr_signer) +
                                            " differs from the QE Identity's " + HexEncode(qe_id->mrsigner));
  }
  if (q.qe_report.isv_prod_id != qe_id->isvprodid) {
    return Err(kDcapQeIdentityMismatch, "QE ISVPRODID " + std::to_string(q.qe_report.isv_prod_id) +
                                            " differs from the QE Identity's " + std::to_string(qe_id->isvprodid));
  }
  c->qe_level = MatchIsvSvn(qe_id->tcb_levels, q.qe_report.isv_svn);
  c->qe_status = IdentityStatus(c->qe_level);
  v->details["qe_tcb_status"] = c->qe_level != nullptr ? c->qe_level->tcb_status : kNotSupported;
  if (c->qe_level != nullptr) v->details["qe_tcb_date"] = c->qe_level->tcb_date;
  return Status::Ok();
}

// Step 4.8: the quote (header and report body) is signed by the attestation key
// (STATUS_INVALID_QUOTE_SIGNATURE; a key that is not a P-256 point is invalid_attestation_key).
Status DcapVerifier::Impl::CheckQuoteSignature(const DcapQuote& q) const {
  auto key = AttestationKey(q.attestation_key);
  if (!key.ok()) {
    return Err(kDcapInvalidAttestationKey, "attestation key is not a P-256 point: " + key.status().message());
  }
  if (!crypto::VerifyEcdsaRaw(key->get(), q.signed_data, q.signature)) {
    return Err(kDcapInvalidQuoteSignature, "quote signature does not verify with the attestation key");
  }
  return Status::Ok();
}

// Steps 4.9 - 4.11: the TCB level (first TCB Info level the PCK's SVNs, and for TDX the TD
// report's TEE TCB SVNs, reach), converged with the TDX module's and the QE's TCB status; the
// advisories are the matched level's plus those of a module or QE level that lowered the status.
// No match is TcbLevelNotSupported with no advisories. Without TCB Info nothing is set.
void DcapVerifier::Impl::MatchTcbLevel(const DcapQuote& q, const PckSgxExtension& ext, Verdict* v,
                                       QuoteChecks* c) const {
  const std::optional<TcbInfo>& info = collateral->tcb_info();
  if (!info.has_value()) return;
  std::string& status = c->tcb_status;
  std::vector<std::string>& advisories = c->advisories;
  const TcbLevel* sgx_match = nullptr;
  const TcbLevel* match = nullptr;
  for (const auto& l : info->tcb_levels) {
    if (!SgxLevelMatches(l, ext)) continue;
    if (sgx_match == nullptr) sgx_match = &l;
    if (!q.is_tdx() || TdxLevelMatches(l, *q.td_report)) {
      match = &l;
      break;
    }
  }
  if (match == nullptr) {
    status = kNotSupported;
  } else {
    status = match->tcb_status;
    AddAdvisories(match->advisory_ids, &advisories);
    v->details["tcb_date"] = match->tcb_date;
    v->details["tcb_level_status"] = match->tcb_status;
    const evidence::TdxModuleIdentity* module = c->module;
    if (q.is_tdx() && module != nullptr && !module->tcb_levels.empty()) {
      const IsvSvnLevel* ml = MatchIsvSvn(module->tcb_levels, q.td_report->tee_tcb_svn[0]);
      v->details["tdx_module_tcb_status"] = ml != nullptr ? ml->tcb_status : kNotSupported;
      std::string converged = ConvergeTcbStatus(status, IdentityStatus(ml));
      if (ml != nullptr && ml->tcb_status != "UpToDate") AddAdvisories(ml->advisory_ids, &advisories);
      status = converged;
    }
  }
  if (!c->qe_status.empty() && status != kNotSupported) {
    status = ConvergeTcbStatus(status, c->qe_status);
    if (c->qe_level != nullptr && c->qe_level->tcb_status != "UpToDate") {
      AddAdvisories(c->qe_level->advisory_ids, &advisories);
    }
  }
  if (status == kNotSupported) advisories.clear();
}

// The verdict once every check passed: genuine with the TCB status and advisories, unless some
// collateral was missing (then not genuine, missing_collateral, with the partial TCB status).
Verdict DcapVerifier::Impl::AssembleVerdict(Verdict v, QuoteChecks c) const {
  if (!c.missing.empty()) {
    v.details["missing_collateral"] = c.missing;
    if (!c.tcb_status.empty()) v.details["tcb_status_partial"] = c.tcb_status;
    std::string list;
    for (const auto& m : c.missing) list += (list.empty() ? "" : ", ") + m;
    return Failed(std::move(v),
                  Err(kDcapMissingCollateral, "signatures and chain verified, but collateral is missing: " + list),
                  "collateral");
  }
  v.genuine = true;
  v.tcb_status = std::move(c.tcb_status);
  v.advisory_ids = std::move(c.advisories);
  return v;
}

Verdict DcapVerifier::Impl::Verify(std::span<const uint8_t> bytes, TimePoint at) const {
  Verdict v;
  v.insecure_sim = sim;
  v.details["trust_root"] = trust_name;
  if (bytes.size() >= 8 && LoadU32(bytes, 4) == evidence::kTeeTypeTdx) v.platform = Platform::kTdx;

  auto parsed = ParseQuote(bytes, &v);  // 4.1
  if (!parsed.ok()) return Failed(std::move(v), parsed.status(), "parse");
  const DcapQuote& q = *parsed;
  if (!trust_status.ok()) return Failed(std::move(v), trust_status, "trust");

  QuoteChecks c;
  if (Status s = CheckPckChain(q, at, &v, &c); !s.ok()) return Failed(std::move(v), s, "pck_chain");  // 1, 4.2
  if (Status s = CheckSignedDocAt(tcb_info, kTcbInfoFile, "TCB Info", at, &c); !s.ok()) {  // 2
    return Failed(std::move(v), s, "tcb_info");
  }
  if (Status s = CheckSignedDocAt(qe_identity, kQeIdentityFile, "QE Identity", at, &c); !s.ok()) {  // 3
    return Failed(std::move(v), s, "qe_identity");
  }
  const PckSgxExtension& ext = c.chain->ext;
  Status s = CheckTcbInfoFitsQuote(q, ext, &v);              // 4.3
  if (s.ok()) s = CheckTdxModule(q, &v, &c);                 // 4.4
  if (s.ok()) s = CheckQeReportSignature(q, *c.chain);       // 4.5
  if (s.ok()) s = CheckAttestationKeyBinding(q);             // 4.6
  if (s.ok()) s = CheckQeIdentity(q, &v, &c);                // 4.7
  if (s.ok()) s = CheckQuoteSignature(q);                    // 4.8
  if (!s.ok()) return Failed(std::move(v), s, "quote");
  MatchTcbLevel(q, ext, &v, &c);  // 4.9 - 4.11
  return AssembleVerdict(std::move(v), std::move(c));
}

DcapVerifier::DcapVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DcapVerifier::~DcapVerifier() = default;

Result<std::unique_ptr<DcapVerifier>> DcapVerifier::Create(std::shared_ptr<const DcapCollateral> collateral,
                                                           const DcapTrustOptions& trust) {
  if (!collateral) return InvalidArgument("no collateral", "missing_collateral");
  auto impl = std::make_unique<Impl>();
  impl->collateral = std::move(collateral);
  X509* root = nullptr;
  if (trust.trust_root != nullptr) {
    root = trust.trust_root;
    impl->trust_name = "explicit";
  } else if (trust.allow_sim && impl->collateral->trusted_root() != nullptr &&
             IsSimRootCa(impl->collateral->trusted_root())) {
    root = impl->collateral->trusted_root();
    impl->trust_name = "sim";
  } else {
    root = IntelSgxRootCa();
    impl->trust_name = "intel-sgx-root-ca";
  }
  X509_up_ref(root);
  impl->root.reset(root);
  impl->root_der = Der(root);
  if (!SameCert(root, IntelSgxRootCa()) && IsSimRootCa(root)) {
    impl->sim = true;
    impl->trust_name = "sim";
    if (!trust.allow_sim) {
      impl->trust_status = Err(kDcapSimNotAllowed, "the trust root is an INSECURE sim root and sim evidence is not allowed");
    }
  }
  impl->CheckRootCrl();
  if (const auto& info = impl->collateral->tcb_info()) {
    impl->tcb_info = impl->CheckSignedDoc(info->signed_body, info->signature, info->issue_time, info->next_update_time,
                                          "TCB Info");
  }
  if (const auto& id = impl->collateral->qe_identity()) {
    impl->qe_identity =
        impl->CheckSignedDoc(id->signed_body, id->signature, id->issue_time, id->next_update_time, "QE Identity");
  }
  return std::unique_ptr<DcapVerifier>(new DcapVerifier(std::move(impl)));
}

Verdict DcapVerifier::Verify(std::span<const uint8_t> quote, TimePoint at) const { return impl_->Verify(quote, at); }

TimePoint DcapVerifier::CollateralValidUntil() const {
  const Impl& i = *impl_;
  TimePoint until = TimePoint::max();
  if (i.collateral->root_crl() != nullptr) until = std::min(until, i.root_crl_window.not_after);
  if (i.collateral->pck_crl() != nullptr) until = std::min(until, CrlWindow(i.collateral->pck_crl()).not_after);
  for (const SignedDocState* doc : {&i.tcb_info, &i.qe_identity}) {
    if (!doc->present) continue;
    until = std::min({until, doc->doc_window.not_after, doc->cert_window.not_after});
  }
  return until;
}

Status DcapVerifier::CollateralStatus() const {
  const Impl& i = *impl_;
  if (!i.trust_status.ok()) return i.trust_status;
  if (!i.root_crl_status.ok()) return i.root_crl_status;
  if (!i.tcb_info.present) return Err(kDcapMissingCollateral, "no TCB Info");
  if (!i.tcb_info.status.ok()) return i.tcb_info.status;
  if (!i.qe_identity.present) return Err(kDcapMissingCollateral, "no QE Identity");
  return i.qe_identity.status;
}

Verdict VerifyDcapQuote(std::span<const uint8_t> quote, const std::optional<std::string>& collateral_dir, TimePoint at,
                        const DcapTrustOptions& trust) {
  Result<std::shared_ptr<const DcapCollateral>> collateral =
      collateral_dir.has_value() ? DcapCollateral::LoadDir(*collateral_dir) : DcapCollateral::Create({});
  if (!collateral.ok()) {
    Verdict v;
    if (quote.size() >= 8 && LoadU32(quote, 4) == evidence::kTeeTypeTdx) v.platform = Platform::kTdx;
    std::string code = collateral.status().reason() == "collateral_dir_unreadable" ? std::string(kDcapMissingCollateral)
                                                                                   : std::string(kDcapMalformedCollateral);
    v.error = Err(code, collateral.status().message());
    return v;
  }
  auto verifier = DcapVerifier::Create(std::move(*collateral), trust);
  if (!verifier.ok()) {
    Verdict v;
    v.error = verifier.status();
    return v;
  }
  return (*verifier)->Verify(quote, at);
}

std::string ConvergeTcbStatus(const std::string& tcb, const std::string& other) {
  if (other == kNotSupported) return kNotSupported;
  if (other == "OutOfDate") {
    if (tcb == "UpToDate" || tcb == "SWHardeningNeeded") return "OutOfDate";
    if (tcb == "ConfigurationNeeded" || tcb == "ConfigurationAndSWHardeningNeeded") return "OutOfDateConfigurationNeeded";
  }
  if (other == "Revoked") {
    if (tcb == "UpToDate" || tcb == "SWHardeningNeeded" || tcb == "ConfigurationNeeded" ||
        tcb == "ConfigurationAndSWHardeningNeeded" || tcb == "OutOfDate" || tcb == "OutOfDateConfigurationNeeded") {
      return "Revoked";
    }
  }
  return tcb;
}

}  // namespace vouch::attest
