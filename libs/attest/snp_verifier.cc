#include "attest/snp_verifier.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "attest/amd_roots.h"
#include "attest/signed_by.h"
#include "attest/sim_vendor.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "crypto/x509.h"
#include "crypto/x509_ext.h"
#include "evidence/snp_cert_table.h"
#include "evidence/snp_report.h"

namespace vouch::attest {
namespace {

using evidence::SnpAttestationReport;
using evidence::SnpProduct;
using evidence::SnpSigningKey;
using evidence::SnpTcbVersion;
using nlohmann::json;

using Asn1TypePtr = std::unique_ptr<ASN1_TYPE, crypto::OsslDeleter<ASN1_TYPE_free>>;

// ---- Verdict helpers ---------------------------------------------------------------------

StatusCode CodeFor(std::string_view reason) {
  if (reason == kSnpMalformedReport) return StatusCode::kInvalidArgument;
  if (reason == kSnpMissingCollateral) return StatusCode::kFailedPrecondition;
  return StatusCode::kPermissionDenied;
}

Verdict Fail(Verdict v, std::string_view reason, std::string message) {
  v.genuine = false;
  v.tcb_status.clear();
  v.advisory_ids.clear();
  v.error = Status(CodeFor(reason), std::move(message), std::string(reason));
  return v;
}

Verdict NewVerdict() {
  Verdict v;
  v.platform = Platform::kSevSnp;
  v.genuine = false;
  return v;
}

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& a) {
  return HexEncode(std::span<const uint8_t>(a));
}

// Big-endian hex of the 64-bit TCB_VERSION, as AMD tools print it.
std::string TcbRawHex(uint64_t raw) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (size_t i = 0; i < 16; ++i) s[15 - i] = kDigits[(raw >> (4 * i)) & 0xF];
  return s;
}

json TcbJson(const SnpTcbVersion& t) {
  json j = {{"bootloader", t.bootloader}, {"tee", t.tee}, {"snp", t.snp}, {"microcode", t.microcode}};
  if (t.fmc.has_value()) j["fmc"] = *t.fmc;
  j["raw"] = TcbRawHex(t.raw);
  return j;
}

// Fills measurements, report_data and the report-only details. `product` selects the
// TCB_VERSION layout (kUnknown decodes with the Milan/Genoa layout).
void Describe(Verdict& v, const SnpAttestationReport& r, SnpProduct product) {
  json m = json::object();
  m["measurement"] = Hex(r.measurement);
  m["host_data"] = Hex(r.host_data);
  m["policy"] = r.policy.raw;
  m["policy_flags"] = {{"abi_major", r.policy.abi_major},
                       {"abi_minor", r.policy.abi_minor},
                       {"smt", r.policy.smt},
                       {"migrate_ma", r.policy.migrate_ma},
                       {"debug", r.policy.debug},
                       {"single_socket", r.policy.single_socket},
                       {"cxl_allow", r.policy.cxl_allow},
                       {"mem_aes_256_xts", r.policy.mem_aes_256_xts},
                       {"rapl_dis", r.policy.rapl_dis},
                       {"ciphertext_hiding", r.policy.ciphertext_hiding},
                       {"page_swap_disable", r.policy.page_swap_disable}};
  m["debug"] = r.policy.debug;
  m["guest_svn"] = r.guest_svn;
  m["vmpl"] = r.vmpl;
  m["id_key_digest"] = Hex(r.id_key_digest);
  m["author_key_digest"] = Hex(r.author_key_digest);
  m["author_key_en"] = r.author_key_en;
  m["family_id"] = Hex(r.family_id);
  m["image_id"] = Hex(r.image_id);
  const SnpProduct layout = product == SnpProduct::kUnknown ? SnpProduct::kMilan : product;
  m["reported_tcb"] = TcbJson(SnpTcbVersion::Decode(r.reported_tcb, layout));
  m["current_tcb"] = TcbJson(SnpTcbVersion::Decode(r.current_tcb, layout));
  m["committed_tcb"] = TcbJson(SnpTcbVersion::Decode(r.committed_tcb, layout));
  m["launch_tcb"] = TcbJson(SnpTcbVersion::Decode(r.launch_tcb, layout));
  m["chip_id"] = Hex(r.chip_id);
  m["mask_chip_key"] = r.mask_chip_key;
  m["report_id"] = Hex(r.report_id);
  m["report_id_ma"] = Hex(r.report_id_ma);
  m["platform_info"] = r.platform_info.raw;
  v.measurements = std::move(m);
  v.report_data_hex = Hex(r.report_data);

  json d = json::object();
  d["report_version"] = r.version;
  d["signing_key"] = std::string(evidence::SnpSigningKeyName(r.signing_key));
  d["product"] = std::string(evidence::SnpProductName(product));
  d["debug"] = r.policy.debug;
  d["firmware"] = {{"current", std::to_string(r.current_major) + "." + std::to_string(r.current_minor) + "." +
                                   std::to_string(r.current_build)},
                   {"committed", std::to_string(r.committed_major) + "." + std::to_string(r.committed_minor) +
                                     "." + std::to_string(r.committed_build)}};
  if (r.cpuid_fam_id.has_value()) {
    d["cpuid"] = {{"family", *r.cpuid_fam_id}, {"model", *r.cpuid_mod_id}, {"stepping", *r.cpuid_step}};
  }
  if (r.launch_mit_vector.has_value()) {
    d["launch_mit_vector"] = *r.launch_mit_vector;
    d["current_mit_vector"] = *r.current_mit_vector;
  }
  v.details = std::move(d);
}

// ---- Certificate helpers -----------------------------------------------------------------

constexpr std::string_view kAmdOidPrefix = "1.3.6.1.4.1.3704.1.";

std::string Who(AmdLeafKind kind) { return kind == AmdLeafKind::kVlek ? "VLEK" : "VCEK"; }

std::string DescribeCert(X509* c) {
  std::string cn = crypto::SubjectCommonName(c);
  return cn.empty() ? "(no CN)" : "CN=" + cn;
}

// The DER value of the AMD extension "1.3.6.1.4.1.3704.1.<suffix>", or nullopt.
std::optional<std::span<const uint8_t>> AmdExtension(X509* cert, std::string_view suffix) {
  return crypto::ExtensionValue(cert, std::string(kAmdOidPrefix) + std::string(suffix));
}

Asn1TypePtr ParseWhole(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  Asn1TypePtr t(d2i_ASN1_TYPE(nullptr, &p, static_cast<long>(der.size())));
  if (!t || p != der.data() + der.size()) {
    crypto::DrainOpensslErrors();
    return nullptr;
  }
  return t;
}

// An SPL extension: a DER INTEGER 0..255.
Result<std::optional<uint8_t>> SplExtension(X509* cert, std::string_view suffix, std::string_view name) {
  auto der = AmdExtension(cert, suffix);
  if (!der.has_value()) return std::optional<uint8_t>();
  Asn1TypePtr t = ParseWhole(*der);
  int64_t v = -1;
  if (!t || ASN1_TYPE_get(t.get()) != V_ASN1_INTEGER || ASN1_INTEGER_get_int64(&v, t->value.integer) != 1 ||
      v < 0 || v > 255) {
    crypto::DrainOpensslErrors();
    return Status(StatusCode::kPermissionDenied,
                  "certificate extension " + std::string(name) + " (" + std::string(kAmdOidPrefix) +
                      std::string(suffix) + ") is not an INTEGER 0..255",
                  std::string(kSnpMalformedCertificate));
  }
  return std::optional<uint8_t>(static_cast<uint8_t>(v));
}

std::optional<std::string> StringExtension(X509* cert, std::string_view suffix) {
  auto der = AmdExtension(cert, suffix);
  if (!der.has_value()) return std::nullopt;
  Asn1TypePtr t = ParseWhole(*der);
  if (!t) return std::nullopt;
  int type = ASN1_TYPE_get(t.get());
  if (type != V_ASN1_IA5STRING && type != V_ASN1_UTF8STRING && type != V_ASN1_PRINTABLESTRING) return std::nullopt;
  const ASN1_STRING* s = t->value.asn1_string;
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// Facts read from a VCEK/VLEK (AMD "VCEK Certificate and KDS Interface" spec, table 8).
struct LeafFacts {
  std::optional<std::string> product_name;  // .2
  std::optional<uint8_t> bl, tee, snp, ucode, fmc;  // .3.1 .3.2 .3.3 .3.8 .3.9
  std::optional<std::array<uint8_t, 64>> hwid;      // .4: raw 64 bytes, or OCTET STRING(64)
  bool hwid_malformed = false;
  std::optional<std::string> csp_id;  // .5, VLEK only
};

Result<LeafFacts> ReadLeafFacts(X509* leaf) {
  LeafFacts f;
  f.product_name = StringExtension(leaf, "2");
  VOUCH_ASSIGN_OR_RETURN(f.bl, SplExtension(leaf, "3.1", "blSPL"));
  VOUCH_ASSIGN_OR_RETURN(f.tee, SplExtension(leaf, "3.2", "teeSPL"));
  VOUCH_ASSIGN_OR_RETURN(f.snp, SplExtension(leaf, "3.3", "snpSPL"));
  VOUCH_ASSIGN_OR_RETURN(f.ucode, SplExtension(leaf, "3.8", "ucodeSPL"));
  VOUCH_ASSIGN_OR_RETURN(f.fmc, SplExtension(leaf, "3.9", "fmcSPL"));
  if (auto hw = AmdExtension(leaf, "4"); hw.has_value()) {
    std::span<const uint8_t> raw = *hw;
    // KDS puts the 64 bytes in the extension value directly; some issuers wrap them in an
    // OCTET STRING (04 40 ...). Accept exactly these two forms.
    if (raw.size() == 66 && raw[0] == 0x04 && raw[1] == 0x40) raw = raw.subspan(2);
    if (raw.size() == 64) {
      std::array<uint8_t, 64> a{};
      std::copy(raw.begin(), raw.end(), a.begin());
      f.hwid = a;
    } else {
      f.hwid_malformed = true;
    }
  }
  f.csp_id = StringExtension(leaf, "5");
  return f;
}

bool IsEcKey(X509* c) {
  EVP_PKEY* key = X509_get0_pubkey(c);
  crypto::DrainOpensslErrors();
  return key != nullptr && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC;
}

bool SameDer(X509* a, X509* b) {
  if (a == nullptr || b == nullptr) return false;
  auto da = crypto::CertToDer(a);
  auto db = crypto::CertToDer(b);
  return da.ok() && db.ok() && *da == *db;
}

// RSASSA-PSS with SHA-384 (AMD KDS certificates; VCEK spec §2).
bool IsRsaPssSha384(X509* c) {
  int mdnid = NID_undef, pknid = NID_undef, secbits = 0;
  uint32_t flags = 0;
  bool ok = X509_get_signature_info(c, &mdnid, &pknid, &secbits, &flags) == 1;
  crypto::DrainOpensslErrors();
  return ok && pknid == EVP_PKEY_RSA_PSS && mdnid == NID_sha384;
}

// ---- The checks --------------------------------------------------------------------------

struct ChainResult {
  const AmdRootSet* pinned = nullptr;
  AmdLeafKind kind = AmdLeafKind::kVcek;
};

// ARK pinned (DER), ARK self-signed, ASK/ASVK signed by ARK, leaf signed by ASK/ASVK, all
// RSASSA-PSS/SHA-384, each valid at `at`, then OpenSSL path validation at `at` with default
// (non-strict) flags plus self-signature checking. AMD certificates fail
// X509_V_FLAG_X509_STRICT only for lacking an Authority Key Identifier, which carries no
// security weight here because every link is checked by signature above, and the root is
// pinned by DER; so strict mode is left off for these chains alone.
Result<ChainResult> VerifyChain(X509* leaf, X509* ask, X509* ark, TimePoint at, AmdLeafKind leaf_kind_hint,
                                std::span<const AmdRootSet> roots) {
  auto untrusted = [](std::string msg) {
    return Status(StatusCode::kPermissionDenied, std::move(msg), std::string(kSnpChainUntrusted));
  };
  const std::string leaf_name = Who(leaf_kind_hint);
  if (ask == nullptr) return untrusted("no ASK/ASVK signs the " + leaf_name);
  if (ark == nullptr) return untrusted("no AMD root (ARK) signs the " + leaf_name + "'s issuer");
  ChainResult out;
  out.pinned = FindPinnedArk(ark, roots);
  if (out.pinned == nullptr) {
    return untrusted("ARK " + DescribeCert(ark) + " is not one of the pinned AMD roots (compared by DER)");
  }
  struct Link {
    X509* cert;
    const char* what;
  };
  const Link links[] = {{ark, "ARK"}, {ask, "ASK/ASVK"}, {leaf, leaf_name == "VLEK" ? "VLEK" : "VCEK"}};
  for (const Link& l : links) {
    if (!IsRsaPssSha384(l.cert)) {
      return untrusted(std::string(l.what) + " " + DescribeCert(l.cert) +
                       " is not signed with RSASSA-PSS/SHA-384 as AMD certificates are");
    }
  }
  if (!SignedBy(ark, ark)) return untrusted("ARK self-signature does not verify");
  if (!SignedBy(ask, ark)) return untrusted("ASK/ASVK " + DescribeCert(ask) + " is not signed by the pinned ARK-" +
                                            std::string(evidence::SnpProductName(out.pinned->product)));
  if (!SignedBy(leaf, ask)) {
    return untrusted(leaf_name + " " + DescribeCert(leaf) + " is not signed by its issuer " + DescribeCert(ask));
  }
  for (const Link& l : links) {
    TimePoint nb = crypto::NotBefore(l.cert), na = crypto::NotAfter(l.cert);
    if (at < nb || at > na) {
      return Status(StatusCode::kPermissionDenied,
                    std::string(l.what) + " " + DescribeCert(l.cert) + " is valid " + FormatRfc3339(nb) + ".." +
                        FormatRfc3339(na) + ", verification time is " + FormatRfc3339(at),
                    std::string(kSnpCertExpired));
    }
  }
  // Leaf kind: decided by which pinned intermediate signed it when it is a built-in one;
  // otherwise (an ASK supplied as collateral) by the VLEK-only cspId extension.
  if (SameDer(ask, out.pinned->asvk)) {
    out.kind = AmdLeafKind::kVlek;
  } else if (SameDer(ask, out.pinned->ask)) {
    out.kind = AmdLeafKind::kVcek;
  } else {
    out.kind = leaf_kind_hint;
  }

  crypto::X509StorePtr store(X509_STORE_new());
  crypto::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  crypto::X509StackPtr chain(sk_X509_new_null());
  if (!store || !ctx || !chain || X509_STORE_add_cert(store.get(), ark) != 1 || X509_up_ref(ask) != 1) {
    return crypto::OpensslError("building the AMD certificate store");
  }
  crypto::X509Ptr ask_ref(ask);  // owns the reference just taken
  if (sk_X509_push(chain.get(), ask_ref.get()) <= 0) return crypto::OpensslError("building the AMD certificate store");
  (void)ask_ref.release();  // now owned by `chain`
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain.get()) != 1) {
    return crypto::OpensslError("initialising AMD chain verification");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(ToUnixSeconds(at)));
  X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_X509_STRICT);
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CHECK_SS_SIGNATURE);
  X509_VERIFY_PARAM_set_depth(param, 2);
  int rc = X509_verify_cert(ctx.get());
  int err = X509_STORE_CTX_get_error(ctx.get());
  int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  crypto::DrainOpensslErrors();
  if (rc != 1) {
    const char* at_cert = depth == 0 ? "the leaf" : depth == 1 ? "the ASK/ASVK" : "the ARK";
    std::string msg = std::string("AMD chain (") + at_cert + "): " + X509_verify_cert_error_string(err);
    if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID) {
      return Status(StatusCode::kPermissionDenied, std::move(msg), std::string(kSnpCertExpired));
    }
    return untrusted(std::move(msg));
  }
  STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
  if (built == nullptr || sk_X509_num(built) != 3 || X509_cmp(sk_X509_value(built, 1), ask) != 0 ||
      X509_cmp(sk_X509_value(built, 2), ark) != 0) {
    return untrusted("AMD chain: OpenSSL built an unexpected path");
  }
  return out;
}

// The core: every check on one (report, leaf, ASK/ASVK, ARK). Order: parse, signature
// algorithm, signing key present, chain, key kind, product, TCB, hwID, report signature. The
// binding checks run before the (costlier) signature so that a wrong certificate for a report
// is named as such; all of them must pass either way.
Verdict VerifyResolved(std::span<const uint8_t> bytes, X509* leaf, X509* ask, X509* ark, TimePoint at,
                       std::span<const AmdRootSet> roots) {
  Verdict v = NewVerdict();
  auto parsed = evidence::ParseSnpReport(bytes);
  if (!parsed.ok()) {
    v.details = {{"parse_error", parsed.status().reason()}};
    return Fail(std::move(v), kSnpMalformedReport, parsed.status().message());
  }
  const SnpAttestationReport& r = *parsed;
  Describe(v, r, r.ProductFromCpuid());

  if (r.signature_algo != evidence::kSnpSignatureAlgoEcdsaP384Sha384) {
    return Fail(std::move(v), kSnpUnsupportedAlgo,
                "SNP report signature_algo is " + std::to_string(r.signature_algo) + ", expected 1 (ECDSA P-384 with SHA-384)");
  }
  if (r.signing_key == SnpSigningKey::kNone) {
    return Fail(std::move(v), kSnpSigningKeyMismatch, "SNP report is unsigned (signing_key 7, none)");
  }
  if (leaf == nullptr) return Fail(std::move(v), kSnpMissingCollateral, "no VCEK/VLEK certificate supplied");

  auto facts = ReadLeafFacts(leaf);
  if (!facts.ok()) return Fail(std::move(v), kSnpMalformedCertificate, facts.status().message());
  const AmdLeafKind hint = facts->csp_id.has_value() ? AmdLeafKind::kVlek : AmdLeafKind::kVcek;

  auto chain = VerifyChain(leaf, ask, ark, at, hint, roots);
  if (!chain.ok()) return Fail(std::move(v), chain.status().reason(), chain.status().message());
  const AmdLeafKind kind = chain->kind;
  const std::string who = Who(kind);
  v.details["signing_key"] = std::string(AmdLeafKindName(kind));

  const SnpSigningKey expected_key = kind == AmdLeafKind::kVlek ? SnpSigningKey::kVlek : SnpSigningKey::kVcek;
  if (r.signing_key != expected_key) {
    return Fail(std::move(v), kSnpSigningKeyMismatch,
                "SNP report says it is signed by the " + std::string(evidence::SnpSigningKeyName(r.signing_key)) +
                    ", but the certificate is a " + who);
  }

  // Product: the pinned ARK's line; the report's CPUID (v3+) and the leaf's productName must
  // agree with it when present.
  const SnpProduct product = chain->pinned->product;
  const std::string product_name(evidence::SnpProductName(product));
  const SnpProduct from_cpuid = r.ProductFromCpuid();
  if (from_cpuid != SnpProduct::kUnknown && from_cpuid != product) {
    return Fail(std::move(v), kSnpProductMismatch,
                "SNP report CPUID says " + std::string(evidence::SnpProductName(from_cpuid)) +
                    ", but the certificate chain is AMD's " + product_name + " chain");
  }
  if (facts->product_name.has_value()) {
    const SnpProduct from_name = evidence::SnpProductFromName(*facts->product_name);
    if (from_name != product) {
      return Fail(std::move(v), kSnpProductMismatch,
                  who + " productName is '" + *facts->product_name + "', but the chain is AMD's " + product_name +
                      " chain");
    }
  }
  Describe(v, r, product);
  v.details["signing_key"] = std::string(AmdLeafKindName(kind));
  v.details["product"] = product_name;
  if (facts->product_name.has_value()) v.details["product_name"] = *facts->product_name;
  if (facts->csp_id.has_value()) v.details["csp_id"] = *facts->csp_id;
  v.details["certificate_not_after"] = FormatRfc3339(crypto::NotAfter(leaf));

  // TCB: the key is derived from reported_tcb, so the certificate's SPLs must equal it.
  const SnpTcbVersion tcb = SnpTcbVersion::Decode(r.reported_tcb, product);
  struct Spl {
    const char* name;
    std::optional<uint8_t> cert;
    uint8_t report;
  };
  std::vector<Spl> spls = {{"blSPL", facts->bl, tcb.bootloader},
                           {"teeSPL", facts->tee, tcb.tee},
                           {"snpSPL", facts->snp, tcb.snp},
                           {"ucodeSPL", facts->ucode, tcb.microcode}};
  if (product == SnpProduct::kTurin) spls.push_back({"fmcSPL", facts->fmc, tcb.fmc.value_or(0)});
  for (const Spl& s : spls) {
    if (!s.cert.has_value()) {
      return Fail(std::move(v), kSnpMalformedCertificate, who + " lacks the " + std::string(s.name) + " extension");
    }
    if (*s.cert != s.report) {
      return Fail(std::move(v), kSnpTcbMismatch,
                  who + " " + s.name + " is " + std::to_string(*s.cert) + ", but the report's reported_tcb has " +
                      std::to_string(s.report));
    }
  }

  // hwID: a VCEK belongs to one chip. VLEKs are per cloud provider and carry no hwID.
  if (kind == AmdLeafKind::kVcek && !r.mask_chip_key) {
    if (facts->hwid_malformed) {
      return Fail(std::move(v), kSnpMalformedCertificate, "VCEK hwID extension is not 64 bytes");
    }
    if (!facts->hwid.has_value()) {
      return Fail(std::move(v), kSnpMalformedCertificate, "VCEK lacks the hwID extension");
    }
    if (*facts->hwid != r.chip_id) {
      return Fail(std::move(v), kSnpHwidMismatch,
                  "VCEK hwID " + HexEncode(std::span<const uint8_t>(*facts->hwid)).substr(0, 16) +
                      "... does not equal the report's chip_id " + Hex(r.chip_id).substr(0, 16) + "...");
    }
  }

  // Report signature: ECDSA P-384 / SHA-384 over bytes 0x000..0x29F; r, s little-endian.
  EVP_PKEY* key = X509_get0_pubkey(leaf);
  const char* group = nullptr;
  char group_buf[64] = {0};
  size_t group_len = 0;
  if (key != nullptr && EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
      EVP_PKEY_get_group_name(key, group_buf, sizeof(group_buf), &group_len) == 1) {
    group = group_buf;
  }
  crypto::DrainOpensslErrors();
  if (group == nullptr || std::string_view(group) != "secp384r1") {
    return Fail(std::move(v), kSnpUnsupportedAlgo,
                who + " key is " + (key ? crypto::DescribeKey(key) : std::string("missing")) + ", expected EC P-384");
  }
  auto der = crypto::EcdsaRawToDer(r.signature_r, r.signature_s, /*big_endian=*/false);
  if (!der.ok()) return Fail(std::move(v), kSnpInvalidSignature, "SNP report signature: " + der.status().message());
  if (!crypto::Verify(key, bytes.first(evidence::kSnpSignedSize), *der, crypto::DigestAlg::kSha384)) {
    return Fail(std::move(v), kSnpInvalidSignature,
                "SNP report signature does not verify with the " + who + " key");
  }

  v.genuine = true;
  // SNP has no TCB Info collateral: the VCEK is issued for exactly this reported_tcb, so a
  // genuine report is "UpToDate" here; minimum TCB components are a policy matter.
  v.tcb_status = "UpToDate";
  v.error.reset();
  return v;
}

// ---- Candidate resolution (files, folders, built-ins) --------------------------------------

struct Pools {
  std::vector<X509*> intermediates;  // in preference order
  std::vector<X509*> arks;           // in preference order
};

void AddBuiltins(Pools& p, std::span<const AmdRootSet> roots) {
  for (const AmdRootSet& s : roots) {
    p.intermediates.push_back(s.ask);
    p.intermediates.push_back(s.asvk);
  }
}

void AddBuiltinArks(Pools& p, std::span<const AmdRootSet> roots) {
  for (const AmdRootSet& s : roots) p.arks.push_back(s.ark);
}

// The intermediate that signed `leaf` (first by preference), else the pool's only member (an
// explicitly given ASK, so that the error names it); the ARK likewise for the intermediate.
std::pair<X509*, X509*> Resolve(X509* leaf, const Pools& p) {
  X509* ask = nullptr;
  for (X509* c : p.intermediates) {
    if (SignedBy(leaf, c)) {
      ask = c;
      break;
    }
  }
  if (ask == nullptr && p.intermediates.size() == 1) ask = p.intermediates.front();
  X509* ark = nullptr;
  for (X509* c : p.arks) {
    if (SignedBy(ask, c)) {
      ark = c;
      break;
    }
  }
  if (ark == nullptr && p.arks.size() == 1) ark = p.arks.front();
  return {ask, ark};
}

// Splits RSA certificates into self-signed (ARK candidates) and others (intermediates).
void Classify(std::vector<crypto::X509Ptr>& certs, std::vector<X509*>& leaves, std::vector<X509*>& intermediates,
              std::vector<X509*>& arks) {
  for (auto& c : certs) {
    if (IsEcKey(c.get())) {
      leaves.push_back(c.get());
    } else if (crypto::IsSelfSigned(c.get())) {
      arks.push_back(c.get());
    } else {
      intermediates.push_back(c.get());
    }
  }
}

Result<std::vector<crypto::X509Ptr>> LoadCertFile(const std::string& path) {
  VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, 1 << 20));
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string::npos) return crypto::CertsFromPem(text);
  VOUCH_ASSIGN_OR_RETURN(crypto::X509Ptr c, crypto::CertFromDer(AsBytes(text)));
  std::vector<crypto::X509Ptr> out;
  out.push_back(std::move(c));
  return out;
}

bool HasCertExtension(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return ext == ".der" || ext == ".cer" || ext == ".crt" || ext == ".pem";
}

// How well a leaf fits a report, before any signature check, most telling first: hwID ==
// chip_id, SPLs == reported_tcb (under the productName's layout), kind (cspId present iff the
// report says VLEK).
int MatchScore(X509* leaf, const SnpAttestationReport& r) {
  auto facts = ReadLeafFacts(leaf);
  if (!facts.ok()) return 0;
  int score = 0;
  if (facts->hwid.has_value() && *facts->hwid == r.chip_id) score += 4;
  SnpProduct product = facts->product_name ? evidence::SnpProductFromName(*facts->product_name) : SnpProduct::kUnknown;
  SnpTcbVersion t = SnpTcbVersion::Decode(r.reported_tcb, product);
  if (facts->bl == t.bootloader && facts->tee == t.tee && facts->snp == t.snp && facts->ucode == t.microcode) score += 2;
  const bool is_vlek = facts->csp_id.has_value();
  if (is_vlek == (r.signing_key == SnpSigningKey::kVlek)) score += 1;
  return score;
}

}  // namespace

Verdict VerifySnpReportWithCerts(std::span<const uint8_t> report, X509* leaf, X509* ask, X509* ark, TimePoint at) {
  return VerifySnpReportWithRoots(report, leaf, ask, ark, at, BuiltinAmdRoots());
}

Verdict VerifySnpReportWithRoots(std::span<const uint8_t> report, X509* leaf, X509* ask, X509* ark, TimePoint at,
                                 std::span<const AmdRootSet> roots) {
  if (leaf != nullptr && (ask == nullptr || ark == nullptr)) {
    Pools p;
    if (ask != nullptr) {
      p.intermediates.push_back(ask);
    } else {
      AddBuiltins(p, roots);
    }
    if (ark != nullptr) {
      p.arks.push_back(ark);
    } else {
      AddBuiltinArks(p, roots);
    }
    auto [a, k] = Resolve(leaf, p);
    ask = a;
    ark = k;
  }
  return VerifyResolved(report, leaf, ask, ark, at, roots);
}

Result<SnpCertChain> LoadSnpCertChainFiles(const std::string& leaf_path, const std::optional<std::string>& chain_pem_path) {
  auto leaf_certs = LoadCertFile(leaf_path);
  if (!leaf_certs.ok()) return leaf_certs.status().WithContext("loading VCEK/VLEK '" + leaf_path + "'");
  if (leaf_certs->size() != 1 || !IsEcKey((*leaf_certs)[0].get())) {
    return InvalidArgument("'" + leaf_path + "' must hold exactly one VCEK/VLEK (EC P-384) certificate",
                           std::string(kSnpMalformedCertificate));
  }
  SnpCertChain out;
  out.leaf = std::move((*leaf_certs)[0]);
  if (!chain_pem_path.has_value()) return out;
  auto chain = LoadCertFile(*chain_pem_path);
  if (!chain.ok()) return chain.status().WithContext("loading AMD chain '" + *chain_pem_path + "'");
  std::vector<X509*> leaves, intermediates, arks;
  Classify(*chain, leaves, intermediates, arks);
  Pools p;
  p.intermediates = intermediates;
  AddBuiltinArks(p, BuiltinAmdRoots());
  p.arks.insert(p.arks.end(), arks.begin(), arks.end());
  auto [ask, ark] = Resolve(out.leaf.get(), p);
  for (auto& c : *chain) {
    if (ask != nullptr && c.get() == ask) out.ask = std::move(c);
    else if (ark != nullptr && c.get() == ark) out.ark = std::move(c);
  }
  // A built-in ARK chosen by Resolve is not owned by `chain`: copy it.
  if (!out.ark && ark != nullptr) {
    if (X509_up_ref(ark) == 1) out.ark.reset(ark);
  }
  return out;
}

Verdict VerifySnpReportWithFiles(std::span<const uint8_t> report, const std::string& leaf_path,
                                 const std::optional<std::string>& chain_pem_path, TimePoint at) {
  auto parsed = evidence::ParseSnpReport(report);
  if (!parsed.ok()) return VerifyResolved(report, nullptr, nullptr, nullptr, at, BuiltinAmdRoots());
  auto chain = LoadSnpCertChainFiles(leaf_path, chain_pem_path);
  if (!chain.ok()) {
    Verdict v = NewVerdict();
    Describe(v, *parsed, parsed->ProductFromCpuid());
    std::string reason = chain.status().reason() == kSnpMalformedCertificate ? std::string(kSnpMalformedCertificate)
                                                                              : std::string(kSnpMissingCollateral);
    return Fail(std::move(v), reason, chain.status().message());
  }
  return VerifySnpReportWithCerts(report, chain->leaf.get(), chain->ask.get(), chain->ark.get(), at);
}

Verdict VerifySnpReport(std::span<const uint8_t> report, const std::optional<std::string>& collateral_dir,
                        TimePoint at) {
  auto parsed = evidence::ParseSnpReport(report);
  if (!parsed.ok()) return VerifyResolved(report, nullptr, nullptr, nullptr, at, BuiltinAmdRoots());
  if (!collateral_dir.has_value()) {
    Verdict v = NewVerdict();
    Describe(v, *parsed, parsed->ProductFromCpuid());
    return Fail(std::move(v), kSnpMissingCollateral,
                "SEV-SNP verification needs the VCEK/VLEK certificate: pass a collateral folder holding it "
                "(vouch does not fetch from AMD KDS)");
  }
  // Read every certificate file of the folder, sorted by name for determinism.
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  std::filesystem::directory_iterator it(*collateral_dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec) && !fec && HasCertExtension(it->path())) files.push_back(it->path());
    if (files.size() > 256) break;
  }
  if (ec) {
    Verdict v = NewVerdict();
    Describe(v, *parsed, parsed->ProductFromCpuid());
    return Fail(std::move(v), kSnpMissingCollateral, "cannot read collateral folder '" + *collateral_dir + "': " + ec.message());
  }
  std::sort(files.begin(), files.end());
  std::vector<crypto::X509Ptr> owned;
  std::vector<std::pair<X509*, std::string>> file_of;
  for (const auto& f : files) {
    auto certs = LoadCertFile(f.string());
    if (!certs.ok()) continue;  // not a certificate: ignore, the folder may hold other things
    for (auto& c : *certs) {
      file_of.emplace_back(c.get(), f.filename().string());
      owned.push_back(std::move(c));
    }
  }
  auto name_of = [&file_of](X509* c) {
    for (const auto& [cert, name] : file_of) {
      if (cert == c) return name;
    }
    return std::string();
  };
  std::vector<X509*> leaves, intermediates, arks;
  Classify(owned, leaves, intermediates, arks);
  if (leaves.empty()) {
    Verdict v = NewVerdict();
    Describe(v, *parsed, parsed->ProductFromCpuid());
    return Fail(std::move(v), kSnpMissingCollateral,
                "no VCEK/VLEK certificate (*.der, *.cer, *.crt, *.pem) in '" + *collateral_dir + "'");
  }
  // Try the leaves in order of fit; the first genuine verdict wins, else the best fit's failure.
  std::vector<std::pair<int, X509*>> ranked;
  for (X509* l : leaves) ranked.emplace_back(MatchScore(l, *parsed), l);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  Pools p;
  p.intermediates = intermediates;
  AddBuiltins(p, BuiltinAmdRoots());
  AddBuiltinArks(p, BuiltinAmdRoots());
  p.arks.insert(p.arks.end(), arks.begin(), arks.end());
  // A failure from an AMD-issued leaf (its chain held, even if expired) says more about the
  // report than one from a stray or forged certificate: report the best-fitting such failure,
  // else the best-fitting failure of all.
  auto stage = [](const Verdict& v) {
    const std::string code = v.error.has_value() ? v.error->reason() : std::string();
    return (code == kSnpMalformedCertificate || code == kSnpChainUntrusted) ? 0 : 1;
  };
  std::optional<Verdict> best_failure;
  for (const auto& [score, leaf] : ranked) {
    auto [ask, ark] = Resolve(leaf, p);
    Verdict v = VerifyResolved(report, leaf, ask, ark, at, BuiltinAmdRoots());
    v.details["certificate_file"] = name_of(leaf);
    if (v.genuine) return v;
    if (!best_failure.has_value() || stage(v) > stage(*best_failure)) best_failure = std::move(v);
  }
  return *best_failure;
}

}  // namespace vouch::attest

namespace vouch::attest {
namespace {

// Certificates of `bytes` (PEM with one or more certificates, or one DER); empty when neither.
std::vector<crypto::X509Ptr> CertsOf(std::span<const uint8_t> bytes) {
  std::vector<crypto::X509Ptr> out;
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    auto certs = crypto::CertsFromPem(text);
    if (certs.ok()) out = std::move(*certs);
  } else {
    auto c = crypto::CertFromDer(bytes);
    if (c.ok()) out.push_back(std::move(*c));
  }
  crypto::DrainOpensslErrors();
  return out;
}

bool IsSimArk(X509* ark) { return ark != nullptr && IsSimRootCa(ark) && FindPinnedArk(ark) == nullptr; }

// The CRL checks of VerifySnpEvidence on a verdict whose chain held.
Verdict CheckCrl(Verdict v, std::span<const uint8_t> crl_bytes, X509* leaf, X509* ask, X509* ark, TimePoint at) {
  auto crl = crypto::CrlFromDerOrPem(crl_bytes);
  crypto::DrainOpensslErrors();
  if (!crl.ok()) return Fail(std::move(v), kSnpCrlInvalid, "AMD CRL: " + crl.status().message());
  X509_CRL* c = crl->get();
  if (X509_NAME_cmp(X509_CRL_get_issuer(c), X509_get_subject_name(ark)) != 0) {
    return Fail(std::move(v), kSnpCrlInvalid,
                "AMD CRL is issued by " + crypto::NameToString(X509_CRL_get_issuer(c)) + ", not by the chain's ARK " +
                    DescribeCert(ark));
  }
  if (!CrlSignedBy(c, ark)) return Fail(std::move(v), kSnpCrlInvalid, "AMD CRL signature does not verify with the ARK");
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(c);
  if (next != nullptr && crypto::Asn1TimeToTimePoint(next) < at) {
    return Fail(std::move(v), kSnpCrlExpired,
                "AMD CRL nextUpdate " + FormatRfc3339(crypto::Asn1TimeToTimePoint(next)) + " is before the verification time " +
                    FormatRfc3339(at));
  }
  const std::pair<X509*, const char*> checked[] = {{ask, "ASK/ASVK"}, {leaf, "VCEK/VLEK"}};
  for (const auto& [cert, what] : checked) {
    X509_REVOKED* r = nullptr;
    if (X509_CRL_get0_by_serial(c, &r, X509_get0_serialNumber(cert)) == 1) {
      return Fail(std::move(v), kSnpCertRevoked,
                  std::string(what) + " " + DescribeCert(cert) + " (serial " + crypto::SerialHex(cert) +
                      ") is revoked by the AMD CRL");
    }
  }
  crypto::DrainOpensslErrors();
  v.details["crl_checked"] = true;
  return v;
}

}  // namespace

Verdict VerifySnpEvidence(std::span<const uint8_t> evidence, const SnpCollateral& collateral, TimePoint at,
                          const SnpTrustOptions& trust) {
  auto parts = evidence::SplitSnpEvidence(evidence);
  if (!parts.ok()) {
    Verdict v = NewVerdict();
    v.details = {{"parse_error", parts.status().reason()}};
    return Fail(std::move(v), kSnpMalformedReport, parts.status().message());
  }
  auto parsed = evidence::ParseSnpReport(parts->report);
  if (!parsed.ok()) return VerifyResolved(parts->report, nullptr, nullptr, nullptr, at, BuiltinAmdRoots());
  auto describe = [&parsed]() {
    Verdict v = NewVerdict();
    Describe(v, *parsed, parsed->ProductFromCpuid());
    return v;
  };
  auto table = evidence::ParseSnpCertTable(parts->cert_table);
  if (!table.ok()) {
    Verdict v = describe();
    v.details["parse_error"] = table.status().reason();
    return Fail(std::move(v), kSnpMalformedCertTable, table.status().message());
  }

  // Candidates: the table's first, then the collateral's.
  std::vector<crypto::X509Ptr> owned;
  std::vector<X509*> table_leaves, leaves, intermediates, arks;
  for (const auto& e : table->entries) {
    if (e.kind == evidence::SnpCertKind::kOther) continue;
    auto c = crypto::CertFromDer(e.data);
    crypto::DrainOpensslErrors();
    if (!c.ok()) {
      Verdict v = describe();
      return Fail(std::move(v), kSnpMalformedCertificate,
                  "certificate table entry " + std::string(evidence::SnpCertKindName(e.kind)) + " is not a DER certificate");
    }
    X509* x = c->get();
    owned.push_back(std::move(*c));
    switch (e.kind) {
      case evidence::SnpCertKind::kVcek:
      case evidence::SnpCertKind::kVlek: table_leaves.push_back(x); break;
      case evidence::SnpCertKind::kAsk: intermediates.push_back(x); break;
      case evidence::SnpCertKind::kArk: arks.push_back(x); break;
      case evidence::SnpCertKind::kOther: break;
    }
  }
  size_t ignored = 0;
  std::vector<crypto::X509Ptr> extra;
  for (const auto& bytes : collateral.certs) {
    auto certs = CertsOf(bytes);
    if (certs.empty()) ++ignored;
    for (auto& c : certs) extra.push_back(std::move(c));
  }
  std::vector<X509*> extra_leaves, extra_intermediates, extra_arks;
  Classify(extra, extra_leaves, extra_intermediates, extra_arks);
  for (auto& c : extra) owned.push_back(std::move(c));
  leaves = table_leaves;
  leaves.insert(leaves.end(), extra_leaves.begin(), extra_leaves.end());
  intermediates.insert(intermediates.end(), extra_intermediates.begin(), extra_intermediates.end());
  arks.insert(arks.end(), extra_arks.begin(), extra_arks.end());
  if (leaves.empty()) {
    Verdict v = describe();
    return Fail(std::move(v), kSnpMissingCollateral,
                "no VCEK/VLEK certificate: neither the evidence's certificate table nor the collateral holds one");
  }

  std::vector<std::pair<int, X509*>> ranked;
  for (X509* l : leaves) ranked.emplace_back(MatchScore(l, *parsed), l);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  Pools p;
  p.intermediates = intermediates;
  AddBuiltins(p, BuiltinAmdRoots());
  p.arks = arks;
  AddBuiltinArks(p, BuiltinAmdRoots());
  auto stage = [](const Verdict& v) {
    const std::string code = v.error.has_value() ? v.error->reason() : std::string();
    return (code == kSnpMalformedCertificate || code == kSnpChainUntrusted || code == kSnpSimNotAllowed) ? 0 : 1;
  };
  std::optional<Verdict> best_failure;
  for (const auto& [score, leaf] : ranked) {
    auto [ask, ark] = Resolve(leaf, p);
    const bool from_table = std::find(table_leaves.begin(), table_leaves.end(), leaf) != table_leaves.end();
    Verdict v;
    if (IsSimArk(ark)) {
      if (!trust.allow_sim) {
        v = describe();
        v.insecure_sim = true;
        v = Fail(std::move(v), kSnpSimNotAllowed,
                 "the chain ends in an INSECURE sim ARK (" + DescribeCert(ark) + ") and sim evidence is not allowed");
      } else {
        // The sim's own root set: its ARK and the ASK it signed, for the product the leaf names.
        AmdRootSet sim_set;
        auto facts = ReadLeafFacts(leaf);
        sim_set.product = facts.ok() && facts->product_name ? evidence::SnpProductFromName(*facts->product_name)
                                                            : parsed->ProductFromCpuid();
        sim_set.ark = ark;
        sim_set.ask = ask;
        v = VerifyResolved(parts->report, leaf, ask, ark, at, std::span<const AmdRootSet>(&sim_set, 1));
        v.insecure_sim = true;
        v.details["trust_root"] = "sim";
      }
    } else {
      v = VerifyResolved(parts->report, leaf, ask, ark, at, BuiltinAmdRoots());
      v.details["trust_root"] = "amd";
    }
    if (v.genuine && !collateral.crl.empty()) v = CheckCrl(std::move(v), collateral.crl, leaf, ask, ark, at);
    v.details["certificate_source"] = from_table ? "cert_table" : "collateral";
    if (ignored > 0) v.details["ignored_certificates"] = ignored;
    if (v.genuine) return v;
    if (!best_failure.has_value() || stage(v) > stage(*best_failure)) best_failure = std::move(v);
  }
  return *best_failure;
}

Result<SnpCollateral> LoadSnpCollateralDir(const std::string& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  std::filesystem::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec) && !fec && HasCertExtension(it->path())) files.push_back(it->path());
    if (files.size() > 256) break;
  }
  if (ec) return InvalidArgument("cannot read collateral folder '" + dir + "': " + ec.message(), "collateral_dir_unreadable");
  std::sort(files.begin(), files.end());
  SnpCollateral out;
  for (const auto& f : files) {
    auto text = ReadWholeFile(f.string(), 1 << 20);
    if (!text.ok()) continue;
    std::vector<uint8_t> bytes(text->begin(), text->end());
    const std::string name = f.filename().string();
    if (name == "crl.der" || name == "crl.pem") {
      out.crl = std::move(bytes);
    } else {
      out.certs.push_back(std::move(bytes));
    }
  }
  return out;
}

}  // namespace vouch::attest
