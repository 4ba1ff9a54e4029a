#include "attest/sim_pki.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>

#include <string>

#include "attest/pck_extension.h"
#include "base/encoding.h"
#include "crypto/signature.h"
#include "crypto/x509.h"

namespace vouch::attest::sim {

using crypto::X509Ptr;
namespace {

// ---- a minimal DER writer for the SGX extension ----
void PutLen(std::vector<uint8_t>* out, size_t n) {
  if (n < 0x80) {
    out->push_back(static_cast<uint8_t>(n));
    return;
  }
  std::vector<uint8_t> b;
  for (size_t v = n; v > 0; v >>= 8) b.insert(b.begin(), static_cast<uint8_t>(v));
  out->push_back(static_cast<uint8_t>(0x80 | b.size()));
  out->insert(out->end(), b.begin(), b.end());
}
std::vector<uint8_t> Tlv(uint8_t tag, std::span<const uint8_t> content) {
  std::vector<uint8_t> out{tag};
  PutLen(&out, content.size());
  out.insert(out.end(), content.begin(), content.end());
  return out;
}
std::vector<uint8_t> Oid(const std::string& dotted) {
  std::vector<uint64_t> arcs;
  size_t pos = 0;
  while (pos <= dotted.size()) {
    size_t dot = dotted.find('.', pos);
    if (dot == std::string::npos) dot = dotted.size();
    arcs.push_back(std::stoull(dotted.substr(pos, dot - pos)));
    pos = dot + 1;
  }
  std::vector<uint8_t> body;
  auto put = [&body](uint64_t v) {
    std::vector<uint8_t> b{static_cast<uint8_t>(v & 0x7F)};
    for (v >>= 7; v > 0; v >>= 7) b.insert(b.begin(), static_cast<uint8_t>(0x80 | (v & 0x7F)));
    body.insert(body.end(), b.begin(), b.end());
  };
  put(arcs[0] * 40 + arcs[1]);
  for (size_t i = 2; i < arcs.size(); ++i) put(arcs[i]);
  return Tlv(0x06, body);
}
std::vector<uint8_t> UInt(uint8_t tag, uint64_t v) {
  std::vector<uint8_t> b;
  do {
    b.insert(b.begin(), static_cast<uint8_t>(v & 0xFF));
    v >>= 8;
  } while (v > 0);
  if (b[0] & 0x80) b.insert(b.begin(), 0);
  return Tlv(tag, b);
}
std::vector<uint8_t> Seq(const std::vector<std::vector<uint8_t>>& items) {
  std::vector<uint8_t> content;
  for (const auto& i : items) content.insert(content.end(), i.begin(), i.end());
  return Tlv(0x30, content);
}
std::vector<uint8_t> Pair(const std::string& oid, std::vector<uint8_t> value) { return Seq({Oid(oid), std::move(value)}); }

}  // namespace

std::vector<uint8_t> SgxExtensionDer(const std::array<uint8_t, 16>& comp_svns, uint16_t pcesvn,
                                     std::span<const uint8_t> cpusvn, std::span<const uint8_t> ppid,
                                     std::span<const uint8_t> pce_id, std::span<const uint8_t> fmspc) {
  const std::string r = kSgxExtensionOid;
  std::vector<std::vector<uint8_t>> tcb;
  for (size_t i = 0; i < 16; ++i) tcb.push_back(Pair(r + ".2." + std::to_string(i + 1), UInt(0x02, comp_svns[i])));
  tcb.push_back(Pair(r + ".2.17", UInt(0x02, pcesvn)));
  tcb.push_back(Pair(r + ".2.18", Tlv(0x04, cpusvn)));
  return Seq({Pair(r + ".1", Tlv(0x04, ppid)), Pair(r + ".2", Seq(tcb)), Pair(r + ".3", Tlv(0x04, pce_id)),
              Pair(r + ".4", Tlv(0x04, fmspc)), Pair(r + ".5", UInt(0x0A, 0))});
}

namespace {
Status AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  crypto::X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return crypto::OpensslError("add certificate extension");
  return Status::Ok();
}

crypto::X509NamePtr SimName(const std::string& cn, const std::string& org) {
  crypto::X509NamePtr name(X509_NAME_new());
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(org.empty() ? "vouch sim (INSECURE, not Intel)" : org.c_str()),
                             -1, -1, 0);
  return name;
}

// A digest-sign context for RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt: the
// parameters of AMD's KDS certificates and CRLs.
Result<crypto::EvpMdCtxPtr> PssContext(EVP_PKEY* key) {
  crypto::EvpMdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!md || EVP_DigestSignInit(md.get(), &pctx, EVP_sha384(), nullptr, key) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1) {
    return crypto::OpensslError("RSA-PSS signing context");
  }
  return md;
}

Status SetTime(ASN1_TIME* field, TimePoint t) {
  if (ASN1_TIME_set(field, static_cast<time_t>(ToUnixSeconds(t))) == nullptr) return crypto::OpensslError("set time");
  return Status::Ok();
}

}  // namespace

Result<X509Ptr> MakeCert(const CertSpec& s) {
  X509Ptr cert(X509_new());
  if (!cert) return crypto::OpensslError("X509_new");
  X509_set_version(cert.get(), 2);
  crypto::Asn1IntegerPtr serial(ASN1_INTEGER_new());
  ASN1_INTEGER_set_uint64(serial.get(), s.serial);
  X509_set_serialNumber(cert.get(), serial.get());
  auto name = SimName(s.cn, s.organization);
  X509_set_subject_name(cert.get(), name.get());
  X509_set_issuer_name(cert.get(), s.issuer ? X509_get_subject_name(s.issuer) : name.get());
  VOUCH_RETURN_IF_ERROR(SetTime(X509_getm_notBefore(cert.get()), s.not_before));
  VOUCH_RETURN_IF_ERROR(SetTime(X509_getm_notAfter(cert.get()), s.not_after));
  if (X509_set_pubkey(cert.get(), s.subject_key) != 1) return crypto::OpensslError("X509_set_pubkey");
  X509* issuer = s.issuer ? s.issuer : cert.get();
  if (s.standard_extensions) {
    VOUCH_RETURN_IF_ERROR(AddExt(cert.get(), issuer, NID_subject_key_identifier, "hash"));
    VOUCH_RETURN_IF_ERROR(AddExt(cert.get(), issuer, NID_authority_key_identifier, "keyid:always"));
    if (s.ca) {
      std::string bc = "critical,CA:TRUE" + (s.pathlen >= 0 ? ",pathlen:" + std::to_string(s.pathlen) : std::string());
      VOUCH_RETURN_IF_ERROR(AddExt(cert.get(), issuer, NID_basic_constraints, bc.c_str()));
      VOUCH_RETURN_IF_ERROR(AddExt(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign"));
    } else {
      VOUCH_RETURN_IF_ERROR(AddExt(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
      VOUCH_RETURN_IF_ERROR(AddExt(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,nonRepudiation"));
    }
  }
  if (!s.sgx_extension.empty()) {
    crypto::Asn1ObjectPtr oid(OBJ_txt2obj(kSgxExtensionOid, 1));
    crypto::Asn1OctetStringPtr data(ASN1_OCTET_STRING_new());
    if (!oid || !data ||
        ASN1_OCTET_STRING_set(data.get(), s.sgx_extension.data(), static_cast<int>(s.sgx_extension.size())) != 1) {
      return crypto::OpensslError("SGX extension");
    }
    crypto::X509ExtensionPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, data.get()));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) return crypto::OpensslError("add SGX extension");
  }
  for (const RawExtension& e : s.extensions) {
    crypto::Asn1ObjectPtr oid(OBJ_txt2obj(e.oid.c_str(), 1));
    crypto::Asn1OctetStringPtr data(ASN1_OCTET_STRING_new());
    if (!oid || !data || ASN1_OCTET_STRING_set(data.get(), e.value.data(), static_cast<int>(e.value.size())) != 1) {
      return crypto::OpensslError("extension " + e.oid);
    }
    crypto::X509ExtensionPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, data.get()));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) return crypto::OpensslError("add extension " + e.oid);
  }
  if (s.rsa_pss_sha384) {
    VOUCH_ASSIGN_OR_RETURN(crypto::EvpMdCtxPtr md, PssContext(s.issuer_key));
    if (X509_sign_ctx(cert.get(), md.get()) <= 0) return crypto::OpensslError("X509_sign_ctx (RSA-PSS)");
    return cert;
  }
  if (X509_sign(cert.get(), s.issuer_key, EVP_sha256()) <= 0) return crypto::OpensslError("X509_sign");
  return cert;
}

Result<std::vector<uint8_t>> MakeCrl(X509* issuer, EVP_PKEY* key, TimePoint this_update, TimePoint next_update,
                                     const std::vector<X509*>& revoked, bool rsa_pss_sha384) {
  crypto::X509CrlPtr crl(X509_CRL_new());
  if (!crl) return crypto::OpensslError("X509_CRL_new");
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer));
  crypto::Asn1TimePtr t1(ASN1_TIME_new()), t2(ASN1_TIME_new());
  VOUCH_RETURN_IF_ERROR(SetTime(t1.get(), this_update));
  VOUCH_RETURN_IF_ERROR(SetTime(t2.get(), next_update));
  X509_CRL_set1_lastUpdate(crl.get(), t1.get());
  X509_CRL_set1_nextUpdate(crl.get(), t2.get());
  for (X509* c : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    crypto::Asn1IntegerPtr serial(ASN1_INTEGER_dup(X509_get0_serialNumber(c)));
    X509_REVOKED_set_serialNumber(r, serial.get());
    X509_REVOKED_set_revocationDate(r, t1.get());
    X509_CRL_add0_revoked(crl.get(), r);
  }
  X509_CRL_sort(crl.get());
  if (rsa_pss_sha384) {
    VOUCH_ASSIGN_OR_RETURN(crypto::EvpMdCtxPtr md, PssContext(key));
    if (X509_CRL_sign_ctx(crl.get(), md.get()) <= 0) return crypto::OpensslError("X509_CRL_sign_ctx (RSA-PSS)");
    return crypto::CrlToDer(crl.get());
  }
  if (X509_CRL_sign(crl.get(), key, EVP_sha256()) <= 0) return crypto::OpensslError("X509_CRL_sign");
  return crypto::CrlToDer(crl.get());
}

Result<crypto::EvpPkeyPtr> GenerateRsa(unsigned bits) {
  crypto::EvpPkeyPtr key(EVP_RSA_gen(bits));
  if (!key) return crypto::OpensslError("EVP_RSA_gen");
  return key;
}

std::vector<RawExtension> AmdVcekExtensions(const std::string& product_name, uint8_t bl, uint8_t tee, uint8_t snp,
                                            uint8_t ucode, std::span<const uint8_t> hwid) {
  const std::string r = "1.3.6.1.4.1.3704.1";
  std::vector<RawExtension> out;
  out.push_back({r + ".1", UInt(0x02, 1)});
  out.push_back({r + ".2", Tlv(0x16, AsBytes(product_name))});
  const std::pair<const char*, uint8_t> spls[] = {{".3.1", bl}, {".3.2", tee}, {".3.3", snp}, {".3.4", 0},
                                                  {".3.5", 0},  {".3.6", 0},   {".3.7", 0},   {".3.8", ucode}};
  for (const auto& [suffix, v] : spls) out.push_back({r + suffix, UInt(0x02, v)});
  out.push_back({r + ".4", std::vector<uint8_t>(hwid.begin(), hwid.end())});
  return out;
}

// `{"<key>":<body>,"signature":"<hex r||s>"}` with the body signed as written.
Result<std::string> SignedJson(const char* key, const std::string& text, EVP_PKEY* signer) {
  VOUCH_ASSIGN_OR_RETURN(auto der, crypto::Sign(signer, AsBytes(text)));
  VOUCH_ASSIGN_OR_RETURN(auto raw, crypto::EcdsaDerToRaw(der, 32));
  return std::string("{\"") + key + "\":" + text + ",\"signature\":\"" + HexEncode(raw) + "\"}";
}


}  // namespace vouch::attest::sim
