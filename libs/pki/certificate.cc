#include "pki/certificate.h"

#include <openssl/objects.h>

#include <algorithm>
#include <mutex>

#include "base/encoding.h"
#include "crypto/x509.h"
#include "pki/der.h"
#include "pki/oids.h"
#include "pki/pki_internal.h"

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

bool IsLdhLabel(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool IsValidDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  if (name.substr(0, 2) == "*.") name.remove_prefix(2);
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!IsLdhLabel(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
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

bool IsValidCommonName(std::string_view cn) {
  size_t chars = 0;
  for (unsigned char c : cn) {
    if (c < 0x20 || c == 0x7f) return false;  // no control characters
    if ((c & 0xc0) != 0x80) ++chars;          // count UTF-8 lead bytes
  }
  return chars >= 1 && chars <= kMaxCommonName;
}

Status SetTime(ASN1_TIME* field, TimePoint t) {
  if (ASN1_TIME_set(field, static_cast<time_t>(ToUnixSeconds(t))) == nullptr) {
    return OpensslError("set certificate time");
  }
  return Status::Ok();
}

struct SpkiView {
  bool rsa = false;
  int curve_nid = NID_undef;
  std::span<const uint8_t> key_bits;
};

Result<SpkiView> ReadSpki(std::span<const uint8_t> spki_der) {
  der::Reader top(spki_der);
  der::Element spki, alg, alg_oid, params, bits;
  auto bad = [] { return InvalidArgument("subject public key is not a valid SubjectPublicKeyInfo", "invalid_key"); };
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
    if (oid::Equals(params.contents, oid::kPrime256v1)) {
      view.curve_nid = NID_X9_62_prime256v1;
    } else if (oid::Equals(params.contents, oid::kSecp384r1)) {
      view.curve_nid = NID_secp384r1;
    } else {
      return InvalidArgument("subject key curve is not P-256 or P-384", "invalid_key");
    }
    return view;
  }
  if (oid::Equals(alg_oid.contents, oid::kRsaEncryption) && (!has_params || params.tag == der::kTagNull)) {
    view.rsa = true;
    return view;
  }
  return InvalidArgument("subject key is neither EC P-256/P-384 nor RSA", "invalid_key");
}

// The fast path: set the certificate's SubjectPublicKeyInfo from bytes. The algorithm objects
// are OpenSSL's static ones; only the key bits are copied. No EVP_PKEY is created, so
// OpenSSL 3.0's encoder/decoder round trip inside X509_set_pubkey is avoided.
Status SetPublicKey(X509* cert, const SpkiView& spki) {
  X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert);
  auto* bits = static_cast<unsigned char*>(OPENSSL_memdup(spki.key_bits.data(), spki.key_bits.size()));
  if (pub == nullptr || bits == nullptr) return OpensslError("copy public key");
  int ok = spki.rsa ? X509_PUBKEY_set0_param(pub, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_NULL, nullptr, bits,
                                             static_cast<int>(spki.key_bits.size()))
                    : X509_PUBKEY_set0_param(pub, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                                             OBJ_nid2obj(spki.curve_nid), bits,
                                             static_cast<int>(spki.key_bits.size()));
  if (ok != 1) {
    OPENSSL_free(bits);
    return OpensslError("set public key");
  }
  return Status::Ok();
}

// GeneralNames (RFC 5280 §4.2.1.6): dNSName [2] IA5String, URI [6] IA5String, iPAddress [7].
Result<std::vector<uint8_t>> SubjectAltNames(const IssueRequest& req) {
  der::Writer names;
  for (const std::string& dns : req.dns_names) {
    if (!IsValidDnsName(dns)) return InvalidArgument("\"" + dns + "\" is not a valid DNS name", "invalid_dns_name");
    names.AddElement(0x82, AsBytes(dns));
  }
  for (const std::string& uri : req.uris) {
    if (!IsValidUri(uri)) return InvalidArgument("\"" + uri + "\" is not a valid URI", "invalid_uri");
    names.AddElement(0x86, AsBytes(uri));
  }
  for (const std::string& ip : req.ip_addresses) {
    crypto::Asn1OctetStringPtr bin(a2i_IPADDRESS(ip.c_str()));
    if (!bin) {
      crypto::DrainOpensslErrors();
      return InvalidArgument("\"" + ip + "\" is not an IP address", "invalid_ip_address");
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

Status AddExtension(X509* cert, const ASN1_OBJECT* obj, bool critical, std::span<const uint8_t> value) {
  crypto::Asn1OctetStringPtr os(ASN1_OCTET_STRING_new());
  if (!os || ASN1_OCTET_STRING_set(os.get(), value.data(), static_cast<int>(value.size())) != 1) {
    return OpensslError("extension value");
  }
  crypto::X509ExtensionPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, obj, critical ? 1 : 0, os.get()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return OpensslError("add extension");
  return Status::Ok();
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
    return InvalidArgument("measurement extension: " + what, "invalid_measurement_extension");
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
    return InvalidArgument("workload certificates carry a build measurement; none given", "measurement_required");
  }
  if (req.dns_names.empty() && req.uris.empty() && req.ip_addresses.empty()) {
    return InvalidArgument("a certificate needs at least one subjectAltName", "invalid_argument");
  }
  std::string cn = req.common_name;
  if (cn.empty()) cn = !req.dns_names.empty() ? req.dns_names.front() : !req.uris.empty() ? req.uris.front() : "";
  if (!IsValidCommonName(cn)) {
    return InvalidArgument("common name must be 1 to 64 printable characters", "invalid_common_name");
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
                              "ca_expired");
  }

  crypto::X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) return OpensslError("new certificate");
  std::array<uint8_t, 16> serial = RandomSerial();
  if (ASN1_STRING_set(X509_get_serialNumber(x.get()), serial.data(), static_cast<int>(serial.size())) != 1) {
    return OpensslError("set serial");
  }
  out.serial_hex = HexEncode(serial);
  if (X509_set_issuer_name(x.get(), ca.subject()) != 1) return OpensslError("set issuer");
  if (X509_NAME_add_entry_by_NID(X509_get_subject_name(x.get()), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()), static_cast<int>(cn.size()),
                                 -1, 0) != 1) {
    return OpensslError("set subject", StatusCode::kInvalidArgument, "invalid_common_name");
  }
  VOUCH_RETURN_IF_ERROR(SetTime(X509_getm_notBefore(x.get()), out.not_before));
  VOUCH_RETURN_IF_ERROR(SetTime(X509_getm_notAfter(x.get()), out.not_after));
  VOUCH_RETURN_IF_ERROR(SetPublicKey(x.get(), spki));

  // Extensions, in the order the profile document lists them.
  VOUCH_RETURN_IF_ERROR(AddExtension(x.get(), OBJ_nid2obj(NID_basic_constraints), true, fixed.basic_constraints_leaf));
  VOUCH_RETURN_IF_ERROR(AddExtension(x.get(), OBJ_nid2obj(NID_key_usage), true,
                                     spki.rsa ? fixed.key_usage_rsa : fixed.key_usage_ec));
  const std::vector<uint8_t>& eku = req.profile == CertificateProfile::kWorkload ? fixed.eku_server_client
                                    : req.profile == CertificateProfile::kServer ? fixed.eku_server
                                                                                 : fixed.eku_client;
  VOUCH_RETURN_IF_ERROR(AddExtension(x.get(), OBJ_nid2obj(NID_ext_key_usage), false, eku));
  uint8_t key_id[20];
  unsigned int key_id_len = 0;
  if (EVP_Digest(spki.key_bits.data(), spki.key_bits.size(), key_id, &key_id_len, EVP_sha1(), nullptr) != 1) {
    return OpensslError("SHA-1 key identifier");
  }
  der::Writer ski;
  ski.AddOctets({key_id, key_id_len});
  VOUCH_RETURN_IF_ERROR(AddExtension(x.get(), OBJ_nid2obj(NID_subject_key_identifier), false, ski.bytes()));
  if (X509_add_ext(x.get(), const_cast<X509_EXTENSION*>(ca.authority_key_id_extension()), -1) != 1) {
    return OpensslError("add authorityKeyIdentifier");
  }
  VOUCH_RETURN_IF_ERROR(AddExtension(x.get(), OBJ_nid2obj(NID_subject_alt_name), false, san));
  if (req.measurement) {
    VOUCH_RETURN_IF_ERROR(AddExtension(x.get(), fixed.measurement_oid.get(), false, EncodeMeasurement(*req.measurement)));
  }

  VOUCH_RETURN_IF_ERROR(ca.Sign(x.get()));
  unsigned char* der = nullptr;
  int len = i2d_X509(x.get(), &der);
  if (len <= 0) return OpensslError("encode certificate");
  out.der.assign(der, der + len);
  OPENSSL_free(der);
  out.pem = DerToPem("CERTIFICATE", out.der);
  return out;
}

}  // namespace vouch::pki
