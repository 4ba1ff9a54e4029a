#include "pki/csr.h"

#include <arpa/inet.h>
#include <openssl/objects.h>

#include <string>

#include "base/encoding.h"
#include "crypto/ossl.h"
#include "crypto/x509.h"
#include "pki/der.h"
#include "pki/oids.h"
#include "pki/pki_internal.h"
#include "pki/reasons.h"

namespace vouch::pki {
namespace {

using crypto::EvpMdCtxPtr;
using crypto::EvpPkeyPtr;

Status BadCsr(std::string msg, std::string reason = "invalid_csr") {
  crypto::DrainOpensslErrors();
  return InvalidArgument("CSR: " + std::move(msg), std::move(reason));
}

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// PEM (RFC 7468) to DER. Only the first CSR block counts; text around it is ignored.
Result<std::vector<uint8_t>> PemToDer(std::string_view pem) {
  static constexpr std::string_view kLabels[] = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"};
  for (std::string_view label : kLabels) {
    std::string begin = "-----BEGIN " + std::string(label) + "-----";
    size_t b = pem.find(begin);
    if (b == std::string_view::npos) continue;
    std::string end = "-----END " + std::string(label) + "-----";
    size_t body = b + begin.size();
    size_t e = pem.find(end, body);
    if (e == std::string_view::npos) return BadCsr("PEM block has no END line");
    std::string b64;
    b64.reserve(e - body);
    for (char c : pem.substr(body, e - body)) {
      if (!IsSpace(c)) b64.push_back(c);
    }
    auto der = Base64Decode(b64);
    if (!der.ok()) return BadCsr("PEM body is not base64");
    return std::move(der).value();
  }
  return BadCsr("no \"BEGIN CERTIFICATE REQUEST\" PEM block");
}

std::string ObjectName(std::span<const uint8_t> oid_contents) {
  der::Writer w;
  w.AddElement(der::kTagOid, oid_contents);
  const unsigned char* p = w.bytes().data();
  crypto::Asn1ObjectPtr obj(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(w.bytes().size())));
  if (!obj) return "an unreadable algorithm identifier";
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof(buf), obj.get(), 0);
  if (n <= 0) return "an unknown algorithm";
  return std::string(buf, std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
}

std::string AllowedList(const CsrPolicy& policy) {
  std::string out;
  auto add = [&](std::string_view s) {
    if (!out.empty()) out += ", ";
    out += s;
  };
  if (policy.allow_ec_p256) add("EC P-256");
  if (policy.allow_ec_p384) add("EC P-384");
  if (policy.allow_rsa) add("RSA >= " + std::to_string(policy.min_rsa_bits));
  return out.empty() ? "none" : out;
}

struct ParsedKey {
  EvpPkeyPtr pkey;
  PublicKeyType type;
  int bits;
};

// AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
bool ReadAlgorithm(der::Reader& r, der::Element* oid, der::Element* params, bool* has_params) {
  der::Element alg;
  if (!r.Read(der::kTagSequence, &alg)) return false;
  der::Reader a(alg.contents);
  if (!a.Read(der::kTagOid, oid)) return false;
  *has_params = !a.empty();
  if (*has_params && !a.Read(params)) return false;
  return a.empty();
}

// SubjectPublicKeyInfo -> a provider-native EVP_PKEY. EC keys are built from the raw point
// with EVP_PKEY_fromdata, which skips the generic SPKI decoder chain of OpenSSL 3.0.
Result<ParsedKey> DecodeKey(const der::Element& spki, const CsrPolicy& policy) {
  der::Reader r(spki.contents);
  der::Element alg_oid, params, bits;
  bool has_params = false;
  if (!ReadAlgorithm(r, &alg_oid, &params, &has_params) || !r.Read(der::kTagBitString, &bits) ||
      !r.empty() || bits.contents.empty() || bits.contents[0] != 0) {
    return BadCsr("malformed SubjectPublicKeyInfo");
  }
  std::span<const uint8_t> key_bits = bits.contents.subspan(1);

  if (oid::Equals(alg_oid.contents, oid::kEcPublicKey)) {
    if (!has_params || params.tag != der::kTagOid) {
      return BadCsr("EC key without a named curve", "csr_key_type_not_allowed");
    }
    PublicKeyType type;
    const char* group;
    if (oid::Equals(params.contents, oid::kPrime256v1)) {
      type = PublicKeyType::kEcP256;
      group = "P-256";
      if (!policy.allow_ec_p256) {
        return BadCsr("key is EC P-256, allowed: " + AllowedList(policy), "csr_key_type_not_allowed");
      }
    } else if (oid::Equals(params.contents, oid::kSecp384r1)) {
      type = PublicKeyType::kEcP384;
      group = "P-384";
      if (!policy.allow_ec_p384) {
        return BadCsr("key is EC P-384, allowed: " + AllowedList(policy), "csr_key_type_not_allowed");
      }
    } else {
      return BadCsr("key is EC on curve " + ObjectName(params.contents) + ", allowed: " + AllowedList(policy),
                    "csr_key_type_not_allowed");
    }
    const int nbits = type == PublicKeyType::kEcP256 ? 256 : 384;
    if (!policy.verify_signature) {
      // Nothing is computed with the key (no signature to check): its encoding is checked, and
      // the one party that uses it (vouchd, verifying the same CSR) checks that it is on the curve.
      if (key_bits.size() != 1 + 2 * static_cast<size_t>(nbits / 8) || key_bits[0] != 0x04) {
        return BadCsr("EC public key is not an uncompressed " + std::string(group) + " point", "invalid_csr_key");
      }
      return ParsedKey{nullptr, type, nbits};
    }
    VOUCH_ASSIGN_OR_RETURN(EvpPkeyPtr pkey, EcKeyFromPoint(group, key_bits));
    return ParsedKey{std::move(pkey), type, nbits};
  }

  if (oid::Equals(alg_oid.contents, oid::kRsaEncryption)) {
    if (!policy.allow_rsa) {
      return BadCsr("key is RSA, allowed: " + AllowedList(policy), "csr_key_type_not_allowed");
    }
    if (has_params && params.tag != der::kTagNull) return BadCsr("RSA key parameters are not NULL");
    // RSA is not the fast path; the generic decoder is fine here.
    const unsigned char* p = spki.whole.data();
    EvpPkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.whole.size())));
    if (!pkey || p != spki.whole.data() + spki.whole.size()) {
      return BadCsr("RSA public key does not decode", "invalid_csr_key");
    }
    int nbits = EVP_PKEY_get_bits(pkey.get());
    if (nbits < policy.min_rsa_bits) {
      return BadCsr("RSA key has " + std::to_string(nbits) + " bits, at least " +
                        std::to_string(policy.min_rsa_bits) + " required",
                    "csr_key_too_small");
    }
    if (nbits > policy.max_rsa_bits) {
      return BadCsr("RSA key has " + std::to_string(nbits) + " bits, at most " +
                        std::to_string(policy.max_rsa_bits) + " allowed",
                    "csr_key_type_not_allowed");
    }
    return ParsedKey{std::move(pkey), PublicKeyType::kRsa, nbits};
  }

  return BadCsr("key is " + ObjectName(alg_oid.contents) + ", allowed: " + AllowedList(policy),
                "csr_key_type_not_allowed");
}

// The digest the signature algorithm names, if it fits the key type; nullptr otherwise.
const char* SignatureDigest(std::span<const uint8_t> alg, PublicKeyType type) {
  if (type == PublicKeyType::kRsa) {
    if (oid::Equals(alg, oid::kSha256WithRsa)) return "SHA256";
    if (oid::Equals(alg, oid::kSha384WithRsa)) return "SHA384";
    if (oid::Equals(alg, oid::kSha512WithRsa)) return "SHA512";
    return nullptr;
  }
  if (oid::Equals(alg, oid::kEcdsaWithSha256)) return "SHA256";
  if (oid::Equals(alg, oid::kEcdsaWithSha384)) return "SHA384";
  if (oid::Equals(alg, oid::kEcdsaWithSha512)) return "SHA512";
  return nullptr;
}

std::string Asn1ToUtf8(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

// Attributes: [0] IMPLICIT SET OF Attribute; the only one read is PKCS#9 extensionRequest,
// and from it only subjectAltName.
Status ReadRequestedNames(std::span<const uint8_t> attributes, Csr* csr) {
  der::Reader r(attributes);
  while (!r.empty()) {
    der::Element attr, type, values;
    if (!r.Read(der::kTagSequence, &attr)) return BadCsr("malformed attribute");
    der::Reader a(attr.contents);
    if (!a.Read(der::kTagOid, &type) || !a.Read(der::kTagSet, &values) || !a.empty()) {
      return BadCsr("malformed attribute");
    }
    if (!oid::Equals(type.contents, oid::kExtensionRequest)) continue;
    der::Reader v(values.contents);
    der::Element exts;
    if (!v.Read(der::kTagSequence, &exts) || !v.empty()) return BadCsr("malformed extensionRequest");
    const unsigned char* p = exts.whole.data();
    STACK_OF(X509_EXTENSION)* stack = d2i_X509_EXTENSIONS(nullptr, &p, static_cast<long>(exts.whole.size()));
    if (stack == nullptr) return BadCsr("malformed extensionRequest");
    int crit = 0;
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_get_d2i(stack, NID_subject_alt_name, &crit, nullptr));
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
    if (names == nullptr) {
      if (crit == -2) return BadCsr("more than one subjectAltName extension");
      if (crit >= 0) return BadCsr("malformed subjectAltName extension");
      continue;
    }
    crypto::GeneralNamesPtr owned(names);
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
      if (gn->type == GEN_DNS) {
        csr->dns_names.push_back(Asn1ToUtf8(gn->d.dNSName));
      } else if (gn->type == GEN_URI) {
        csr->uris.push_back(Asn1ToUtf8(gn->d.uniformResourceIdentifier));
      } else if (gn->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
        char text[INET6_ADDRSTRLEN] = {0};
        int family = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : 0;
        if (family == 0 || inet_ntop(family, ip->data, text, sizeof(text)) == nullptr) {
          return BadCsr("malformed iPAddress in subjectAltName");
        }
        csr->ip_addresses.emplace_back(text);
      }
      // Other name forms (email, directory names) are not requested by workloads; ignored.
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view PublicKeyTypeName(PublicKeyType type) {
  switch (type) {
    case PublicKeyType::kEcP256: return "EC P-256";
    case PublicKeyType::kEcP384: return "EC P-384";
    case PublicKeyType::kRsa: return "RSA";
  }
  return "unknown";
}

namespace {

// One parameters-only template per curve, made once. Copying its domain parameters (an
// EC_GROUP_dup) and then setting the point costs about a fifth of EVP_PKEY_fromdata, which
// rebuilds the group (Montgomery contexts, generator) from the curve name on every call.
EVP_PKEY* CurveTemplate(const char* group) {
  static EVP_PKEY* const p256 = EVP_EC_gen("P-256");
  static EVP_PKEY* const p384 = EVP_EC_gen("P-384");
  return std::string_view(group) == "P-384" ? p384 : p256;
}

}  // namespace

Result<EvpPkeyPtr> EcKeyFromPoint(const char* group, std::span<const uint8_t> point) {
  if (point.empty() || point[0] != 0x04) {
    // Compressed points are legal in X9.62 but no CSR producer we know emits them, and the
    // certificate must carry the same bytes; keep one encoding.
    return BadCsr("EC public key is not an uncompressed point", "invalid_csr_key");
  }
  EVP_PKEY* tmpl = CurveTemplate(group);
  EvpPkeyPtr key(EVP_PKEY_new());
  if (tmpl == nullptr || !key || EVP_PKEY_copy_parameters(key.get(), tmpl) != 1) {
    return crypto::OpensslError("EC key parameters");
  }
  // EC_KEY_oct2key, under set1_encoded_public_key, rejects points that are not on the curve.
  if (EVP_PKEY_set1_encoded_public_key(key.get(), point.data(), point.size()) != 1) {
    return BadCsr(std::string("EC public key is not a valid ") + group + " point", "invalid_csr_key");
  }
  return key;
}

Result<Csr> ParseCsr(std::string_view input, const CsrPolicy& policy) {
  if (input.size() > policy.max_input_bytes) {
    return InvalidArgument("CSR is " + std::to_string(input.size()) + " bytes, at most " +
                               std::to_string(policy.max_input_bytes) + " allowed",
                           std::string(kCsrTooLarge));
  }
  if (input.empty()) return BadCsr("empty input");
  std::vector<uint8_t> decoded;
  std::span<const uint8_t> der = AsBytes(input);
  if (input[0] != 0x30) {  // not a DER SEQUENCE: PEM
    VOUCH_ASSIGN_OR_RETURN(decoded, PemToDer(input));
    der = decoded;
  }

  // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature }
  der::Reader top(der);
  der::Element request;
  if (!top.Read(der::kTagSequence, &request)) return BadCsr("not a DER SEQUENCE (truncated or garbage)");
  if (!top.empty()) return BadCsr("trailing bytes after the CSR");
  der::Reader req(request.contents);
  der::Element info, sig_bits;
  der::Element sig_oid, sig_params;
  bool sig_has_params = false;
  if (!req.Read(der::kTagSequence, &info) || !ReadAlgorithm(req, &sig_oid, &sig_params, &sig_has_params) ||
      !req.Read(der::kTagBitString, &sig_bits) || !req.empty()) {
    return BadCsr("malformed CertificationRequest");
  }
  if (sig_bits.contents.empty() || sig_bits.contents[0] != 0) return BadCsr("malformed signature BIT STRING");

  // CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name,
  //   subjectPKInfo SubjectPublicKeyInfo, attributes [0] Attributes }
  der::Reader ri(info.contents);
  der::Element version, subject, spki, attributes;
  uint64_t v = 1;
  if (!ri.Read(der::kTagInteger, &version) || !der::ParseUint64(version.contents, &v)) {
    return BadCsr("malformed version");
  }
  if (v != 0) return BadCsr("version is " + std::to_string(v) + ", expected 0 (v1)");
  if (!ri.Read(der::kTagSequence, &subject)) return BadCsr("malformed subject");
  if (subject.whole.size() > policy.max_subject_bytes) {
    return BadCsr("subject is " + std::to_string(subject.whole.size()) + " bytes, at most " +
                      std::to_string(policy.max_subject_bytes) + " allowed",
                  "csr_subject_too_large");
  }
  if (!ri.Read(der::kTagSequence, &spki)) return BadCsr("malformed SubjectPublicKeyInfo");
  bool has_attributes = ri.Read(der::kTagContext0Constructed, &attributes);
  if (!ri.empty()) return BadCsr("unexpected data after the attributes");

  VOUCH_ASSIGN_OR_RETURN(ParsedKey key, DecodeKey(spki, policy));

  const char* md = SignatureDigest(sig_oid.contents, key.type);
  if (md == nullptr) {
    return BadCsr("signature algorithm " + ObjectName(sig_oid.contents) + " does not fit a " +
                      std::string(PublicKeyTypeName(key.type)) + " key",
                  "csr_signature_algorithm_not_allowed");
  }
  if (sig_has_params && !(key.type == PublicKeyType::kRsa && sig_params.tag == der::kTagNull)) {
    return BadCsr("unexpected signature algorithm parameters", "csr_signature_algorithm_not_allowed");
  }
  if (policy.verify_signature) {
    std::span<const uint8_t> signature = sig_bits.contents.subspan(1);
    EvpMdCtxPtr mdctx(EVP_MD_CTX_new());
    if (!mdctx || EVP_DigestVerifyInit_ex(mdctx.get(), nullptr, md, nullptr, nullptr, key.pkey.get(), nullptr) != 1) {
      return crypto::OpensslError("CSR: verify init");
    }
    if (EVP_DigestVerify(mdctx.get(), signature.data(), signature.size(), info.whole.data(), info.whole.size()) != 1) {
      return BadCsr("self-signature does not verify with the CSR's public key", "csr_signature_invalid");
    }
  }

  Csr csr;
  const unsigned char* p = subject.whole.data();
  crypto::X509NamePtr name(d2i_X509_NAME(nullptr, &p, static_cast<long>(subject.whole.size())));
  if (!name || p != subject.whole.data() + subject.whole.size()) return BadCsr("malformed subject Name");
  csr.subject = crypto::NameToString(name.get());
  int cn = X509_NAME_get_index_by_NID(name.get(), NID_commonName, -1);
  if (cn >= 0) csr.common_name = Asn1ToUtf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name.get(), cn)));
  if (has_attributes) VOUCH_RETURN_IF_ERROR(ReadRequestedNames(attributes.contents, &csr));
  csr.spki_der.assign(spki.whole.begin(), spki.whole.end());
  csr.key_type = key.type;
  csr.key_bits = key.bits;
  return csr;
}

}  // namespace vouch::pki
