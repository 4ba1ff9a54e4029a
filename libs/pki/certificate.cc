#include "pki/certificate.h"

#include <openssl/objects.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>

#include "base/encoding.h"
#include "crypto/x509.h"
#include "pki/der.h"
#include "pki/names.h"
#include "pki/oids.h"
#include "pki/pki_internal.h"
#include "pki/reasons.h"

namespace vouch::pki {
namespace {

using crypto::OpensslError;

constexpr auto kBackdate = std::chrono::seconds(60);
constexpr size_t kMaxCommonName = 64;  // RFC 5280 ub-common-name
constexpr size_t kMaxUri = 2048;

// Extension values that never change, encoded once (X.509 §8.2.2, RFC 5280 §4.2.1).
struct FixedExtensions {
  std::vector<uint8_t> basic_constraints_leaf;  // SEQUENCE {} = CA:FALSE
  std::vector<uint8_t> key_usage_ec;            // digitalSignature
  std::vector<uint8_t> key_usage_rsa;           // digitalSignature, keyEncipherment
  std::vector<uint8_t> eku_server_client;
  std::vector<uint8_t> eku_server;
  std::vector<uint8_t> eku_client;
  crypto::Asn1ObjectPtr measurement_oid;
};

std::vector<uint8_t> EkuDer(std::initializer_list<int> nids) {
  der::Writer oids;
  for (int nid : nids) {
    const ASN1_OBJECT* obj = OBJ_nid2obj(nid);
    oids.AddElement(der::kTagOid, {OBJ_get0_data(obj), OBJ_length(obj)});
  }
  der::Writer seq;
  seq.AddElement(der::kTagSequence, oids.bytes());
  return seq.Take();
}

const FixedExtensions& Fixed() {
  static const FixedExtensions* fixed = [] {
    auto* f = new FixedExtensions();
    f->basic_constraints_leaf = {0x30, 0x00};
    // KeyUsage BIT STRING: bit 0 digitalSignature, bit 2 keyEncipherment; the first content
    // octet counts the unused trailing bits.
    f->key_usage_ec = {0x03, 0x02, 0x07, 0x80};
    f->key_usage_rsa = {0x03, 0x02, 0x05, 0xa0};
    f->eku_server_client = EkuDer({NID_server_auth, NID_client_auth});
    f->eku_server = EkuDer({NID_server_auth});
    f->eku_client = EkuDer({NID_client_auth});
    f->measurement_oid.reset(OBJ_txt2obj(std::string(kMeasurementExtensionOid).c_str(), 1));
    return f;
  }();
  return *fixed;
}

bool IsValidUri(std::string_view uri) {
  if (uri.empty() || uri.size() > kMaxUri) return false;
  size_t colon = uri.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(uri[0])) return false;
  for (size_t i = 1; i < colon; ++i) {
    char c = uri[i];
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return false;
  }
  return std::all_of(uri.begin(), uri.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool IsValidUtf8(std::string_view s);

bool IsValidCommonName(std::string_view cn) {
  size_t chars = 0;
  for (unsigned char c : cn) {
    if (c < 0x20 || c == 0x7f) return false;  // no control characters
    if ((c & 0xc0) != 0x80) ++chars;          // count UTF-8 lead bytes
  }
  return chars >= 1 && chars <= kMaxCommonName && IsValidUtf8(cn);
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    if (c < 0x80) {
      n = 0;
    } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
      n = 1;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
    } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
      n = 3;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

// Time ::= UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5).
Status AddTime(der::Writer& w, TimePoint t) {
  time_t secs = static_cast<time_t>(ToUnixSeconds(t));
  struct tm tm {};
  if (gmtime_r(&secs, &tm) == nullptr) return InvalidArgument("time out of range");
  int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999) return InvalidArgument("time out of range");
  char buf[64];
  int n;
  uint8_t tag;
  if (year >= 1950 && year < 2050) {
    tag = der::kTagUtcTime;
    n = std::snprintf(buf, sizeof(buf), "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec);
  } else {
    tag = der::kTagGeneralizedTime;
    n = std::snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                      tm.tm_min, tm.tm_sec);
  }
  if (n <= 0) return Internal("format time");
  w.AddElement(tag, {reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n)});
  return Status::Ok();
}

// Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
void AddExtension(der::Writer& exts, std::span<const uint8_t> oid, bool critical, std::span<const uint8_t> value) {
  der::Writer e;
  e.AddElement(der::kTagOid, oid);
  if (critical) {
    static constexpr uint8_t kTrue[] = {0xff};
    e.AddElement(der::kTagBoolean, kTrue);  // DER: encoded only when TRUE
  }
  e.AddOctets(value);
  exts.AddElement(der::kTagSequence, e.bytes());
}

struct SpkiView {
  bool rsa = false;
  std::span<const uint8_t> key_bits;
};

Result<SpkiView> ReadSpki(std::span<const uint8_t> spki_der) {
  der::Reader top(spki_der);
  der::Element spki, alg, alg_oid, params, bits;
  auto bad = [] {
    return InvalidArgument("subject public key is not a valid SubjectPublicKeyInfo",
                           std::string(kInvalidKey));
  };
  if (!top.Read(der::kTagSequence, &spki) || !top.empty()) return bad();
  der::Reader r(spki.contents);
  if (!r.Read(der::kTagSequence, &alg) || !r.Read(der::kTagBitString, &bits) || !r.empty() ||
      bits.contents.size() < 2 || bits.contents[0] != 0) {
    return bad();
  }
  der::Reader a(alg.contents);
  if (!a.Read(der::kTagOid, &alg_oid)) return bad();
  bool has_params = a.Read(&params);
  if (!a.empty()) return bad();
  SpkiView view;
  view.key_bits = bits.contents.subspan(1);
  if (oid::Equals(alg_oid.contents, oid::kEcPublicKey) && has_params && params.tag == der::kTagOid) {
    if (!oid::Equals(params.contents, oid::kPrime256v1) && !oid::Equals(params.contents, oid::kSecp384r1)) {
      return InvalidArgument("subject key curve is not P-256 or P-384", std::string(kInvalidKey));
    }
    return view;
  }
  if (oid::Equals(alg_oid.contents, oid::kRsaEncryption) && (!has_params || params.tag == der::kTagNull)) {
    view.rsa = true;
    return view;
  }
  return InvalidArgument("subject key is neither EC P-256/P-384 nor RSA", std::string(kInvalidKey));
}

// GeneralNames (RFC 5280 §4.2.1.6): dNSName [2] IA5String, URI [6] IA5String, iPAddress [7].
Result<std::vector<uint8_t>> SubjectAltNames(const IssueRequest& req) {
  der::Writer names;
  for (const std::string& dns : req.dns_names) {
    if (!IsValidDnsName(dns))
      return InvalidArgument("\"" + dns + "\" is not a valid DNS name",
                             std::string(kInvalidDnsName));
    names.AddElement(0x82, AsBytes(dns));
  }
  for (const std::string& uri : req.uris) {
    if (!IsValidUri(uri))
      return InvalidArgument("\"" + uri + "\" is not a valid URI", std::string(kInvalidUri));
    names.AddElement(0x86, AsBytes(uri));
  }
  for (const std::string& ip : req.ip_addresses) {
    crypto::Asn1OctetStringPtr bin(a2i_IPADDRESS(ip.c_str()));
    if (!bin) {
      crypto::DrainOpensslErrors();
      return InvalidArgument("\"" + ip + "\" is not an IP address", std::string(kInvalidIpAddress));
    }
    names.AddElement(0x87, {ASN1_STRING_get0_data(bin.get()), static_cast<size_t>(ASN1_STRING_length(bin.get()))});
  }
  der::Writer seq;
  seq.AddElement(der::kTagSequence, names.bytes());
  return seq.Take();
}

}  // namespace

std::string DerToPem(std::string_view label, std::span<const uint8_t> der) {
  std::string b64 = Base64Encode(der);
  std::string out;
  out.reserve(b64.size() + b64.size() / 64 + 2 * label.size() + 40);
  out.append("-----BEGIN ").append(label).append("-----\n");
  for (size_t i = 0; i < b64.size(); i += 64) {
    out.append(b64, i, 64);
    out.push_back('\n');
  }
  out.append("-----END ").append(label).append("-----\n");
  return out;
}

std::vector<uint8_t> EncodeMeasurement(const Measurement& m) {
  der::Writer fields;
  fields.AddUtf8(m.platform);
  fields.AddOctets(m.mrenclave);
  fields.AddOctets(m.mrsigner);
  fields.AddUint64(m.isvprodid);
  fields.AddUint64(m.isvsvn);
  der::Writer seq;
  seq.AddElement(der::kTagSequence, fields.bytes());
  return seq.Take();
}

Result<Measurement> DecodeMeasurement(std::span<const uint8_t> bytes) {
  auto bad = [](std::string what) {
    return InvalidArgument("measurement extension: " + what,
                           std::string(kInvalidMeasurementExtension));
  };
  der::Reader top(bytes);
  der::Element seq, platform, mrenclave, mrsigner, prodid, svn;
  if (!top.Read(der::kTagSequence, &seq) || !top.empty()) return bad("not a single DER SEQUENCE");
  der::Reader r(seq.contents);
  if (!r.Read(der::kTagUtf8String, &platform)) return bad("platform UTF8String missing");
  if (!r.Read(der::kTagOctetString, &mrenclave)) return bad("mrenclave OCTET STRING missing");
  if (!r.Read(der::kTagOctetString, &mrsigner)) return bad("mrsigner OCTET STRING missing");
  Measurement m;
  if (!r.Read(der::kTagInteger, &prodid) || !der::ParseUint64(prodid.contents, &m.isvprodid)) {
    return bad("isvprodid INTEGER missing or out of range");
  }
  if (!r.Read(der::kTagInteger, &svn) || !der::ParseUint64(svn.contents, &m.isvsvn)) {
    return bad("isvsvn INTEGER missing or out of range");
  }
  if (!r.empty()) return bad("trailing fields");
  m.platform = ToString(platform.contents);
  m.mrenclave.assign(mrenclave.contents.begin(), mrenclave.contents.end());
  m.mrsigner.assign(mrsigner.contents.begin(), mrsigner.contents.end());
  return m;
}

Result<Measurement> ReadMeasurementExtension(X509* cert) {
  int idx = X509_get_ext_by_OBJ(cert, Fixed().measurement_oid.get(), -1);
  if (idx < 0) return NotFound("certificate has no measurement extension");
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
  return DecodeMeasurement({ASN1_STRING_get0_data(value), static_cast<size_t>(ASN1_STRING_length(value))});
}

std::string SpiffeId(std::string_view zone, std::string_view app) {
  std::string out = "spiffe://";
  out.append(zone).append("/app/").append(app);
  return out;
}

IssueRequest IssueRequest::ForCsr(const Csr& csr, CertificateProfile profile) {
  IssueRequest req;
  req.profile = profile;
  req.spki_der = csr.spki_der;
  return req;
}

Result<IssuedCertificate> IssueCertificate(const CaSigner& ca, const IssueRequest& req, const Clock& clock) {
  const FixedExtensions& fixed = Fixed();
  if (req.profile == CertificateProfile::kWorkload && !req.measurement) {
    return InvalidArgument("workload certificates carry a build measurement; none given",
                           std::string(kMeasurementRequired));
  }
  if (req.dns_names.empty() && req.uris.empty() && req.ip_addresses.empty()) {
    return InvalidArgument("a certificate needs at least one subjectAltName",
                           std::string(kInvalidArgument));
  }
  std::string cn = req.common_name;
  if (cn.empty()) cn = !req.dns_names.empty() ? req.dns_names.front() : !req.uris.empty() ? req.uris.front() : "";
  if (!IsValidCommonName(cn)) {
    return InvalidArgument("common name must be 1 to 64 printable characters",
                           std::string(kInvalidCommonName));
  }
  if (req.validity <= std::chrono::seconds(0)) return InvalidArgument("validity must be positive");
  VOUCH_ASSIGN_OR_RETURN(SpkiView spki, ReadSpki(req.spki_der));
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> san, SubjectAltNames(req));

  IssuedCertificate out;
  out.not_before = req.not_before.value_or(std::chrono::time_point_cast<std::chrono::seconds>(clock.Now()) - kBackdate);
  out.not_after = std::min<TimePoint>(out.not_before + req.validity, ca.not_after());
  if (out.not_after <= out.not_before) {
    return FailedPrecondition("the CA certificate expires (" + FormatRfc3339(ca.not_after()) +
                                  ") before the certificate would start",
                              std::string(kCaExpired));
  }

  // TBSCertificate (RFC 5280 §4.1), encoded directly: the subject public key and the issuer
  // name are copied as bytes, so no EVP_PKEY, X509 or X509_NAME object is built.
  der::Writer fields;
  fields.Reserve(1024);
  static constexpr uint8_t kVersion3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};  // [0] EXPLICIT INTEGER 2
  fields.AddRaw(kVersion3);
  std::array<uint8_t, 16> serial = RandomSerial();
  out.serial_hex = HexEncode(serial);
  if (serial[0] & 0x80) {  // keep the INTEGER positive: 17 content bytes
    uint8_t padded[17] = {0};
    std::copy(serial.begin(), serial.end(), padded + 1);
    fields.AddElement(der::kTagInteger, padded);
  } else {
    fields.AddElement(der::kTagInteger, serial);
  }
  fields.AddRaw(ca.signature_algorithm_der());
  fields.AddRaw(ca.subject_der());
  der::Writer validity;
  VOUCH_RETURN_IF_ERROR(AddTime(validity, out.not_before));
  VOUCH_RETURN_IF_ERROR(AddTime(validity, out.not_after));
  fields.AddElement(der::kTagSequence, validity.bytes());
  {  // Name ::= SEQUENCE { SET { SEQUENCE { id-at-commonName, UTF8String } } }
    der::Writer atv, rdn, name;
    atv.AddElement(der::kTagOid, oid::kCommonName);
    atv.AddUtf8(cn);
    rdn.AddElement(der::kTagSequence, atv.bytes());
    name.AddElement(der::kTagSet, rdn.bytes());
    fields.AddElement(der::kTagSequence, name.bytes());
  }
  fields.AddRaw(req.spki_der);

  // Extensions, in the order docs/formats/certificate-profile.md lists them.
  der::Writer exts;
  AddExtension(exts, oid::kBasicConstraints, true, fixed.basic_constraints_leaf);
  AddExtension(exts, oid::kKeyUsage, true, spki.rsa ? fixed.key_usage_rsa : fixed.key_usage_ec);
  const std::vector<uint8_t>& eku = req.profile == CertificateProfile::kWorkload ? fixed.eku_server_client
                                    : req.profile == CertificateProfile::kServer ? fixed.eku_server
                                                                                 : fixed.eku_client;
  AddExtension(exts, oid::kExtKeyUsage, false, eku);
  uint8_t key_id[EVP_MAX_MD_SIZE];
  unsigned int key_id_len = 0;
  if (EVP_Digest(spki.key_bits.data(), spki.key_bits.size(), key_id, &key_id_len, EVP_sha1(), nullptr) != 1) {
    return OpensslError("SHA-1 key identifier");
  }
  der::Writer ski;
  ski.AddOctets({key_id, key_id_len});
  AddExtension(exts, oid::kSubjectKeyIdentifier, false, ski.bytes());
  AddExtension(exts, oid::kAuthorityKeyIdentifier, false, ca.authority_key_id_der());
  AddExtension(exts, oid::kSubjectAltName, false, san);
  if (req.measurement) {
    const ASN1_OBJECT* m = fixed.measurement_oid.get();
    AddExtension(exts, {OBJ_get0_data(m), OBJ_length(m)}, false, EncodeMeasurement(*req.measurement));
  }
  der::Writer ext_seq;
  ext_seq.AddElement(der::kTagSequence, exts.bytes());
  fields.AddElement(der::kTagContext3Constructed, ext_seq.bytes());
  der::Writer tbs;
  tbs.AddElement(der::kTagSequence, fields.bytes());

  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> signature, ca.SignData(tbs.bytes()));
  signature.insert(signature.begin(), 0x00);  // no unused bits
  der::Writer cert_fields;
  cert_fields.Reserve(tbs.bytes().size() + signature.size() + 32);
  cert_fields.AddRaw(tbs.bytes());
  cert_fields.AddRaw(ca.signature_algorithm_der());
  cert_fields.AddElement(der::kTagBitString, signature);
  der::Writer cert;
  cert.AddElement(der::kTagSequence, cert_fields.bytes());
  out.der = cert.Take();
  out.pem = DerToPem("CERTIFICATE", out.der);
  return out;
}

}  // namespace vouch::pki
