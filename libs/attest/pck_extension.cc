#include "attest/pck_extension.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include <cstdlib>
#include <memory>
#include <vector>
#include <string>

#include "crypto/ossl.h"

namespace vouch::attest {
namespace {

struct AsnSeqDeleter {
  void operator()(ASN1_SEQUENCE_ANY* s) const { sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free); }
};
using AsnSeqPtr = std::unique_ptr<ASN1_SEQUENCE_ANY, AsnSeqDeleter>;

constexpr size_t kMaxDerSize = 64 * 1024;

Status Bad(const std::string& m) { return InvalidArgument("PCK SGX extension: " + m, "malformed_pck_extension"); }

// Decodes a DER SEQUENCE into its elements; requires the whole input to be consumed.
Result<AsnSeqPtr> DecodeSeq(const unsigned char* p, long len) {
  const unsigned char* start = p;
  AsnSeqPtr seq(d2i_ASN1_SEQUENCE_ANY(nullptr, &p, len));
  crypto::DrainOpensslErrors();
  if (!seq || p != start + len) return Bad("not a DER SEQUENCE");
  return seq;
}

Result<AsnSeqPtr> DecodeSeqType(const ASN1_TYPE* t) {
  if (t == nullptr || t->type != V_ASN1_SEQUENCE || t->value.sequence == nullptr) return Bad("expected a SEQUENCE");
  return DecodeSeq(t->value.sequence->data, t->value.sequence->length);
}

// The dotted text of an OBJECT element, or "".
std::string OidText(const ASN1_TYPE* t) {
  if (t == nullptr || t->type != V_ASN1_OBJECT || t->value.object == nullptr) return {};
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof buf, t->value.object, 1);
  if (n <= 0 || n >= static_cast<int>(sizeof buf)) return {};
  return std::string(buf, static_cast<size_t>(n));
}

template <size_t N>
Status Octets(const ASN1_TYPE* t, const char* what, std::array<uint8_t, N>* out) {
  if (t->type != V_ASN1_OCTET_STRING || t->value.octet_string == nullptr ||
      t->value.octet_string->length != static_cast<int>(N)) {
    return Bad(std::string(what) + " must be an OCTET STRING of " + std::to_string(N) + " bytes");
  }
  for (size_t i = 0; i < N; ++i) (*out)[i] = t->value.octet_string->data[i];
  return Status::Ok();
}

Status Integer(const ASN1_TYPE* t, int asn_type, const char* what, int64_t lo, int64_t hi, int64_t* out) {
  const ASN1_STRING* s = asn_type == V_ASN1_ENUMERATED ? t->value.enumerated : t->value.integer;
  if (t->type != asn_type || s == nullptr) return Bad(std::string(what) + " has the wrong ASN.1 type");
  int64_t v = 0;
  int ok = asn_type == V_ASN1_ENUMERATED ? ASN1_ENUMERATED_get_int64(&v, s) : ASN1_INTEGER_get_int64(&v, s);
  crypto::DrainOpensslErrors();
  if (ok != 1 || v < lo || v > hi) return Bad(std::string(what) + " out of range");
  *out = v;
  return Status::Ok();
}

Status Boolean(const ASN1_TYPE* t, const char* what, std::optional<bool>* out) {
  if (t->type != V_ASN1_BOOLEAN) return Bad(std::string(what) + " must be a BOOLEAN");
  *out = t->value.boolean != 0;
  return Status::Ok();
}

// Iterates (OID, value) pairs of a SEQUENCE and calls fn(suffix, value) where suffix is the
// OID with `prefix.` removed. Rejects duplicates and OIDs outside the prefix.
template <typename Fn>
Status ForEachPair(const ASN1_SEQUENCE_ANY* seq, const std::string& prefix, Fn fn) {
  std::vector<std::string> seen;
  for (int i = 0; i < sk_ASN1_TYPE_num(seq); ++i) {
    VOUCH_ASSIGN_OR_RETURN(AsnSeqPtr pair, DecodeSeqType(sk_ASN1_TYPE_value(seq, i)));
    if (sk_ASN1_TYPE_num(pair.get()) != 2) return Bad("an entry is not an (OID, value) pair");
    std::string oid = OidText(sk_ASN1_TYPE_value(pair.get(), 0));
    if (oid.size() <= prefix.size() + 1 || oid.compare(0, prefix.size(), prefix) != 0 || oid[prefix.size()] != '.') {
      return Bad("unexpected OID " + (oid.empty() ? std::string("(none)") : oid));
    }
    std::string suffix = oid.substr(prefix.size() + 1);
    for (const auto& s : seen) {
      if (s == suffix) return Bad("duplicate OID " + oid);
    }
    seen.push_back(suffix);
    VOUCH_RETURN_IF_ERROR(fn(suffix, sk_ASN1_TYPE_value(pair.get(), 1)));
  }
  return Status::Ok();
}

}  // namespace

Result<PckSgxExtension> ParsePckSgxExtensionDer(std::span<const uint8_t> der) {
  if (der.empty() || der.size() > kMaxDerSize) return Bad("size " + std::to_string(der.size()));
  VOUCH_ASSIGN_OR_RETURN(AsnSeqPtr top, DecodeSeq(der.data(), static_cast<long>(der.size())));
  PckSgxExtension ext;
  const std::string root = kSgxExtensionOid;
  bool have_ppid = false, have_tcb = false, have_pceid = false, have_fmspc = false, have_type = false;
  VOUCH_RETURN_IF_ERROR(ForEachPair(top.get(), root, [&](const std::string& k, const ASN1_TYPE* v) -> Status {
    if (k == "1") {
      have_ppid = true;
      return Octets(v, "PPID", &ext.ppid);
    }
    if (k == "2") {
      have_tcb = true;
      VOUCH_ASSIGN_OR_RETURN(AsnSeqPtr tcb, DecodeSeqType(v));
      int count = 0;
      VOUCH_RETURN_IF_ERROR(ForEachPair(tcb.get(), root + ".2", [&](const std::string& c, const ASN1_TYPE* cv) -> Status {
        char* end = nullptr;
        long idx = std::strtol(c.c_str(), &end, 10);
        if (end == c.c_str() || *end != '\0' || idx < 1 || idx > 18) return Bad("unexpected TCB component ." + c);
        ++count;
        if (idx <= 16) {
          int64_t svn = 0;
          VOUCH_RETURN_IF_ERROR(Integer(cv, V_ASN1_INTEGER, "TCB comp SVN", 0, 255, &svn));
          ext.comp_svns[static_cast<size_t>(idx - 1)] = static_cast<uint8_t>(svn);
          return Status::Ok();
        }
        if (idx == 17) {
          int64_t svn = 0;
          VOUCH_RETURN_IF_ERROR(Integer(cv, V_ASN1_INTEGER, "PCESVN", 0, 0xFFFF, &svn));
          ext.pcesvn = static_cast<uint16_t>(svn);
          return Status::Ok();
        }
        return Octets(cv, "CPUSVN", &ext.cpusvn);
      }));
      if (count != 18) return Bad("TCB has " + std::to_string(count) + " components, expected 18");
      return Status::Ok();
    }
    if (k == "3") {
      have_pceid = true;
      return Octets(v, "PCE-ID", &ext.pce_id);
    }
    if (k == "4") {
      have_fmspc = true;
      return Octets(v, "FMSPC", &ext.fmspc);
    }
    if (k == "5") {
      have_type = true;
      int64_t t = 0;
      VOUCH_RETURN_IF_ERROR(Integer(v, V_ASN1_ENUMERATED, "SGX type", 0, 2, &t));
      ext.sgx_type = static_cast<SgxType>(t);
      return Status::Ok();
    }
    if (k == "6") {
      std::array<uint8_t, 16> id{};
      VOUCH_RETURN_IF_ERROR(Octets(v, "PlatformInstanceID", &id));
      ext.platform_instance_id = id;
      return Status::Ok();
    }
    if (k == "7") {
      VOUCH_ASSIGN_OR_RETURN(AsnSeqPtr cfg, DecodeSeqType(v));
      return ForEachPair(cfg.get(), root + ".7", [&](const std::string& c, const ASN1_TYPE* cv) -> Status {
        if (c == "1") return Boolean(cv, "dynamicPlatform", &ext.dynamic_platform);
        if (c == "2") return Boolean(cv, "cachedKeys", &ext.cached_keys);
        if (c == "3") return Boolean(cv, "SMTEnabled", &ext.smt_enabled);
        return Bad("unexpected configuration entry ." + c);
      });
    }
    return Bad("unexpected entry ." + k);
  }));
  if (!have_ppid || !have_tcb || !have_pceid || !have_fmspc || !have_type) {
    return Bad("missing one of PPID, TCB, PCE-ID, FMSPC, SGX type");
  }
  return ext;
}

Result<PckSgxExtension> ParsePckSgxExtension(X509* cert) {
  crypto::Asn1ObjectPtr oid(OBJ_txt2obj(kSgxExtensionOid, 1));
  if (!oid) return crypto::OpensslError("OBJ_txt2obj");
  int idx = X509_get_ext_by_OBJ(cert, oid.get(), -1);
  if (idx < 0) {
    return InvalidArgument("certificate has no SGX extension (" + std::string(kSgxExtensionOid) + ")",
                           "missing_pck_extension");
  }
  if (X509_get_ext_by_OBJ(cert, oid.get(), idx) >= 0) return Bad("the extension occurs twice");
  X509_EXTENSION* ext = X509_get_ext(cert, idx);
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  if (data == nullptr) return Bad("empty extension");
  return ParsePckSgxExtensionDer(std::span<const uint8_t>(data->data, static_cast<size_t>(data->length)));
}

}  // namespace vouch::attest
