#include "collateral/items.h"

#include <openssl/x509.h>

#include <algorithm>

#include "attest/amd_roots.h"
#include "attest/intel_root.h"
#include "attest/signed_by.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "collateral/service.h"
#include "crypto/digest.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "evidence/dcap_collateral.h"
#include "evidence/snp_report.h"

namespace vouch::collateral::internal {

namespace {

Status Refused(std::string_view reason, std::string message) {
  return InvalidArgument(std::move(message), std::string(reason));
}

std::vector<uint8_t> Der(X509* cert) {
  auto der = crypto::CertToDer(cert);
  return der.ok() ? *der : std::vector<uint8_t>{};
}

bool IsIntelRoot(X509* cert) {
  auto der = Der(cert);
  auto intel = attest::IntelSgxRootCaDer();
  return !der.empty() && std::equal(der.begin(), der.end(), intel.begin(), intel.end());
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The trusted root a chain ends in: the Intel root, or a sim root with allow_sim.
Result<X509*> TrustedIntelStyleRoot(X509* root, const CheckContext& ctx) {
  if (IsIntelRoot(root)) return root;
  if (attest::IsSimRootCa(root)) {
    if (!ctx.allow_sim) return Refused(kSimNotAllowed, "the issuer chain ends in an INSECURE sim root");
    if (!attest::SignedBy(root, root)) return Refused(kBadIssuerChain, "the sim root is not self-signed");
    return root;
  }
  return Refused(kBadIssuerChain, "the issuer chain does not end in the Intel SGX Root CA (root: " +
                                      crypto::SubjectCommonName(root) + ")");
}

Result<std::vector<crypto::X509Ptr>> ParseChain(const std::string& pem, size_t expected, const std::string& what) {
  if (pem.empty()) return Refused(kBadIssuerChain, what + ": no issuer chain");
  auto certs = crypto::CertsFromPem(pem);
  if (!certs.ok()) return Refused(kBadIssuerChain, what + ": unreadable issuer chain: " + certs.status().message());
  if (certs->size() != expected) {
    return Refused(kBadIssuerChain, what + ": issuer chain has " + std::to_string(certs->size()) + " certificates, expected " +
                                        std::to_string(expected));
  }
  return std::move(*certs);
}

TimePoint CrlTime(const ASN1_TIME* t, TimePoint fallback) { return t == nullptr ? fallback : crypto::Asn1TimeToTimePoint(t); }

Result<Checked> CheckSignedJson(const Candidate& c, const CheckContext& ctx) {
  const bool tcb = c.kind == kSgxTcbInfo || c.kind == kTdxTcbInfo;
  Checked out;
  std::string body;
  std::array<uint8_t, 64> sig{};
  if (tcb) {
    auto info = evidence::ParseTcbInfo(c.body);
    if (!info.ok()) return Refused(kMalformed, c.kind + ": " + info.status().message());
    if ((c.kind == kTdxTcbInfo) != info->is_tdx()) {
      return Refused(kWrongItem, c.kind + ": the TCB Info has id \"" + info->id + "\"");
    }
    out.key = Lower(HexEncode(info->fmspc));
    if (!c.key.empty() && Lower(c.key) != out.key) {
      return Refused(kWrongItem, c.kind + ": asked for FMSPC " + c.key + ", the TCB Info is for " + out.key);
    }
    out.issue_date = info->issue_time;
    out.next_update = info->next_update_time;
    out.tcb_evaluation_data_number = info->tcb_evaluation_data_number;
    body = info->signed_body;
    sig = info->signature;
  } else {
    auto id = evidence::ParseEnclaveIdentity(c.body);
    if (!id.ok()) return Refused(kMalformed, c.kind + ": " + id.status().message());
    const std::string want = c.kind == kQeIdentity ? "QE" : "TD_QE";
    if (id->id != want) return Refused(kWrongItem, c.kind + ": the identity has id \"" + id->id + "\", expected " + want);
    out.key = want;
    out.issue_date = id->issue_time;
    out.next_update = id->next_update_time;
    out.tcb_evaluation_data_number = id->tcb_evaluation_data_number;
    body = id->signed_body;
    sig = id->signature;
  }
  VOUCH_ASSIGN_OR_RETURN(auto chain, ParseChain(c.issuer_chain_pem, 2, c.kind));
  VOUCH_ASSIGN_OR_RETURN(X509 * root, TrustedIntelStyleRoot(chain[1].get(), ctx));
  if (crypto::SubjectCommonName(chain[0].get()).find("TCB Signing") == std::string::npos) {
    return Refused(kBadIssuerChain, c.kind + ": the signer \"" + crypto::SubjectCommonName(chain[0].get()) +
                                        "\" is not a TCB Signing certificate");
  }
  if (!attest::SignedBy(chain[0].get(), root)) {
    return Refused(kBadIssuerChain, c.kind + ": the TCB Signing certificate is not signed by the root");
  }
  EVP_PKEY* key = X509_get0_pubkey(chain[0].get());
  if (key == nullptr || !crypto::VerifyEcdsaRaw(key, AsBytes(body), sig)) {
    crypto::DrainOpensslErrors();
    return Refused(kBadSignature, c.kind + ": the signature does not verify with the TCB Signing key");
  }
  out.root = RootLabel(root);
  out.sim = out.root.rfind("sim:", 0) == 0;
  out.content_type = "application/json";
  out.issuer_chain_pem = ChainPem({chain[0].get(), chain[1].get()});
  return out;
}

Result<crypto::X509CrlPtr> ParseCrl(const std::string& body, const std::string& what) {
  // DER, PEM, or the hex of DER (PCCS API 3.0).
  std::string bytes = body;
  if (!bytes.empty() && std::all_of(bytes.begin(), bytes.end(), [](unsigned char ch) { return std::isxdigit(ch) || ch == '\n'; })) {
    std::string hex;
    for (char ch : bytes) {
      if (ch != '\n') hex.push_back(ch);
    }
    auto raw = HexDecode(hex);
    if (raw.ok()) bytes.assign(raw->begin(), raw->end());
  }
  auto crl = crypto::CrlFromDerOrPem(AsBytes(bytes));
  if (!crl.ok()) return Refused(kMalformed, what + ": " + crl.status().message());
  return std::move(*crl);
}

Result<Checked> CheckPckCrl(const Candidate& c, const CheckContext& ctx) {
  VOUCH_ASSIGN_OR_RETURN(auto crl, ParseCrl(c.body, "PCK CRL"));
  VOUCH_ASSIGN_OR_RETURN(auto chain, ParseChain(c.issuer_chain_pem, 2, "PCK CRL"));
  VOUCH_ASSIGN_OR_RETURN(X509 * root, TrustedIntelStyleRoot(chain[1].get(), ctx));
  const std::string cn = crypto::SubjectCommonName(chain[0].get());
  Checked out;
  if (cn.find("Processor") != std::string::npos) {
    out.key = "processor";
  } else if (cn.find("Platform") != std::string::npos) {
    out.key = "platform";
  } else {
    return Refused(kBadIssuerChain, "PCK CRL: the issuer \"" + cn + "\" is not a PCK Processor or Platform CA");
  }
  if (!c.key.empty() && Lower(c.key) != out.key) {
    return Refused(kWrongItem, "PCK CRL: asked for ca=" + c.key + ", the CRL is issued by the " + out.key + " CA");
  }
  if (!attest::SignedBy(chain[0].get(), root)) return Refused(kBadIssuerChain, "PCK CRL: the PCK CA is not signed by the root");
  if (!attest::CrlSignedBy(crl.get(), chain[0].get())) return Refused(kBadSignature, "PCK CRL: not signed by " + cn);
  out.root = RootLabel(root);
  out.sim = out.root.rfind("sim:", 0) == 0;
  out.issue_date = CrlTime(X509_CRL_get0_lastUpdate(crl.get()), TimePoint{});
  out.next_update = CrlTime(X509_CRL_get0_nextUpdate(crl.get()), TimePoint::max());
  out.content_type = "application/pkix-crl";
  out.issuer_chain_pem = ChainPem({chain[0].get(), chain[1].get()});
  return out;
}

Result<Checked> CheckRootCrl(const Candidate& c, const CheckContext& ctx) {
  VOUCH_ASSIGN_OR_RETURN(auto crl, ParseCrl(c.body, "root CA CRL"));
  std::vector<X509*> roots = {attest::IntelSgxRootCa()};
  std::vector<crypto::X509Ptr> given;
  if (!c.issuer_chain_pem.empty()) {
    auto certs = crypto::CertsFromPem(c.issuer_chain_pem);
    if (certs.ok()) given = std::move(*certs);
  }
  for (const auto& g : given) roots.push_back(g.get());
  for (X509* s : ctx.sim_roots) roots.push_back(s);
  for (X509* root : roots) {
    if (root == nullptr || !attest::CrlSignedBy(crl.get(), root)) continue;
    if (!IsIntelRoot(root)) {
      if (!attest::IsSimRootCa(root)) continue;
      if (!ctx.allow_sim) return Refused(kSimNotAllowed, "root CA CRL: issued by an INSECURE sim root");
    }
    Checked out;
    out.key = "root";
    out.root = RootLabel(root);
    out.sim = out.root.rfind("sim:", 0) == 0;
    out.issue_date = CrlTime(X509_CRL_get0_lastUpdate(crl.get()), TimePoint{});
    out.next_update = CrlTime(X509_CRL_get0_nextUpdate(crl.get()), TimePoint::max());
    out.content_type = "application/pkix-crl";
    out.issuer_chain_pem = ChainPem({root});
    return out;
  }
  return Refused(kBadSignature, "root CA CRL: not signed by the Intel SGX Root CA or a known sim root");
}

// ARK: a built-in AMD root, or (allow_sim) a sim root.
Status CheckArk(X509* ark, const CheckContext& ctx, const std::string& what) {
  if (attest::FindPinnedArk(ark) != nullptr) return Status::Ok();
  if (attest::IsSimRootCa(ark)) {
    if (!ctx.allow_sim) return Refused(kSimNotAllowed, what + ": the ARK is an INSECURE sim root");
    if (!attest::SignedBy(ark, ark)) return Refused(kBadIssuerChain, what + ": the sim ARK is not self-signed");
    return Status::Ok();
  }
  return Refused(kBadIssuerChain, what + ": the ARK \"" + crypto::SubjectCommonName(ark) + "\" is not a built-in AMD root");
}

Result<Checked> CheckAmdChain(const Candidate& c, const CheckContext& ctx) {
  auto certs = crypto::CertsFromPem(c.body);
  if (!certs.ok() || certs->size() != 2) return Refused(kMalformed, "AMD cert_chain: expected two PEM certificates (ASK, ARK)");
  X509* ask = (*certs)[0].get();
  X509* ark = (*certs)[1].get();
  if (attest::SignedBy(ask, ask) && !attest::SignedBy(ark, ark)) std::swap(ask, ark);
  VOUCH_RETURN_IF_ERROR(CheckArk(ark, ctx, "AMD cert_chain"));
  if (!attest::SignedBy(ask, ark)) return Refused(kBadSignature, "AMD cert_chain: the ASK is not signed by the ARK");
  Checked out;
  const attest::AmdRootSet* pinned = attest::FindPinnedArk(ark);
  out.key = pinned != nullptr ? std::string(evidence::SnpProductName(pinned->product)) : c.key;
  if (out.key.empty()) return Refused(kWrongItem, "AMD cert_chain: no product named for a sim chain");
  if (!c.key.empty() && c.key != out.key) return Refused(kWrongItem, "AMD cert_chain: asked for " + c.key + ", got " + out.key);
  out.root = RootLabel(ark);
  out.sim = out.root.rfind("sim:", 0) == 0;
  out.issue_date = std::max(crypto::NotBefore(ask), crypto::NotBefore(ark));
  out.next_update = std::min(crypto::NotAfter(ask), crypto::NotAfter(ark));
  out.content_type = "application/x-pem-file";
  return out;
}

// The ASK/ARK a VCEK or CRL of `product` is checked against.
void AmdAnchors(const std::string& product, const CheckContext& ctx, X509** ask, X509** ark) {
  *ask = ctx.amd_ask;
  *ark = ctx.amd_ark;
  if (*ark != nullptr) return;
  for (const auto& set : attest::BuiltinAmdRoots()) {
    if (evidence::SnpProductName(set.product) == product) {
      *ask = set.ask;
      *ark = set.ark;
    }
  }
}

std::string ProductOfKey(const std::string& key) { return key.substr(0, key.find('/')); }

Result<Checked> CheckAmdCrl(const Candidate& c, const CheckContext& ctx) {
  VOUCH_ASSIGN_OR_RETURN(auto crl, ParseCrl(c.body, "AMD CRL"));
  X509 *ask = nullptr, *ark = nullptr;
  AmdAnchors(c.key, ctx, &ask, &ark);
  if (ark == nullptr) return Refused(kBadIssuerChain, "AMD CRL: no ARK known for product \"" + c.key + "\"");
  VOUCH_RETURN_IF_ERROR(CheckArk(ark, ctx, "AMD CRL"));
  if (!attest::CrlSignedBy(crl.get(), ark)) return Refused(kBadSignature, "AMD CRL: not signed by the " + c.key + " ARK");
  Checked out;
  out.key = c.key;
  out.root = RootLabel(ark);
  out.sim = out.root.rfind("sim:", 0) == 0;
  out.issue_date = CrlTime(X509_CRL_get0_lastUpdate(crl.get()), TimePoint{});
  out.next_update = CrlTime(X509_CRL_get0_nextUpdate(crl.get()), TimePoint::max());
  out.content_type = "application/pkix-crl";
  out.issuer_chain_pem = ChainPem({ark});
  return out;
}

Result<Checked> CheckVcek(const Candidate& c, const CheckContext& ctx) {
  auto cert = crypto::CertFromDer(AsBytes(c.body));
  if (!cert.ok()) cert = crypto::CertFromPem(c.body);
  if (!cert.ok()) return Refused(kMalformed, "VCEK: not a certificate");
  const std::string product = ProductOfKey(c.key);
  X509 *ask = nullptr, *ark = nullptr;
  AmdAnchors(product, ctx, &ask, &ark);
  if (ask == nullptr || ark == nullptr) return Refused(kBadIssuerChain, "VCEK: no ASK known for product \"" + product + "\"");
  VOUCH_RETURN_IF_ERROR(CheckArk(ark, ctx, "VCEK"));
  if (!attest::SignedBy(ask, ark)) return Refused(kBadIssuerChain, "VCEK: the ASK is not signed by the ARK");
  if (!attest::SignedBy(cert->get(), ask)) return Refused(kBadSignature, "VCEK: not signed by the " + product + " ASK");
  Checked out;
  out.key = c.key;
  out.root = RootLabel(ark);
  out.sim = out.root.rfind("sim:", 0) == 0;
  out.issue_date = crypto::NotBefore(cert->get());
  out.next_update = crypto::NotAfter(cert->get());
  out.content_type = "application/pkix-cert";
  out.issuer_chain_pem = ChainPem({ask, ark});
  return out;
}

}  // namespace

std::string RootLabel(X509* root) {
  if (root == nullptr) return "none";
  if (IsIntelRoot(root)) return "intel";
  if (attest::FindPinnedArk(root) != nullptr) return "amd";
  auto digest = crypto::Sha256(Der(root));
  std::string h = HexEncode(digest).substr(0, 16);
  return (attest::IsSimRootCa(root) ? "sim:" : "other:") + h;
}

std::string ChainPem(const std::vector<X509*>& certs) {
  std::string out;
  for (X509* c : certs) {
    auto pem = crypto::CertToPem(c);
    if (pem.ok()) out += *pem;
  }
  return out;
}

Result<Checked> CheckCandidate(const Candidate& c, const CheckContext& ctx) {
  if (c.body.empty()) return Refused(kMalformed, c.kind + ": empty body");
  if (c.kind == kSgxTcbInfo || c.kind == kTdxTcbInfo || c.kind == kQeIdentity || c.kind == kTdQeIdentity) {
    return CheckSignedJson(c, ctx);
  }
  if (c.kind == kPckCrl) return CheckPckCrl(c, ctx);
  if (c.kind == kRootCaCrl) return CheckRootCrl(c, ctx);
  if (c.kind == kAmdCertChain) return CheckAmdChain(c, ctx);
  if (c.kind == kAmdCrl) return CheckAmdCrl(c, ctx);
  if (c.kind == kAmdVcek) return CheckVcek(c, ctx);
  return InvalidArgument("unknown collateral kind \"" + c.kind + "\"", std::string(kInvalidKind));
}

}  // namespace vouch::collateral::internal

namespace vouch::collateral::internal {

namespace {

// The extension's inner bytes, or empty when absent.
std::vector<uint8_t> ExtBytes(X509* cert, const char* oid) {
  crypto::Asn1ObjectPtr obj(OBJ_txt2obj(oid, 1));
  if (!obj) return {};
  int idx = X509_get_ext_by_OBJ(cert, obj.get(), -1);
  if (idx < 0) return {};
  X509_EXTENSION* ext = X509_get_ext(cert, idx);
  ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  if (data == nullptr) return {};
  const uint8_t* p = ASN1_STRING_get0_data(data);
  return std::vector<uint8_t>(p, p + ASN1_STRING_length(data));
}

// A DER INTEGER 0..255 (02 01 xx, or 02 02 00 xx).
std::optional<uint8_t> SmallInt(const std::vector<uint8_t>& d) {
  if (d.size() == 3 && d[0] == 0x02 && d[1] == 1) return d[2];
  if (d.size() == 4 && d[0] == 0x02 && d[1] == 2 && d[2] == 0) return d[3];
  return std::nullopt;
}

}  // namespace

uint64_t VcekFacts::TcbRaw() const {
  uint64_t raw = 0;
  auto put = [&raw](int byte, uint8_t v) { raw |= static_cast<uint64_t>(v) << (8 * byte); };
  if (product == "Turin") {
    put(0, fmc.value_or(0));
    put(1, bl);
    put(2, tee);
    put(3, snp);
  } else {
    put(0, bl);
    put(1, tee);
    put(6, snp);
  }
  put(7, ucode);
  return raw;
}

Result<VcekFacts> ReadVcekFacts(X509* cert) {
  VcekFacts f;
  std::vector<uint8_t> name = ExtBytes(cert, "1.3.6.1.4.1.3704.1.2");
  if (name.size() >= 2 && name[0] == 0x16 && name[1] == name.size() - 2) {
    f.product.assign(name.begin() + 2, name.end());
  } else {
    f.product.assign(name.begin(), name.end());
  }
  f.product = f.product.substr(0, f.product.find('-'));
  if (f.product.empty()) return InvalidArgument("VCEK without a productName extension", std::string(kMalformed));
  f.hwid = ExtBytes(cert, "1.3.6.1.4.1.3704.1.4");
  if (f.hwid.size() >= 2 && f.hwid[0] == 0x04 && f.hwid[1] == f.hwid.size() - 2) f.hwid.erase(f.hwid.begin(), f.hwid.begin() + 2);
  if (f.hwid.size() != 64 && f.hwid.size() != 8) return InvalidArgument("VCEK without a 64- or 8-byte hwID", std::string(kMalformed));
  auto spl = [&](const char* oid, uint8_t* out) -> Status {
    auto v = SmallInt(ExtBytes(cert, oid));
    if (!v) return InvalidArgument(std::string("VCEK without SPL ") + oid, std::string(kMalformed));
    *out = *v;
    return Status::Ok();
  };
  VOUCH_RETURN_IF_ERROR(spl("1.3.6.1.4.1.3704.1.3.1", &f.bl));
  VOUCH_RETURN_IF_ERROR(spl("1.3.6.1.4.1.3704.1.3.2", &f.tee));
  VOUCH_RETURN_IF_ERROR(spl("1.3.6.1.4.1.3704.1.3.3", &f.snp));
  VOUCH_RETURN_IF_ERROR(spl("1.3.6.1.4.1.3704.1.3.8", &f.ucode));
  if (auto fmc = SmallInt(ExtBytes(cert, "1.3.6.1.4.1.3704.1.3.9"))) f.fmc = *fmc;
  return f;
}

}  // namespace vouch::collateral::internal
